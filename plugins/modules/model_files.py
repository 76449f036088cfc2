#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: model_files
short_description: Fetch a served model's files once, check every file against its source's checksums, keep a manifest
description:
  - With I(source=huggingface), reads the hub's file metadata of I(repo) at I(revision)
    (C(GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true)), the sha256 of every LFS file
    and the git blob sha1 of every other file, fetches every file the node lacks or holds with other
    bytes (resumed from a C(.part) file), checks it, and writes the revision's manifest
    (C(.blackwell/<revision>.manifest.json), path, size and sha256 of every file) and marker.
  - With I(source=directory), checks the files already at I(path) (a local model, a copy from the
    controller or a peer) against I(manifest), the manifest written where they came from; without
    I(manifest), against the manifest this module wrote on the node before (the first run writes it).
  - Later runs check cheaply; a file whose size and mtime equal the marker's is not hashed again;
    I(verify=full) hashes every file. A file that does not match is fetched again (hub) or removed
    and reported in C(bad) (directory), and the module fails unless I(fail_on_bad=false); it never
    reports a model with a bad file as verified.
  - With I(mode=info), changes nothing and returns the model's size according to the source (hub
    metadata, a directory or tar archive given as I(source_path)), the bytes not yet on the node
    and the free space of the filesystem that holds I(path); with I(headroom) it fails when the
    model does not fit (what preflight asks before any download).
version_added: "0.1.0"
author: blackwell.vllm maintainers (!UNKNOWN)
options:
  path:
    description: The model directory on the node (created when missing).
    type: path
    required: true
  source:
    description: Where the files come from.
    type: str
    choices: [huggingface, directory]
    default: huggingface
  mode:
    description: C(fetch) fetches and verifies; C(info) only measures.
    type: str
    choices: [fetch, info]
    default: fetch
  repo:
    description: The hub repository (C(org/name)); with I(source=huggingface).
    type: str
  revision:
    description:
      - The hub revision, a commit id to be reproducible (a branch or tag is resolved to its commit).
      - With I(source=directory), the name the manifest and marker are kept under (default C(local)).
    type: str
  endpoint:
    description: The hub's address (C(HF_ENDPOINT)); unset, the environment's C(HF_ENDPOINT) or https://huggingface.co.
    type: str
  token:
    description: A hub token for gated or private repositories (never logged).
    type: str
    default: ""
  manifest:
    description: The manifest the files are checked against (C(files), a list of path, size, sha256), for I(source=directory).
    type: dict
  source_path:
    description: With I(mode=info) and I(source=directory), the directory or tar archive whose size is the model's.
    type: path
  expected_size:
    description:
      - With I(mode=info), the model's size in bytes when its source is elsewhere (the controller, the Ray head);
        the node then only reports and checks its free space.
    type: int
  verify:
    description: C(cheap) hashes only files whose size or mtime differ from the marker; C(full) hashes all.
    type: str
    choices: [cheap, full]
    default: cheap
  headroom:
    description: Bytes that must stay free on the filesystem after the missing files are in place.
    type: int
    default: 0
  remove_extra:
    description: Remove files under I(path) that the revision does not have (a stale shard would be loaded too).
    type: bool
    default: false
  fail_on_bad:
    description: Fail when a file does not match (directory source); false returns C(bad) for a copy to replace them.
    type: bool
    default: true
notes:
  - Supports check mode; C(changed) then says whether files would be fetched, removed or the manifest written.
  - Standard library only on the node; it honours C(HF_ENDPOINT) like huggingface_hub does.
"""

EXAMPLES = r"""
- name: Fetch Qwen at a pinned commit and check every file against the hub's sha256
  blackwell.vllm.model_files:
    path: /var/lib/vllm/models/Qwen--Qwen2.5-7B/a09a35458c702b33eeacc393d103063234e8bc28
    repo: Qwen/Qwen2.5-7B
    revision: a09a35458c702b33eeacc393d103063234e8bc28
    token: "{{ vllm_hf_token }}"
    headroom: "{{ 10 * 1024**3 }}"
  no_log: true

- name: Ask how large the model is and whether it fits (changes nothing)
  blackwell.vllm.model_files:
    mode: info
    path: /var/lib/vllm/models/Qwen--Qwen2.5-7B/a09a35458c702b33eeacc393d103063234e8bc28
    repo: Qwen/Qwen2.5-7B
    revision: a09a35458c702b33eeacc393d103063234e8bc28
    headroom: "{{ 10 * 1024**3 }}"

