# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The RDMA devices behind the QSFP interfaces, read from sysfs, and the NCCL transport they allow.

NCCL over TCP sockets on the QSFP link of a DGX Spark pair reaches a small fraction of what RoCE on
the same ConnectX-7 ports does (about 22-24 GB/s all_reduce bus bandwidth with both PCIe halves of
the port named in NCCL_IB_HCA). This file reads, under a root folder (``/`` on a node, a recorded
tree in the tests), without running anything:

- ``/sys/class/infiniband/<dev>``: each RDMA device, its PCI function (``device/uevent``), the
  netdevs of that function (``device/net/<if>``), its system image GUID and, per port, the state,
  the link layer and the GID table (``ports/<p>/gids/<i>``, ``gid_attrs/types/<i>`` such as
  ``RoCE v2``, ``gid_attrs/ndevs/<i>``, the netdev a GID belongs to);
- the rdma-core userspace: libibverbs' provider libraries (``/usr/lib/*/libibverbs/lib*-rdmav*.so``);
- ``/dev/infiniband``: the device nodes (``uverbsN`` exist only for a usable RDMA device).

A DGX Spark's ConnectX-7 shows each QSFP port as two PCI functions, one per PCIe Gen5 x4 half
(``rocep1s0f0`` behind ``enp1s0f0np0`` and its twin ``roceP2p1s0f0`` behind ``enP2p1s0f0np0``):
the twins have the same system image GUID and the same PCI function number in another PCI domain.
Both must be named in NCCL_IB_HCA for the port's full bandwidth, so the twin of every QSFP
interface's device is used too when its port is active.

``decide`` turns what was read into the transport for ``nccl_transport`` (auto, ib, socket) and
the NCCL/UCX variables that go with it; the nccl role writes them, the Ray and vLLM units open the
verbs devices only for ``ib``.
"""

from __future__ import annotations

import glob
import ipaddress
import os

TRANSPORTS = ("auto", "ib", "socket")

# libibverbs loads a provider per device family from here (Debian/Ubuntu multiarch, then others).
PROVIDER_GLOBS = (
    "usr/lib/*/libibverbs/lib*-rdmav*.so",
    "usr/lib/libibverbs/lib*-rdmav*.so",
    "usr/lib64/libibverbs/lib*-rdmav*.so",
    "lib/*/libibverbs/lib*-rdmav*.so",
)
# The ConnectX (mlx5) provider is the one the DGX Spark's ConnectX-7 needs.
MLX5_PROVIDER = "libmlx5-rdmav"

ROCE_V2 = "RoCE v2"
ACTIVE = "ACTIVE"


def _path(root, *parts):
    return os.path.join(root or "/", *[p.lstrip("/") for p in parts])


def _read(path):
    """A sysfs attribute's text, stripped; None when it is missing or does not read (an unused GID's
    type and netdev answer EINVAL)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _listdir(path):
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except OSError:
        return []


def parse_gid(text):
    """A sysfs GID ("0000:0000:0000:0000:0000:ffff:c0a8:640a") as {gid, ipv4, link_local, zero}; None if unreadable."""
    if not text:
        return None
    try:
        addr = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return {
        "gid": str(addr),
        "ipv4": str(addr.ipv4_mapped) if addr.ipv4_mapped else None,
        "link_local": addr.is_link_local,
        "zero": int(addr) == 0,
    }


def _pci_slot(dev_dir):
    """The PCI address of an RDMA device's function (0000:01:00.0), from device/uevent or the device link."""
    for line in (_read(os.path.join(dev_dir, "device", "uevent")) or "").splitlines():
        if line.startswith("PCI_SLOT_NAME="):
            return line.split("=", 1)[1]
    real = os.path.realpath(os.path.join(dev_dir, "device"))
    return os.path.basename(real) if os.path.isdir(real) else None


def _function(slot):
    """The PCI function number of a slot name (0000:01:00.1 -> "1"), None when it is not one."""
    if not slot or "." not in slot:
        return None
    return slot.rsplit(".", 1)[1]


