#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_report
short_description: Read what a Blackwell node runs, for the fleet report
version_added: "0.1.0"
description:
  - Reads, without changing anything, what one node of the collection runs and returns it as C(node), with
    C(node.problems) naming what is wrong and why. C(playbooks/report.yml) runs it on every node and
    assembles the results with the C(blackwell.vllm.fleet_report) filter.
  - The GPUs, driver, CUDA and the C(libnccl.so.2) the loader picks, through the probe of
    M(blackwell.vllm.gpu_info) (NVML or C(nvidia-smi)); a host without a GPU reports none.
  - The NCCL build that C(<nccl_install_root>/current) names, with the version, CUDA and SMs from the marker the
    C(nccl) role's build writes (C(.blackwell-nccl.json)); C(cuobjdump) is not run.
  - The QSFP interface (operational state, MTU, IPv4 addresses) from sysfs and C(ip -j addr).
  - The Ray unit of the node (C(ray-head.service) or C(ray-worker.service)) and whether it is active; on the
    head, the alive nodes from its dashboard (one HTTP call to the dashboard address of the head's unit,
    with the cluster's token when Ray's environment file names one).
  - The vLLM release C(<vllm_base_dir>/current) names (version, install mode, the sm_121 patches found in it);
    each C(vllm-<name>.service) (systemd state, and through C(vllm_probe.py) on vLLM's own listener
    C(/health), C(/v1/models) and a one-token completion); the last bench result per service in I(bench_dir);
    the newest rollout record in I(rollout_dir).
  - The vLLM API key is read only by C(vllm_probe.py) from the service's environment file, and the Ray token
    only for the dashboard request; neither is returned.
  - Never changes anything and never reports C(changed).
author:
  - blackwell.vllm maintainers (!UNKNOWN)
options:
  hardware_profile:
    description: The node's C(blackwell_hardware_profile), which says how many GPUs and which NCCL build to expect.
    type: str
    required: true
  vllm_base_dir:
    description: The vllm role's C(vllm_base_dir) (releases, the C(current) and C(previous) links, C(libexec)).
    type: path
    default: /opt/vllm
  vllm_config_dir:
    description: The vllm role's C(vllm_config_dir), where each service's environment file C(<name>.env) lies.
    type: path
    default: /etc/vllm
  nccl_install_root:
    description: The nccl role's C(nccl_install_root) (the builds and the C(current) link).
    type: path
    default: /opt/nccl
  rollout_dir:
    description: C(blackwell_rollout_dir), the rollout records (C(<id>.json)).
    type: path
    default: /var/lib/blackwell/rollouts
  bench_dir:
    description: C(blackwell_bench_dir), the last bench result per service (C(<service>.json)).
    type: path
    default: /var/lib/blackwell/bench
  systemd_dir:
    description: Where the vLLM and Ray units lie.
    type: path
    default: /etc/systemd/system
  qsfp_interface:
    description: C(blackwell_qsfp_interface); empty or unset on a node without a QSFP link (nothing is read).
    type: str
  qsfp_address:
    description: C(blackwell_qsfp_address) (C(192.168.100.10/24)), which the interface must carry.
    type: str
  qsfp_mtu:
    description: The MTU the QSFP interface must have.
    type: int
  ray_role:
    description: The node's role in the inventory (C(ray_head) or C(ray_workers)); unset when it is in neither.
    type: str
    choices: [head, worker]
  ray_members:
    description: How many nodes the inventory puts in the Ray cluster; the head's alive count must equal it.
    type: int
  ray_nodes:
    description: On the head, ask its dashboard how many nodes are alive.
    type: bool
    default: true
  expected_services:
    description: The names of the vLLM services the inventory serves on this node; one without a unit is a problem.
    type: list
    elements: str
    default: []
  probe_services:
    description: Ask every active vLLM service on loopback (V(false) reports the systemd state only).
    type: bool
    default: true
  probe_timeout:
    description: Seconds each request to a service (and to the Ray dashboard) may take.
    type: float
    default: 10
  gpu_backend:
    description: How to read the GPUs, as the I(backend) of M(blackwell.vllm.gpu_info).
    type: str
    choices: [auto, nvml, nvidia_smi]
    default: auto
extends_documentation_fragment:
  - blackwell.vllm.attributes.read_only
requirements:
  - systemd (C(systemctl show)) and iproute2 (C(ip -j)) on the node
notes:
  - Run it as root (C(become)), since the rollout records are C(0600) and C(vllm_probe.py) reads the API key
    from the service's C(0600) environment file.
  - A stopped or failing service is reported (C(healthy=false) with the reason), not a module failure.
seealso:
  - module: blackwell.vllm.gpu_info
