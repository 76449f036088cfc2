# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters for the QSFP links between nodes: validation, peers, renderer choice, revert commands.

The qsfp_network role uses them; every rule lives here so that it is unit-tested
(tests/unit/plugins/filter/test_network.py). Documentation of each filter lies beside this
file in <filter name>.yml.

A node's QSFP links are a list of dicts ``{name, address, mtu}`` (address as ``ip/prefix``),
the first one the primary link. Across nodes, the n-th link of every node is one link (one
cable or switch): all its addresses share a subnet and an MTU.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.blackwell.vllm.plugins.module_utils.values import whole_number

try:
    import netaddr
except ImportError:  # pragma: no cover - the controller's requirements.txt pins netaddr
    netaddr = None

MTU_MIN = 576
MTU_MAX = 9216
# Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/', ':', whitespace; not '.' or '..'.
IFNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$")
RENDERERS = ("networkd", "NetworkManager")
# What `systemd-networkd` reports as SETUP once it stops working on a link.
NETWORKD_SETTLED = ("unmanaged", "configured", "failed", "linger")


def _need_netaddr(what):
    if netaddr is None:  # pragma: no cover
        raise AnsibleFilterError("%s needs the Python library netaddr on the controller (pip install netaddr)" % what)


def _interface(address):
    """'192.168.100.10/24' -> netaddr.IPNetwork, or None when it is not an IPv4 host address with a prefix."""
    if not isinstance(address, str) or "/" not in address:
        return None
    try:
        ip = netaddr.IPNetwork(address, version=4)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None
    # IPNetwork accepts '10.1' and '10.0.0.1/255.255.255.0'; insist on the dotted-quad/len form.
    addr, dummy, prefix = address.partition("/")
    if addr.count(".") != 3 or not prefix.isdigit() or str(ip.ip) != addr:
        return None
    if ip.prefixlen < 31 and ip.ip in (ip.network, ip.broadcast):
        return None
    if ip.prefixlen == 32:
        return None
    return ip


def qsfp_interface_problems(links, node, mtu_min=MTU_MIN, mtu_max=MTU_MAX, variable="qsfp_network_interfaces",
                            management=None):
    """One node's QSFP link list -> a list of sentences, each naming the node, the variable and the value.

    management: the node's management address (ansible_host); a QSFP subnet that holds it would
    take the management traffic off the management link.
    """
    _need_netaddr("qsfp_interface_problems")
    if not isinstance(links, (list, tuple)) or not links:
        return ["%s: %s=%r must be a non-empty list of {name, address, mtu}" % (node, variable, links)]
    problems = []
    names = []
    for i, link in enumerate(links):
        where = "%s[%d]" % (variable, i)
        if not isinstance(link, Mapping):
            problems.append("%s: %s=%r must be a dict with name, address and mtu" % (node, where, link))
            continue
        unknown = sorted(set(link) - {"name", "address", "mtu"})
        if unknown:
            problems.append("%s: %s has unknown keys %s; use name, address, mtu" % (node, where, ", ".join(unknown)))
        name = link.get("name")
        if not isinstance(name, str) or not IFNAME_RE.match(name) or name in (".", ".."):
            problems.append("%s: %s.name=%r is not a Linux interface name (1-15 characters: letters, digits, "
                            "'_', '.', '-')" % (node, where, name))
        elif name in names:
            problems.append("%s: %s.name=%r appears twice" % (node, where, name))
        names.append(name)
        address = link.get("address")
        ip = _interface(address)
        if ip is None:
            problems.append("%s: %s.address=%r is not an IPv4 host address with its prefix, e.g. 192.168.100.10/24"
                            % (node, where, address))
        elif management and netaddr.valid_ipv4(str(management)) and netaddr.IPAddress(str(management)) in ip.cidr:
            problems.append("%s: %s.address=%r puts the management address ansible_host=%s inside the QSFP subnet %s; "
                            "management traffic would leave over QSFP" % (node, where, address, management, ip.cidr))
        mtu = whole_number(link.get("mtu"))
        if mtu is None or not mtu_min <= mtu <= mtu_max:
            problems.append("%s: %s.mtu=%r must be a whole number within %d-%d"
                            % (node, where, link.get("mtu"), mtu_min, mtu_max))
    return problems


