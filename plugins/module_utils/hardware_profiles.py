# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The hardware profiles: the one table every role and module reads.

A node's ``blackwell_hardware_profile`` names one entry. Modules import this file
(``gpu_requirements``); roles read it through the ``blackwell.vllm.hardware_profile``
filter, and the ``blackwell.vllm.common`` role derives the settings several roles share
from it. Adding a profile is one entry here and nothing else: tests/unit/roles/test_profiles_render.py
runs every role for every deployable profile (and for one more that only the test adds), and
tests/unit/test_profiles_single_source.py fails on a copy of a profile fact anywhere else.

Fields of a profile:
  description                 what the node is
  deployable                  a node may carry it (false: only for gpu_requirements checks)
  capability                  the GPUs' compute capability (sm_XY), None for a node without GPU
  allowed_capabilities        what gpu_requirements accepts ([] accepts any)
  architectures               CPU architectures the node may have
  min_memory_gb               host memory preflight asks for
  unified_memory              GPU memory is the host's memory (GB10)
  gpus                        GPUs per node that Ray and the TP check count when no GPU is read
  min_gpus                    GPUs gpu_requirements asks for
  cuda                        CUDA toolkit the profile builds and serves with
  min_driver                  first NVIDIA driver branch that runs the GPUs
  require_toolkit             gpu_requirements asks for nvcc
  nccl_cuda_arch              the SM NCCL is built for ("121"), None: read from the GPUs
  nccl_env                    NCCL/UCX/Gloo environment defaults (the interface settings come on top)
  vllm_capability             what the vllm role builds and serves for (sm_XY, or cpu)
  vllm_system_packages        OS packages the vLLM release needs
  vllm_remove_packages        Python packages removed after the vLLM install
  ray_memory_usage_threshold  RAY_memory_usage_threshold (None: Ray's own default)
"""

from __future__ import annotations

import copy

# What each capability needs: the first CUDA toolkit that can compile for it and the first
# driver branch that runs it. sm_120 (RTX 50xx, RTX PRO 6000) arrived with CUDA 12.8 /
# driver 570; sm_121 (GB10, DGX Spark) is built by CUDA 13.0, which needs driver 580.
CAPABILITY_NEEDS = {
    "sm_80": {"cuda": "11.0", "driver": "450"},
    "sm_86": {"cuda": "11.1", "driver": "455"},
    "sm_89": {"cuda": "11.8", "driver": "520"},
    "sm_90": {"cuda": "11.8", "driver": "520"},
    "sm_100": {"cuda": "12.8", "driver": "570"},
    "sm_103": {"cuda": "12.9", "driver": "575"},
    "sm_120": {"cuda": "12.8", "driver": "570"},
    "sm_121": {"cuda": "13.0", "driver": "580"},
}

# The first driver branch that runs each CUDA toolkit the collection installs (cuda-toolkit-X-Y from
# NVIDIA's CUDA apt repository): a toolkit newer than the node's driver compiles code it cannot run.
TOOLKIT_DRIVER = {
    "12.8": "570",
    "12.9": "575",
    "13.0": "580",
}

# Where GPU memory is the host's (unified memory), Ray's OOM killer counts the GPU-resident model
# weights as host memory and would kill the serving workers at its default 0.95: at 1.0 it never fires.
UNIFIED_MEMORY_RAY_THRESHOLD = 1.0

# GB10 pair over QSFP: no P2P between the nodes, no InfiniBand verbs on the socket path.
_NCCL_ENV_QSFP_PAIR = {
    "NCCL_NET_GDR_LEVEL": "SYS",
    "NCCL_P2P_DISABLE": "1",
    "NCCL_IB_DISABLE": "1",
}
# Several sm_120 cards on PCIe without NVLink: P2P at PCI level and DMA-BUF.
_NCCL_ENV_PCIE = {
    "NCCL_P2P_LEVEL": "PCI",
    "NCCL_DMABUF_ENABLE": "1",
}
# Ubuntu 24.04 on the GPU nodes: Python 3.12 and a compiler for the kernels vLLM builds at start.
_VLLM_SYSTEM_PACKAGES_GPU = ["python3.12-dev", "python3.12-venv", "build-essential", "git"]
# flash-attn wheels fail on sm_120 with undefined symbols; vLLM's FlashInfer backend replaces them.
_VLLM_REMOVE_SM120 = ["flash-attn", "flash_attn"]

_SM120_CARD = {
    "deployable": True,
    "capability": "sm_120",
    "allowed_capabilities": ["sm_120"],
    "architectures": ["x86_64"],
    "unified_memory": False,
    "gpus": 1,
    "min_gpus": 1,
    "cuda": "12.8",
    "min_driver": "570",
    "require_toolkit": True,
    "nccl_cuda_arch": "120",
    "nccl_env": {},
    "vllm_capability": "sm_120",
    "vllm_system_packages": _VLLM_SYSTEM_PACKAGES_GPU,
    "vllm_remove_packages": _VLLM_REMOVE_SM120,
    "ray_memory_usage_threshold": None,
}


def _card(**fields):
    profile = copy.deepcopy(_SM120_CARD)
    profile.update(fields)
    return profile


PROFILES = {
    "gb10": {
        "description": "NVIDIA DGX Spark GB10 (sm_121, aarch64, 128 GB unified memory)",
        "deployable": True,
        "capability": "sm_121",
        "allowed_capabilities": ["sm_121"],
        "architectures": ["aarch64"],
        "min_memory_gb": 100,
        "unified_memory": True,
        "gpus": 1,
        "min_gpus": 1,
        "cuda": "13.0",
        "min_driver": "580",
        "require_toolkit": True,
        "nccl_cuda_arch": "121",
        "nccl_env": _NCCL_ENV_QSFP_PAIR,
        "vllm_capability": "sm_121",
        "vllm_system_packages": _VLLM_SYSTEM_PACKAGES_GPU,
        "vllm_remove_packages": [],
        "ray_memory_usage_threshold": UNIFIED_MEMORY_RAY_THRESHOLD,
    },
    "rtx5090": _card(description="GeForce RTX 5090 (sm_120, 32 GB)", min_memory_gb=16),
    "rtx5090_pair": _card(description="two GeForce RTX 5090 on PCIe, TP=2 (sm_120)", min_memory_gb=32,
                          gpus=2, min_gpus=2, nccl_env=_NCCL_ENV_PCIE),
    "rtx_pro_6000": _card(description="RTX PRO 6000 Blackwell (sm_120, 96 GB)", min_memory_gb=32),
    "rtx5060ti": _card(description="GeForce RTX 5060 Ti (sm_120, 16 GB)", min_memory_gb=16),
    "rtx5060ti_pair": _card(description="two GeForce RTX 5060 Ti on PCIe, TP=2 (sm_120)", min_memory_gb=32,
                            gpus=2, min_gpus=2, nccl_env=_NCCL_ENV_PCIE),
    "hopper": {
        "description": "H100/H200 (sm_90), the development GPU machine",
        "deployable": True,
        "capability": "sm_90",
        "allowed_capabilities": ["sm_90"],
        "architectures": ["x86_64", "aarch64"],
        "min_memory_gb": 32,
        "unified_memory": False,
        "gpus": 1,
        "min_gpus": 1,
        "cuda": "13.0",
        "min_driver": "535",
        "require_toolkit": True,
        "nccl_cuda_arch": "90",
        "nccl_env": {},
        "vllm_capability": "sm_90",
        "vllm_system_packages": _VLLM_SYSTEM_PACKAGES_GPU,
        "vllm_remove_packages": [],
        "ray_memory_usage_threshold": None,
    },
    "lab_cpu": {
        # Containers standing in for a GB10 pair: NCCL's environment and build target are the
        # GB10's, vLLM is its CPU build.
        "description": "the embedded lab (no GPU; vLLM's CPU build)",
        "deployable": True,
        "capability": None,
        "allowed_capabilities": [],
        "architectures": ["x86_64", "aarch64"],
        "min_memory_gb": 2,
        "unified_memory": False,
        "gpus": 0,
        "min_gpus": 0,
        "cuda": None,
        "min_driver": None,
        "require_toolkit": False,
        "nccl_cuda_arch": "121",
        "nccl_env": _NCCL_ENV_QSFP_PAIR,
        "vllm_capability": "cpu",
        "vllm_system_packages": ["python3-venv", "libnuma1"],
        # PyPI's builds of these do not load beside torch's CPU build and break transformers imports.
        "vllm_remove_packages": ["torchvision", "torchaudio", "torchcodec"],
        "ray_memory_usage_threshold": None,
    },
    "blackwell": {
        "description": "any Blackwell this collection serves on (sm_120 or sm_121)",
        "deployable": False,
        "capability": None,
        "allowed_capabilities": ["sm_120", "sm_121"],
        "architectures": ["x86_64", "aarch64"],
        "min_memory_gb": 16,
        "unified_memory": False,
        "gpus": 1,
        "min_gpus": 1,
        "cuda": None,
        "min_driver": "570",
        "require_toolkit": True,
        "nccl_cuda_arch": None,
        "nccl_env": {},
        "vllm_capability": None,
        "vllm_system_packages": [],
        "vllm_remove_packages": [],
        "ray_memory_usage_threshold": None,
    },
}

FIELDS = tuple(sorted(PROFILES["gb10"]))


class UnknownProfile(KeyError):
    """A profile name that is not in the table (or not deployable where one is needed)."""

    def __str__(self):
        return self.args[0]


def names(deployable_only=True):
    """The profile names, sorted; only those a node may carry unless deployable_only is false."""
    return sorted(name for name, prof in PROFILES.items() if prof["deployable"] or not deployable_only)


def get(name, deployable_only=True):
    """A copy of one profile, with its name; UnknownProfile says which names exist."""
    prof = PROFILES.get(name) if isinstance(name, str) else None
    if prof is None or (deployable_only and not prof["deployable"]):
        raise UnknownProfile("hardware profile %r is not one of %s" % (name, ", ".join(names(deployable_only))))
    result = copy.deepcopy(prof)
    result["name"] = name
    return result


def allowing(capability):
    """Profiles whose GPU check accepts a capability."""
    return sorted(name for name, prof in PROFILES.items() if capability in prof["allowed_capabilities"])


def _major_minor(version):
    return tuple(int(part) for part in str(version).split(".")[:2])


def cuda_stack_problems(profile, cuda_version, driver_branch, driver_source="nvidia_driver_branch"):
    """What is wrong with a CUDA toolkit and a driver branch for one profile's GPUs: a list of sentences,
    empty when they fit. driver_branch None: no driver known yet (its checks are left out). Each sentence
    names the variable, the value and what is accepted."""
    prof = get(profile, deployable_only=False) if isinstance(profile, str) else profile
    problems = []
    cuda = str(cuda_version)
    if cuda not in TOOLKIT_DRIVER:
        return ["blackwell_cuda_version=%s is not a CUDA toolkit this collection installs; use one of %s"
                % (cuda, ", ".join(sorted(TOOLKIT_DRIVER, key=_major_minor)))]
    needs = CAPABILITY_NEEDS.get(prof.get("capability")) if prof.get("capability") else None
    if needs and _major_minor(cuda) < _major_minor(needs["cuda"]):
        problems.append("blackwell_cuda_version=%s is too old for the %s GPUs of profile %s: they need CUDA %s or newer"
                        % (cuda, prof["capability"], prof["name"], needs["cuda"]))
    if driver_branch in (None, ""):
        return problems
    branch = str(driver_branch).split(".", maxsplit=1)[0]
    if not branch.isdigit():
        return problems + ["%s=%s is not a driver branch (a number such as 580)" % (driver_source, driver_branch)]
    first = max(int(prof["min_driver"] or 0), int(needs["driver"]) if needs else 0)
    if int(branch) < first:
        problems.append("%s=%s is too old for the %s GPUs of profile %s: they need driver %d or newer"
                        % (driver_source, driver_branch, prof["capability"] or "", prof["name"], first))
    if int(branch) < int(TOOLKIT_DRIVER[cuda]):
        problems.append("blackwell_cuda_version=%s needs driver %s or newer, but %s=%s; use CUDA %s or a newer driver"
                        % (cuda, TOOLKIT_DRIVER[cuda], driver_source, driver_branch,
                           " or ".join(v for v in sorted(TOOLKIT_DRIVER, key=_major_minor)
                                       if int(TOOLKIT_DRIVER[v]) <= int(branch)) or "(none)"))
    return problems


def unified_memory(capability):
    """Whether GPUs of a capability (sm_XY) share the host's memory: true when every deployable profile
    with that capability says so, false when one does not or none has it."""
    flags = [prof["unified_memory"] for prof in PROFILES.values() if prof["deployable"] and prof["capability"] == capability]
    return bool(flags) and all(flags)
