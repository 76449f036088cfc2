# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Check gpu_info's facts against requirements: a hardware profile of the table
(``hardware_profiles.py``) and explicit options on top.
"""

from __future__ import annotations

from ansible_collections.blackwell.vllm.plugins.module_utils import hardware_profiles
from ansible_collections.blackwell.vllm.plugins.module_utils.capability import (
    capability_parts,
    driver_branch_for_cuda,
    version_ge,
    version_tuple,
)
from ansible_collections.blackwell.vllm.plugins.module_utils.gpu_parsers import FACTS_NAME

CAPABILITY_NEEDS = hardware_profiles.CAPABILITY_NEEDS

# The options of gpu_requirements that a profile of the table sets; explicit options override them.
PROFILE_KEYS = ("allowed_capabilities", "min_driver", "min_gpus", "require_toolkit")


def profile_names():
    """Every profile gpu_requirements accepts (deployable ones and check-only ones such as blackwell)."""
    return hardware_profiles.names(deployable_only=False)


def profile_requirements(name):
    """The requirement spec values of one profile of the table."""
    profile = hardware_profiles.get(name, deployable_only=False)
    return {key: profile[key] for key in PROFILE_KEYS}


def validate_facts(facts):
    """Raise ValueError when `facts` is not gpu_info's blackwell_gpu dict."""
    if not isinstance(facts, dict):
        raise ValueError("gpu_info must be the %s facts dict returned by blackwell.vllm.gpu_info, got %s"
                         % (FACTS_NAME, type(facts).__name__))
    for key in ("gpu_count", "gpus"):
        if key not in facts:
            raise ValueError("gpu_info must be the %s facts returned by blackwell.vllm.gpu_info (missing key '%s')"
                             % (FACTS_NAME, key))


