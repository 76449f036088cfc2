# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters that turn a CUDA compute capability into build flags and serving defaults.

Documentation of each filter lies beside this file in <filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils import hardware_profiles
from ansible_collections.blackwell.vllm.plugins.module_utils.capability import capability_parts

VARIANTS = ("", "a", "f")


def _capabilities(value, what):
    """A capability, a list of them, or gpu_info facts -> sorted unique [(major, minor), ...]."""
    if isinstance(value, dict):
        if "gpus" not in value:
            raise AnsibleFilterError("%s: expected a capability, a list of them, or ansible_facts.blackwell_gpu; "
                                     "got a dict without 'gpus'" % what)
        items = [gpu.get("sm") for gpu in value.get("gpus") or []]
        if not items:
            raise AnsibleFilterError("%s: these GPU facts hold no GPU (gpu_count 0), so there is no capability "
                                     "to build for" % what)
        if any(item is None for item in items):
            raise AnsibleFilterError("%s: a GPU in these facts reports no compute capability" % what)
    elif isinstance(value, (list, tuple)) and not (len(value) == 2 and all(isinstance(v, int) for v in value)):
        items = list(value)
    elif isinstance(value, str) and any(sep in value for sep in ";, "):
        items = [part for part in value.replace(",", ";").replace(" ", ";").split(";") if part]
    else:
        items = [value]
    if not items:
        raise AnsibleFilterError("%s: no capability given" % what)
    parts = set()
    for item in items:
        try:
            parts.add(capability_parts(item))
        except ValueError as exc:
            raise AnsibleFilterError("%s: %s" % (what, exc))
    return sorted(parts)


def _check_variant(what, variant, parts):
    if variant not in VARIANTS:
        raise AnsibleFilterError("%s: variant must be one of '', 'a', 'f', got %r" % (what, variant))
    if variant == "a" and any(major < 9 for major, minor in parts):
        raise AnsibleFilterError("%s: arch-specific targets (a) exist for capability 9.0 and newer only" % what)
    if variant == "f" and any(major < 10 for major, minor in parts):
        raise AnsibleFilterError("%s: family-specific targets (f) exist for capability 10.0 and newer only "
                                 "(and need CUDA 12.9 or newer)" % what)


def sm_capability(value):
    """sm_XY form of one capability: '12.1' -> 'sm_121'."""
    parts = _capabilities(value, "sm_capability")
    if len(parts) != 1:
        raise AnsibleFilterError("sm_capability: expected one capability, got %d (%s)"
                                 % (len(parts), ", ".join("sm_%d%d" % p for p in parts)))
    return "sm_%d%d" % parts[0]


def nvcc_gencode(value, variant="", ptx=False):
    """NVCC_GENCODE for NCCL and CUDA builds: sm_121 -> -gencode=arch=compute_121,code=sm_121."""
    parts = _capabilities(value, "nvcc_gencode")
    _check_variant("nvcc_gencode", variant, parts)
    flags = ["-gencode=arch=compute_%d%d%s,code=sm_%d%d%s" % (major, minor, variant, major, minor, variant)
             for major, minor in parts]
    if ptx:
        major, minor = parts[-1]
        flags.append("-gencode=arch=compute_%d%d%s,code=compute_%d%d%s" % (major, minor, variant, major, minor, variant))
    return " ".join(flags)


def torch_cuda_arch_list(value, family=False, ptx=False):
    """TORCH_CUDA_ARCH_LIST: sm_120 -> 12.0; [sm_120, sm_121] with family=true -> 12.0f;12.1f."""
    parts = _capabilities(value, "torch_cuda_arch_list")
    if family:
        _check_variant("torch_cuda_arch_list", "f", parts)
    entries = ["%d.%d%s" % (major, minor, "f" if family else "") for major, minor in parts]
    if ptx:
        entries[-1] += "+PTX"
    return ";".join(entries)


def cmake_cuda_architectures(value, variant="", kind=""):
    """CMAKE_CUDA_ARCHITECTURES: sm_121 -> 121; variant a/f -> 121a/121f; kind real/virtual -> 121-real."""
    parts = _capabilities(value, "cmake_cuda_architectures")
    _check_variant("cmake_cuda_architectures", variant, parts)
    if kind not in ("", "real", "virtual"):
        raise AnsibleFilterError("cmake_cuda_architectures: kind must be one of '', 'real', 'virtual', got %r" % (kind,))
    suffix = "-" + kind if kind else ""
    return ";".join("%d%d%s%s" % (major, minor, variant, suffix) for major, minor in parts)