def read_port(dev_dir, port):
    pdir = os.path.join(dev_dir, "ports", port)
    state = _read(os.path.join(pdir, "state")) or ""
    gids = []
    for index in _listdir(os.path.join(pdir, "gids")):
        if not index.isdigit():
            continue
        gid = parse_gid(_read(os.path.join(pdir, "gids", index)))
        if gid is None or gid["zero"]:
            continue
        gid.update(index=int(index),
                   type=_read(os.path.join(pdir, "gid_attrs", "types", index)),
                   ndev=_read(os.path.join(pdir, "gid_attrs", "ndevs", index)))
        gids.append(gid)
    gids.sort(key=lambda g: g["index"])
    return {
        "port": int(port),
        # "4: ACTIVE" -> ACTIVE
        "state": state.split(":", 1)[-1].strip() if state else None,
        "phys_state": ((_read(os.path.join(pdir, "phys_state")) or "").split(":", 1)[-1].strip()) or None,
        "link_layer": _read(os.path.join(pdir, "link_layer")),
        "gids": gids,
    }


def read_devices(root="/"):
    """Every RDMA device under <root>/sys/class/infiniband, with its netdevs and ports."""
    base = _path(root, "sys/class/infiniband")
    devices = []
    for name in _listdir(base):
        dev_dir = os.path.join(base, name)
        slot = _pci_slot(dev_dir)
        netdevs = {}
        for netdev in _listdir(os.path.join(dev_dir, "device", "net")):
            ndir = os.path.join(dev_dir, "device", "net", netdev)
            mtu = _read(os.path.join(ndir, "mtu"))
            netdevs[netdev] = {"operstate": _read(os.path.join(ndir, "operstate")),
                               "mtu": int(mtu) if mtu and mtu.isdigit() else None}
        devices.append({
            "name": name,
            "pci": slot,
            "function": _function(slot),
            "sys_image_guid": _read(os.path.join(dev_dir, "sys_image_guid")),
            "node_guid": _read(os.path.join(dev_dir, "node_guid")),
            "netdevs": netdevs,
            "ports": [read_port(dev_dir, p) for p in _listdir(os.path.join(dev_dir, "ports")) if p.isdigit()],
        })
    return {"present": os.path.isdir(base), "devices": devices}


def read_userspace(root="/"):
    """rdma-core's userspace: libibverbs' provider libraries (the mlx5 one for ConnectX)."""
    # A merged /usr (Ubuntu 24.04: /lib -> usr/lib) shows each library under both prefixes: one entry each.
    found = {}
    for pattern in PROVIDER_GLOBS:
        for path in sorted(glob.glob(_path(root, pattern))):
            found.setdefault(os.path.realpath(path), path)
    providers = sorted(found.values())
    shown = ["/" + os.path.relpath(p, root or "/") for p in providers]
    mlx5 = [p for p in shown if os.path.basename(p).startswith(MLX5_PROVIDER)]
    return {"installed": bool(mlx5), "providers": shown, "mlx5_provider": mlx5[0] if mlx5 else None}


def read_dev_nodes(root="/"):
    return _listdir(_path(root, "dev/infiniband"))


def _port_of(device, netdev):
    """The port of a device that carries a netdev: the one whose GIDs name it, else the only port."""
    for port in device["ports"]:
        if any(g.get("ndev") == netdev for g in port["gids"]):
            return port
    return device["ports"][0] if len(device["ports"]) == 1 else None


def best_roce_v2_gid(port, netdev, address=None):
    """The RoCE v2 GID NCCL should use on a port: the IPv4-mapped one of `address`, else any IPv4-mapped
    one, else a global IPv6 one, else the link-local one; GIDs of other netdevs (VLANs) only when the
    port has none of its own. None when the port has no RoCE v2 GID."""
    v2 = [g for g in port["gids"] if g.get("type") == ROCE_V2]
    own = [g for g in v2 if g.get("ndev") in (None, netdev)] or v2

    def rank(g):
        if address and g["ipv4"] == address:
            return 0
        if g["ipv4"]:
            return 1
        return 3 if g["link_local"] else 2

    return min(own, key=lambda g: (rank(g), g["index"])) if own else None