def qsfp_link_problems(nodes, subnet=None, variable="qsfp_network_interfaces"):
    """{node: links} of every node -> sentences about rules that span nodes.

    The n-th links of all nodes form one link: their addresses share one subnet and one MTU.
    Every address is unique across all nodes and links. With subnet (blackwell_qsfp_prefix),
    the primary links lie inside it.
    """
    _need_netaddr("qsfp_link_problems")
    if not isinstance(nodes, Mapping) or not nodes:
        return ["no nodes to check (expected {node: links}, got %r)" % (nodes,)]
    problems = []
    want = None
    if subnet:
        try:
            want = netaddr.IPNetwork(subnet, version=4)
            if want.ip != want.network:
                raise ValueError(subnet)
        except (netaddr.AddrFormatError, ValueError, TypeError):
            problems.append("qsfp_network_subnet=%r is not an IPv4 network in CIDR form, e.g. 192.168.100.0/24"
                            % (subnet,))
            want = None
    seen = {}
    by_position = {}
    for node in sorted(nodes):
        for i, link in enumerate(nodes[node] or []):
            if not isinstance(link, Mapping):
                continue
            ip = _interface(link.get("address"))
            if ip is None:
                continue  # qsfp_interface_problems names it
            where = "%s: %s[%d].address=%r" % (node, variable, i, link.get("address"))
            if str(ip.ip) in seen:
                problems.append("%s is already the address of %s; every QSFP address must be unique"
                                % (where, seen[str(ip.ip)]))
            else:
                seen[str(ip.ip)] = "%s %s" % (node, link.get("name"))
            if i == 0 and want is not None and (ip.ip not in want or ip.prefixlen != want.prefixlen):
                problems.append("%s is not a host of qsfp_network_subnet=%s" % (where, want))
            by_position.setdefault(i, []).append((node, link, ip))
    for i, members in sorted(by_position.items()):
        first_node, first_link, first_ip = members[0]
        for node, link, ip in members[1:]:
            if ip.cidr != first_ip.cidr:
                problems.append("%s: %s[%d].address=%r is in %s, but %s has %r in %s; the QSFP addresses of one "
                                "link must share a subnet" % (node, variable, i, link.get("address"), ip.cidr,
                                                              first_node, first_link.get("address"), first_ip.cidr))
            if whole_number(link.get("mtu")) != whole_number(first_link.get("mtu")):
                problems.append("%s: %s[%d].mtu=%r differs from %s's %r; both ends of a link need the same MTU"
                                % (node, variable, i, link.get("mtu"), first_node, first_link.get("mtu")))
    return problems


def qsfp_peers(nodes, node):
    """The addresses to ping from node: [{interface, peer, address, mtu}] for every other node's
    address that lies in the subnet of one of node's links."""
    _need_netaddr("qsfp_peers")
    if node not in nodes:
        raise AnsibleFilterError("qsfp_peers: %r is not among the nodes %s" % (node, sorted(nodes)))
    peers = []
    for link in nodes[node] or []:
        mine = _interface(link.get("address"))
        if mine is None:
            continue
        for other in sorted(nodes):
            if other == node:
                continue
            for theirs in nodes[other] or []:
                ip = _interface(theirs.get("address"))
                if ip is not None and ip.ip in mine.cidr:
                    peers.append({"interface": link["name"], "peer": other, "address": str(ip.ip),
                                  "mtu": min(whole_number(link.get("mtu")) or 1500, whole_number(theirs.get("mtu")) or 1500)})
    return peers


def _get(hv, key, default=None):
    try:
        if key in hv:
            return hv[key]
    except (KeyError, TypeError):
        pass
    return default


