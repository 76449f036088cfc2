# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The files of a served model: what the source says they are, what the node holds, and the proof.

A model directory on a node holds the model's files and a folder ``.blackwell/`` with, per
revision, a manifest (``<revision>.manifest.json``: every file's path, size and sha256, written
once the files were checked against the source) and a marker (``<revision>.marker.json``: the
size, mtime and sha256 each file had when it was last hashed). The cheap check trusts a file
whose size and mtime still equal the marker's; anything else is hashed again (``full`` hashes
every file). A file that does not match is never served: the caller fetches or copies it again.

The source's own checksums: the Hugging Face hub gives every LFS file's sha256 and every other
file's git blob sha1 (``GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true``, the call
behind huggingface_hub's ``HfApi().model_info(files_metadata=True)``); for a directory (a local
path, a copy from the controller or from a peer) the manifest written where the files came from.

Standard library only: it runs on nodes before any venv exists (preflight asks for sizes).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import time
import urllib.error
import urllib.parse

from ansible.module_utils.urls import open_url

STATE_DIR = ".blackwell"
# Never part of a model: our own state, huggingface_hub's local_dir cache, the old download marker.
IGNORED = (STATE_DIR, ".cache", ".blackwell-download-complete")
CHUNK = 4 * 1024 * 1024
PINNED_RE = re.compile(r"^[0-9a-f]{40}$")


class ModelFilesError(Exception):
    """A problem a person can act on (the message says which file, which source, what to do)."""


def is_pinned(revision):
    """A revision is pinned when it is a full commit id (a branch or tag can move)."""
    return bool(PINNED_RE.match(revision or ""))


def safe_name(revision):
    """The revision as a file name (a branch such as refs/pr/1 holds slashes)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", revision or "local")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path):
    """git's object id of a file: sha1 of 'blob <size>\\0' + content (the hub's blobId of a non-LFS file)."""
    digest = hashlib.sha1()  # nosec - git's object id, not a security hash
    digest.update(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def hub_files(info):
    """The files of a hub revision from the API's answer: path, size, and sha256 (LFS) or git_sha1 (others)."""
    files = []
    for sib in info.get("siblings") or []:
        name = sib.get("rfilename")
        if not name or name.split("/")[0] in IGNORED:
            continue
        lfs = sib.get("lfs") or {}
        if lfs.get("sha256"):
            files.append({"path": name, "size": int(lfs.get("size", sib.get("size", 0))), "sha256": lfs["sha256"]})
        elif sib.get("blobId"):
            files.append({"path": name, "size": int(sib.get("size", 0)), "git_sha1": sib["blobId"]})
        else:
            raise ModelFilesError("the hub gave no checksum for %s (no lfs.sha256, no blobId); ask with ?blobs=true" % name)
    return sorted(files, key=lambda f: f["path"])


def hub_request(url, token="", method="GET", headers=None, timeout=60):
    """One request to the hub (or HF_ENDPOINT), through Ansible's open_url (proxy and CA settings of the
    environment apply); raises urllib's HTTPError and URLError."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = "Bearer %s" % token
    return open_url(url, method=method, headers=headers, timeout=timeout, http_agent="blackwell.vllm-model-files",
                    follow_redirects="all")


def hub_info(endpoint, repo, revision, token="", timeout=60):
    """GET /api/models/{repo}/revision/{rev}?blobs=true: the commit id and every file's checksum."""
    url = "%s/api/models/%s/revision/%s?blobs=true" % (
        endpoint.rstrip("/"), repo, urllib.parse.quote(revision or "main", safe=""))
    try:
        with hub_request(url, token, timeout=timeout) as resp:
            info = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        hint = {401: "a gated or private repository needs vllm_hf_token", 403: "the token may not read it",
                404: "no such repository or revision"}.get(exc.code, "")
        raise ModelFilesError("%s answered HTTP %s for %s@%s%s" % (endpoint, exc.code, repo, revision, (": " + hint) if hint else ""))
    except (urllib.error.URLError, OSError) as exc:
        raise ModelFilesError("cannot reach %s for %s@%s: %s (set vllm_hf_endpoint, or a proxy)" % (endpoint, repo, revision, exc))
    return {"sha": info.get("sha") or revision, "files": hub_files(info)}


def hub_download(endpoint, repo, commit, path, dest, size, token="", timeout=60):
    """Fetch one file to dest (through dest + '.part', resumed with a Range request). Returns the bytes fetched."""
    url = "%s/%s/resolve/%s/%s" % (endpoint.rstrip("/"), repo, commit, urllib.parse.quote(path))
    part = dest + ".part"
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if have > size:
        os.unlink(part)
        have = 0
    fetched = 0
    if have < size or size == 0:
        headers = {"Range": "bytes=%d-" % have} if have else {}
        try:
            with hub_request(url, token, headers=headers, timeout=timeout) as resp:
                mode = "ab" if have and resp.status == 206 else "wb"
                with open(part, mode) as out:
                    for block in iter(lambda: resp.read(CHUNK), b""):
                        out.write(block)
                        fetched += len(block)
        except (urllib.error.URLError, OSError) as exc:
            raise ModelFilesError("download of %s from %s failed: %s (the part file is kept; a re-run resumes)" % (path, url, exc))
    os.replace(part, dest)
    return fetched


