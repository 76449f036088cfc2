"""module_utils/rdma.py over the recorded (reconstructed) sysfs trees of tests/fixtures/rdma and copies of them."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from ansible_collections.blackwell.vllm.plugins.module_utils import rdma

TREES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "rdma"
QSFP = "enp1s0f0np0"
ADDRESS = "192.168.100.10"


def decide(tree, requested="auto", interfaces=(QSFP,), **kw):
    info = rdma.probe(str(tree), list(interfaces), address=kw.pop("address", ADDRESS), **kw)
    return rdma.decide(requested, info), info


@pytest.fixture
def two_ports(tmp_path):
    """A copy of cx7-two-ports to change."""
    root = tmp_path / "tree"
    shutil.copytree(TREES / "cx7-two-ports", root)
    return root


def port_dir(root, dev):
    return root / "sys" / "class" / "infiniband" / dev / "ports" / "1"


def set_port(root, dev, state=None, gids=None):
    """Change a device's port: its state ("4: ACTIVE", "1: DOWN") and/or its GID table [(gid, type), ...]."""
    p = port_dir(root, dev)
    if state:
        (p / "state").write_text(state + "\n")
    if gids is not None:
        netdev = next((root / "sys" / "class" / "infiniband" / dev / "device" / "net").iterdir()).name
        for i in range(8):
            for sub in ("gid_attrs/types", "gid_attrs/ndevs"):
                (p / sub / str(i)).unlink(missing_ok=True)
            (p / "gids" / str(i)).write_text("0000:0000:0000:0000:0000:0000:0000:0000\n")
        for i, (gid, kind) in enumerate(gids):
            (p / "gids" / str(i)).write_text(gid + "\n")
            (p / "gid_attrs" / "types" / str(i)).write_text(kind + "\n")
            (p / "gid_attrs" / "ndevs" / str(i)).write_text(netdev + "\n")


LINK_LOCAL = "fe80:0000:0000:0000:bace:f6ff:fe12:3454"


# --- parsing ----------------------------------------------------------------------------------------

def test_parse_gid_forms():
    assert rdma.parse_gid("0000:0000:0000:0000:0000:ffff:c0a8:640a") == {
        "gid": "::ffff:c0a8:640a", "ipv4": "192.168.100.10", "link_local": False, "zero": False}
    ll = rdma.parse_gid("fe80:0000:0000:0000:bace:f6ff:fe12:3450")
    assert ll["link_local"] and ll["ipv4"] is None and not ll["zero"]
    assert rdma.parse_gid("0000:0000:0000:0000:0000:0000:0000:0000")["zero"]
    assert rdma.parse_gid("") is None and rdma.parse_gid(None) is None and rdma.parse_gid("not a gid") is None


def test_the_spark_tree_reads_as_four_functions_of_one_connectx7():
    found = rdma.read_devices(str(TREES / "cx7-two-ports"))
    assert found["present"]
    devs = {d["name"]: d for d in found["devices"]}
    assert sorted(devs) == ["roceP2p1s0f0", "roceP2p1s0f1", "rocep1s0f0", "rocep1s0f1"]
    assert devs["rocep1s0f0"]["pci"] == "0000:01:00.0" and devs["roceP2p1s0f0"]["pci"] == "0002:01:00.0"
    assert {d["function"] for d in devs.values()} == {"0", "1"}
    assert len({d["sys_image_guid"] for d in devs.values()}) == 1
    assert devs["rocep1s0f0"]["netdevs"] == {QSFP: {"operstate": "up", "mtu": 9000}}
    port = devs["rocep1s0f0"]["ports"][0]
    assert (port["port"], port["state"], port["phys_state"], port["link_layer"]) == (1, "ACTIVE", "LinkUp", "Ethernet")
    # the zero entries are left out; the four GIDs: link-local v1/v2, then the IPv4-mapped v1/v2
    assert [(g["index"], g["type"], g["ipv4"]) for g in port["gids"]] == [
        (0, "IB/RoCE v1", None), (1, "RoCE v2", None), (2, "IB/RoCE v1", ADDRESS), (3, "RoCE v2", ADDRESS)]
    assert devs["rocep1s0f1"]["ports"][0]["state"] == "DOWN"


def test_userspace_and_device_nodes():
    two = rdma.read_userspace(str(TREES / "cx7-two-ports"))
    assert two == {"installed": True, "providers": ["/usr/lib/aarch64-linux-gnu/libibverbs/libmlx5-rdmav34.so"],
                   "mlx5_provider": "/usr/lib/aarch64-linux-gnu/libibverbs/libmlx5-rdmav34.so"}
    assert rdma.read_userspace(str(TREES / "cx7-one-port"))["installed"] is False
    assert rdma.read_dev_nodes(str(TREES / "cx7-two-ports")) == ["rdma_cm", "uverbs0", "uverbs1", "uverbs2", "uverbs3"]
    assert rdma.read_dev_nodes(str(TREES / "none")) == ["rdma_cm"]


