#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vllm_patch
short_description: Apply the Blackwell sm_121 source patches to an installed vLLM, guarded by version and layout
description:
  - Inserts marked blocks into vLLM's Python sources so that on sm_121 (GB10) FP8 linear layers
    use the torch backend (C(cutlass_fp8_supported) and C(cutlass_block_fp8_supported) return
    False) and FP8 MoE layers use Triton (C(select_fp8_moe_backend)).
  - Idempotent. A block that is up to date is left alone; an outdated one is replaced; C(state=absent)
    restores the file as installed.
  - Guarded. Where the vLLM version is older than the layout a patch is written for, or an anchor
    line is not found exactly once, the patch is skipped with a warning and the file is not touched.
  - With I(python), checks that the patched code is what runs in that interpreter. The imported
    module is the patched file, its source holds the block, and (for C(cutlass_fp8)) the functions
    return False when the platform reports capability 12.1.
version_added: "0.1.0"
author: blackwell.vllm maintainers (!UNKNOWN)
options:
  site_packages:
    description: The directory that holds the C(vllm) package (a venv's site-packages).
    type: path
    required: true
  version:
    description: The installed vLLM version (C(0.32.0)); picks which patches fit the file layout.
    type: str
    required: true
  patches:
    description: Which patches to manage.
    type: list
    elements: str
    choices: [cutlass_fp8, fp8_moe_triton]
    default: [cutlass_fp8, fp8_moe_triton]
  state:
    description: C(present) applies the patches, C(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
  python:
    description:
      - The interpreter that runs vLLM (C(<release>/venv/bin/python)). When given, the module
        imports the patched modules in it and fails if the code that runs is not the patched code.
    type: path
  strict:
    description: Fail instead of skipping with a warning when a patch does not fit the installed vLLM.
    type: bool
    default: false
notes:
  - Supports check mode and diff mode. In check mode the runtime check runs only when nothing would change.
  - The runtime check imports vLLM (and torch), tens of seconds on a busy node. Once it passed, its result is kept in
    C(<site_packages>/.blackwell-vllm-patch-check.json) under a key made of the interpreter, the venv's C(pyvenv.cfg),
    the C(.pth) files of I(site_packages), each patched file's sha256 and the check itself; a later run whose key is
    the same returns that result (RV(runtime_check=cached)) without importing anything. Any change to those runs it again.
"""

EXAMPLES = r"""
- name: Patch vLLM for GB10
  blackwell.vllm.vllm_patch:
    site_packages: /opt/vllm/releases/0.18.1-0123456789/venv/lib/python3.12/site-packages
    version: "0.18.1"
    python: /opt/vllm/releases/0.18.1-0123456789/venv/bin/python
"""

RETURN = r"""
patches:
  description: One entry per patch.
  type: list
  elements: dict
  returned: always
  sample:
    - name: cutlass_fp8
      path: /opt/vllm/.../w8a8_utils.py
      status: patched
      reason: null
skipped:
  description: Names of the patches that were skipped because the layout differs.
  type: list
  elements: str
  returned: always
runtime:
  description: What the runtime check found, per patch (file imported, block present, behaviour).
  type: dict
  returned: when python is given and the check ran or its kept result still holds
runtime_check:
  description: C(ran) when the check imported the patched modules now, C(cached) when the kept result of an earlier
    run still holds (nothing it depends on changed since).
  type: str
  returned: when python is given and a patch applies
  sample: cached
"""

import glob
import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils.model_files import read_json, sha256_file, write_json
from ansible_collections.blackwell.vllm.plugins.module_utils.vllm_patch import PATCHES, has_blocks, plan, strip_blocks

RUNTIME_CHECK = r"""
import importlib, inspect, json, os, sys
wanted = json.loads(sys.argv[1])
out = {}
modules = {
    "cutlass_fp8": "vllm.model_executor.layers.quantization.utils.w8a8_utils",
    "fp8_moe_triton": "vllm.model_executor.layers.fused_moe.oracle.fp8",
}
for name, path in wanted.items():
    res = {"module": modules[name]}
    try:
        mod = importlib.import_module(modules[name])
        res["file"] = os.path.realpath(mod.__file__)
        res["file_matches"] = res["file"] == os.path.realpath(path)
        if name == "cutlass_fp8":
            src = inspect.getsource(mod.cutlass_fp8_supported) + inspect.getsource(mod.cutlass_block_fp8_supported)
            res["block_in_source"] = src.count("BEGIN blackwell.vllm") == 2
            plat = mod.current_platform

            class _Cap:
                def to_int(self):
                    return 121

            saved = {k: plat.__dict__.get(k) for k in ("is_cuda", "get_device_capability")}
            plat.is_cuda = lambda: True
            plat.get_device_capability = lambda device_id=0: _Cap()
            try:
                res["returns_false_on_sm121"] = (mod.cutlass_fp8_supported() is False
                                                 and mod.cutlass_block_fp8_supported() is False)
            finally:
                for k, v in saved.items():
                    if v is None:
                        delattr(plat, k)
                    else:
                        setattr(plat, k, v)
            res["ok"] = res["file_matches"] and res["block_in_source"] and res["returns_false_on_sm121"]
        else:
            src = inspect.getsource(mod.select_fp8_moe_backend)
            res["block_in_source"] = "BEGIN blackwell.vllm sm121-fp8-moe-triton" in src
            res["ok"] = res["file_matches"] and res["block_in_source"]
    except Exception as exc:  # report, do not hide: the module fails on ok=False
        res["error"] = "%s: %s" % (type(exc).__name__, exc)
        res["ok"] = False
    out[name] = res
print(json.dumps(out))
"""

CHECK_MARKER = ".blackwell-vllm-patch-check.json"


def check_key(python, applied, site_packages):
    """What the runtime check's result depends on: the interpreter, the venv, the import path, the patched files."""
    parts = {"check": hashlib.sha256(RUNTIME_CHECK.encode()).hexdigest(), "python": python}
    try:
        parts["python_link"] = os.readlink(python)
    except OSError:
        parts["python_sha256"] = sha256_file(python) if os.path.isfile(python) else None
    cfg = os.path.join(os.path.dirname(os.path.dirname(python)), "pyvenv.cfg")
    parts["pyvenv_cfg"] = sha256_file(cfg) if os.path.isfile(cfg) else None
    parts["pth"] = {os.path.basename(f): sha256_file(f) for f in sorted(glob.glob(os.path.join(site_packages, "*.pth")))}
    parts["files"] = {name: [path, sha256_file(path)] for name, path in sorted(applied.items())}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            site_packages=dict(type="path", required=True),
            version=dict(type="str", required=True),
            patches=dict(type="list", elements="str", choices=sorted(PATCHES), default=sorted(PATCHES)),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            python=dict(type="path"),
            strict=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not os.path.isdir(os.path.join(p["site_packages"], "vllm")):
        module.fail_json(msg="%s holds no vllm package; is site_packages the release venv's site-packages?"
                             % p["site_packages"])
    results, diffs, skipped, changed = [], [], [], False
    applied = {}
    for name in p["patches"]:
        path = os.path.join(p["site_packages"], PATCHES[name]["path"])
        entry = {"name": name, "path": path, "description": PATCHES[name]["description"], "reason": None}
        if not os.path.isfile(path):
            entry.update(status="skipped", reason="%s does not exist in this vLLM (layout differs)" % PATCHES[name]["path"])
        else:
            with open(path) as f:
                text = f.read()
            if p["state"] == "absent":
                new_text = strip_blocks(text)
                entry["status"] = "removed" if new_text != text else "ok"
            else:
                try:
                    res = plan(name, text, p["version"])
                except ValueError as exc:
                    module.fail_json(msg="version %r: %s" % (p["version"], exc))
                entry.update(status=res["status"], reason=res["reason"])
                new_text = res["new_text"]
                if res["status"] == "skipped" and has_blocks(text):
                    # The layout moved under an old patch (an upgrade in place): take the old blocks out.
                    new_text = strip_blocks(text)
                    entry["status"] = "skipped"
                    entry["reason"] += "; removed an earlier blackwell.vllm block"
            if new_text is not None and new_text != text:
                changed = True
                diffs.append({"before_header": path, "after_header": path, "before": text, "after": new_text})
                if not module.check_mode:
                    tmp = path + ".blackwell-tmp"
                    with open(tmp, "w") as f:
                        f.write(new_text)
                    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
                    os.rename(tmp, path)
            if entry["status"] in ("patched", "ok") and p["state"] == "present":
                applied[name] = path
        if entry["status"] == "skipped":
            skipped.append(name)
            if p["strict"]:
                module.fail_json(msg="patch %s does not fit vLLM %s: %s" % (name, p["version"], entry["reason"]),
                                 patches=results + [entry])
            module.warn("vllm_patch %s skipped: %s" % (name, entry["reason"]))
        results.append(entry)

    out = dict(changed=changed, patches=results, skipped=skipped)
    if module._diff:
        out["diff"] = diffs
    if p["python"] and applied and not (module.check_mode and changed):
        marker_path = os.path.join(p["site_packages"], CHECK_MARKER)
        key = check_key(p["python"], applied, p["site_packages"])
        kept = read_json(marker_path) or {}
        if kept.get("key") == key and isinstance(kept.get("runtime"), dict) and \
                sorted(kept["runtime"]) == sorted(applied) and all(r.get("ok") for r in kept["runtime"].values()):
            out.update(runtime=kept["runtime"], runtime_check="cached")
            module.exit_json(**out)
        out["runtime_check"] = "ran"
        rc, stdout, stderr = module.run_command([p["python"], "-c", RUNTIME_CHECK, json.dumps(applied)])
        if rc != 0:
            module.fail_json(msg="the runtime check could not run in %s" % p["python"], rc=rc, stdout=stdout,
                             stderr=stderr, **out)
        try:
            runtime = json.loads(stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            module.fail_json(msg="the runtime check printed no result", rc=rc, stdout=stdout, stderr=stderr, **out)
        out["runtime"] = runtime
        bad = sorted(n for n, r in runtime.items() if not r.get("ok"))
        if bad:
            module.fail_json(msg="patched code is not what runs for %s: %s" % (", ".join(bad), json.dumps(runtime)),
                             **out)
        if not module.check_mode:
            write_json(marker_path, {"key": key, "runtime": runtime})
    module.exit_json(**out)


if __name__ == "__main__":
    main()
