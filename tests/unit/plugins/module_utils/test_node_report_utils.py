"""module_utils/node_report over fake node trees (tests/unit/node_tree.py): each reader, the real
vllm_probe.py against a loopback stand-in for vLLM, and the problems a person reads."""

from __future__ import annotations

import json
import os

import pytest

import node_tree as nt

from ansible_collections.blackwell.vllm.plugins.module_utils import node_report as nr


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setattr(nr, "SYS_CLASS_NET", str(tmp_path / "sys" / "class" / "net"))
    return nt.NodeTree(tmp_path)


def collect(tree, **overrides):
    return nr.collect(nt.Commands(tree), tree.params(**overrides), {"gpu_count": 1, "gpus": [
        {"index": 0, "name": "NVIDIA GB10", "memory_total_mib": None, "compute_capability": "12.1", "sm": "sm_121",
         "unified_memory": True}], "driver_version": "580.95.05", "cuda_driver_version": "13.0",
        "cuda_toolkit": {"version": "13.0"}, "nccl": {"realpath": "/opt/nccl/2.28.9-1-sm_121/lib/libnccl.so.2.28.9"}},
        "/usr/bin/python3")


def test_nccl_build_in_use_from_its_marker(tree):
    tree.nccl()
    tree.nccl("2.27.7-1-sm_121")
    got = nr.nccl_build(str(tree.nccl_root))
    assert got["current"] == "2.27.7-1-sm_121" and got["builds"] == ["2.27.7-1-sm_121", nt.NCCL]
    assert got["version"] == "2.28.9-1" and got["sms"] == ["sm_121"] and got["cuda"] == "13.0"
    assert got["marker"] and got["library"]


def test_nccl_without_current_or_marker(tree):
    assert nr.nccl_build(str(tree.nccl_root))["current"] is None
    tree.nccl(marker=False)
    got = nr.nccl_build(str(tree.nccl_root))
    assert got["current"] == nt.NCCL and got["marker"] is False and got["version"] is None and got["builds"] == []


def test_release_version_and_patches(tree):
    tree.previous()
    tree.release()
    got = nr.vllm_release(str(tree.vllm_base))
    assert got["current"] == nt.RELEASE and got["previous"] == nt.OLD_RELEASE
    assert got["version"] == "0.18.1" and got["mode"] == "wheels"
    assert got["patches"] == {"cutlass_fp8": "applied", "fp8_moe_triton": "applied"}
    assert got["patches_applied"] == ["cutlass_fp8", "fp8_moe_triton"]


def test_release_without_patches_and_partial(tree):
    tree.release(patched=False)
    assert nr.vllm_release(str(tree.vllm_base))["patches"] == {"cutlass_fp8": "absent", "fp8_moe_triton": "absent"}
    w8a8 = next(tree.vllm_base.glob("releases/*/venv/lib/python3.12/site-packages/vllm/**/w8a8_utils.py"))
    w8a8.write_text("# BEGIN blackwell.vllm sm121-cutlass-fp8\n# END blackwell.vllm sm121-cutlass-fp8\n")
    assert nr.vllm_release(str(tree.vllm_base))["patches"]["cutlass_fp8"] == "partial"


def test_no_release(tree):
    got = nr.vllm_release(str(tree.vllm_base))
    assert got["current"] is None and got["patches"] == {}


def test_units_header_and_own_listener(tree):
    tree.vllm_unit(port=28000)
    tree.write(tree.systemd_dir / "vllm-gw.service",
               "# vLLM service gw: big-model on 0.0.0.0:8001 (profile workaround).\n# Release r2. Options...\n"
               "ExecStart=/x/python -m vllm \\\n    \"--host\" \"0.0.0.0\" \"--port\" \"28001\"\n")
    units = {u["name"]: u for u in nr.vllm_units(str(tree.systemd_dir))}
    assert units["qwen"]["served_name"] == "qwen3-next" and units["qwen"]["release"] == nt.RELEASE
    assert units["qwen"]["url"] == "http://127.0.0.1:28000" and units["qwen"]["listen"] == "127.0.0.1:8000"
    assert units["gw"]["url"] == "http://127.0.0.1:28001" and units["gw"]["profile"] == "workaround"
    assert units["gw"]["release"] == "r2"