# --- the three trees --------------------------------------------------------------------------------

def test_two_ports_take_both_halves_of_the_cabled_port():
    t, info = decide(TREES / "cx7-two-ports")
    assert t["name"] == "ib" and t["usable"] and not t["refused"]
    assert t["devices"] == ["rocep1s0f0", "roceP2p1s0f0"]
    assert t["netdevs"] == [QSFP, "enP2p1s0f0np0"]
    assert t["env"] == {"NCCL_IB_DISABLE": "0", "NCCL_IB_HCA": "=rocep1s0f0:1,roceP2p1s0f0:1",
                        "NCCL_IB_GID_INDEX": "3", "UCX_NET_DEVICES": "rocep1s0f0:1,roceP2p1s0f0:1"}
    assert t["gid_index"] == 3 and t["gid_indexes"] == {"rocep1s0f0": 3, "roceP2p1s0f0": 3}
    assert t["summary"] == "ib (rocep1s0f0:1 + roceP2p1s0f0:1 behind enp1s0f0np0/enP2p1s0f0np0, RoCE v2 GID 3)"
    assert [(s["device"], s["role"], s["gid"]) for s in t["selected"]] == [
        ("rocep1s0f0", "qsfp", "::ffff:c0a8:640a"), ("roceP2p1s0f0", "twin", "::ffff:a9fe:640a")]
    # the other physical port (rocep1s0f1, function 1) is not a twin: it is the second cable's
    assert "rocep1s0f1" not in [c["device"] for c in info["candidates"]]


def test_one_port_without_twin_and_without_userspace():
    t, info = decide(TREES / "cx7-one-port")
    assert t["name"] == "ib" and t["devices"] == ["rocep1s0f0"]
    assert t["env"]["NCCL_IB_HCA"] == "=rocep1s0f0:1" and t["env"]["NCCL_IB_GID_INDEX"] == "3"
    assert t["userspace_missing"] is True
    assert t["summary"] == ("ib (rocep1s0f0:1 behind enp1s0f0np0, RoCE v2 GID 3); "
                            "rdma-core userspace not installed yet")
    assert [c["device"] for c in info["candidates"]] == ["rocep1s0f0"]


def test_none_is_sockets_and_ib_is_refused_with_what_was_found():
    t, _ = decide(TREES / "none")
    assert t["name"] == "socket" and not t["refused"] and t["env"] == {}
    assert t["summary"] == "socket (no RDMA device behind enp1s0f0np0)"
    ib, _ = decide(TREES / "none", "ib")
    assert ib["refused"] and ib["name"] == "socket"
    for part in ("nccl_transport=ib", "no RDMA device behind enp1s0f0np0", "interfaces enp1s0f0np0",
                 "/sys/class/infiniband is empty", "/dev/infiniband: rdma_cm",
                 "/usr/lib/x86_64-linux-gnu/libibverbs/libmlx5-rdmav34.so"):
        assert part in ib["reason"], part


@pytest.mark.parametrize("tree", ["cx7-two-ports", "cx7-one-port", "none"])
def test_socket_asked_for_is_sockets_everywhere(tree):
    t, _ = decide(TREES / tree, "socket")
    assert (t["name"], t["env"], t["refused"]) == ("socket", {}, False)
    assert t["summary"] == "socket (nccl_transport is socket)"


def test_no_qsfp_interface_is_sockets():
    t, _ = decide(TREES / "cx7-two-ports", interfaces=())
    assert t["summary"] == "socket (no QSFP interface (blackwell_qsfp_interface is unset))"
    ib, _ = decide(TREES / "cx7-two-ports", "ib", interfaces=())
    assert ib["refused"] and "interfaces none" in ib["reason"]


def test_an_empty_root_says_no_rdma_driver(tmp_path):
    ib, _ = decide(tmp_path, "ib")
    assert "no /sys/class/infiniband (no RDMA driver loaded)" in ib["reason"]
    assert "/dev/infiniband: none" in ib["reason"] and "ibverbs-providers not installed" in ib["reason"]


def test_an_interface_without_device():
    t, info = decide(TREES / "cx7-two-ports", interfaces=("enp9s0",))
    assert info["missing"] == ["enp9s0"] and t["summary"] == "socket (no RDMA device behind enp9s0)"