def _candidate(device, netdev, role, address):
    """One device/port behind a netdev, and why it is not usable (None when it is)."""
    port = _port_of(device, netdev)
    entry = {"device": device["name"], "netdev": netdev, "role": role, "pci": device["pci"],
             "port": port["port"] if port else None, "state": port["state"] if port else None,
             "link_layer": port["link_layer"] if port else None, "gid_index": None, "gid": None,
             "mtu": (device["netdevs"].get(netdev) or {}).get("mtu"), "problem": None}
    if port is None:
        entry["problem"] = "%s has no port for %s" % (device["name"], netdev)
        return entry
    if port["link_layer"] and port["link_layer"] != "Ethernet":
        entry["problem"] = "%s port %d is %s, not RoCE (Ethernet)" % (device["name"], port["port"], port["link_layer"])
        return entry
    if port["state"] != ACTIVE:
        entry["problem"] = "%s port %d behind %s is %s" % (device["name"], port["port"], netdev, port["state"] or "in no state")
        return entry
    gid = best_roce_v2_gid(port, netdev, address)
    if gid is None:
        entry["problem"] = "%s port %d behind %s has no RoCE v2 GID" % (device["name"], port["port"], netdev)
        return entry
    entry.update(gid_index=gid["index"], gid=gid["gid"])
    return entry


def select(devices, interfaces, twins=True, address=None):
    """The device/port behind each interface and, with twins, behind the twin netdev of the same ConnectX-7 port.

    Returns {"candidates": [...], "missing": [interfaces without an RDMA device]}; a candidate is usable
    when its "problem" is None.
    """
    by_netdev = {}
    for dev in devices:
        for netdev in dev["netdevs"]:
            by_netdev.setdefault(netdev, dev)
    candidates, missing, seen = [], [], set()
    for netdev in interfaces:
        dev = by_netdev.get(netdev)
        if dev is None:
            missing.append(netdev)
            continue
        if dev["name"] not in seen:
            seen.add(dev["name"])
            candidates.append(_candidate(dev, netdev, "qsfp", address))
    if twins:
        for cand in [c for c in candidates if c["role"] == "qsfp"]:
            dev = next(d for d in devices if d["name"] == cand["device"])
            for other in devices:
                if (other["name"] in seen or other["function"] is None or other["function"] != dev["function"]
                        or not dev["sys_image_guid"] or other["sys_image_guid"] != dev["sys_image_guid"]
                        or other["pci"] == dev["pci"]):
                    continue
                seen.add(other["name"])
                netdev = next(iter(sorted(other["netdevs"])), None)
                if netdev is None:
                    candidates.append(dict(device=other["name"], netdev=None, role="twin", pci=other["pci"], port=None,
                                           state=None, link_layer=None, gid_index=None, gid=None, mtu=None,
                                           problem="%s has no netdev" % other["name"]))
                else:
                    candidates.append(_candidate(other, netdev, "twin", None))
    return {"candidates": candidates, "missing": missing}


def probe(root="/", interfaces=(), twins=True, address=None):
    """Everything read, and the selection behind the interfaces."""
    found = read_devices(root)
    interfaces = [i for i in interfaces if i]
    chosen = select(found["devices"], interfaces, twins=twins, address=address or None)
    return {
        "sysfs_root": root or "/",
        "interfaces": interfaces,
        "address": address or None,
        "class_present": found["present"],
        "devices": found["devices"],
        "candidates": chosen["candidates"],
        "missing": chosen["missing"],
        "userspace": read_userspace(root),
        "dev_nodes": read_dev_nodes(root),
    }


def _hca(entries):
    return ["%s:%d" % (e["device"], e["port"]) for e in entries]