def qsfp_inventory(hostvars, nodes, interface="enp1s0f0np0", mtu=9000, secondary_interface="enp1s0f1np1"):
    """{node: links} for every node, read from hostvars (also for nodes outside this play).

    A node's links are, first found: the fact __qsfp_network_links (the role resolved them in
    this play), qsfp_network_interfaces from the inventory, or the inventory contract
    (blackwell_qsfp_interface, blackwell_qsfp_address, blackwell_qsfp_mtu) plus
    qsfp_network_secondary_address/_interface when set. A node whose contract names neither an
    interface nor an address (unset, null or "") has no QSFP link: [].
    """
    out = {}
    for node in nodes:
        hv = _get(hostvars, node)
        if hv is None:
            raise AnsibleFilterError("qsfp_inventory: %r is not in the inventory" % (node,))
        links = _get(hv, "__qsfp_network_links")
        if links is None:
            links = _get(hv, "qsfp_network_interfaces")
        if links is None:
            address = _get(hv, "qsfp_network_address", _get(hv, "blackwell_qsfp_address"))
            primary = {
                # `interface` names the port of a node that has an address but no interface name.
                "name": _get(hv, "qsfp_network_interface", _get(hv, "blackwell_qsfp_interface",
                                                                interface if address else None)),
                "address": address,
                "mtu": _get(hv, "qsfp_network_mtu", _get(hv, "blackwell_qsfp_mtu", mtu)),
            }
            links = [primary] if primary["name"] or primary["address"] else []
            second = _get(hv, "qsfp_network_secondary_address")
            if second:
                links.append({
                    "name": _get(hv, "qsfp_network_secondary_interface", secondary_interface),
                    "address": second,
                    "mtu": _get(hv, "qsfp_network_secondary_mtu", primary["mtu"]),
                })
        out[node] = [dict(link) if isinstance(link, Mapping) else link for link in links]
    return out


def _link_state(link):
    addresses = []
    for a in link.get("addr_info") or []:
        if a.get("family") not in ("inet", "inet6") or "local" not in a:
            continue
        entry = {"family": a["family"], "local": a["local"], "prefixlen": int(a.get("prefixlen", 32)),
                 "scope": a.get("scope", "global")}
        if a.get("broadcast"):
            entry["broadcast"] = a["broadcast"]
        addresses.append(entry)
    return {
        "name": link.get("ifname"),
        "mtu": int(link.get("mtu", 0)),
        "up": "UP" in (link.get("flags") or []),
        "operstate": str(link.get("operstate", "UNKNOWN")).lower(),
        "addresses": addresses,
        "ipv4": sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in addresses
                       if a["family"] == "inet" and a["scope"] == "global"),
    }


def qsfp_link_states(ip_json, names=None):
    """`ip -j addr show` (parsed) -> {interface: {name, mtu, up, operstate, addresses, ipv4}}.

    names: keep only these interfaces (those missing on the node are simply absent).
    addresses: every address as {family, local, prefixlen, scope[, broadcast]}; ipv4: the global
    IPv4 ones as 'ip/prefix', sorted.
    """
    if isinstance(ip_json, Mapping):
        ip_json = [ip_json]
    if not isinstance(ip_json, list) or not all(isinstance(e, Mapping) for e in ip_json):
        raise AnsibleFilterError("qsfp_link_states: expected the parsed output of `ip -j addr show`, got %r"
                                 % (ip_json,))
    states = {e.get("ifname"): _link_state(e) for e in ip_json if e.get("ifname")}
    if names is not None:
        states = {n: states[n] for n in names if n in states}
    return states


def qsfp_drift(states, links):
    """Which of links differ at runtime from states (qsfp_link_states): a list of sentences."""
    out = []
    for link in links:
        st = states.get(link["name"])
        if st is None:
            out.append("%s is missing" % link["name"])
            continue
        if st["mtu"] != whole_number(link["mtu"]):
            out.append("%s has MTU %s, wants %s" % (link["name"], st["mtu"], link["mtu"]))
        if st["ipv4"] != [link["address"]]:
            seen = ", ".join(st["ipv4"]) or "none"
            out.append("addresses on %s: %s; expected exactly %s" % (link["name"], seen, link["address"]))
        if not st["up"]:
            out.append("%s is down" % link["name"])
    return out


def qsfp_stale_addresses(states, links):
    """The global IPv4 addresses on the QSFP links that the wanted links no longer declare: [{interface, address}].

    After a renumbering, `networkctl reconfigure` adds the new address and leaves the old one on
    the link, so the node answers on both; only interfaces named in links are looked at.
    """
    out = []
    for link in links:
        st = states.get(link["name"])
        if st is None:
            continue
        for address in st["ipv4"]:
            if address != link["address"]:
                out.append({"interface": link["name"], "address": address})
    return out


