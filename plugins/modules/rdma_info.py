#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rdma_info
short_description: Read the RDMA (RoCE) devices behind the QSFP interfaces and the NCCL transport they allow
version_added: "0.1.0"
description:
  - Reads C(/sys/class/infiniband) for the RDMA devices whose PCI function carries each of I(interfaces)
    (C(/sys/class/infiniband/<dev>/device/net/<if>)), their port state, link layer and RoCE v2 GID
    (C(ports/<p>/gid_attrs/types/<i>) = C(RoCE v2), C(gid_attrs/ndevs/<i>) = the netdev, a non-zero GID,
    the IPv4-mapped C(::ffff:a.b.c.d) of I(address) first).
  - With I(twins), also the device of the other PCIe half of the same ConnectX-7 port (same system image
    GUID, same PCI function number, another PCI address); a DGX Spark shows each QSFP port as two functions,
    C(rocep1s0f0) behind C(enp1s0f0np0) and C(roceP2p1s0f0) behind C(enP2p1s0f0np0), and NCCL reaches the
    port's full bandwidth only with both in C(NCCL_IB_HCA).
  - Reads whether rdma-core's userspace is installed (libibverbs' mlx5 provider,
    C(/usr/lib/*/libibverbs/libmlx5-rdmav*.so), from the ibverbs-providers package) and which device nodes
    C(/dev/infiniband) holds.
  - Decides the NCCL transport for I(transport) (V(auto), V(ib), V(socket)) and returns the NCCL/UCX
    variables that go with it.
  - Runs no command and never changes anything.
author:
  - blackwell.vllm maintainers (!UNKNOWN)
options:
  interfaces:
    description:
      - The QSFP netdevs NCCL's traffic goes over (C(blackwell_qsfp_interface), and the second cable's when
        there are two). Empty means no QSFP link, hence sockets.
    type: list
    elements: str
    default: []
  address:
    description:
      - The QSFP IPv4 address of the node (C(192.168.100.10) or C(192.168.100.10/24)); its IPv4-mapped GID is
        preferred where a port has several RoCE v2 GIDs.
    type: str
  twins:
    description: Add the device of the other PCIe half of each interface's ConnectX-7 port (DGX Spark).
    type: bool
    default: true
  transport:
    description:
      - The transport asked for (C(nccl_transport)). V(auto) takes RoCE when a usable RDMA device sits behind
        the interfaces, else sockets; V(ib) is reported as refused (C(transport.refused)) where there is none;
        V(socket) always takes sockets.
    type: str
    choices: [auto, ib, socket]
    default: auto
  sysfs_root:
    description:
      - The folder C(/sys), C(/dev) and C(/usr/lib) are read under. C(/) on a node; a recorded tree in tests.
    type: path
    default: /
extends_documentation_fragment:
  - blackwell.vllm.attributes.read_only
notes:
  - The module does not fail when RDMA is missing or refused; the caller asserts on C(transport.refused) with
    C(transport.reason), which says what was found (devices, interfaces, userspace).
  - C(NCCL_IB_GID_INDEX) is set only when every device used has the same RoCE v2 GID index; otherwise NCCL
    picks the GID of each device itself.
seealso:
  - module: blackwell.vllm.gpu_info
"""

EXAMPLES = r"""
- name: Read the RDMA devices behind the QSFP interface
  blackwell.vllm.rdma_info:
    interfaces: [enp1s0f0np0]
    address: 192.168.100.10/24
  register: rdma

- name: Say which transport NCCL takes
  ansible.builtin.debug:
    msg: "NCCL transport: {{ rdma.transport.summary }}"

- name: Refuse RoCE where there is none
  ansible.builtin.assert:
    that: not rdma.transport.refused
    fail_msg: "{{ rdma.transport.reason }}"

- name: Read a recorded tree instead of the node's own
  blackwell.vllm.rdma_info:
    interfaces: [enp1s0f0np0]
    sysfs_root: /var/tmp/rdma-tree
"""

RETURN = r"""
transport:
  description: The NCCL transport for I(transport) on what was found.
  returned: always
  type: dict
  contains:
    requested:
      description: I(transport) as given.
      type: str
      sample: auto
    name:
      description: V(ib) (RoCE) or V(socket).
      type: str
      sample: ib
    usable:
      description: A usable RDMA device sits behind the interfaces (port active, RoCE v2 GID).
      type: bool
    refused:
      description: V(ib) was asked for and there is no usable RDMA device behind the interfaces.
      type: bool
    reason:
      description: Why this transport; for a refusal, what was found (devices, interfaces, userspace).
      type: str
      sample: "nccl_transport=ib, but no RDMA device behind enp1s0f0np0 (interfaces enp1s0f0np0; /sys/class/infiniband is empty; ...)"
    summary:
      description: One line for a person.
      type: str
      sample: "ib (rocep1s0f0:1 + roceP2p1s0f0:1 behind enp1s0f0np0/enP2p1s0f0np0, RoCE v2 GID 3)"
    devices:
      description: The RDMA devices used.
      type: list
      elements: str
      sample: [rocep1s0f0, roceP2p1s0f0]
    netdevs:
      description: The netdevs of the devices used.
      type: list
      elements: str
    hca:
      description: C(NCCL_IB_HCA) (exact names, with the port); null for sockets.
      type: str
      sample: "=rocep1s0f0:1,roceP2p1s0f0:1"
    gid_index:
      description: The RoCE v2 GID index all devices share; null when they differ or for sockets.
      type: int
      sample: 3
    gid_indexes:
      description: The RoCE v2 GID index per device used.
      type: dict
    env:
      description: The NCCL/UCX variables of this transport (empty for sockets).
      type: dict
      sample: {NCCL_IB_DISABLE: "0", NCCL_IB_HCA: "=rocep1s0f0:1,roceP2p1s0f0:1", NCCL_IB_GID_INDEX: "3",
               UCX_NET_DEVICES: "rocep1s0f0:1,roceP2p1s0f0:1"}
    userspace_missing:
      description: RoCE is taken but libibverbs' mlx5 provider is not installed (yet).
      type: bool
    problems:
      description: Every interface or device that could not be used, and why.
      type: list
      elements: str
    selected:
      description: Each device/port used (device, port, netdev, role V(qsfp) or V(twin), PCI address, GID index and GID, MTU).
      type: list
      elements: dict
    interfaces:
      description: I(interfaces) as read.
      type: list
      elements: str
rdma:
  description: What was read.
  returned: always
  type: dict
  contains:
    class_present:
      description: C(/sys/class/infiniband) exists (an RDMA driver is loaded).
      type: bool
    devices:
      description: Every RDMA device with its PCI address, function, GUIDs, netdevs (operstate, MTU) and ports (state, link layer, GIDs).
      type: list
      elements: dict
    candidates:
      description: The device/port behind each interface and twin, with C(problem) null when usable.
      type: list
      elements: dict
    missing:
      description: Interfaces with no RDMA device behind them.
      type: list
      elements: str
    userspace:
      description: C(installed) (the mlx5 provider is there), C(providers), C(mlx5_provider).
      type: dict
    dev_nodes:
      description: The names in C(/dev/infiniband).
      type: list
      elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.blackwell.vllm.plugins.module_utils.rdma import TRANSPORTS, decide, probe


def main():
    module = AnsibleModule(
        argument_spec=dict(
            interfaces=dict(type="list", elements="str", default=[]),
            address=dict(type="str"),
            twins=dict(type="bool", default=True),
            transport=dict(type="str", default="auto", choices=list(TRANSPORTS)),
            sysfs_root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    address = (module.params["address"] or "").split("/")[0] or None
    info = probe(module.params["sysfs_root"], module.params["interfaces"], twins=module.params["twins"], address=address)
    module.exit_json(changed=False, transport=decide(module.params["transport"], info), rdma=info)


if __name__ == "__main__":
    main()