- name: Check a worker's copy against the head's manifest
  blackwell.vllm.model_files:
    source: directory
    path: /var/lib/vllm/models/general
    revision: a09a35458c702b33eeacc393d103063234e8bc28
    manifest: "{{ head_manifest }}"
    fail_on_bad: false
  register: copy_check
"""

RETURN = r"""
revision:
  description: The revision checked (with the hub, the commit the revision resolved to).
  type: str
  returned: always
size:
  description: Bytes of the model according to its source.
  type: int
  returned: always
missing_bytes:
  description: Bytes of files the node lacks or holds with another size (before this run fetched them).
  type: int
  returned: always
free:
  description: Free bytes on the filesystem of I(path) (C(free_path), its nearest existing directory), before the run.
  type: int
  returned: always
free_path:
  description: The directory whose filesystem C(free) was read from.
  type: str
  returned: always
fetched:
  description: Files fetched from the hub (missing or with other bytes).
  type: list
  elements: str
  returned: always
bad:
  description: Files that did not match before this run, and why (C(missing), the size, the checksum found and expected).
  type: dict
  returned: always
removed:
  description: Files removed (bad ones with a directory source, extras with I(remove_extra)).
  type: list
  elements: str
  returned: always
hashed:
  description: Files hashed by this run (the cheap check hashes only what changed).
  type: int
  returned: always
verified:
  description: Every file matched its source at the end of the run.
  type: bool
  returned: always
manifest:
  description: The revision's manifest (revision, source, size, files with path, size, sha256).
  type: dict
  returned: when verified
manifest_path:
  description: Where the manifest is kept on the node.
  type: str
  returned: always
bytes_fetched:
  description: Bytes downloaded by this run.
  type: int
  returned: always
elapsed:
  description: Seconds the run took.
  type: float
  returned: always
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils import model_files as mf


def _expected(module, p):
    """The files the model must have, and the revision they are kept under."""
    if p["source"] == "huggingface":
        if not p["repo"]:
            module.fail_json(msg="source huggingface needs repo (org/name)")
        endpoint = p["endpoint"] or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        info = mf.hub_info(endpoint, p["repo"], p["revision"] or "main", p["token"])
        return info["files"], info["sha"], endpoint
    revision = p["revision"] or "local"
    if p["manifest"] is not None:
        return mf.manifest_files(p["manifest"]), revision, None
    if p["mode"] == "info" and p["expected_size"] is not None:
        return [{"path": ".", "size": p["expected_size"]}], revision, None
    if p["mode"] == "info" and p["source_path"]:
        src = p["source_path"]
        if os.path.isdir(src):
            return mf.directory_files(src), revision, None
        if os.path.isfile(src):
            return [{"path": os.path.basename(src), "size": mf.archive_size(src)}], revision, None
        module.fail_json(msg="source_path %s is neither a directory nor a tar archive" % src)
    manifest_path = mf.state_paths(p["path"], revision)[0]
    known = mf.read_json(manifest_path)
    if known:
        return mf.manifest_files(known), revision, None
    if not os.path.isdir(p["path"]):
        if p["mode"] == "info":
            return [], revision, None
        module.fail_json(msg="%s does not exist: a model_source local must be on the node (copied or on NFS) before the run" % p["path"])
    # First sight of a directory: its files as they are now become the manifest (later runs check against it).
    return mf.directory_files(p["path"]), revision, None


