#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bundle_manifest
short_description: Write or check the manifest of an offline bundle
description:
  - C(state=present) gathers the parts of a bundle (C(parts/*.json), written by the steps that fetched
    them) into C(manifest.json) with each file's path, size, sha256 and what it is for. A file
    whose size and mtime are unchanged keeps its sha256; the manifest is rewritten only when it differs.
  - C(state=verified) reads nothing but checks. With I(members) and I(directory), the unpacked wheels in
    I(directory) against a wheel set's members; else the files of I(path) (one I(part) or all)
    against its manifest. Fails naming each missing or changed file.
version_added: "0.1.0"
author: blackwell.vllm maintainers (!UNKNOWN)
options:
  path:
    description: The bundle directory (holds C(manifest.json) and C(parts/)).
    type: path
  state:
    description: C(present) writes the manifest, C(verified) checks files against it.
    type: str
    choices: [present, verified]
    default: present
  part:
    description: With C(state=verified), check only the files of this part (C(wheels-cp311-x86_64), C(nccl)).
    type: str
  directory:
    description: With C(state=verified) and I(members), the folder of unpacked wheels to check.
    type: path
  members:
    description: With C(state=verified), the members of a wheel set (C(name), C(sha256)) from the manifest.
    type: list
    elements: dict
notes:
  - Supports check mode and diff mode.
"""

EXAMPLES = r"""
- name: Write the bundle's manifest
  blackwell.vllm.bundle_manifest:
    path: /srv/bundle

- name: Check the wheels unpacked on a node
  blackwell.vllm.bundle_manifest:
    state: verified
    directory: /var/lib/blackwell/bundle/wheels/cp311-x86_64
    members: "{{ manifest.parts['wheels-cp311-x86_64'].members }}"
"""

RETURN = r"""
manifest:
  description: The manifest (C(state=present)).
  returned: state is present
  type: dict
files:
  description: How many files the manifest lists or how many were checked.
  returned: always
  type: int
bytes:
  description: Their total size.
  returned: state is present
  type: int
problems:
  description: What did not match (C(state=verified)).
  returned: state is verified
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils import bundle


def present(module):
    root = module.params["path"]
    path = os.path.join(root, bundle.MANIFEST)
    before = None
    previous = None
    if os.path.exists(path):
        with open(path) as f:
            before = f.read()
        previous = bundle.read_manifest(root)
    try:
        manifest = bundle.build_manifest(root, previous)
    except (OSError, ValueError) as e:
        module.fail_json(msg=str(e))
    after = bundle.manifest_text(manifest)
    changed = after != before
    if changed and not module.check_mode:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(after)
        os.replace(tmp, path)
    result = dict(changed=changed, manifest=manifest, files=len(manifest["files"]),
                  bytes=sum(f["size"] for f in manifest["files"]))
    if module._diff:
        result["diff"] = {"before": before or "", "after": after, "before_header": path, "after_header": path}
    module.exit_json(**result)


def verified(module):
    p = module.params
    if p["members"] is not None:
        if not p["directory"]:
            module.fail_json(msg="members needs directory: the folder of the unpacked wheels")
        problems = bundle.verify_members(p["directory"], p["members"])
        count = len(p["members"])
        where = p["directory"]
    else:
        if not p["path"]:
            module.fail_json(msg="state=verified needs path (a bundle) or directory and members")
        manifest = bundle.read_manifest(p["path"])
        if manifest is None:
            module.fail_json(msg="%s has no %s: not a bundle (build it with playbooks/bundle.yml)" % (p["path"], bundle.MANIFEST))
        problems = bundle.verify_files(p["path"], manifest, p["part"])
        count = len([f for f in manifest["files"] if p["part"] is None or f.get("part") == p["part"]])
        where = p["path"]
    if problems:
        module.fail_json(msg="%s does not match the bundle's manifest: %s" % (where, "; ".join(problems[:10])),
                         problems=problems, files=count)
    module.exit_json(changed=False, problems=[], files=count)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            state=dict(type="str", choices=["present", "verified"], default="present"),
            part=dict(type="str"),
            directory=dict(type="path"),
            members=dict(type="list", elements="dict"),
        ),
        required_if=[("state", "present", ["path"])],
        supports_check_mode=True,
    )
    if module.params["state"] == "present":
        present(module)
    verified(module)


if __name__ == "__main__":
    main()