"""

EXAMPLES = r"""
- name: Read what the node runs
  blackwell.vllm.node_report:
    hardware_profile: "{{ blackwell_hardware_profile }}"
    qsfp_interface: "{{ blackwell_qsfp_interface | default(omit, true) }}"
    qsfp_address: "{{ blackwell_qsfp_address | default(omit, true) }}"
    ray_role: "{{ 'head' if inventory_hostname in groups['ray_head'] else omit }}"
  register: node

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ node.node.problems }}"
"""

RETURN = r"""
node:
  description: What the node runs.
  returned: always
  type: dict
  contains:
    profile:
      description: The hardware profile (name, description, capability, gpus, min_gpus; error when unknown).
      type: dict
    gpu:
      description: count, gpus (index, name, memory_total_mib, compute_capability, sm, unified_memory),
        driver_version, cuda_driver_version, cuda_toolkit, nccl_loaded, backend, probe_error.
      type: dict
    nccl:
      description: The build in use (current, path, version, sms, cuda, built_at, library, marker) and every installed build.
      type: dict
      sample: {current: 2.28.9-1-sm_121, version: 2.28.9-1, sms: [sm_121], cuda: "13.0", builds: [2.28.9-1-sm_121]}
    qsfp:
      description: interface, exists, state, carrier, mtu, addresses, expected_address, expected_mtu; null without a QSFP interface.
      type: dict
    ray:
      description: expected_role, role (head, worker or null), unit, state, active, nodes_alive (head only), nodes_note.
      type: dict
    vllm:
      description: The release in use (current, previous, version, mode, installed_at) and its patches (name -> applied,
        partial, absent, no file; patches_applied lists the applied ones).
      type: dict
    services:
      description: One entry per vLLM unit.
      type: list
      elements: dict
      contains:
        name:
          description: The service name (C(vllm-<name>.service)).
          type: str
        served_name:
          description: The name C(/v1/models) must list.
          type: str
        healthy:
          description: True when the unit is active, C(/health) answers and C(/v1/models) lists the served name; null when not probed.
          type: bool
        reason:
          description: Why it is not healthy.
          type: str
        state:
          description: systemd's view (active, sub, result, restarts, since).
          type: dict
        probe:
          description: health, models, served, completion_seconds, auth, error.
          type: dict
        bench:
          description: The last bench result (output_tokens_per_s, ttft_ms_median, ttft_ms_mean, ttft_ms_p99, tpot_ms_mean, when); null when none.
          type: dict
    rollout:
      description: The newest rollout record (id, kind, unit, gate, changed, started, finished, seconds, error); null when none.
      type: dict
    rollout_records:
      description: How many rollout records the node holds.
      type: int
    problems:
      description: What is wrong, one sentence each with its reason; empty when nothing is.
      type: list
      elements: str
    seconds:
      description: Seconds the node took to read (GPU probe not included, see gpu_seconds).
      type: float
gpu_seconds:
  description: Seconds the GPU probe took.
  returned: always
  type: float
"""

import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils.gpu_probe import ProbeFailure, probe
from ansible_collections.blackwell.vllm.plugins.module_utils.node_report import Runner, collect


def main():
    module = AnsibleModule(
        argument_spec=dict(
            hardware_profile=dict(type="str", required=True),
            vllm_base_dir=dict(type="path", default="/opt/vllm"),
            vllm_config_dir=dict(type="path", default="/etc/vllm"),
            nccl_install_root=dict(type="path", default="/opt/nccl"),
            rollout_dir=dict(type="path", default="/var/lib/blackwell/rollouts"),
            bench_dir=dict(type="path", default="/var/lib/blackwell/bench"),
            systemd_dir=dict(type="path", default="/etc/systemd/system"),
            qsfp_interface=dict(type="str"),
            qsfp_address=dict(type="str"),
            qsfp_mtu=dict(type="int"),
            ray_role=dict(type="str", choices=["head", "worker"]),
            ray_members=dict(type="int"),
            ray_nodes=dict(type="bool", default=True),
            expected_services=dict(type="list", elements="str", default=[]),
            probe_services=dict(type="bool", default=True),
            probe_timeout=dict(type="float", default=10),
            gpu_backend=dict(type="str", default="auto", choices=["auto", "nvml", "nvidia_smi"]),
        ),
        supports_check_mode=True,
    )
    gpu_seconds = 0.0
    # A GPU tool whose output cannot be read fails gpu_info; here it is one more line of the report.
    try:
        facts, gpu_seconds = probe(module, backend=module.params["gpu_backend"])
    except ProbeFailure as exc:
        facts = {"gpu_count": 0, "probe_error": "GPU probe: %s" % exc.msg}
    node = collect(Runner(module), module.params, facts, sys.executable)
    module.exit_json(changed=False, node=node, gpu_seconds=round(gpu_seconds, 4))


if __name__ == "__main__":
    main()
