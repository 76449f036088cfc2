# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""A Proxmox site's one source of truth, and what follows from it.

The inventory describes the Proxmox host (``proxmox_host``), the template container
(``proxmox_template``) and its clones (``proxmox_clones``). ``site_problems`` says what is wrong
with that description before any API call; ``net0``, ``passthrough`` and friends derive the
containers' settings from it and from what the host says at run time (its ``/proc/devices`` and
its ``/dev/nvidia*`` nodes), so that nothing host-specific is written down twice.
"""

from __future__ import annotations

import ipaddress
import re

# The stages of site.yml that can run inside the template before it is converted.
TEMPLATE_STAGES = ("preflight", "driver", "host", "vllm_release")
CLONE_TYPES = ("full", "linked")
# Proxmox's own limits on a guest id.
VMID_MIN, VMID_MAX = 100, 999999999
# The NVIDIA kernel module's character devices: the GPUs and nvidiactl always use major 195
# (nvidia-frontend); nvidia-uvm and nvidia-caps get a dynamic major that differs between hosts
# (506, 509, 510, 511 have all been seen), so those two are read from the host's /proc/devices.
NVIDIA_FRONTEND_MAJOR = 195
DYNAMIC_MAJORS = ("nvidia-uvm", "nvidia-caps")
# The device nodes a CUDA process opens besides its GPUs.
CONTROL_NODES = ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools")
# devN entries in a container's configuration: Proxmox VE 8.1 and later.
DEV_ENTRIES_SINCE = (8, 1)
# Ports a clone's services may not take: SSH, which provisioning needs.
RESERVED_PORTS = {22: "SSH"}
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
DRIVER_RE = re.compile(r"^[0-9]{3}\.[0-9]+(\.[0-9]+)?$")


def _int(value):
    """An int given as an int (a bool or a float is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _name(kind, index, entry):
    vmid = entry.get("vmid") if isinstance(entry, dict) else None
    where = "proxmox_template" if kind == "template" else "proxmox_clones[%d]" % index
    return "%s (vmid %s)" % (where, vmid) if vmid is not None else where


def _host_problems(host):
    if not isinstance(host, dict):
        return ["proxmox_host=%r must be a mapping with api_host, node, api_user, api_token_id, storage, bridge, "
                "gateway and gpus (see inventories/proxmox-lxc/group_vars/all/proxmox.yml)" % (host,)]
    problems = []
    for key in ("api_host", "node", "api_user", "api_token_id", "storage", "bridge"):
        if not isinstance(host.get(key), str) or not host.get(key):
            problems.append("proxmox_host.%s=%r must be a non-empty string" % (key, host.get(key)))
    if isinstance(host.get("api_user"), str) and "@" not in host["api_user"]:
        problems.append("proxmox_host.api_user=%r needs its realm, e.g. ansible@pve" % host["api_user"])
    port = host.get("api_port", 8006)
    if not _int(port) or not 1 <= port <= 65535:
        problems.append("proxmox_host.api_port=%r must be a port number (Proxmox answers on 8006)" % (port,))
    try:
        ipaddress.IPv4Address(str(host.get("gateway")))
    except ValueError:
        problems.append("proxmox_host.gateway=%r must be an IPv4 address, e.g. 10.0.0.1" % (host.get("gateway"),))
    version = host.get("nvidia_driver_version")
    if version is not None and not (isinstance(version, str) and DRIVER_RE.match(version)):
        problems.append("proxmox_host.nvidia_driver_version=%r must be the host's driver version, e.g. \"580.95.05\" "
                        "(quoted; cat /proc/driver/nvidia/version on the host)" % (version,))
    gpus = host.get("gpus", [])
    if not isinstance(gpus, list) or not all(isinstance(g, dict) and _int(g.get("index")) and g["index"] >= 0 for g in gpus):
        problems.append("proxmox_host.gpus=%r must be a list of {index: N, model: ...}, N the index nvidia-smi gives "
                        "the GPU on the host" % (gpus,))
    else:
        indexes = [g["index"] for g in gpus]
        dups = sorted({i for i in indexes if indexes.count(i) > 1})
        if dups:
            problems.append("proxmox_host.gpus lists index %s more than once" % ", ".join(map(str, dups)))
    return problems


def host_gpu_indexes(host):
    gpus = host.get("gpus", []) if isinstance(host, dict) else []
    return sorted(g["index"] for g in gpus if isinstance(g, dict) and _int(g.get("index")))


def _container_problems(kind, index, entry, host):
    name = _name(kind, index, entry)
    if not isinstance(entry, dict):
        return ["%s=%r must be a mapping" % (name, entry)]
    problems = []
    vmid = entry.get("vmid")
    if not _int(vmid) or not VMID_MIN <= vmid <= VMID_MAX:
        problems.append("%s: vmid=%r must be a whole number from %d to %d" % (name, vmid, VMID_MIN, VMID_MAX))
    hostname = entry.get("hostname")
    if not isinstance(hostname, str) or not HOSTNAME_RE.match(hostname):
        problems.append("%s: hostname=%r must be a DNS name (letters, digits and '-', e.g. vllm-950)" % (name, hostname))
    address = entry.get("address")
    try:
        iface = ipaddress.IPv4Interface(str(address))
        if "/" not in str(address):
            raise ValueError
        if iface.network.prefixlen < 31 and iface.ip in (iface.network.network_address, iface.network.broadcast_address):
            problems.append("%s: address=%s is the network's own or broadcast address; take a host address" % (name, address))
        gateway = host.get("gateway") if isinstance(host, dict) else None
        try:
            if gateway and ipaddress.IPv4Address(str(gateway)) not in iface.network:
                problems.append("%s: address=%s is not in the subnet of proxmox_host.gateway=%s" % (name, address, gateway))
        except ValueError:
            pass
    except ValueError:
        problems.append("%s: address=%r must be an IPv4 address with its prefix, e.g. 10.0.0.150/24" % (name, address))
    mac = entry.get("mac")
    if not isinstance(mac, str) or not MAC_RE.match(mac):
        problems.append("%s: mac=%r must be a MAC address such as \"BC:24:11:00:09:50\" (quoted)" % (name, mac))
    elif int(mac[:2], 16) & 1:
        problems.append("%s: mac=%s is a multicast address (the first octet is odd); a NIC needs a unicast one, "
                        "e.g. BC:24:11:... (Proxmox's prefix)" % (name, mac))
    for key, low, unit in (("cores", 1, ""), ("memory", 16, " MiB"), ("disk", 1, " GiB")):
        value = entry.get(key)
        if not _int(value) or value < low:
            problems.append("%s: %s=%r must be a whole number of at least %d%s" % (name, key, value, low, unit))
    gpus = entry.get("gpus", [])
    known = host_gpu_indexes(host)
    if not isinstance(gpus, list) or not all(_int(g) for g in gpus):
        problems.append("%s: gpus=%r must be a list of GPU indexes of proxmox_host.gpus (%s)" % (name, gpus, known))
    else:
        missing = [g for g in gpus if g not in known]
        if missing:
            problems.append("%s: gpus=%s names GPU index %s, which proxmox_host.gpus does not have (the host has %s)"
                            % (name, gpus, ", ".join(map(str, missing)), known or "no GPU"))
        if len(set(gpus)) != len(gpus):
            problems.append("%s: gpus=%s lists a GPU twice" % (name, gpus))
    return problems


def clone_services(clone):
    """A clone's vLLM services: its `service`, or its list `services`."""
    if not isinstance(clone, dict):
        return []
    if "services" in clone:
        return clone["services"] if isinstance(clone["services"], list) else [clone["services"]]
    return [clone["service"]] if "service" in clone else []


def _service_problems(index, clone):
    name = _name("clone", index, clone)
    if not isinstance(clone, dict):
        return []
    if "service" in clone and "services" in clone:
        return ["%s: give either service or services, not both" % name]
    services = clone_services(clone)
    if not services:
        return ["%s: needs a service (the vLLM service it serves: name, model, port, ...)" % name]
    problems, ports = [], {}
    for svc in services:
        if not isinstance(svc, dict):
            problems.append("%s: service %r must be a mapping" % (name, svc))
            continue
        for key in ("name", "model"):
            if not isinstance(svc.get(key), str) or not svc.get(key):
                problems.append("%s: service.%s=%r must be a non-empty string" % (name, key, svc.get(key)))
        port = svc.get("port", 8000)
        if not _int(port) or not 1 <= port <= 65535:
            problems.append("%s: service %s port=%r must be a port number" % (name, svc.get("name"), port))
            continue
        if port in RESERVED_PORTS:
            problems.append("%s: service %s port=%d is %s's port on the clone; take another, e.g. 8000"
                            % (name, svc.get("name"), port, RESERVED_PORTS[port]))
        if port in ports:
            problems.append("%s: services %s and %s both listen on port %d; give each its own port"
                            % (name, ports[port], svc.get("name"), port))
        ports.setdefault(port, svc.get("name"))
    return problems


def site_problems(host, template, clones):
    """Everything wrong with a Proxmox site's description, one sentence per problem.

    Checked before any API call: a bad entry stops the run with nothing created.
    """
    problems = _host_problems(host)
    host = host if isinstance(host, dict) else {}
    if not isinstance(template, dict) or "vmid" not in template:
        problems.append("proxmox_template=%r is missing or has no vmid: the clones are made from it; describe it "
                        "(vmid, hostname, address, mac, ostemplate, cores, memory, disk, gpus, build_stages)" % (template,))
        template = None
    else:
        problems += _container_problems("template", 0, template, host)
        if not isinstance(template.get("ostemplate"), str) or ":" not in template.get("ostemplate", ""):
            problems.append("proxmox_template: ostemplate=%r must name an OS template volume, "
                            "e.g. local:vztmpl/ubuntu-24.04-standard_24.04-2_amd64.tar.zst" % (template.get("ostemplate"),))
        stages = template.get("build_stages", list(TEMPLATE_STAGES))
        bad = [s for s in stages if s not in TEMPLATE_STAGES] if isinstance(stages, list) else [stages]
        if bad:
            problems.append("proxmox_template: build_stages=%r holds %s; the stages that run in a template are %s"
                            % (stages, bad, ", ".join(TEMPLATE_STAGES)))
    if not isinstance(clones, list):
        problems.append("proxmox_clones=%r must be a list of clones (vmid, hostname, address, mac, cores, memory, disk, "
                        "gpus, service)" % (clones,))
        clones = []
    containers = ([("template", 0, template)] if template else []) + [("clone", i, c) for i, c in enumerate(clones)]
    for i, clone in enumerate(clones):
        problems += _container_problems("clone", i, clone, host)
        problems += _service_problems(i, clone)
        if not isinstance(clone, dict):
            continue
        ctype = clone.get("clone_type", "full")
        if ctype not in CLONE_TYPES:
            problems.append("%s: clone_type=%r must be one of %s" % (_name("clone", i, clone), ctype, ", ".join(CLONE_TYPES)))
        source = clone.get("template", template.get("vmid") if template else None)
        if template and source != template.get("vmid"):
            problems.append("%s: template=%r is not a template of this site; proxmox_template has vmid %s"
                            % (_name("clone", i, clone), source, template.get("vmid")))
    # One of each per site: ids, names, addresses and MACs.
    for key, norm in (("vmid", lambda v: v), ("hostname", lambda v: str(v).lower()),
                      ("address", lambda v: str(v).split("/", maxsplit=1)[0]), ("mac", lambda v: str(v).upper())):
        seen = {}
        for kind, i, entry in containers:
            if not isinstance(entry, dict) or entry.get(key) is None:
                continue
            value = norm(entry[key])
            if value in seen:
                problems.append("%s: %s %s is also the %s of %s; every container needs its own"
                                % (_name(kind, i, entry), key, entry[key], key, seen[value]))
            else:
                seen[value] = _name(kind, i, entry)
    gateway = str(host.get("gateway", ""))
    for kind, i, entry in containers:
        if isinstance(entry, dict) and str(entry.get("address", "")).split("/", maxsplit=1)[0] == gateway and gateway:
            problems.append("%s: address %s is proxmox_host.gateway's" % (_name(kind, i, entry), entry["address"]))
    return problems


def net0(entry, host):
    """The net0 value of a container: its NIC on the host's bridge with its own MAC and address."""
    return "name=eth0,bridge=%s,hwaddr=%s,ip=%s,gw=%s,type=veth" % (
        host["bridge"], str(entry["mac"]).upper(), entry["address"], host["gateway"])


def pve_version_tuple(version):
    """'8.3.0' or '8.1' (GET /version's `version`) as a tuple of ints, (0,) when unreadable."""
    parts = re.findall(r"\d+", str(version).split("-", maxsplit=1)[0])
    return tuple(int(p) for p in parts) or (0,)


def parse_proc_devices(text):
    """The character devices of a /proc/devices text, {name: major}."""
    majors, section = {}, None
    for line in str(text).splitlines():
        line = line.strip()
        if line.endswith(":"):
            section = line[:-1].lower()
            continue
        fields = line.split()
        if section == "character devices" and len(fields) == 2 and fields[0].isdigit():
            majors.setdefault(fields[1], int(fields[0]))
    return majors


def passthrough(gpus, proc_devices, host_nodes, pve_version):
    """How a container gets its GPUs, from what the host has at run time.

    gpus: the container's GPU indexes. proc_devices: the host's /proc/devices text. host_nodes:
    the host's device node paths (/dev/nvidia*, /dev/nvidia-caps/*). pve_version: GET /version's.

    Returns {problems, nodes, dev_entries, lxc_lines, majors, api_devices}: on Proxmox VE 8.1 and later the nodes
    go in as devN entries through the API (Proxmox then allows them in the container's cgroup);
    before 8.1 as raw lxc lines (cgroup2 allows by major, bind mounts) in the host's
    /etc/pve/lxc/<vmid>.conf, which the API cannot write.
    """
    result = {"problems": [], "nodes": [], "dev_entries": {}, "lxc_lines": [], "majors": {},
              "api_devices": pve_version_tuple(pve_version) >= DEV_ENTRIES_SINCE}
    if not gpus:
        return result
    majors = parse_proc_devices(proc_devices)
    present = set(host_nodes)
    wanted = ["/dev/nvidia%d" % g for g in sorted(gpus)] + list(CONTROL_NODES)
    wanted += sorted(n for n in present if n.startswith("/dev/nvidia-caps/"))
    missing = [n for n in wanted if n not in present]
    if missing:
        result["problems"].append(
            "the host has no %s: is the NVIDIA driver loaded on the host, with nvidia-uvm (nvidia-modprobe -u -c=0, or "
            "a CUDA call on the host creates /dev/nvidia-uvm*)? A GPU index the host lacks is a wrong gpus entry"
            % ", ".join(missing))
    for name in DYNAMIC_MAJORS:
        if name in majors:
            result["majors"][name] = majors[name]
        elif name == "nvidia-uvm":
            result["problems"].append("the host's /proc/devices has no nvidia-uvm: the module is not loaded on the host "
                                      "(modprobe nvidia-uvm); without it CUDA in the container fails with error 999")
    result["majors"]["nvidia-frontend"] = majors.get("nvidia-frontend", NVIDIA_FRONTEND_MAJOR)
    result["nodes"] = [n for n in wanted if n in present]
    if result["api_devices"]:
        result["dev_entries"] = {"dev%d" % i: node for i, node in enumerate(result["nodes"])}
    else:
        lines = ["lxc.cgroup2.devices.allow: c %d:* rwm" % result["majors"]["nvidia-frontend"]]
        lines += ["lxc.cgroup2.devices.allow: c %d:* rwm" % result["majors"][n] for n in DYNAMIC_MAJORS if n in result["majors"]]
        lines += ["lxc.mount.entry: %s %s none bind,optional,create=file" % (n, n.lstrip("/")) for n in result["nodes"]]
        result["lxc_lines"] = lines
    return result


def lxc_lines_problems(lines):
    """Raw lxc lines this collection writes into a host's container config: only the known forms."""
    ok = re.compile(r"^lxc\.(cgroup2\.devices\.allow: c [0-9]+:\* rwm"
                    r"|mount\.entry: /dev/nvidia[A-Za-z0-9/_-]* dev/nvidia[A-Za-z0-9/_-]* none bind,optional,create=file)$")
    return ["%r is not a device line this collection writes" % line for line in lines if not ok.match(line)]


def _device_line(line, majors):
    """Whether a config line is a GPU passthrough line (this collection's or a hand-written one)."""
    m = re.match(r"^lxc\.cgroup2?\.devices\.allow\s*[:=]\s*c\s+([0-9]+):", line)
    if m:
        return int(m.group(1)) in majors
    return bool(re.match(r"^lxc\.mount\.entry\s*[:=]\s*/dev/nvidia", line))


def lxc_conf_with_devices(text, lines, majors=(), previous=()):
    """A container's /etc/pve/lxc/<vmid>.conf with exactly ``lines`` as its GPU lines.

    Proxmox keeps '#' lines as the description and rewrites the file on every API change, so no
    marker comment can delimit the block: GPU lines (cgroup allows of the NVIDIA majors, bind
    mounts of /dev/nvidia*, and the lines written last time, ``previous``: the nvidia-uvm major
    may have moved since) are recognised by their form, removed from the container's own section
    (before the first [snapshot] section) and ``lines`` appended there.
    """
    nvidia = set(majors) | {NVIDIA_FRONTEND_MAJOR}
    for line in list(lines) + list(previous):
        m = re.match(r"^lxc\.cgroup2\.devices\.allow: c ([0-9]+):", line)
        if m:
            nvidia.add(int(m.group(1)))
    rows = str(text).splitlines()
    cut = next((i for i, row in enumerate(rows) if row.startswith("[")), len(rows))
    main = [row for row in rows[:cut] if not _device_line(row, nvidia) and row not in previous]
    while main and not main[-1].strip():
        main.pop()
    rest = rows[cut:]
    out = main + list(lines)
    if rest:
        out += [""] + rest
    return "\n".join(out) + "\n"
