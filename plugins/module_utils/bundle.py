# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The offline bundle: what a site without internet installs from.

A bundle is one directory with ``manifest.json`` and the files it lists:

* ``wheels/<key>.tar`` per (python, arch) of the inventory's nodes, ``<key>`` = ``cp311-x86_64``:
  every wheel the vllm role installs (vLLM of the pinned release, torch, Ray, pip/wheel/setuptools
  for the venv), fetched with ``pip download --only-binary=:all: --platform ... --python-version``
  and packed reproducibly (sorted names, mtime 0) so the same wheels give the same sha256;
* ``nccl/nccl-<version>.tar.gz``, the NCCL source archive the nccl role builds;
* ``models/<org>--<name>/``, Hugging Face snapshots of the served models;
* ``debs/``, the driver and CUDA packages with their dependencies, only when asked.

Each step that fetches something writes a part (``parts/<name>.json``: its kind, what it is for,
its files and, for wheels, the members of the tar). ``build_manifest`` gathers the parts into
``manifest.json`` with the size and sha256 of every file; ``manifest_missing`` says which needs of
an inventory a manifest does not cover; ``verify_files`` checks files on disk against it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

MANIFEST = "manifest.json"
FORMAT = 1
# glibc of the oldest manylinux tag pip is asked for; the newest comes from the node (Debian 12: 2.36).
MANYLINUX_MIN = 17
ARCHES = ("x86_64", "aarch64")


def wheelset_key(python, arch):
    """``("3.11", "x86_64")`` -> ``"cp311-x86_64"``: the name of a node's wheel set."""
    parts = str(python).split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        raise ValueError("python version %r is not of the form 3.11" % (python,))
    if arch not in ARCHES:
        raise ValueError("architecture %r is not one of %s" % (arch, ", ".join(ARCHES)))
    return "cp%s%s-%s" % (parts[0], parts[1], arch)


def platform_tags(arch, glibc="2.36"):
    """The --platform tags a node of this arch and glibc accepts, newest first."""
    if arch not in ARCHES:
        raise ValueError("architecture %r is not one of %s" % (arch, ", ".join(ARCHES)))
    major, minor = (int(x) for x in str(glibc).split(".")[:2])
    if major != 2 or minor < MANYLINUX_MIN:
        raise ValueError("glibc %s is older than manylinux 2.%d" % (glibc, MANYLINUX_MIN))
    tags = ["manylinux_2_%d_%s" % (m, arch) for m in range(minor, MANYLINUX_MIN - 1, -1)]
    return tags + ["manylinux2014_%s" % arch, "linux_%s" % arch]


def pip_download_argv(python_bin, dest, python, arch, requirements, glibc="2.36", find_links=(), index_url="",
                      extra_index_urls=()):
    """The pip command that fetches the wheels of ``requirements`` for another node's python and arch.

    ``--only-binary=:all:`` because pip cannot build an sdist for a foreign platform, and the node
    installs with ``--no-index`` from wheels alone.
    """
    if not requirements:
        raise ValueError("no requirements to download")
    ver = str(python).split(".")
    abi = "cp%s%s" % (ver[0], ver[1])
    argv = [python_bin, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
            "--dest", dest, "--only-binary=:all:", "--python-version", "%s.%s" % (ver[0], ver[1]),
            "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none"]
    for tag in platform_tags(arch, glibc):
        argv += ["--platform", tag]
    for link in find_links or ():
        argv += ["--find-links", link]
    if index_url:
        argv += ["--index-url", index_url]
    for url in extra_index_urls or ():
        argv += ["--extra-index-url", url]
    return argv + list(requirements)


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def pack_wheels(src_dir, tar_path):
    """Pack the wheels of ``src_dir`` into ``tar_path`` reproducibly; returns the members (name, size, sha256).

    The same wheels give the same bytes (sorted names, mtime 0, uid 0), so a re-run leaves the
    tar and its checksum as they were.
    """
    names = sorted(n for n in os.listdir(src_dir) if n.endswith(".whl"))
    members = []
    tmp = tar_path + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            path = os.path.join(src_dir, name)
            info = tarfile.TarInfo(name)
            info.size = os.path.getsize(path)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            with open(path, "rb") as f:
                tar.addfile(info, f)
            members.append({"name": name, "size": info.size, "sha256": sha256_file(path)})
    os.replace(tmp, tar_path)
    return members


def _file_entry(root, rel, purpose, part, previous):
    path = os.path.join(root, rel)
    st = os.stat(path)
    old = previous.get(rel)
    if old and old.get("size") == st.st_size and old.get("mtime") == int(st.st_mtime):
        digest = old["sha256"]
    else:
        digest = sha256_file(path)
    return {"path": rel, "size": st.st_size, "mtime": int(st.st_mtime), "sha256": digest, "for": purpose, "part": part}


def _part_files(root, part):
    """The files of a part: each listed file, or every file under a listed directory."""
    out = []
    for item in part.get("files", []):
        rel = item["path"].strip("/")
        path = os.path.join(root, rel)
        if os.path.isdir(path):
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames.sort()
                for name in sorted(filenames):
                    out.append((os.path.relpath(os.path.join(dirpath, name), root), item.get("for", part.get("for", ""))))
        else:
            out.append((rel, item.get("for", part.get("for", ""))))
    return out


