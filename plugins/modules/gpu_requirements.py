#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_requirements
short_description: Check a host's NVIDIA GPUs against a requirements profile
version_added: "0.1.0"
description:
  - Checks the GPUs of a host against a named profile (V(gb10), V(rtx5090), V(rtx_pro_6000), ...) or explicit
    options, which name the capabilities allowed (such as C(sm_120), C(sm_121)), the lowest driver branch, the CUDA toolkit
    each capability needs (C(sm_120) needs 12.8 or newer, C(sm_121) needs 13.0 or newer), one capability across
    all GPUs, and how many GPUs there must be.
  - Fails with a message that names each problem (GPU index, its capability, what the profile allows) and what
    would fix it, for example C(install CUDA toolkit >= 13.0 for sm_121 (found nvcc 12.8 at /usr/local/cuda/bin/nvcc)).
  - It is a check, so it never changes the host and never reports C(changed).
  - Reads the host itself (as M(blackwell.vllm.gpu_info) does) unless O(gpu_info) passes facts already gathered.
author:
  - blackwell.vllm maintainers (!UNKNOWN)
options:
  profile:
    description:
      - A profile of the collection's hardware profile table (C(plugins/module_utils/hardware_profiles.py);
        C(ansible-doc -t filter blackwell.vllm.hardware_profiles) describes it), such as V(gb10), V(rtx5090_pair),
        V(lab_cpu) (no GPU needed, no toolkit needed) or V(blackwell) (any Blackwell capability, a check only).
        Its capabilities, driver branch, GPU count and toolkit need come from the table.
      - Options given explicitly override the profile's values.
      - One of O(profile), O(allowed_capabilities), O(min_driver), O(min_gpus) or O(max_gpus) is required.
    type: str
  allowed_capabilities:
    description:
      - Capabilities allowed, as C(sm_121), C(12.1) or C(121). An empty list allows any capability.
    type: list
    elements: str
  min_driver:
    description:
      - Lowest NVIDIA driver, a branch (V(580)) or a full version (V(580.95.05)).
      - Each capability's own minimum (sm_120 570, sm_121 580) applies as well.
    type: str
  min_gpus:
    description: Fewest GPUs the host must have.
    type: int
  max_gpus:
    description: Most GPUs the host may have.
    type: int
  uniform_capability:
    description: All GPUs must have one capability (what tensor parallelism across them needs).
    type: bool
  require_toolkit:
    description: The CUDA toolkit (C(nvcc)) must be installed, at the version each capability needs.
    type: bool
  min_toolkit:
    description:
      - CUDA toolkit needed per capability, over the built-in table (C(sm_90) 11.8, C(sm_100) 12.8, C(sm_120) 12.8,
        C(sm_121) 13.0). Keys are capabilities, values versions.
    type: dict
  gpu_info:
    description:
      - The C(ansible_facts.blackwell_gpu) returned by M(blackwell.vllm.gpu_info). When omitted the module reads the
        host itself with O(backend), O(nvidia_smi_path) and O(nvcc_path).
    type: dict
  backend:
    description: How to read the host when O(gpu_info) is not given; see M(blackwell.vllm.gpu_info).
    type: str
    choices: [auto, nvml, nvidia_smi]
    default: auto
  nvidia_smi_path:
    description: Path of C(nvidia-smi) when O(gpu_info) is not given.
    type: path
  nvcc_path:
    description: Path of C(nvcc) when O(gpu_info) is not given.
    type: path
extends_documentation_fragment:
  - blackwell.vllm.attributes.read_only
notes:
  - The driver must also support the CUDA version of the toolkit a capability needs; a driver too old for it
    fails with the branch that would be new enough.
seealso:
  - module: blackwell.vllm.gpu_info
"""

EXAMPLES = r"""
- name: Check a DGX Spark
  blackwell.vllm.gpu_requirements:
    profile: gb10

- name: Check gathered facts against a pair of RTX 5090 with a newer driver than the profile asks
  blackwell.vllm.gpu_requirements:
    profile: rtx5090_pair
    min_driver: "580"
    gpu_info: "{{ ansible_facts.blackwell_gpu }}"

- name: Explicit requirements, no profile
  blackwell.vllm.gpu_requirements:
    allowed_capabilities: [sm_120, sm_121]
    min_gpus: 1
    min_toolkit:
      sm_120: "12.9"

- name: A lab node without GPU passes lab_cpu
  blackwell.vllm.gpu_requirements:
    profile: lab_cpu
"""

RETURN = r"""
msg:
  description: Summary; on failure every failed check's message, joined by C(; ).
  returned: always
  type: str
  sample: "GPU 0 (NVIDIA GB10, sm_121) meets profile 'gb10'"
passed:
  description: Whether every check passed (always true when the module does not fail).
  returned: success
  type: bool
checks:
  description: Each check with its result and message.
  returned: always
  type: list
  elements: dict
  sample: [{name: capability, ok: true, msg: "GPU 0 (NVIDIA GB10) is sm_121, allowed (sm_121)"}]
failures:
  description: Messages of the failed checks.
  returned: always
  type: list
  elements: str
