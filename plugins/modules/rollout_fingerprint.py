#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rollout_fingerprint
short_description: What a node serves with, in a form a rollout can compare and restore
description:
  - Reads, without changing anything, the parts of a node that the stages of site.yml change,
    the vLLM release that C(current) and C(previous) name, a sha256 of each vLLM unit and
    environment file, NCCL's C(current) build, the given configuration files (netplan, the
    NCCL/CUDA environment), the Ray version in the serving release's venv and the loaded NVIDIA
    driver.
  - With I(backup_dir), also keeps a copy of every file it read (units, environment files, the
    given files) under that directory at its own path, mode and owner kept, in a directory of mode
    C(0700). These copies are what a rollback puts back. The environment files hold the API key, so the copies stay C(0600)
    or stricter and their content is never returned.
version_added: "0.1.0"
author: blackwell.vllm maintainers (!UNKNOWN)
options:
  vllm_base_dir:
    description: The vLLM root with C(releases/), C(current) and C(previous).
    type: path
    default: /opt/vllm
  unit_dir:
    description: Where the C(vllm-*.service) units are.
    type: path
    default: /etc/systemd/system
  vllm_env_dir:
    description: Where each service's environment file C(<name>.env) is.
    type: path
    default: /etc/vllm
  nccl_install_root:
    description: The NCCL root whose C(current) link names the build in use.
    type: path
    default: /opt/nccl
  files:
    description: Further files to fingerprint and keep (absent ones are recorded as absent).
    type: list
    elements: path
    default: []
  backup_dir:
    description: Keep a copy of every file read under this directory. Nothing is copied when it is not given.
    type: path
notes:
  - Supports check mode; in check mode nothing is copied and C(changed) says whether it would be.
"""

EXAMPLES = r"""
- name: Fingerprint the node before the change, keeping what a rollback restores
  blackwell.vllm.rollout_fingerprint:
    files: [/etc/netplan/60-qsfp.yaml, /etc/blackwell/nccl.env]
    backup_dir: /var/lib/blackwell/rollouts/20261203T141500Z/files
  register: before
"""

RETURN = r"""
fingerprint:
  description: What the node serves with.
  type: dict
  returned: always
  sample:
    vllm:
      current: /opt/vllm/releases/0.32.0-110eed7d2d
      previous: null
      release: 0.32.0-110eed7d2d
      units: {/etc/systemd/system/vllm-tiny.service: 3f0c...}
      env: {/etc/vllm/tiny.env: 9a1b...}
    nccl: {current: /opt/nccl/2.28.9-1-sm_121}
    files: {/etc/netplan/60-qsfp.yaml: 77aa..., /etc/blackwell/nccl.env: null}
    ray: {version: 2.60.0}
    driver: {version: 580.95.05}
backed_up:
  description: The files copied under I(backup_dir).
  type: list
  elements: str
  returned: always
"""

import glob
import hashlib
import os
import shutil

from ansible.module_utils.basic import AnsibleModule


def sha256(path):
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 16), b""):
                digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None


def link(path):
    return os.path.realpath(path) if os.path.islink(path) else None


def ray_version(release):
    if not release:
        return None
    found = sorted(glob.glob(os.path.join(release, "venv", "lib", "python*", "site-packages", "ray-*.dist-info")))
    if not found:
        return None
    name = os.path.basename(found[-1])[len("ray-"):-len(".dist-info")]
    return name or None


def driver_version(root="/"):
    for path in ("sys/module/nvidia/version", "proc/driver/nvidia/version"):
        try:
            with open(os.path.join(root, path)) as f:
                text = f.read().strip()
        except OSError:
            continue
        if path.startswith("sys"):
            return text or None
        for word in text.split():
            if word.count(".") >= 1 and word.replace(".", "").isdigit():
                return word
    return None


def fingerprint(vllm_base_dir, unit_dir, vllm_env_dir, nccl_install_root, files):
    current = link(os.path.join(vllm_base_dir, "current"))
    units = sorted(glob.glob(os.path.join(unit_dir, "vllm-*.service")))
    envs = sorted(glob.glob(os.path.join(vllm_env_dir, "*.env")))
    return {
        "vllm": {
            "current": current,
            "previous": link(os.path.join(vllm_base_dir, "previous")),
            "release": os.path.basename(current) if current else None,
            "units": {p: sha256(p) for p in units},
            "env": {p: sha256(p) for p in envs},
        },
        "nccl": {"current": link(os.path.join(nccl_install_root, "current"))},
        "files": {p: sha256(p) for p in files},
        "ray": {"version": ray_version(current)},
        "driver": {"version": driver_version()},
    }


def backup_plan(fp, backup_dir):
    """(source, copy) pairs for every existing file read whose copy is missing or differs."""
    sources = list(fp["vllm"]["units"]) + list(fp["vllm"]["env"]) + [p for p, h in fp["files"].items() if h]
    plan = []
    for src in sources:
        dest = os.path.join(backup_dir, src.lstrip("/"))
        if sha256(dest) != sha256(src):
            plan.append((src, dest))
    return plan


def copy_file(src, dest):
    parent = os.path.dirname(dest)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    tmp = dest + ".tmp"
    shutil.copyfile(src, tmp)
    st = os.stat(src)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, dest)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vllm_base_dir=dict(type="path", default="/opt/vllm"),
            unit_dir=dict(type="path", default="/etc/systemd/system"),
            vllm_env_dir=dict(type="path", default="/etc/vllm"),
            nccl_install_root=dict(type="path", default="/opt/nccl"),
            files=dict(type="list", elements="path", default=[]),
            backup_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    fp = fingerprint(p["vllm_base_dir"], p["unit_dir"], p["vllm_env_dir"], p["nccl_install_root"], p["files"])
    plan = backup_plan(fp, p["backup_dir"]) if p["backup_dir"] else []
    if plan and not module.check_mode:
        os.makedirs(p["backup_dir"], mode=0o700, exist_ok=True)
        os.chmod(p["backup_dir"], 0o700)
        for src, dest in plan:
            try:
                copy_file(src, dest)
            except OSError as exc:
                module.fail_json(msg="could not keep a copy of %s in %s: %s" % (src, dest, exc))
    module.exit_json(changed=bool(plan), fingerprint=fp, backed_up=[pair[0] for pair in plan])


if __name__ == "__main__":
    main()