def test_systemctl_show_blocks():
    text = "Id=a.service\nActiveState=active\nNRestarts=2\n\nId=b.service\nActiveState=failed\nResult=exit-code\n"
    got = nr.parse_systemctl_show(text)
    assert got["a.service"]["NRestarts"] == "2" and got["b.service"]["Result"] == "exit-code"


def test_last_rollout_is_the_newest_finished(tree):
    tree.rollout("a-late-name", "2026-12-01T00:00:05Z")
    tree.rollout("20261207T080000Z", "2026-12-07T08:00:05Z", gate="rolled_back", error="gate: /health failed")
    record, count = nr.last_rollout(str(tree.rollout_dir))
    assert count == 2 and record["id"] == "20261207T080000Z" and record["gate"] == "rolled_back"
    assert record["error"] == "gate: /health failed" and record["changed"] == ["vllm.release"]
    assert "before" not in record and "backup" not in record
    assert nr.last_rollout(str(tree.root / "nowhere")) == (None, 0)


def test_bench_result_per_service(tree):
    tree.bench()
    got = nr.bench_results(str(tree.bench_dir))["qwen"]
    assert got["output_tokens_per_s"] == 812.4 and got["ttft_ms_median"] == 143.0 and got["when"]


def test_converged_node_has_no_problem(tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        node = collect(tree)
    assert node["problems"] == [], node["problems"]
    svc = node["services"][0]
    assert svc["healthy"] is True and svc["probe"]["served"] and svc["probe"]["auth"] is True
    assert svc["bench"]["output_tokens_per_s"] == 812.4
    assert node["ray"] == dict(node["ray"], role="head", active=True, nodes_alive=2)
    assert node["qsfp"]["addresses"] == ["192.168.100.10/24"] and node["qsfp"]["mtu"] == 9000
    assert node["rollout"]["id"] == "20261207T080000Z" and node["rollout_records"] == 2
    # The key went to vLLM and the token to the dashboard, from the node's own files; neither comes back.
    assert ("GET", "/v1/models", "Bearer " + nt.API_KEY) in server.requests
    assert ("GET", "/nodes?view=summary", "Bearer " + nt.RAY_TOKEN) in server.requests
    text = json.dumps(node)
    assert nt.API_KEY not in text and nt.RAY_TOKEN not in text


def test_the_probe_asks_vllms_own_listener_with_a_short_timeout(tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        commands = nt.Commands(tree)
        nr.collect(commands, tree.params(probe_timeout=3), {}, "/usr/bin/python3")
    probes = [c for c in commands.calls if c[0] == "timeout"]
    assert [c[6] for c in probes] == ["wait", "verify"] and all(c[3] == "3" for c in probes)
    assert all("http://127.0.0.1:%d" % server.port in c for c in probes)
    assert not any(nt.API_KEY in " ".join(c) for c in commands.calls)


def test_stopped_service_is_unhealthy_with_the_reason(tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        tree.vllm_unit(port=server.port, active="failed", sub="failed", result="exit-code", restarts=5)
        node = collect(tree)
    svc = node["services"][0]
    assert svc["healthy"] is False and svc["probe"] is None
    assert svc["reason"] == "the unit is failed, result exit-code"
    assert node["problems"] == ["vLLM qwen: the unit is failed, result exit-code"]
    assert not any(r[1] == "/health" for r in server.requests)


def test_loading_and_wrong_served_name(tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        server.mode = "loading"
        node = collect(tree)
        assert node["services"][0]["healthy"] is False
        assert node["services"][0]["reason"].startswith("/health on http://127.0.0.1:%d: " % server.port)
        server.mode = "wrong_name"
        node = collect(tree)
    assert node["services"][0]["reason"] == "/v1/models does not list 'qwen3-next'"


def test_nothing_listening(tree):
    with nt.FakeVllm() as server:
        port = server.port
    tree.converged(port=port, dashboard_port=port)
    node = collect(tree)
    assert node["services"][0]["healthy"] is False and "refused" in node["services"][0]["reason"]
    assert node["ray"]["nodes_alive"] is None and node["ray"]["nodes_note"].startswith("the dashboard did not answer")


def test_broken_node_problems(tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        tree.nic(state="down", mtu=1500)
        tree.addresses = {"enp1s0f0np0": []}
        tree.ray_unit(active="inactive")
        os.unlink(tree.nccl_root / "current")
        tree.vllm_unit(port=server.port, release=nt.OLD_RELEASE)
        node = collect(tree, ray_role="worker", expected_services=["qwen", "embed"])
    assert node["problems"] == [
        "NCCL: no build in use (%s/current is missing)" % tree.nccl_root,
        "QSFP: enp1s0f0np0 is down",
        "QSFP: enp1s0f0np0 has MTU 1500, not 9000",
        "QSFP: enp1s0f0np0 lacks 192.168.100.10/24 (has no address)",
        "Ray: the inventory makes this node the worker, but it has the head unit",
        "Ray: ray-head.service is inactive",
        "vLLM qwen: the unit runs release %s, current is %s" % (nt.OLD_RELEASE, nt.RELEASE),
        "vLLM embed: the inventory serves it here, but there is no unit vllm-embed.service",
    ]


def test_lab_node_without_gpu_is_fine(tree):
    node = nr.collect(nt.Commands(tree), tree.params(hardware_profile="lab_cpu", qsfp_interface=None,
                                                     ray_role=None, expected_services=[]),
                      {"gpu_count": 0, "probe_error": "nvidia-smi not found"}, "/usr/bin/python3")
    assert node["problems"] == [] and node["gpu"]["count"] == 0 and node["qsfp"] is None
    assert node["nccl"]["current"] is None and node["services"] == []


def test_gpu_node_without_gpu_and_unknown_profile(tree):
    node = nr.collect(nt.Commands(tree), tree.params(qsfp_interface=None, ray_role=None, expected_services=[]),
                      {"gpu_count": 0, "probe_error": "nvidia-smi not found"}, "/usr/bin/python3")
    assert node["problems"][:2] == ["GPUs: profile gb10 needs 1, found 0 (nvidia-smi not found)",
                                    "NCCL: no build in use (%s/current is missing)" % tree.nccl_root]
    node = nr.collect(nt.Commands(tree), tree.params(hardware_profile="gb11", qsfp_interface=None, ray_role=None),
                      {}, "/usr/bin/python3")
    assert node["problems"][0].startswith("profile: hardware profile 'gb11' is not one of ")


def test_missing_probe_script(tree):
    tree.converged(port=1)
    os.unlink(tree.vllm_base / "libexec" / "vllm_probe.py")
    node = collect(tree, ray_nodes=False)
    assert node["services"][0]["reason"] == "no %s/libexec/vllm_probe.py (the vllm role installs it)" % tree.vllm_base


def test_reading_changes_nothing(tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        before = sorted((str(p), p.stat().st_mtime_ns, p.stat().st_mode) for p in tree.root.rglob("*") if not p.is_symlink())
        collect(tree)
        after = sorted((str(p), p.stat().st_mtime_ns, p.stat().st_mode) for p in tree.root.rglob("*") if not p.is_symlink())
    assert before == after


def test_a_unit_that_runs_but_does_not_answer_says_since_when(tree):
    tree.probe_script()

    def run(argv):
        return 3, json.dumps({"state": "loading", "unit": "vllm-qwen.service", "active": "active", "sub": "running",
                              "seconds_since_start": 12.4, "last_error": "[Errno 111] Connection refused"}), ""
    run.has_timeout = False
    unit = {"unit": "vllm-qwen.service", "name": "qwen", "served_name": "qwen3-next", "url": "http://127.0.0.1:28000"}
    got = nr.probe_service(run, "/usr/bin/python3", str(tree.vllm_base / "libexec" / "vllm_probe.py"), unit, 5)
    assert got["health"] == "loading" and got["error"] == (
        "not answering 12 s after its start, /health on http://127.0.0.1:28000: [Errno 111] Connection refused")
