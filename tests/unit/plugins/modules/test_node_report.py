"""blackwell.vllm.node_report run in-process over fake node trees: never changed, the same in check
mode, the GPUs through gpu_info's probe, and its path defaults equal to the roles' defaults."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml

import harness as lib
import node_tree as nt

from ansible_collections.blackwell.vllm.plugins.module_utils import node_report as nr

from ansible_collections.blackwell.vllm.plugins.modules import node_report

REPO = pathlib.Path(__file__).resolve().parents[4]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setattr(nr, "SYS_CLASS_NET", str(tmp_path / "sys" / "class" / "net"))
    return nt.NodeTree(tmp_path)


def run(monkeypatch, tree, gpu_fixture="gb10", check_mode=False, **overrides):
    """The module over `tree`, its GPU tools answered from tests/fixtures/gpu/<gpu_fixture> (None: no GPU)."""
    commands = nt.Commands(tree)
    replay = lib.Replay(gpu_fixture)

    def run_command(argv, **kwargs):
        tool = pathlib.PurePath(str(argv[0])).name
        if tool in ("nvidia-smi", "nvcc", "ldconfig"):
            return replay(argv, **kwargs)
        return commands(argv, **kwargs)

    bins = {"timeout": "/usr/bin/timeout"}
    if gpu_fixture is None:
        bins.update({"nvidia-smi": None, "nvcc": None})
    result, failed = lib.run_gpu_module(node_report.main, tree.params(**overrides), monkeypatch, replay=run_command,
                                        bins=bins, check_mode=check_mode,
                                        machine="aarch64" if gpu_fixture == "gb10" else "x86_64")
    return result, failed, commands


def test_converged_gb10_node(monkeypatch, tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        result, failed, dummy = run(monkeypatch, tree)
    assert not failed and result["changed"] is False
    node = result["node"]
    assert node["problems"] == [], node["problems"]
    assert node["gpu"]["count"] == 1 and node["gpu"]["gpus"][0]["name"] == "NVIDIA GB10"
    assert node["gpu"]["gpus"][0]["sm"] == "sm_121" and node["gpu"]["gpus"][0]["memory_total_mib"] is None
    assert node["gpu"]["driver_version"] == "580.95.05" and node["gpu"]["cuda_driver_version"] == "13.0"
    assert node["nccl"]["current"] == nt.NCCL and node["vllm"]["patches_applied"] == ["cutlass_fp8", "fp8_moe_triton"]
    assert node["services"][0]["healthy"] is True and node["ray"]["nodes_alive"] == 2
    assert isinstance(result["gpu_seconds"], float)
    text = json.dumps(result)
    assert nt.API_KEY not in text and nt.RAY_TOKEN not in text


def test_check_mode_reads_the_same(monkeypatch, tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        normal, dummy, dummy2 = run(monkeypatch, tree)
        checked, failed, commands = run(monkeypatch, tree, check_mode=True)
    assert not failed and checked["changed"] is False
    for key in ("gpu", "nccl", "vllm", "qsfp", "problems", "rollout"):
        assert checked["node"][key] == normal["node"][key], key
    assert checked["node"]["services"][0]["healthy"] is True
    assert [c[0] for c in commands.calls] == ["systemctl", "ip", "timeout", "timeout"]


def test_lab_node_without_gpu(monkeypatch, tree):
    result, failed, dummy = run(monkeypatch, tree, gpu_fixture=None, hardware_profile="lab_cpu",
                                qsfp_interface=None, ray_role=None, expected_services=[])
    assert not failed and result["changed"] is False
    node = result["node"]
    assert node["gpu"]["count"] == 0 and node["gpu"]["backend"] == "none" and node["problems"] == []


def test_stopped_service_is_a_report_not_a_failure(monkeypatch, tree):
    with nt.FakeVllm() as server:
        tree.converged(port=server.port, dashboard_port=server.port)
        tree.vllm_unit(port=server.port, active="inactive", sub="dead")
        result, failed, dummy = run(monkeypatch, tree)
    assert not failed and result["changed"] is False
    assert result["node"]["services"][0]["healthy"] is False
    assert result["node"]["problems"] == ["vLLM qwen: the unit is inactive (dead)"]


def test_probe_services_false_reads_systemd_only(monkeypatch, tree):
    tree.converged(port=1)
    result, failed, commands = run(monkeypatch, tree, probe_services=False, ray_nodes=False)
    assert not failed and result["node"]["services"][0]["healthy"] is None
    assert result["node"]["problems"] == []
    assert not any(c[0] == "timeout" for c in commands.calls)


def test_bad_arguments_fail(monkeypatch, tree):
    params = tree.params()
    del params["hardware_profile"]
    result, failed = lib.run_module(node_report.main, params, monkeypatch)
    assert failed and "hardware_profile" in result["msg"]
    result, failed = lib.run_module(node_report.main, tree.params(ray_role="boss"), monkeypatch)
    assert failed and "ray_role" in result["msg"]


def test_path_defaults_are_the_roles_defaults():
    """The module's path defaults repeat the roles' defaults (a node_report run without the roles' variables
    must look where the roles put things): this keeps them equal."""
    options = yaml.safe_load(node_report.DOCUMENTATION)["options"]

    def default(role, name):
        return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())[name]

    assert options["vllm_base_dir"]["default"] == default("vllm", "vllm_base_dir")
    assert options["vllm_config_dir"]["default"] == default("vllm", "vllm_config_dir")
    assert options["nccl_install_root"]["default"] == default("nccl", "nccl_install_root")
    assert options["rollout_dir"]["default"] == default("common", "blackwell_rollout_dir")
    assert options["bench_dir"]["default"] == default("common", "blackwell_bench_dir")


def test_documentation_matches_the_argument_spec(monkeypatch, tree):
    seen = {}

    def capture(self, *args, **kwargs):
        seen.update(kwargs.get("argument_spec") or args[0])
        raise lib.ModuleExit({"changed": False})

    monkeypatch.setattr(node_report, "AnsibleModule", type("M", (), {"__init__": capture}))
    with pytest.raises(lib.ModuleExit):
        node_report.main()
    options = yaml.safe_load(node_report.DOCUMENTATION)["options"]
    assert set(options) == set(seen)
    for name, spec in seen.items():
        assert options[name]["type"] == spec["type"], name
        assert options[name].get("default") == spec.get("default"), name
        assert options[name].get("choices") == spec.get("choices"), name