def test_twins_off_takes_only_the_interface_s_device():
    t, _ = decide(TREES / "cx7-two-ports", twins=False)
    assert t["env"]["NCCL_IB_HCA"] == "=rocep1s0f0:1"


# --- copies of the two-port tree ------------------------------------------------------------------

def test_a_twin_with_only_its_link_local_gid_leaves_the_gid_index_to_nccl(two_ports):
    set_port(two_ports, "roceP2p1s0f0", gids=[(LINK_LOCAL, "IB/RoCE v1"), (LINK_LOCAL, "RoCE v2")])
    t, _ = decide(two_ports)
    assert t["gid_indexes"] == {"rocep1s0f0": 3, "roceP2p1s0f0": 1} and t["gid_index"] is None
    assert "NCCL_IB_GID_INDEX" not in t["env"] and t["env"]["NCCL_IB_HCA"] == "=rocep1s0f0:1,roceP2p1s0f0:1"
    assert "RoCE v2 GID 1 on roceP2p1s0f0, 3 on rocep1s0f0 (NCCL_IB_GID_INDEX left to NCCL" in t["summary"]


def test_a_twin_whose_port_is_down_is_left_out(two_ports):
    set_port(two_ports, "roceP2p1s0f0", state="1: DOWN")
    t, _ = decide(two_ports)
    assert t["env"]["NCCL_IB_HCA"] == "=rocep1s0f0:1"
    assert t["summary"] == ("ib (rocep1s0f0:1 behind enp1s0f0np0, RoCE v2 GID 3); "
                            "not used: roceP2p1s0f0 port 1 behind enP2p1s0f0np0 is DOWN")


def test_the_qsfp_port_down_means_sockets_and_refuses_ib(two_ports):
    set_port(two_ports, "rocep1s0f0", state="1: DOWN")
    t, _ = decide(two_ports)
    assert t["name"] == "socket" and t["summary"].startswith("socket (rocep1s0f0 port 1 behind enp1s0f0np0 is DOWN")
    ib, _ = decide(two_ports, "ib")
    assert ib["refused"] and "RDMA devices: roceP2p1s0f0 (enP2p1s0f0np0), roceP2p1s0f1" in ib["reason"]


def test_a_port_without_roce_v2_gid_is_not_usable(two_ports):
    gid = "0000:0000:0000:0000:0000:ffff:c0a8:640a"
    set_port(two_ports, "rocep1s0f0", gids=[(gid, "IB/RoCE v1")])
    t, _ = decide(two_ports)
    assert t["name"] == "socket" and "rocep1s0f0 port 1 behind enp1s0f0np0 has no RoCE v2 GID" in t["summary"]


def test_the_gid_of_the_qsfp_address_wins_over_another_ipv4_gid(two_ports):
    other = "0000:0000:0000:0000:0000:ffff:0a00:0001"
    mine = "0000:0000:0000:0000:0000:ffff:c0a8:640a"
    set_port(two_ports, "rocep1s0f0", gids=[(LINK_LOCAL, "IB/RoCE v1"), (LINK_LOCAL, "RoCE v2"),
                                           (other, "IB/RoCE v1"), (other, "RoCE v2"),
                                           (mine, "IB/RoCE v1"), (mine, "RoCE v2")])
    t, _ = decide(two_ports, twins=False)
    assert t["gid_index"] == 5
    t, _ = decide(two_ports, twins=False, address=None)
    assert t["gid_index"] == 3  # any IPv4 GID before the link-local one, lowest index first


def test_two_cables_take_both_ports_and_their_twins(two_ports):
    for dev, ip in (("rocep1s0f1", "c0a8:650a"), ("roceP2p1s0f1", "a9fe:650a")):
        gid = "0000:0000:0000:0000:0000:ffff:" + ip
        set_port(two_ports, dev, state="4: ACTIVE", gids=[(LINK_LOCAL, "IB/RoCE v1"), (LINK_LOCAL, "RoCE v2"),
                                                           (gid, "IB/RoCE v1"), (gid, "RoCE v2")])
    t, _ = decide(two_ports, interfaces=(QSFP, "enp1s0f1np1"))
    assert t["env"]["NCCL_IB_HCA"] == "=rocep1s0f0:1,rocep1s0f1:1,roceP2p1s0f0:1,roceP2p1s0f1:1"
    assert t["gid_index"] == 3


def test_an_unknown_transport_is_an_error():
    info = rdma.probe(str(TREES / "none"), [QSFP])
    with pytest.raises(ValueError, match="auto, ib, socket"):
        rdma.decide("rdma", info)
