"""blackwell.vllm.rdma_info over the recorded (reconstructed) sysfs trees of tests/fixtures/rdma."""

from __future__ import annotations

import pathlib

import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.modules import rdma_info

TREES = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "rdma"
EXPECTED = {
    "cx7-two-ports": ("ib", "=rocep1s0f0:1,roceP2p1s0f0:1", 3, True),
    "cx7-one-port": ("ib", "=rocep1s0f0:1", 3, False),
    "none": ("socket", None, None, True),
}


def run(monkeypatch, tree, check_mode=False, **args):
    args.setdefault("interfaces", ["enp1s0f0np0"])
    args.setdefault("address", "192.168.100.10/24")
    args["sysfs_root"] = str(TREES / tree) if tree else args.get("sysfs_root", "/")

    def no_command(argv, **kwargs):
        raise AssertionError("rdma_info ran %r: it must only read files" % (argv,))

    return lib.run_module(rdma_info.main, args, monkeypatch, check_mode=check_mode, run_command=no_command)


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("tree", sorted(EXPECTED))
def test_each_tree(monkeypatch, tree, check_mode):
    name, hca, gid_index, userspace = EXPECTED[tree]
    result, failed = run(monkeypatch, tree, check_mode=check_mode)
    assert not failed and result["changed"] is False
    t = result["transport"]
    assert (t["name"], t["hca"], t["gid_index"], t["refused"]) == (name, hca, gid_index, False)
    assert result["rdma"]["userspace"]["installed"] is userspace
    assert result["rdma"]["interfaces"] == ["enp1s0f0np0"] and result["rdma"]["address"] == "192.168.100.10"


def test_ib_on_the_tree_without_rdma_is_reported_refused_not_failed(monkeypatch):
    result, failed = run(monkeypatch, "none", transport="ib")
    assert not failed
    assert result["transport"]["refused"] is True
    assert result["transport"]["reason"].startswith("nccl_transport=ib, but no RDMA device behind enp1s0f0np0")


def test_socket_and_no_interfaces(monkeypatch):
    result, _ = run(monkeypatch, "cx7-two-ports", transport="socket")
    assert result["transport"]["name"] == "socket" and result["transport"]["env"] == {}
    result, _ = run(monkeypatch, "cx7-two-ports", interfaces=[])
    assert result["transport"]["name"] == "socket" and result["rdma"]["candidates"] == []


def test_an_unknown_transport_fails_with_the_choices(monkeypatch):
    result, failed = run(monkeypatch, "none", transport="rdma")
    assert failed and "auto, ib, socket" in result["msg"]


def test_the_ib_variables_come_back_for_the_role(monkeypatch):
    result, _ = run(monkeypatch, "cx7-two-ports")
    assert result["transport"]["env"] == {
        "NCCL_IB_DISABLE": "0", "NCCL_IB_HCA": "=rocep1s0f0:1,roceP2p1s0f0:1", "NCCL_IB_GID_INDEX": "3",
        "UCX_NET_DEVICES": "rocep1s0f0:1,roceP2p1s0f0:1"}
    assert result["transport"]["summary"] == (
        "ib (rocep1s0f0:1 + roceP2p1s0f0:1 behind enp1s0f0np0/enP2p1s0f0np0, RoCE v2 GID 3)")