def qsfp_renderer(requested="auto", networkd="not-found", networkmanager="not-found", nm_devices=None):
    """Choose the netplan renderer for the QSFP links.

    requested: auto, networkd or NetworkManager. networkd / networkmanager: the LoadState of
    systemd-networkd.service / the ActiveState of NetworkManager.service ('active', 'inactive',
    'not-found'). nm_devices: {interface: NetworkManager device state} for the QSFP links
    ('connected', 'disconnected', 'unmanaged', ...) when NetworkManager runs.
    Returns {renderer, reason}. On DGX OS NetworkManager owns the links, so a QSFP link that
    NetworkManager manages stays with NetworkManager.
    """
    nm_devices = nm_devices or {}
    nm_active = networkmanager == "active"
    networkd_present = networkd not in ("not-found", "", None)
    if requested not in ("auto",) + RENDERERS:
        raise AnsibleFilterError("qsfp_network_renderer=%r: use auto, networkd or NetworkManager" % (requested,))
    if requested == "NetworkManager":
        if not nm_active:
            raise AnsibleFilterError("qsfp_network_renderer=NetworkManager, but NetworkManager.service is %s on "
                                     "this node" % networkmanager)
        return {"renderer": "NetworkManager", "reason": "qsfp_network_renderer asks for NetworkManager"}
    if requested == "networkd":
        if not networkd_present:
            raise AnsibleFilterError("qsfp_network_renderer=networkd, but systemd-networkd.service is not "
                                     "installed on this node")
        return {"renderer": "networkd", "reason": "qsfp_network_renderer asks for networkd"}
    if nm_active:
        managed = sorted(i for i, state in nm_devices.items() if "unmanaged" not in str(state))
        if managed or not nm_devices or not networkd_present:
            return {"renderer": "NetworkManager",
                    "reason": "NetworkManager is active and manages %s" % (", ".join(managed) or "the links")}
        return {"renderer": "networkd",
                "reason": "NetworkManager is active but leaves %s unmanaged" % ", ".join(sorted(nm_devices))}
    if networkd_present:
        return {"renderer": "networkd", "reason": "NetworkManager is not running; systemd-networkd is installed"}
    raise AnsibleFilterError("neither NetworkManager (%s) nor systemd-networkd (%s) can render netplan on this "
                             "node; install systemd-networkd or set qsfp_network_renderer" % (networkmanager, networkd))


def qsfp_apply_commands(links, renderer, nm_prefix="netplan-"):
    """The commands that bring a freshly generated netplan configuration to the QSFP links only.

    Never `netplan apply`: it restarts the renderer and every link it owns, the management link
    too. networkd: reload the files, reconfigure each QSFP link. NetworkManager: reload the
    profiles, activate netplan's profile (named nm_prefix + interface) on each QSFP link.
    """
    if renderer not in RENDERERS:
        raise AnsibleFilterError("qsfp_apply_commands: renderer must be networkd or NetworkManager, got %r" % (renderer,))
    names = [link["name"] if isinstance(link, Mapping) else link for link in links]
    q = shlex.quote
    if renderer == "networkd":
        return ["networkctl reload"] + ["networkctl reconfigure %s" % q(n) for n in names]
    return ["nmcli connection reload"] + ["nmcli connection up id %s ifname %s" % (q(nm_prefix + n), q(n))
                                          for n in names]


def qsfp_rollback_commands(states, renderer, netplan_file, backup_file=None, nm_connections=None, settle_seconds=15):
    """Shell commands that bring back the QSFP links recorded in states ({interface: qsfp_link_states entry}).

    backup_file: where the previous netplan_file was saved, or None when there was none.
    nm_connections: {interface: uuid of the NetworkManager profile active before} (NetworkManager only).
    The file comes back first (netplan generate, the renderer reloads and reconfigures only these
    links), then each link's runtime state (MTU, addresses, up/down) is set exactly as recorded, so
    a link that no netplan file described before (configured by hand, by LXC) is as it was too.
    `wait_settled IF SECONDS` is a shell function of the rollback script.
    """
    if renderer not in RENDERERS:
        raise AnsibleFilterError("qsfp_rollback_commands: renderer must be networkd or NetworkManager, got %r"
                                 % (renderer,))
    if not isinstance(states, Mapping) or not states:
        raise AnsibleFilterError("qsfp_rollback_commands: no recorded links to bring back")
    nm_connections = nm_connections or {}
    q = shlex.quote
    names = sorted(states)
    cmds = []
    if backup_file:
        cmds.append("cp -p %s %s" % (q(backup_file), q(netplan_file)))
    else:
        cmds.append("rm -f %s" % q(netplan_file))
    cmds.append("netplan generate")
    if renderer == "networkd":
        cmds.append("networkctl reload")
        for name in names:
            cmds.append("networkctl reconfigure %s || true" % q(name))
        for name in names:
            cmds.append("wait_settled %s %d" % (q(name), int(settle_seconds)))
    else:
        cmds.append("nmcli connection reload")
        for name in names:
            uuid = nm_connections.get(name) or ""
            if uuid:
                cmds.append("nmcli connection up uuid %s ifname %s || true" % (q(uuid), q(name)))
            else:
                cmds.append("nmcli device disconnect %s || true" % q(name))
    for name in names:
        st = states[name]
        dev = q(name)
        cmds.append("ip link set dev %s mtu %d" % (dev, int(st["mtu"])))
        cmds.append("ip addr flush dev %s" % dev)
        for a in st.get("addresses") or []:
            extra = ""
            if a.get("broadcast") and a["family"] == "inet":
                extra = " broadcast %s" % q(a["broadcast"])
            cmds.append("ip -%s addr add %s/%d%s scope %s dev %s || true" % (
                "4" if a["family"] == "inet" else "6", q(a["local"]), int(a["prefixlen"]), extra,
                q(a.get("scope", "global")), dev))
        cmds.append("ip link set dev %s %s" % (dev, "up" if st.get("up") else "down"))
    return cmds