def run(module):
    p = module.params
    start = time.monotonic()
    try:
        expected, revision, endpoint = _expected(module, p)
    except mf.ModelFilesError as exc:
        module.fail_json(msg=str(exc))
    free, free_path = mf.free_bytes(p["path"])
    manifest_path = mf.state_paths(p["path"], revision)[0]
    size = mf.total_size(expected)
    result = dict(changed=False, revision=revision, size=size, free=free, free_path=free_path, fetched=[], bad={},
                  removed=[], hashed=0, verified=False, manifest_path=manifest_path, bytes_fetched=0)

    if p["mode"] == "info":
        have = 0
        for f in expected:
            target = os.path.join(p["path"], f["path"])
            if os.path.isfile(target) and os.path.getsize(target) == int(f["size"]):
                have += int(f["size"])
        result["missing_bytes"] = size - have
        result["elapsed"] = round(time.monotonic() - start, 3)
        need = result["missing_bytes"] + p["headroom"]
        if need > free:
            module.fail_json(msg="%s: the model needs %s more (%s in all, %s already here) plus headroom %s, but %s has %s free"
                             % (p["repo"] or p["source_path"] or p["path"], mf.human(result["missing_bytes"]), mf.human(size),
                                mf.human(have), mf.human(p["headroom"]), free_path, mf.human(free)), **result)
        module.exit_json(**result)

    source_name = "huggingface:%s" % p["repo"] if p["source"] == "huggingface" else "directory"
    bad, marker, hashed, extra = mf.check(p["path"], expected, revision, full=p["verify"] == "full")
    result.update(bad=bad, hashed=hashed)
    missing = sum(int(f["size"]) for f in expected if f["path"] in bad)
    result["missing_bytes"] = missing
    extra = extra if p["remove_extra"] else []

    if p["source"] == "huggingface" and missing + p["headroom"] > free:
        module.fail_json(msg="%s@%s: %s to fetch plus headroom %s, but %s has %s free; nothing was fetched"
                         % (p["repo"], revision, mf.human(missing), mf.human(p["headroom"]), free_path, mf.human(free)), **result)

    manifest = mf.manifest_from_marker(expected, marker, revision, source_name) if not bad else None
    old_manifest = mf.read_json(manifest_path)
    if module.check_mode:
        result["changed"] = bool(bad or extra or old_manifest != manifest)
        result["removed"] = extra
        result["verified"] = not bad
        if manifest:
            result["manifest"] = manifest
        result["elapsed"] = round(time.monotonic() - start, 3)
        module.exit_json(**result)

    for rel in extra:
        os.unlink(os.path.join(p["path"], rel))
        result["removed"].append(rel)

    if p["source"] == "huggingface":
        for f in expected:
            if f["path"] not in bad:
                continue
            dest = os.path.join(p["path"], f["path"])
            if os.path.exists(dest):
                os.unlink(dest)  # a wrong file is never kept beside a right one
            try:
                result["bytes_fetched"] += mf.hub_download(endpoint, p["repo"], revision, f["path"], dest, int(f["size"]), p["token"])
            except mf.ModelFilesError as exc:
                module.fail_json(msg=str(exc), **result)
            problem, entry = mf.check_file(p["path"], f, None, True)[:2]
            result["hashed"] += 1
            if problem:
                os.unlink(dest)
                module.fail_json(msg="%s@%s: %s fetched again still does not match the hub (%s); it was removed, "
                                     "nothing serves it" % (p["repo"], revision, f["path"], problem), **result)
            marker[f["path"]] = entry
            result["fetched"].append(f["path"])
    elif bad:
        for rel, problem in sorted(bad.items()):
            target = os.path.join(p["path"], rel)
            if problem != "missing" and os.path.lexists(target):
                os.unlink(target)
                result["removed"].append(rel)
        result["changed"] = bool(result["removed"])
        result["elapsed"] = round(time.monotonic() - start, 3)
        if p["fail_on_bad"]:
            module.fail_json(msg="%s: %d file(s) do not match the manifest of %s (%s); they were removed and are never served: "
                                 "copy them again (a local model: put the right files back)"
                             % (p["path"], len(bad), revision, "; ".join("%s: %s" % kv for kv in sorted(bad.items())[:5])), **result)
        module.exit_json(**result)

    changed, manifest = mf.commit_state(p["path"], expected, marker, revision, source_name)
    result.update(changed=bool(changed or result["fetched"] or result["removed"]), verified=True, manifest=manifest,
                  elapsed=round(time.monotonic() - start, 3))
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            source=dict(type="str", choices=["huggingface", "directory"], default="huggingface"),
            mode=dict(type="str", choices=["fetch", "info"], default="fetch"),
            repo=dict(type="str"),
            revision=dict(type="str"),
            endpoint=dict(type="str"),
            token=dict(type="str", default="", no_log=True),
            manifest=dict(type="dict"),
            source_path=dict(type="path"),
            expected_size=dict(type="int"),
            verify=dict(type="str", choices=["cheap", "full"], default="cheap"),
            headroom=dict(type="int", default=0),
            remove_extra=dict(type="bool", default=False),
            fail_on_bad=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