def serving_defaults(value, gpu_count=None, interconnect=None, unified_memory=None):
    """Recommended vLLM/Ray settings for a capability (or for gpu_info facts, which also give topology and memory)."""
    if isinstance(value, dict):
        parts = _capabilities(value, "serving_defaults")
        gpu_count = value.get("gpu_count", len(value.get("gpus") or [])) if gpu_count is None else gpu_count
        interconnect = (value.get("topology") or {}).get("interconnect") if interconnect is None else interconnect
        unified_memory = value.get("unified_memory") if unified_memory is None else unified_memory
    else:
        parts = _capabilities(value, "serving_defaults")
    if len(parts) != 1:
        raise AnsibleFilterError("serving_defaults: GPUs of different capabilities (%s); serve from GPUs of one kind"
                                 % ", ".join("sm_%d%d" % p for p in parts))
    major, minor = parts[0]
    cap = "sm_%d%d" % (major, minor)
    gpu_count = 1 if gpu_count is None else int(gpu_count)
    if interconnect not in (None, "none", "nvlink", "pcie", "mixed"):
        raise AnsibleFilterError("serving_defaults: interconnect must be none, nvlink, pcie or mixed, got %r" % (interconnect,))
    if interconnect is None:
        # Blackwell workstation cards (sm_120) have no NVLink: several of them talk over PCIe.
        interconnect = "none" if gpu_count < 2 else ("pcie" if cap == "sm_120" else "nvlink")
    # Unified memory: from the facts or the option, else from the hardware profiles of this capability (GB10).
    unified = bool(unified_memory) if unified_memory is not None else hardware_profiles.unified_memory(cap)
    pcie_multi = gpu_count > 1 and interconnect in ("pcie", "mixed")

    result = {
        "capability": cap,
        "gpu_count": gpu_count,
        "interconnect": interconnect,
        "unified_memory": unified,
        "quantization": None,
        "attention_backend": None,
        "fp8_linear_backend": None,
        "fp8_moe_backend": None,
        "disable_custom_all_reduce": pcie_multi,
        "gpu_memory_utilization": 0.90,
        "ray_memory_usage_threshold": None,
        "torch_cuda_arch_list": "%d.%d" % (major, minor),
        "nvcc_gencode": nvcc_gencode(cap),
        "notes": [],
    }
    notes = result["notes"]
    if cap == "sm_120":
        result.update(quantization="awq_marlin", attention_backend="FLASHINFER")
        notes.append("sm_120: AWQ through awq_marlin (bitsandbytes gave corrupt output on sm_120) and the FlashInfer "
                     "attention backend (flash-attn wheels fail with undefined symbols)")
    elif cap == "sm_121":
        result.update(quantization="fp8", fp8_linear_backend="torch", fp8_moe_backend="triton",
                      torch_cuda_arch_list=torch_cuda_arch_list(["sm_120", "sm_121"], family=True))
        notes.append("sm_121: FP8 with torch._scaled_mm for linear layers and Triton for MoE layers "
                     "(prebuilt CUTLASS FP8 kernels have no sm_121 code)")
    if pcie_multi:
        notes.append("%d GPUs over PCIe without NVLink: custom all-reduce off (--disable-custom-all-reduce), "
                     "NCCL does the all-reduce" % gpu_count)
    if unified:
        threshold = hardware_profiles.UNIFIED_MEMORY_RAY_THRESHOLD
        result.update(gpu_memory_utilization=0.85, ray_memory_usage_threshold=threshold)
        notes.append("unified memory: model weights count as host memory, so Ray's OOM killer is turned off "
                     "(RAY_memory_usage_threshold=%s) and vLLM keeps headroom (gpu_memory_utilization 0.85)" % threshold)
    return result


class FilterModule(object):
    """blackwell.vllm capability filters."""

    def filters(self):
        return {
            "sm_capability": sm_capability,
            "nvcc_gencode": nvcc_gencode,
            "torch_cuda_arch_list": torch_cuda_arch_list,
            "cmake_cuda_architectures": cmake_cuda_architectures,
            "serving_defaults": serving_defaults,
        }