def walk(root):
    """Relative paths of the regular files under root, our state and caches left out."""
    out = []
    for base, dirs, names in os.walk(root):
        rel = os.path.relpath(base, root)
        if rel == ".":
            dirs[:] = [d for d in dirs if d not in IGNORED]
        for name in names:
            relpath = name if rel == "." else os.path.join(rel, name)
            if relpath in IGNORED or name.endswith(".part"):
                continue
            if os.path.isfile(os.path.join(base, name)) and not os.path.islink(os.path.join(base, name)):
                out.append(relpath)
    return sorted(out)


def directory_files(root):
    """Path and size of every file of a directory (a model on the controller or the node)."""
    return [{"path": p, "size": os.path.getsize(os.path.join(root, p))} for p in walk(root)]


def archive_size(path):
    """Bytes a tar archive unpacks to."""
    with tarfile.open(path) as tar:
        return sum(m.size for m in tar.getmembers() if m.isfile())


def total_size(files):
    return sum(int(f["size"]) for f in files)


def free_bytes(path):
    """Free bytes for an unprivileged writer on the filesystem that holds path (or its nearest existing parent)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    st = os.statvfs(probe)
    return st.f_bavail * st.f_frsize, probe


def state_paths(root, revision):
    name = safe_name(revision)
    base = os.path.join(root, STATE_DIR)
    return os.path.join(base, name + ".manifest.json"), os.path.join(base, name + ".marker.json")


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def check_file(root, expected, marker, full):
    """One file against its expected entry. Returns (problem or None, marker entry or None, hashed)."""
    path = os.path.join(root, expected["path"])
    try:
        st = os.stat(path)
    except OSError:
        return "missing", None, False
    if st.st_size != int(expected["size"]):
        return "size %d, expected %d" % (st.st_size, int(expected["size"])), None, False
    known = (marker or {}).get(expected["path"])
    if (not full and known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns
            and (not expected.get("sha256") or known.get("sha256") == expected["sha256"])
            and (not expected.get("git_sha1") or known.get("git_sha1") == expected["git_sha1"])):
        return None, known, False
    entry = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_file(path)}
    if expected.get("git_sha1"):
        entry["git_sha1"] = git_blob_sha1(path)
        if entry["git_sha1"] != expected["git_sha1"]:
            return "git blob sha1 %s, expected %s" % (entry["git_sha1"], expected["git_sha1"]), None, True
    if expected.get("sha256") and entry["sha256"] != expected["sha256"]:
        return "sha256 %s, expected %s" % (entry["sha256"], expected["sha256"]), None, True
    return None, entry, True


def check(root, expected, revision, full=False):
    """Every expected file against the node's copy. Returns bad {path: problem}, the new marker, files hashed, extras."""
    marker_path = state_paths(root, revision)[1]
    marker = (read_json(marker_path) or {}).get("files", {})
    bad, new_marker, hashed = {}, {}, 0
    for exp in expected:
        problem, entry, did_hash = check_file(root, exp, marker, full)
        hashed += int(did_hash)
        if problem:
            bad[exp["path"]] = problem
        else:
            new_marker[exp["path"]] = entry
    wanted = set(f["path"] for f in expected)
    extra = [p for p in walk(root) if p not in wanted] if os.path.isdir(root) else []
    return bad, new_marker, hashed, extra


def manifest_from_marker(expected, marker, revision, source):
    """The manifest of a verified revision: path, size and sha256 of every file."""
    return {
        "revision": revision,
        "source": source,
        "files": [{"path": f["path"], "size": int(f["size"]), "sha256": marker[f["path"]]["sha256"]} for f in expected],
        "size": total_size(expected),
    }


def commit_state(root, expected, marker, revision, source):
    """Write manifest and marker (manifest only when it differs). Returns True when a file changed."""
    manifest_path, marker_path = state_paths(root, revision)
    manifest = manifest_from_marker(expected, marker, revision, source)
    marker_doc = {"revision": revision, "files": marker, "checked": int(time.time())}
    changed = False
    old = read_json(manifest_path)
    if old != manifest:
        write_json(manifest_path, manifest)
        changed = True
    old_marker = read_json(marker_path) or {}
    if old_marker.get("files") != marker:
        write_json(marker_path, marker_doc)
        changed = True
    return changed, manifest


def manifest_files(manifest):
    """The expected files of a manifest (written by this collection where the files came from)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ModelFilesError("a manifest is a mapping with a list 'files' of {path, size, sha256}")
    out = []
    for f in manifest["files"]:
        if not {"path", "size", "sha256"} <= set(f):
            raise ModelFilesError("manifest entry %r lacks path, size or sha256" % (f,))
        out.append({"path": f["path"], "size": int(f["size"]), "sha256": f["sha256"]})
    return sorted(out, key=lambda f: f["path"])


def human(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024
    return "%d B" % n
