# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters of the proxmox role and the preflight role (logic in module_utils/proxmox.py).

    proxmox_host | blackwell.vllm.proxmox_site_problems(proxmox_template, proxmox_clones) -> ['...']
    clone | blackwell.vllm.proxmox_net0(proxmox_host)  -> 'name=eth0,bridge=vmbr0,hwaddr=...,ip=...,gw=...,type=veth'
    clone.gpus | blackwell.vllm.proxmox_passthrough(proc_devices, nodes, pve_version) -> {nodes, dev_entries, lxc_lines, ...}
    conf_text | blackwell.vllm.proxmox_lxc_conf(lxc_lines, majors) -> the config with exactly those GPU lines
"""

from __future__ import annotations

from ansible_collections.blackwell.vllm.plugins.module_utils import proxmox


def proxmox_site_problems(host, template, clones):
    return proxmox.site_problems(host, template, clones)


def proxmox_net0(entry, host):
    return proxmox.net0(entry, host)


def proxmox_passthrough(gpus, proc_devices, nodes, pve_version):
    return proxmox.passthrough(gpus or [], proc_devices or "", nodes or [], pve_version)


def proxmox_lxc_conf(text, lines, majors=None, previous=None):
    return proxmox.lxc_conf_with_devices(text or "", lines or [], (majors or {}).values(), previous or [])


class FilterModule(object):
    """blackwell.vllm Proxmox filters."""

    def filters(self):
        return {
            "proxmox_site_problems": proxmox_site_problems,
            "proxmox_net0": proxmox_net0,
            "proxmox_passthrough": proxmox_passthrough,
            "proxmox_lxc_conf": proxmox_lxc_conf,
        }