def qsfp_describe(states):
    """{interface: state} -> 'enp1s0f0np0 MTU 9000 up 192.168.100.10/24' for each, joined with '; '."""
    return "; ".join("%s MTU %s %s %s" % (name, st.get("mtu"), "up" if st.get("up") else "down",
                                          ", ".join(st.get("ipv4") or []) or "without IPv4 address")
                     for name, st in sorted(states.items()))


def qsfp_state_diff(after, before):
    """How the links in after differ from before (MTU, up/down, global IPv4 addresses): a list of sentences."""
    out = []
    for name in sorted(set(after) | set(before)):
        if name not in after or name not in before:
            out.append("%s is %s" % (name, "missing now" if name not in after else "new"))
            continue
        for key in ("mtu", "up", "ipv4"):
            if after[name].get(key) != before[name].get(key):
                out.append("%s %s is %s, was %s" % (name, key, after[name].get(key), before[name].get(key)))
    return out


def qsfp_management_interfaces(ip_json, management=None, default_routes=None):
    """The node's management interfaces: those carrying the address Ansible connects to, and the default route's.

    ip_json: the parsed output of `ip -j addr show`; management: ansible_host (an IP address; a
    name matches nothing here); default_routes: the parsed output of `ip -j route show default`.
    Never ask the node `ip route get <its own address>`: a local address routes through `lo`,
    which would hide the management NIC.
    """
    if isinstance(ip_json, Mapping):
        ip_json = [ip_json]
    if not isinstance(ip_json, list):
        raise AnsibleFilterError("qsfp_management_interfaces: expected the parsed output of `ip -j addr show`, got %r"
                                 % (ip_json,))
    wanted = str(management).strip() if management else ""
    out = set()
    for link in ip_json:
        if not isinstance(link, Mapping) or not link.get("ifname") or link.get("ifname") == "lo":
            continue
        if wanted and any(a.get("local") == wanted for a in link.get("addr_info") or [] if isinstance(a, Mapping)):
            out.add(link["ifname"])
    for route in default_routes or []:
        if isinstance(route, Mapping) and route.get("dev") and route.get("dev") != "lo":
            out.add(route["dev"])
    return sorted(out)


class FilterModule(object):
    """blackwell.vllm QSFP network filters."""

    def filters(self):
        return {
            "qsfp_interface_problems": qsfp_interface_problems,
            "qsfp_link_problems": qsfp_link_problems,
            "qsfp_peers": qsfp_peers,
            "qsfp_inventory": qsfp_inventory,
            "qsfp_link_states": qsfp_link_states,
            "qsfp_drift": qsfp_drift,
            "qsfp_stale_addresses": qsfp_stale_addresses,
            "qsfp_renderer": qsfp_renderer,
            "qsfp_apply_commands": qsfp_apply_commands,
            "qsfp_rollback_commands": qsfp_rollback_commands,
            "qsfp_describe": qsfp_describe,
            "qsfp_state_diff": qsfp_state_diff,
            "qsfp_management_interfaces": qsfp_management_interfaces,
        }