def read_manifest(root):
    path = os.path.join(root, MANIFEST)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def build_manifest(root, previous=None):
    """The manifest of the bundle at ``root`` from its ``parts/*.json``.

    A file whose size and mtime are those of ``previous`` keeps its sha256 (a re-run reads no
    gigabytes); anything else is hashed. Raises ``FileNotFoundError`` naming a listed file that
    is not there.
    """
    prev_files = {f["path"]: f for f in (previous or {}).get("files", [])}
    parts_dir = os.path.join(root, "parts")
    parts = {}
    files = []
    for name in sorted(os.listdir(parts_dir)) if os.path.isdir(parts_dir) else []:
        if not name.endswith(".json"):
            continue
        with open(os.path.join(parts_dir, name)) as f:
            part = json.load(f)
        pname = name[:-len(".json")]
        parts[pname] = part
        for rel, purpose in _part_files(root, part):
            if not os.path.exists(os.path.join(root, rel)):
                raise FileNotFoundError("part %s lists %s, which is not in the bundle %s" % (pname, rel, root))
            files.append(_file_entry(root, rel, purpose, pname, prev_files))
    return {"format": FORMAT, "parts": parts, "files": files}


def manifest_text(manifest):
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def verify_files(root, manifest, part=None):
    """Problems of the files on disk against the manifest (all of them, or one part's): missing, size, sha256."""
    problems = []
    for entry in manifest.get("files", []):
        if part is not None and entry.get("part") != part:
            continue
        path = os.path.join(root, entry["path"])
        if not os.path.isfile(path):
            problems.append("%s: missing" % entry["path"])
        elif os.path.getsize(path) != entry["size"]:
            problems.append("%s: %d bytes, the manifest says %d" % (entry["path"], os.path.getsize(path), entry["size"]))
        elif sha256_file(path) != entry["sha256"]:
            problems.append("%s: sha256 differs from the manifest's %s" % (entry["path"], entry["sha256"]))
    return problems


def verify_members(directory, members):
    """Problems of unpacked wheels in ``directory`` against a wheel set's members."""
    problems = []
    for m in members:
        path = os.path.join(directory, m["name"])
        if not os.path.isfile(path):
            problems.append("%s: missing" % m["name"])
        elif sha256_file(path) != m["sha256"]:
            problems.append("%s: sha256 differs from the manifest's %s" % (m["name"], m["sha256"]))
    return problems


def manifest_missing(manifest, needs):
    """What ``needs`` asks for that ``manifest`` does not hold, as sentences that name each item.

    ``needs``: ``{"wheels": [{"python", "arch", "vllm_version", "package", "ray"}], "nccl": {"version"} or None,
    "models": ["org/name", ...]}``.
    """
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return ["the manifest is not a blackwell.vllm bundle manifest of format %d" % FORMAT]
    parts = manifest.get("parts", {})
    listed = {f["path"] for f in manifest.get("files", [])}
    missing = []
    seen = set()
    for w in needs.get("wheels", []):
        key = wheelset_key(w["python"], w["arch"])
        if key in seen:
            continue
        seen.add(key)
        part = parts.get("wheels-" + key)
        what = "the wheels for python %s on %s (%s %s, ray %s)" % (w["python"], w["arch"], w.get("package", "vllm"),
                                                                   w.get("vllm_version", "?"), w.get("ray", "?"))
        if part is None:
            have = sorted(k[len("wheels-"):] for k in parts if k.startswith("wheels-"))
            missing.append("%s: no wheel set %s (the bundle has %s)" % (what, key, ", ".join(have) or "none"))
            continue
        for field, want in (("package", w.get("package")), ("vllm_version", w.get("vllm_version")), ("ray", w.get("ray"))):
            if want is not None and str(part.get(field)) != str(want):
                missing.append("%s: wheel set %s holds %s %s" % (what, key, field, part.get(field)))
        if not any(f["path"] in listed for f in part.get("files", [])):
            missing.append("%s: wheel set %s lists no file" % (what, key))
    nccl = needs.get("nccl")
    if nccl:
        part = parts.get("nccl")
        if part is None:
            missing.append("the NCCL %s source archive (nccl_build is on): not in the bundle" % nccl["version"])
        elif str(part.get("version")) != str(nccl["version"]):
            missing.append("the NCCL %s source archive (nccl_build is on): the bundle has NCCL %s"
                           % (nccl["version"], part.get("version")))
    for model in needs.get("models", []):
        if not any(p.get("kind") == "model" and p.get("model") == model for p in parts.values()):
            missing.append("the model %s (model_source huggingface): not in the bundle" % model)
    return missing


def tar_members(tar_path):
    """The names in a wheel tar (for a check that it opens)."""
    with tarfile.open(tar_path) as tar:
        return sorted(tar.getnames())


def render(obj):
    """JSON text of a part, stable for a file compare."""
    buf = io.StringIO()
    json.dump(obj, buf, indent=2, sort_keys=True)
    return buf.getvalue() + "\n"
