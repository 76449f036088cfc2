"""The QSFP network filters (plugins/filter/network.py): validation, peers, renderer choice, revert."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.filter import network as nf


def link(name="enp1s0f0np0", address="192.168.100.10/24", mtu=9000):
    return {"name": name, "address": address, "mtu": mtu}


PAIR = {
    "spark-1": [link(address="192.168.100.10/24")],
    "spark-2": [link(address="192.168.100.11/24")],
}

# `ip -j addr show` of a lab node before the role: LXC's address and broadcast, MTU 1500.
IP_JSON = json.loads("""[
 {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP",
  "addr_info":[{"family":"inet","local":"10.233.12.10","prefixlen":24,"broadcast":"0.0.0.255","scope":"global"}]},
 {"ifindex":22,"ifname":"enp1s0f0np0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP",
  "addr_info":[{"family":"inet","local":"10.234.12.10","prefixlen":24,"broadcast":"0.0.0.255","scope":"global"},
               {"family":"inet6","local":"fe80::7e:26ff:fec1:5211","prefixlen":64,"scope":"link"}]},
 {"ifindex":23,"ifname":"enp1s0f1np1","flags":["BROADCAST","MULTICAST"],"mtu":1500,"operstate":"DOWN","addr_info":[]}
]""")


# ------------------------------------------------------------ one node's links
def test_a_good_link_list_has_no_problems():
    assert nf.qsfp_interface_problems([link(), link("enp1s0f1np1", "192.168.101.10/24")], "spark-1") == []


@pytest.mark.parametrize("field, value, words", [
    ("mtu", 9300, ["mtu=9300", "576-9216"]),
    ("mtu", 575, ["mtu=575"]),
    ("mtu", "jumbo", ["mtu='jumbo'"]),
    ("mtu", True, ["mtu=True"]),
    ("address", "192.168.100.10", ["address='192.168.100.10'", "with its prefix"]),
    ("address", "192.168.100.300/24", ["address='192.168.100.300/24'"]),
    ("address", "192.168.100.0/24", ["address='192.168.100.0/24'"]),      # the network itself
    ("address", "192.168.100.255/24", ["address='192.168.100.255/24'"]),  # its broadcast
    ("address", "192.168.100.10/32", ["address='192.168.100.10/32'"]),    # no peer fits in a /32
    ("address", "10.1/8", ["address='10.1/8'"]),
    ("address", "fd00::10/64", ["address='fd00::10/64'"]),
    ("address", None, ["address=None"]),
    ("name", "enp1s0f0np0-too-long", ["name='enp1s0f0np0-too-long'", "Linux interface name"]),
    ("name", "en p1", ["name='en p1'"]),
    ("name", "a/b", ["name='a/b'"]),
    ("name", "..", ["name='..'"]),
    ("name", "", ["name=''"]),
])
def test_each_rejection_names_node_variable_and_value(field, value, words):
    bad = link()
    bad[field] = value
    problems = nf.qsfp_interface_problems([bad], "spark-2")
    assert len(problems) == 1, problems
    assert problems[0].startswith("spark-2: qsfp_network_interfaces[0].%s=" % field)
    for word in words:
        assert word in problems[0]


def test_the_mtu_bounds_are_inclusive_and_configurable():
    assert nf.qsfp_interface_problems([link(mtu=576)], "n") == []
    assert nf.qsfp_interface_problems([link(mtu=9216)], "n") == []
    assert nf.qsfp_interface_problems([link(mtu="9000")], "n") == []  # from a template
    assert nf.qsfp_interface_problems([link(mtu=9000)], "n", 1280, 8000)[0].endswith("within 1280-8000")


def test_the_qsfp_subnet_must_not_hold_the_management_address():
    problems = nf.qsfp_interface_problems([link(address="10.233.12.99/24")], "spark-2", management="10.233.12.11")
    assert problems == ["spark-2: qsfp_network_interfaces[0].address='10.233.12.99/24' puts the management address "
                        "ansible_host=10.233.12.11 inside the QSFP subnet 10.233.12.0/24; management traffic would "
                        "leave over QSFP"]
    assert nf.qsfp_interface_problems([link()], "spark-2", management="10.233.12.11") == []
    assert nf.qsfp_interface_problems([link()], "spark-2", management="spark-2.example.org") == []


def test_a_list_is_required_and_names_are_unique():
    assert "non-empty list" in nf.qsfp_interface_problems([], "n")[0]
    assert "non-empty list" in nf.qsfp_interface_problems("enp1s0f0np0", "n")[0]
    assert "must be a dict" in nf.qsfp_interface_problems(["enp1s0f0np0"], "n")[0]
    twice = nf.qsfp_interface_problems([link(), link(address="192.168.101.10/24")], "n")
    assert twice == ["n: qsfp_network_interfaces[1].name='enp1s0f0np0' appears twice"]
    assert "unknown keys mask" in nf.qsfp_interface_problems([dict(link(), mask=24)], "n")[0]


# ------------------------------------------------------------ across nodes
def test_a_consistent_pair_has_no_problems():
    assert nf.qsfp_link_problems(PAIR, "192.168.100.0/24") == []
    assert nf.qsfp_link_problems(PAIR) == []


def test_duplicate_addresses_are_refused():
    nodes = {"spark-1": [link(address="192.168.100.10/24")], "spark-2": [link(address="192.168.100.10/24")]}
    problems = nf.qsfp_link_problems(nodes)
    assert problems == ["spark-2: qsfp_network_interfaces[0].address='192.168.100.10/24' is already the address "
                        "of spark-1 enp1s0f0np0; every QSFP address must be unique"]


def test_addresses_of_one_link_share_a_subnet():
    nodes = {"spark-1": [link(address="192.168.100.10/24")], "spark-2": [link(address="192.168.101.11/24")]}
    problems = nf.qsfp_link_problems(nodes)
    assert len(problems) == 1
    assert "spark-2: qsfp_network_interfaces[0].address='192.168.101.11/24' is in 192.168.101.0/24" in problems[0]
    assert "spark-1 has '192.168.100.10/24'" in problems[0]


def test_a_different_prefix_length_is_another_subnet():
    nodes = {"spark-1": [link(address="192.168.100.10/24")], "spark-2": [link(address="192.168.100.11/25")]}
    assert "share a subnet" in nf.qsfp_link_problems(nodes)[0]


def test_primary_addresses_lie_in_the_inventory_subnet():
    problems = nf.qsfp_link_problems(PAIR, "10.234.0.0/24")
    assert problems == [
        "spark-1: qsfp_network_interfaces[0].address='192.168.100.10/24' is not a host of qsfp_network_subnet=10.234.0.0/24",
        "spark-2: qsfp_network_interfaces[0].address='192.168.100.11/24' is not a host of qsfp_network_subnet=10.234.0.0/24",
    ]
    assert "not an IPv4 network" in nf.qsfp_link_problems(PAIR, "192.168.100.10/24")[0]
    assert "not an IPv4 network" in nf.qsfp_link_problems(PAIR, "nonsense")[0]


def test_both_ends_of_a_link_need_one_mtu():
    nodes = {"spark-1": [link(mtu=9000)], "spark-2": [link(address="192.168.100.11/24", mtu=1500)]}
    assert nf.qsfp_link_problems(nodes) == [
        "spark-2: qsfp_network_interfaces[0].mtu=1500 differs from spark-1's 9000; both ends of a link need the same MTU"]


def test_second_links_form_their_own_subnet():
    nodes = {
        "spark-1": [link(), link("enp1s0f1np1", "192.168.101.10/24")],
        "spark-2": [link(address="192.168.100.11/24"), link("enp1s0f1np1", "192.168.101.11/24")],
    }
    assert nf.qsfp_link_problems(nodes, "192.168.100.0/24") == []
    nodes["spark-2"][1]["address"] = "192.168.100.12/24"
    assert "share a subnet" in nf.qsfp_link_problems(nodes)[0]


def test_invalid_entries_are_left_to_the_per_node_check():
    nodes = {"spark-1": [link(address="bad")], "spark-2": [link(address="192.168.100.11/24")]}
    assert nf.qsfp_link_problems(nodes) == []
    assert "no nodes" in nf.qsfp_link_problems({})[0]


# ------------------------------------------------------------ peers
def test_each_node_pings_the_other_ends_of_its_links():
    assert nf.qsfp_peers(PAIR, "spark-1") == [
        {"interface": "enp1s0f0np0", "peer": "spark-2", "address": "192.168.100.11", "mtu": 9000}]
    nodes = {
        "a": [link(), link("enp1s0f1np1", "192.168.101.10/24")],
        "b": [link(address="192.168.100.11/24")],
        "c": [link(address="192.168.100.12/24"), link("enp1s0f1np1", "192.168.101.12/24", mtu=8000)],
    }
    assert [(p["interface"], p["peer"], p["address"], p["mtu"]) for p in nf.qsfp_peers(nodes, "a")] == [
        ("enp1s0f0np0", "b", "192.168.100.11", 9000),
        ("enp1s0f0np0", "c", "192.168.100.12", 9000),
        ("enp1s0f1np1", "c", "192.168.101.12", 8000),
    ]
    assert nf.qsfp_peers({"alone": [link()]}, "alone") == []
    with pytest.raises(AnsibleFilterError, match="not among the nodes"):
        nf.qsfp_peers(PAIR, "spark-9")


# ------------------------------------------------------------ links of nodes outside the play
def test_inventory_links_come_from_facts_role_variables_or_the_contract():
    hostvars = {
        "resolved": {"__qsfp_network_links": [link(address="192.168.100.10/24")], "blackwell_qsfp_address": "x"},
        "explicit": {"qsfp_network_interfaces": [link(address="192.168.100.11/24")]},
        "contract": {"blackwell_qsfp_interface": "enp1s0f0np0", "blackwell_qsfp_address": "192.168.100.12/24",
                     "blackwell_qsfp_mtu": 9000, "qsfp_network_secondary_address": "192.168.101.12/24"},
        "bare": {"blackwell_qsfp_address": "192.168.100.13/24"},
    }
    out = nf.qsfp_inventory(hostvars, ["resolved", "explicit", "contract", "bare"])
    assert out["resolved"] == [link(address="192.168.100.10/24")]
    assert out["explicit"] == [link(address="192.168.100.11/24")]
    assert out["contract"] == [link(address="192.168.100.12/24"), link("enp1s0f1np1", "192.168.101.12/24")]
    assert out["bare"] == [link(address="192.168.100.13/24")]
    with pytest.raises(AnsibleFilterError, match="not in the inventory"):
        nf.qsfp_inventory(hostvars, ["ghost"])


@pytest.mark.parametrize("hv", [
    {},
    {"blackwell_qsfp_interface": ""},
    {"blackwell_qsfp_interface": None, "blackwell_qsfp_address": None},
    {"blackwell_qsfp_interface": "", "blackwell_qsfp_mtu": 9000},
    {"__qsfp_network_links": []},
], ids=["unset", "empty", "null", "empty-with-mtu", "resolved-empty"])
def test_a_node_without_a_qsfp_cable_has_no_links(hv):
    """A single node (no QSFP interface, no address) beside a linked pair: no link, no problem, no peer."""
    hostvars = {"single": hv, "a": {"blackwell_qsfp_interface": "enp1s0f0np0", "blackwell_qsfp_address": "192.168.100.10/24"},
                "b": {"blackwell_qsfp_interface": "enp1s0f0np0", "blackwell_qsfp_address": "192.168.100.11/24"}}
    out = nf.qsfp_inventory(hostvars, ["single", "a", "b"])
    assert out["single"] == []
    assert nf.qsfp_link_problems(out, "192.168.100.0/24") == []
    assert [p["peer"] for p in nf.qsfp_peers(out, "a")] == ["b"]
    assert nf.qsfp_peers(out, "single") == []


# ------------------------------------------------------------ runtime state
def test_link_states_read_ip_json():
    states = nf.qsfp_link_states(IP_JSON, ["enp1s0f0np0", "enp1s0f1np1", "missing0"])
    assert sorted(states) == ["enp1s0f0np0", "enp1s0f1np1"]
    st = states["enp1s0f0np0"]
    assert (st["mtu"], st["up"], st["operstate"], st["ipv4"]) == (1500, True, "up", ["10.234.12.10/24"])
    assert st["addresses"][0] == {"family": "inet", "local": "10.234.12.10", "prefixlen": 24, "scope": "global",
                                  "broadcast": "0.0.0.255"}
    assert states["enp1s0f1np1"]["up"] is False and states["enp1s0f1np1"]["ipv4"] == []
    assert list(nf.qsfp_link_states(IP_JSON[1])) == ["enp1s0f0np0"]
    with pytest.raises(AnsibleFilterError):
        nf.qsfp_link_states("not json")


def test_drift_names_what_differs():
    states = nf.qsfp_link_states(IP_JSON)
    assert nf.qsfp_drift(states, [link(address="10.234.12.10/24")]) == ["enp1s0f0np0 has MTU 1500, wants 9000"]
    assert nf.qsfp_drift(states, [link(address="10.234.12.10/24", mtu=1500)]) == []
    assert nf.qsfp_drift(states, [link("enp1s0f1np1", "10.1.0.1/24", 1500)]) == [
        "addresses on enp1s0f1np1: none; expected exactly 10.1.0.1/24", "enp1s0f1np1 is down"]
    assert nf.qsfp_drift(states, [link("nope")]) == ["nope is missing"]


def test_renumbered_link_names_the_old_address_as_stale():
    states = nf.qsfp_link_states(IP_JSON)
    states["enp1s0f0np0"]["ipv4"] = ["10.234.12.10/24", "10.234.12.20/24"]
    new = link(address="10.234.12.20/24", mtu=1500)
    assert nf.qsfp_drift(states, [new]) == [
        "addresses on enp1s0f0np0: 10.234.12.10/24, 10.234.12.20/24; expected exactly 10.234.12.20/24"]
    assert nf.qsfp_stale_addresses(states, [new]) == [{"interface": "enp1s0f0np0", "address": "10.234.12.10/24"}]
    assert nf.qsfp_stale_addresses(states, [link(address="10.234.12.10/24")]) == [
        {"interface": "enp1s0f0np0", "address": "10.234.12.20/24"}]
    assert nf.qsfp_stale_addresses(states, [link("nope")]) == []


def test_state_diff_and_describe():
    before = nf.qsfp_link_states(IP_JSON, ["enp1s0f0np0"])
    after = json.loads(json.dumps(before))
    assert nf.qsfp_state_diff(after, before) == []
    after["enp1s0f0np0"]["mtu"] = 9000
    after["enp1s0f0np0"]["ipv4"] = ["10.234.99.10/24"]
    assert nf.qsfp_state_diff(after, before) == [
        "enp1s0f0np0 mtu is 9000, was 1500",
        "enp1s0f0np0 ipv4 is ['10.234.99.10/24'], was ['10.234.12.10/24']"]
    assert nf.qsfp_state_diff({}, before) == ["enp1s0f0np0 is missing now"]
    assert nf.qsfp_describe(before) == "enp1s0f0np0 MTU 1500 up 10.234.12.10/24"


# ------------------------------------------------------------ renderer detection
@pytest.mark.parametrize("requested, networkd, nm, devices, expected", [
    # The lab and plain Debian: no NetworkManager, networkd installed.
    ("auto", "loaded", "not-found", None, "networkd"),
    ("auto", "loaded", "inactive", None, "networkd"),
    # DGX OS: NetworkManager runs and manages the QSFP ports.
    ("auto", "loaded", "active", {"enp1s0f0np0": "30 (disconnected)"}, "NetworkManager"),
    ("auto", "loaded", "active", {"enp1s0f0np0": "100 (connected)"}, "NetworkManager"),
    ("auto", "loaded", "active", None, "NetworkManager"),
    ("auto", "not-found", "active", {"enp1s0f0np0": "10 (unmanaged)"}, "NetworkManager"),
    # NetworkManager runs but leaves the QSFP ports to networkd.
    ("auto", "loaded", "active", {"enp1s0f0np0": "10 (unmanaged)"}, "networkd"),
    ("networkd", "loaded", "active", {"enp1s0f0np0": "100 (connected)"}, "networkd"),
    ("NetworkManager", "loaded", "active", None, "NetworkManager"),
])
def test_renderer_choice(requested, networkd, nm, devices, expected):
    choice = nf.qsfp_renderer(requested, networkd, nm, devices)
    assert choice["renderer"] == expected
    assert choice["reason"]


@pytest.mark.parametrize("requested, networkd, nm, message", [
    ("NetworkManager", "loaded", "inactive", "NetworkManager.service is inactive"),
    ("networkd", "not-found", "active", "not installed"),
    ("auto", "not-found", "not-found", "neither NetworkManager"),
    ("ifupdown", "loaded", "inactive", "use auto, networkd or NetworkManager"),
])
def test_renderer_refusals(requested, networkd, nm, message):
    with pytest.raises(AnsibleFilterError, match=message):
        nf.qsfp_renderer(requested, networkd, nm)


# ------------------------------------------------------------ apply commands
def test_apply_reconfigures_only_the_qsfp_links():
    links = [link(), link("enp1s0f1np1", "192.168.101.10/24")]
    assert nf.qsfp_apply_commands(links, "networkd") == [
        "networkctl reload", "networkctl reconfigure enp1s0f0np0", "networkctl reconfigure enp1s0f1np1"]
    assert nf.qsfp_apply_commands(links, "NetworkManager") == [
        "nmcli connection reload",
        "nmcli connection up id netplan-enp1s0f0np0 ifname enp1s0f0np0",
        "nmcli connection up id netplan-enp1s0f1np1 ifname enp1s0f1np1"]
    for renderer in ("networkd", "NetworkManager"):
        assert not any("netplan apply" in c or "restart" in c for c in nf.qsfp_apply_commands(links, renderer))
    with pytest.raises(AnsibleFilterError, match="renderer"):
        nf.qsfp_apply_commands(links, "auto")


# ------------------------------------------------------------ revert commands
def test_networkd_revert_without_a_previous_file_restores_the_exact_runtime_state():
    states = nf.qsfp_link_states(IP_JSON, ["enp1s0f0np0"])
    cmds = nf.qsfp_rollback_commands(states, "networkd", "/etc/netplan/60-qsfp.yaml")
    assert cmds == [
        "rm -f /etc/netplan/60-qsfp.yaml",
        "netplan generate",
        "networkctl reload",
        "networkctl reconfigure enp1s0f0np0 || true",
        "wait_settled enp1s0f0np0 15",
        "ip link set dev enp1s0f0np0 mtu 1500",
        "ip addr flush dev enp1s0f0np0",
        "ip -4 addr add 10.234.12.10/24 broadcast 0.0.0.255 scope global dev enp1s0f0np0 || true",
        "ip -6 addr add fe80::7e:26ff:fec1:5211/64 scope link dev enp1s0f0np0 || true",
        "ip link set dev enp1s0f0np0 up",
    ]


def test_revert_with_a_previous_file_copies_it_back_first():
    states = nf.qsfp_link_states(IP_JSON, ["enp1s0f0np0", "enp1s0f1np1"])
    cmds = nf.qsfp_rollback_commands(states, "networkd", "/etc/netplan/60-qsfp.yaml", "/var/lib/x/previous/60-qsfp.yaml")
    assert cmds[0] == "cp -p /var/lib/x/previous/60-qsfp.yaml /etc/netplan/60-qsfp.yaml"
    assert "ip link set dev enp1s0f1np1 down" in cmds  # a link that was down stays down
    assert cmds.index("networkctl reload") < cmds.index("wait_settled enp1s0f0np0 15") < \
        cmds.index("ip link set dev enp1s0f0np0 mtu 1500")


def test_networkmanager_revert_touches_only_the_qsfp_profiles():
    states = nf.qsfp_link_states(IP_JSON, ["enp1s0f0np0", "enp1s0f1np1"])
    uuid = "0b2f3c4d-1111-2222-3333-444455556666"
    cmds = nf.qsfp_rollback_commands(states, "NetworkManager", "/etc/netplan/60-qsfp.yaml",
                                     nm_connections={"enp1s0f0np0": uuid})
    assert cmds[:3] == ["rm -f /etc/netplan/60-qsfp.yaml", "netplan generate", "nmcli connection reload"]
    assert "nmcli connection up uuid %s ifname enp1s0f0np0 || true" % uuid in cmds
    assert "nmcli device disconnect enp1s0f1np1 || true" in cmds
    assert not any("networkctl" in c or "systemctl" in c or "netplan apply" in c for c in cmds)


def test_revert_commands_quote_what_they_are_given():
    states = {"enp1s0f0np0": {"mtu": 1500, "up": True, "addresses": []}}
    cmds = nf.qsfp_rollback_commands(states, "networkd", "/etc/netplan/60 qsfp.yaml")
    assert cmds[0] == "rm -f '/etc/netplan/60 qsfp.yaml'"
    with pytest.raises(AnsibleFilterError, match="renderer"):
        nf.qsfp_rollback_commands(states, "ifupdown", "/x")
    with pytest.raises(AnsibleFilterError, match="no recorded links"):
        nf.qsfp_rollback_commands({}, "networkd", "/x")


def test_the_plugin_exports_every_filter():
    names = nf.FilterModule().filters()
    assert set(names) == {"qsfp_interface_problems", "qsfp_link_problems", "qsfp_peers", "qsfp_inventory",
                          "qsfp_link_states", "qsfp_drift", "qsfp_renderer", "qsfp_apply_commands", "qsfp_rollback_commands",
                          "qsfp_describe", "qsfp_state_diff", "qsfp_management_interfaces", "qsfp_stale_addresses"}
