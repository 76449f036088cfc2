#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: proxmox_lxc_devices
short_description: Pass the NVIDIA device nodes into a Proxmox LXC container as devN entries
version_added: "0.1.0"
description:
  - Sets the C(devN) entries of an LXC container's configuration through the Proxmox API so that they pass
    exactly I(devices) (Proxmox VE 8.1 and later allow each such node in the container's cgroup and create it
    inside). C(devN) entries that pass other C(/dev/nvidia*) nodes are removed; entries for other devices are
    left alone.
  - Without I(devices), only reports the Proxmox VE version and the container's current C(devN) entries, so a
    play can decide between C(devN) entries and the raw C(lxc.*) lines older versions need.
  - community.proxmox's C(proxmox) module does not pass C(devN) options; this module uses its connection
    (proxmoxer, an API token).
author:
  - blackwell.vllm maintainers (!UNKNOWN)
extends_documentation_fragment: []
options:
  api_host:
    description: The Proxmox API host.
    type: str
    required: true
  api_port:
    description: The Proxmox API port.
    type: int
  api_user:
    description: The user of the API token, with its realm (C(ansible@pve)).
    type: str
    required: true
  api_token_id:
    description: The token id (the part after C(!)).
    type: str
    required: true
  api_token_secret:
    description: The token secret. Never logged.
    type: str
    required: true
  validate_certs:
    description: Check the API's TLS certificate.
    type: bool
    default: true
  node:
    description: The Proxmox node the container is on.
    type: str
    required: true
  vmid:
    description: The container's id.
    type: int
  devices:
    description:
      - The device nodes to pass, in order (C(/dev/nvidia0), C(/dev/nvidiactl), ...). Omit to only read.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: The C(devN) entries before and after.
notes:
  - A change reaches a running container only when it is restarted; the result says C(pending_restart).
seealso:
  - module: community.proxmox.proxmox
"""

EXAMPLES = r"""
- name: Pass GPU 0 and the control nodes into CT 950
  blackwell.vllm.proxmox_lxc_devices:
    api_host: pve.example.com
    api_user: ansible@pve
    api_token_id: blackwell
    api_token_secret: "{{ proxmox_api_token_secret }}"
    node: pve
    vmid: 950
    devices: [/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm, /dev/nvidia-uvm-tools]
  no_log: false
"""

RETURN = r"""
pve_version:
  description: The version the API reports.
  returned: always
  type: str
  sample: 8.3.0
entries:
  description: The container's C(devN) entries after the run (before it, in check mode when something would change).
  returned: when vmid is given
  type: dict
  sample: {dev0: /dev/nvidia0, dev1: /dev/nvidiactl}
pending_restart:
  description: Whether the container runs and must be restarted for the change to reach it.
  returned: always
  type: bool
"""

import re
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from proxmoxer import ProxmoxAPI
    HAS_PROXMOXER = True
    PROXMOXER_ERR = None
except ImportError:  # pragma: no cover - requirements.txt pins proxmoxer
    HAS_PROXMOXER = False
    PROXMOXER_ERR = traceback.format_exc()

from ansible_collections.blackwell.vllm.plugins.module_utils import proxmox

DEV_KEY = re.compile(r"^dev[0-9]+$")


def wanted_entries(devices, current):
    """The devN entries for ``devices``: kept where they already are, new ones in the lowest free slots."""
    ours = {k: v for k, v in current.items() if DEV_KEY.match(k) and str(v).split(",", maxsplit=1)[0].startswith("/dev/nvidia")}
    others = {k: v for k, v in current.items() if DEV_KEY.match(k) and k not in ours}
    by_path = {str(v).split(",", maxsplit=1)[0]: k for k, v in ours.items()}
    want, free = {}, (("dev%d" % i) for i in range(256))
    for path in devices:
        if path in by_path:
            want[by_path[path]] = ours[by_path[path]]
    for path in devices:
        if path not in by_path:
            key = next(k for k in free if k not in want and k not in others and k not in ours)
            want[key] = path
    delete = sorted(k for k in ours if k not in want)
    return want, delete


def main():
    module = AnsibleModule(
        argument_spec=dict(
            api_host=dict(type="str", required=True),
            api_port=dict(type="int"),
            api_user=dict(type="str", required=True),
            api_token_id=dict(type="str", required=True),
            api_token_secret=dict(type="str", required=True, no_log=True),
            validate_certs=dict(type="bool", default=True),
            node=dict(type="str", required=True),
            vmid=dict(type="int"),
            devices=dict(type="list", elements="str"),
        ),
        required_by={"devices": "vmid"},
        supports_check_mode=True,
    )
    if not HAS_PROXMOXER:
        module.fail_json(msg=missing_required_lib("proxmoxer"), exception=PROXMOXER_ERR)
    p = module.params
    kwargs = {"user": p["api_user"], "token_name": p["api_token_id"], "token_value": p["api_token_secret"],
              "verify_ssl": p["validate_certs"]}
    if p["api_port"]:
        kwargs["port"] = p["api_port"]
    try:
        api = ProxmoxAPI(p["api_host"], **kwargs)
        version = str(api.version.get()["version"])
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="Proxmox API at %s: %s" % (p["api_host"], exc))
    result = {"changed": False, "pve_version": version, "pending_restart": False}
    if p["vmid"] is None:
        module.exit_json(**result)
    ct = api.nodes(p["node"]).lxc(p["vmid"])
    try:
        config = ct.config.get()
        status = ct.status.current.get().get("status")
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg="CT %s on node %s: %s" % (p["vmid"], p["node"], exc), **result)
    current = {k: v for k, v in config.items() if DEV_KEY.match(k)}
    result["entries"] = current
    if p["devices"] is None:
        module.exit_json(**result)
    if p["devices"] and proxmox.pve_version_tuple(version) < proxmox.DEV_ENTRIES_SINCE:
        module.fail_json(msg="Proxmox VE %s has no devN entries (8.1 and later have them): pass the devices with "
                             "lxc.cgroup2.devices.allow and lxc.mount.entry lines in /etc/pve/lxc/%s.conf instead"
                             % (version, p["vmid"]), **result)
    want, delete = wanted_entries(p["devices"], current)
    after = {k: v for k, v in current.items() if k not in delete}
    after.update(want)
    changes = {k: v for k, v in want.items() if current.get(k) != v}
    if not changes and not delete:
        module.exit_json(**result)
    result.update(changed=True, pending_restart=status == "running",
                  diff={"before": "".join("%s: %s\n" % kv for kv in sorted(current.items())),
                        "after": "".join("%s: %s\n" % kv for kv in sorted(after.items()))})
    if not module.check_mode:
        args = dict(changes)
        if delete:
            args["delete"] = ",".join(delete)
        try:
            ct.config.put(**args)
        except Exception as exc:  # pylint: disable=broad-except
            module.fail_json(msg="CT %s: setting %s failed: %s" % (p["vmid"], sorted(args), exc), **result)
        result["entries"] = after
    module.exit_json(**result)


if __name__ == "__main__":
    main()