def _found_text(info):
    """What was found, for a refusal: the devices, the interfaces, the userspace."""
    if not info["class_present"]:
        devices = "no /sys/class/infiniband (no RDMA driver loaded)"
    elif not info["devices"]:
        devices = "/sys/class/infiniband is empty"
    else:
        devices = "RDMA devices: " + ", ".join(
            "%s (%s)" % (d["name"], "/".join(sorted(d["netdevs"])) or "no netdev") for d in info["devices"])
    nodes = "/dev/infiniband: " + (", ".join(info["dev_nodes"]) or "none")
    user = info["userspace"]
    userspace = ("rdma-core userspace: %s" % user["mlx5_provider"] if user["installed"]
                 else "rdma-core userspace: no mlx5 provider (ibverbs-providers not installed)")
    return "; ".join([devices, nodes, userspace])


def decide(requested, info):
    """The transport NCCL takes for nccl_transport=`requested` on what `info` (probe()) found.

    Returns {requested, name (ib or socket), usable, refused, reason, summary, devices, netdevs, hca,
    gid_index, gid_indexes, env, userspace_missing, problems}. `refused` is True when ib is asked for and
    no usable RDMA device sits behind the QSFP interfaces; `reason` then says what was found.
    """
    if requested not in TRANSPORTS:
        raise ValueError("nccl_transport must be one of %s, got %r" % (", ".join(TRANSPORTS), requested))
    cands = info["candidates"]
    usable = [c for c in cands if c["problem"] is None]
    primary = [c for c in usable if c["role"] == "qsfp"]
    problems = ["no RDMA device behind %s" % i for i in info["missing"]] + [c["problem"] for c in cands if c["problem"]]
    ifs = "/".join(info["interfaces"])
    if not info["interfaces"]:
        why_not = "no QSFP interface (blackwell_qsfp_interface is unset)"
    elif primary:
        why_not = None
    else:
        why_not = "; ".join(p for p in problems if p) or "no RDMA device behind %s" % ifs

    out = {"requested": requested, "usable": bool(primary), "refused": False, "devices": [], "netdevs": [],
           "hca": None, "gid_index": None, "gid_indexes": {}, "env": {}, "problems": problems,
           "userspace_missing": False, "interfaces": list(info["interfaces"]), "selected": []}
    if requested == "socket" or not primary:
        out["name"] = "socket"
        if requested == "socket":
            out["reason"] = "nccl_transport is socket"
        else:
            out["reason"] = why_not
        if requested == "ib" and not primary:
            out["refused"] = True
            out["reason"] = "nccl_transport=ib, but %s (interfaces %s; %s)" % (
                why_not, ifs or "none", _found_text(info))
        out["summary"] = "socket (%s)" % (out["reason"] if not out["refused"] else why_not)
        return out

    used = usable
    hca = _hca(used)
    indexes = {e["device"]: e["gid_index"] for e in used}
    common = sorted(set(indexes.values()))
    gid_index = common[0] if len(common) == 1 else None
    env = {"NCCL_IB_DISABLE": "0", "NCCL_IB_HCA": "=" + ",".join(hca), "UCX_NET_DEVICES": ",".join(hca)}
    if gid_index is not None:
        env["NCCL_IB_GID_INDEX"] = str(gid_index)
    if gid_index is not None:
        gid_text = "RoCE v2 GID %d" % gid_index
    else:
        gid_text = "RoCE v2 GID " + ", ".join("%d on %s" % (indexes[d], d) for d in sorted(indexes)) + \
            " (NCCL_IB_GID_INDEX left to NCCL, which picks per device)"
    netdevs = [e["netdev"] for e in used]
    summary = "ib (%s behind %s, %s)" % (" + ".join(hca), "/".join(netdevs), gid_text)
    skipped = [c["problem"] for c in cands if c["problem"] and c["role"] == "twin"]
    if skipped:
        summary += "; not used: " + "; ".join(skipped)
    if not info["userspace"]["installed"]:
        summary += "; rdma-core userspace not installed yet"
    out.update(name="ib", reason="RDMA behind %s" % ifs, summary=summary, devices=[e["device"] for e in used],
               netdevs=netdevs, hca=env["NCCL_IB_HCA"], gid_index=gid_index, gid_indexes=indexes, env=env,
               userspace_missing=not info["userspace"]["installed"], selected=used)
    return out
