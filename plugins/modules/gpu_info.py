#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_info
short_description: Gather NVIDIA GPU capability facts (NVML or nvidia-smi)
version_added: "0.1.0"
description:
  - Reads every NVIDIA GPU of the host and returns C(ansible_facts.blackwell_gpu) with, per GPU, the index, name,
    UUID, PCI bus id, compute capability (major, minor and the C(sm_121) form), total memory, persistence mode
    and PCIe generation and width; and per host the driver version, the highest CUDA version the driver
    supports, whether memory is unified (GB10 reports no GPU memory of its own), the P2P/NVLink topology
    between the GPUs, the installed CUDA toolkit (C(nvcc)) version and which C(libnccl.so.2) the dynamic
    loader would pick.
  - Reads NVML through nvidia-ml-py (C(import pynvml)) where it imports on the target, else
    C(nvidia-smi --query-gpu=... --format=csv,noheader,nounits).
  - A host without an NVIDIA GPU (no driver, no C(nvidia-smi), or C(nvidia-smi) finding no device)
    returns C(gpu_count=0) and does not fail; C(probe_error) says why.
  - Never changes anything and never reports C(changed).
author:
  - blackwell.vllm maintainers (!UNKNOWN)
options:
  backend:
    description:
      - How to read the GPUs.
      - V(auto) uses NVML when nvidia-ml-py imports and NVML starts, else C(nvidia-smi).
      - V(nvml) uses NVML only and fails when nvidia-ml-py is not installed for the target's Python.
      - V(nvidia_smi) uses C(nvidia-smi) only.
    type: str
    choices: [auto, nvml, nvidia_smi]
    default: auto
  nvidia_smi_path:
    description:
      - Path of C(nvidia-smi). Default is the first on E(PATH), then C(/usr/bin), C(/usr/local/nvidia/bin).
    type: path
  nvcc_path:
    description:
      - Path of the CUDA toolkit's C(nvcc). Default is the first on E(PATH), then C(/usr/local/cuda/bin/nvcc).
    type: path
  ld_library_path:
    description:
      - Directories searched before the C(ld.so) cache when resolving C(libnccl.so.2), as the loader does with
        E(LD_LIBRARY_PATH). Pass the value a service will run with (for example the vLLM unit's).
      - Default is the E(LD_LIBRARY_PATH) of the module's own process.
    type: list
    elements: path
extends_documentation_fragment:
  - blackwell.vllm.attributes.read_only
attributes:
  facts:
    support: full
    description: Returns C(ansible_facts.blackwell_gpu).
requirements:
  - an NVIDIA driver with C(nvidia-smi) (510 or newer, for the C(compute_cap) field), or
  - nvidia-ml-py (C(pynvml)) for the NVML backend
notes:
  - Unified memory is inferred from a GPU that reports no memory total (C([N/A]) in C(nvidia-smi),
    C(NotSupported) in NVML), as the GB10 of the DGX Spark does.
  - The NCCL that PyTorch wheels carry is loaded through their own RUNPATH and is not what C(nccl) reports;
    C(nccl) is the library a program without such a path (NCCL tests, a source-built vLLM) would load.
  - Topology is read only when there are two or more GPUs. Pairs with an C(NV#) link use NVLink; all other
    links (C(PIX), C(PXB), C(PHB), C(NODE), C(SYS)) go over PCIe and the host.
seealso:
  - module: blackwell.vllm.gpu_requirements
"""

EXAMPLES = r"""
- name: Read the GPUs of the host
  blackwell.vllm.gpu_info:

- name: Show the capability of the first GPU
  ansible.builtin.debug:
    msg: "{{ ansible_facts.blackwell_gpu.gpus[0].sm | default('no GPU') }}"

- name: Read through nvidia-smi only, and resolve NCCL as the vLLM service would
  blackwell.vllm.gpu_info:
    backend: nvidia_smi
    ld_library_path:
      - /opt/nccl/lib

- name: Turn the capability into build flags
  ansible.builtin.set_fact:
    nccl_gencode: "{{ ansible_facts.blackwell_gpu | blackwell.vllm.nvcc_gencode }}"
  when: ansible_facts.blackwell_gpu.gpu_count > 0
"""

RETURN = r"""
probe_seconds:
  description: Seconds spent reading the host (GPUs, nvcc, ldconfig).
  returned: always
  type: float
  sample: 0.094
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    blackwell_gpu:
      description: GPU capability of the host.
      returned: always
      type: dict
      contains:
        backend:
          description: What was read (V(nvml), V(nvidia_smi)), or V(none) when no NVIDIA tool was found.
          type: str
          sample: nvml
        gpu_count:
          description: Number of GPUs; 0 on a host without NVIDIA GPU.
          type: int
          sample: 1
        gpus:
          description: One entry per GPU, by index.
          type: list
          elements: dict
          contains:
            index:
              description: GPU index as the driver numbers it.
              type: int
            name:
              description: Product name.
              type: str
              sample: NVIDIA GB10
            uuid:
              description: GPU UUID.
              type: str
            pci_bus_id:
              description: PCI bus id (domain:bus:device.function).
              type: str
              sample: "00000000:01:00.0"
            compute_capability:
              description: Capability as major.minor.
              type: str
              sample: "12.1"
            capability_major:
              description: Major capability number.
              type: int
            capability_minor:
              description: Minor capability number.
              type: int
            sm:
              description: Capability in the sm_XY form.
              type: str
              sample: sm_121
            memory_total_mib:
              description: Total GPU memory in MiB; null where the GPU has none of its own (unified memory).
              type: int
            unified_memory:
              description: True when the GPU reports no memory of its own.
              type: bool
            persistence_mode:
              description: Persistence mode; null where not reported.
              type: bool
            pcie:
              description: PCIe link generation and width, the most possible and the current (which drops when idle).
              type: dict
              sample: {gen_max: 5, width_max: 16, gen_current: 1, width_current: 16}
        capabilities:
          description: The distinct capabilities of the GPUs, lowest first.
          type: list
          elements: str
          sample: [sm_120]
        capability:
          description: The one capability of all GPUs; null with no GPU or with GPUs of different capabilities.
          type: str
          sample: sm_121
        driver_version:
          description: NVIDIA driver version.
          type: str
          sample: "580.95.05"
        driver_branch:
          description: Driver branch (first number of the version).
          type: int
          sample: 580
        cuda_driver_version:
          description: Highest CUDA version the driver supports.
          type: str
          sample: "13.0"
        nvml_version:
          description: NVML version, where reported.
          type: str
        unified_memory:
          description: True when any GPU shares the host's memory (DGX Spark GB10).
          type: bool
        topology:
          description: How the GPUs reach each other.
          type: dict
          contains:
            interconnect:
              description: V(none) (fewer than 2 GPUs), V(nvlink) (all pairs), V(pcie) (no pair over NVLink), V(mixed).
              type: str
            pcie_only:
              description: True when 2 or more GPUs talk over PCIe only (no NVLink).
              type: bool
            pairs:
              description: Each pair of GPUs with its link word from C(nvidia-smi topo -m) (C(NV18), C(PIX), C(NODE), C(SYS)...).
              type: list
              elements: dict
              sample: [{gpus: [0, 1], link: NODE, nvlink: false}]
        cuda_toolkit:
          description: The CUDA toolkit's nvcc.
          type: dict
          sample: {found: true, path: /usr/local/cuda/bin/nvcc, version: "13.0", build: V13.0.88}
        nccl:
          description: The C(libnccl.so.2) the dynamic loader would pick (E(LD_LIBRARY_PATH), then the ld.so cache).
          type: dict
          sample:
            found: true
            name: libnccl.so.2
            path: /lib/x86_64-linux-gnu/libnccl.so.2
            realpath: /lib/x86_64-linux-gnu/libnccl.so.2.28.9
            version: 2.28.9
            source: ldconfig
            candidates: [/lib/x86_64-linux-gnu/libnccl.so.2]
        probe_error:
          description: Why no GPU was found, where that is known; null otherwise.
          type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils.gpu_parsers import FACTS_NAME
from ansible_collections.blackwell.vllm.plugins.module_utils.gpu_probe import ProbeFailure, probe


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backend=dict(type="str", default="auto", choices=["auto", "nvml", "nvidia_smi"]),
            nvidia_smi_path=dict(type="path"),
            nvcc_path=dict(type="path"),
            ld_library_path=dict(type="list", elements="path"),
        ),
        supports_check_mode=True,
    )
    try:
        facts, seconds = probe(
            module,
            backend=module.params["backend"],
            nvidia_smi_path=module.params["nvidia_smi_path"],
            nvcc_path=module.params["nvcc_path"],
            ld_library_path=module.params["ld_library_path"],
        )
    except ProbeFailure as exc:
        exc.fail(module)
    module.exit_json(changed=False, probe_seconds=round(seconds, 4), ansible_facts={FACTS_NAME: facts})


if __name__ == "__main__":
    main()