requirements:
  description: The requirements used, after the profile and explicit options were merged.
  returned: always
  type: dict
  sample: {allowed_capabilities: [sm_121], min_driver: "580", min_gpus: 1, max_gpus: null,
           uniform_capability: true, require_toolkit: true, min_toolkit: {}}
profile:
  description: The profile used, if any.
  returned: always
  type: str
gpu_count:
  description: GPUs found.
  returned: always
  type: int
capabilities:
  description: Capabilities found.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils.capability import normalize_capability, version_tuple
from ansible_collections.blackwell.vllm.plugins.module_utils.gpu_probe import ProbeFailure, probe
from ansible_collections.blackwell.vllm.plugins.module_utils.gpu_requirements import (
    check_requirements,
    profile_names,
    profile_requirements,
    validate_facts,
)

SPEC_KEYS = ("allowed_capabilities", "min_driver", "min_gpus", "max_gpus", "uniform_capability",
             "require_toolkit", "min_toolkit")


def build_spec(module):
    """Merge the profile and explicit options; fail on bad values with a message naming the option."""
    params = module.params
    name = params["profile"]
    if name is None and all(params[key] is None for key in ("allowed_capabilities", "min_driver", "min_gpus", "max_gpus")):
        module.fail_json(msg="give a profile (%s) or at least one of allowed_capabilities, min_driver, min_gpus, max_gpus"
                         % ", ".join(profile_names()))
    spec = {"allowed_capabilities": [], "min_driver": None, "min_gpus": 1, "max_gpus": None,
            "uniform_capability": True, "require_toolkit": True, "min_toolkit": {}}
    if name is not None:
        if name not in profile_names():
            module.fail_json(msg="profile: %r is not a hardware profile; use one of %s" % (name, ", ".join(profile_names())))
        spec.update(profile_requirements(name))
    for key in SPEC_KEYS:
        if params[key] is not None:
            spec[key] = params[key]
    try:
        spec["allowed_capabilities"] = [normalize_capability(c) for c in spec["allowed_capabilities"]]
    except ValueError as exc:
        module.fail_json(msg="allowed_capabilities: %s" % exc)
    if spec["min_driver"] is not None:
        spec["min_driver"] = str(spec["min_driver"])
        try:
            version_tuple(spec["min_driver"])
        except ValueError as exc:
            module.fail_json(msg="min_driver: %s" % exc)
    for key in ("min_gpus", "max_gpus"):
        if spec[key] is not None and spec[key] < 0:
            module.fail_json(msg="%s must be 0 or more, got %d" % (key, spec[key]))
    if spec["max_gpus"] is not None and spec["max_gpus"] < spec["min_gpus"]:
        module.fail_json(msg="max_gpus (%s) is less than min_gpus (%s)" % (spec["max_gpus"], spec["min_gpus"]))
    toolkit = {}
    for cap, version in (spec["min_toolkit"] or {}).items():
        try:
            toolkit[normalize_capability(cap)] = str(version)
            version_tuple(str(version))
        except ValueError as exc:
            module.fail_json(msg="min_toolkit: %s" % exc)
    spec["min_toolkit"] = toolkit
    return spec


def main():
    module = AnsibleModule(
        argument_spec=dict(
            profile=dict(type="str"),
            allowed_capabilities=dict(type="list", elements="str"),
            min_driver=dict(type="str"),
            min_gpus=dict(type="int"),
            max_gpus=dict(type="int"),
            uniform_capability=dict(type="bool"),
            require_toolkit=dict(type="bool"),
            min_toolkit=dict(type="dict"),
            gpu_info=dict(type="dict"),
            backend=dict(type="str", default="auto", choices=["auto", "nvml", "nvidia_smi"]),
            nvidia_smi_path=dict(type="path"),
            nvcc_path=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    spec = build_spec(module)
    facts = module.params["gpu_info"]
    if facts is None:
        try:
            facts, dummy = probe(module, backend=module.params["backend"],
                                 nvidia_smi_path=module.params["nvidia_smi_path"],
                                 nvcc_path=module.params["nvcc_path"])
        except ProbeFailure as exc:
            exc.fail(module)
    else:
        try:
            validate_facts(facts)
        except ValueError as exc:
            module.fail_json(msg=str(exc))

    profile = module.params["profile"]
    checks = check_requirements(facts, spec, profile)
    failures = [check["msg"] for check in checks if not check["ok"]]
    result = dict(
        changed=False,
        checks=checks,
        failures=failures,
        requirements=spec,
        profile=profile,
        gpu_count=len(facts.get("gpus") or []),
        capabilities=sorted({g.get("sm") for g in facts.get("gpus") or [] if g.get("sm")}),
    )
    if failures:
        module.fail_json(msg="; ".join(failures), **result)
    what = "profile '%s'" % profile if profile else "the requirements"
    if result["gpu_count"]:
        gpus = ", ".join("GPU %s (%s, %s)" % (g.get("index"), g.get("name"), g.get("sm")) for g in facts["gpus"])
        result["msg"] = "%s %s %s" % (gpus, "meets" if result["gpu_count"] == 1 else "meet", what)
    else:
        result["msg"] = "host without GPU meets %s" % what
    module.exit_json(passed=True, **result)


if __name__ == "__main__":
    main()