def check_requirements(facts, spec, profile_name=None):
    """Check facts against an effective requirement spec.

    spec keys: allowed_capabilities (list of sm_XY), min_driver, min_gpus, max_gpus,
    uniform_capability, require_toolkit, min_toolkit (dict sm_XY -> version).
    Returns a list of checks: {'name', 'ok', 'msg'}; failures have a msg that says what would fix them.
    """
    label = "profile '%s'" % profile_name if profile_name else "the requirements"
    checks = []

    def add(name, ok, msg):
        checks.append({"name": name, "ok": bool(ok), "msg": msg})

    gpus = facts.get("gpus") or []
    count = len(gpus)
    allowed = list(spec.get("allowed_capabilities") or [])
    allowed_text = ", ".join(allowed) if allowed else "any capability"
    min_gpus = spec.get("min_gpus") or 0
    max_gpus = spec.get("max_gpus")

    if count < min_gpus:
        if count == 0:
            why = facts.get("probe_error") or "no NVIDIA GPU found"
            msg = ("host has no NVIDIA GPU (%s); %s needs at least %d GPU(s) of %s: run this on such a host, "
                   "install the NVIDIA driver%s so that nvidia-smi sees the GPU, or use profile lab_cpu for a host without GPU"
                   % (why, label, min_gpus, allowed_text,
                      " (branch %s or newer)" % spec["min_driver"] if spec.get("min_driver") else ""))
        else:
            msg = ("host has %d GPU(s), %s needs at least %d: add GPUs, make them visible to the driver "
                   "(CUDA_VISIBLE_DEVICES, MIG off), or lower min_gpus" % (count, label, min_gpus))
        add("min_gpus", False, msg)
    else:
        add("min_gpus", True, "%d GPU(s), at least %d needed" % (count, min_gpus))
    if max_gpus is not None:
        add("max_gpus", count <= max_gpus,
            "%d GPU(s), at most %d allowed by %s" % (count, max_gpus, label)
            + ("" if count <= max_gpus else ": use a profile meant for GPU hosts"))

    for gpu in gpus:
        cap = gpu.get("sm")
        name = "GPU %s (%s)" % (gpu.get("index"), gpu.get("name") or "unknown model")
        if cap is None:
            add("capability", False,
                "%s reports no compute capability; %s allows %s: update the NVIDIA driver "
                "(the compute_cap query needs 510 or newer)" % (name, label, allowed_text))
        elif allowed and cap not in allowed:
            others = hardware_profiles.allowing(cap)
            hint = (" (e.g. profile: %s)" % " or ".join(others)) if others else ""
            add("capability", False,
                "%s is %s; %s allows %s: run this on a host with such a GPU, or choose a profile "
                "that allows %s%s" % (name, cap, label, allowed_text, cap, hint))
        else:
            add("capability", True, "%s is %s, allowed (%s)" % (name, cap, allowed_text))

    caps = sorted({g.get("sm") for g in gpus if g.get("sm")}, key=capability_parts)
    if spec.get("uniform_capability", True) and len(caps) > 1:
        listing = ", ".join("GPU %s: %s" % (g.get("index"), g.get("sm")) for g in gpus)
        add("uniform_capability", False,
            "GPUs differ in capability (%s); %s needs one capability across all GPUs: serve from GPUs "
            "of one kind (CUDA_VISIBLE_DEVICES) or set uniform_capability: false" % (listing, label))
    elif gpus:
        add("uniform_capability", True, "one capability across all GPUs" if len(caps) <= 1 else "mixed allowed")

    if not gpus:
        return checks

    # Driver: the profile's minimum and what each capability needs.
    driver = facts.get("driver_version")
    try:
        version_tuple(driver)
    except ValueError:
        driver = None  # unreadable: reported as unknown below
    need_driver, need_driver_why = spec.get("min_driver"), label
    for cap in caps:
        cap_driver = (CAPABILITY_NEEDS.get(cap) or {}).get("driver")
        if cap_driver and (need_driver is None or not version_ge(need_driver, cap_driver)):
            need_driver, need_driver_why = cap_driver, cap
    if need_driver:
        if not driver:
            add("driver", False, "driver version unknown; %s needs driver %s or newer: install the NVIDIA driver"
                % (need_driver_why, need_driver))
        elif not version_ge(driver, need_driver):
            add("driver", False, "driver %s is older than %s needed for %s: install NVIDIA driver branch %s or newer"
                % (driver, need_driver, need_driver_why, need_driver))
        else:
            add("driver", True, "driver %s >= %s" % (driver, need_driver))

    # Toolkit per capability, and the driver's CUDA ceiling for that toolkit.
    toolkit_needs = dict((cap, v["cuda"]) for cap, v in CAPABILITY_NEEDS.items())
    toolkit_needs.update(spec.get("min_toolkit") or {})
    cuda_driver = facts.get("cuda_driver_version")
    toolkit = facts.get("cuda_toolkit") or {}
    for cap in caps:
        need = toolkit_needs.get(cap)
        if not need:
            continue
        if cuda_driver:
            if version_ge(cuda_driver, need):
                add("driver_cuda", True, "driver supports CUDA %s >= %s for %s" % (cuda_driver, need, cap))
            else:
                branch = driver_branch_for_cuda(need)
                add("driver_cuda", False,
                    "driver %s supports CUDA up to %s, %s needs CUDA %s: upgrade the NVIDIA driver%s"
                    % (driver or "?", cuda_driver, cap, need, " to branch %s or newer" % branch if branch else ""))
        if not spec.get("require_toolkit", True):
            continue
        if not toolkit.get("found"):
            add("toolkit", False,
                "no CUDA toolkit (nvcc) found%s; %s needs CUDA toolkit >= %s: install CUDA toolkit >= %s "
                "for %s and put its bin/ on PATH (or pass nvcc_path)"
                % (" at %s" % toolkit["path"] if toolkit.get("path") else "", cap, need, need, cap))
        elif not version_ge(toolkit.get("version"), need):
            add("toolkit", False, "install CUDA toolkit >= %s for %s (found nvcc %s at %s)"
                % (need, cap, toolkit.get("version"), toolkit.get("path")))
        else:
            add("toolkit", True, "nvcc %s >= %s for %s" % (toolkit.get("version"), need, cap))
    return checks
