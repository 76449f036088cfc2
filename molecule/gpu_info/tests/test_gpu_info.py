"""Verify blackwell.vllm.gpu_info and gpu_requirements on the scenario's node.

gpu_info runs on the node through Ansible, once as the node is (no GPU) and once per recorded
fixture (tests/fixtures/gpu/<name>), with nvidia_smi_path pointing at the nvidia-smi test double
that replays it. The tests assert what the module parsed and returned (names, capability,
memory, topology, unified memory) and that gpu_requirements refuses a wrong profile with a
message that names the GPU, its capability and the profile; the double's own output is not
under test.
"""

import pytest
import testinfra.modules.ansible

DOUBLE_DIR = "/usr/local/lib/nvidia-smi-test-double"
NVCC = "/usr/local/cuda-13.0/bin/nvcc"


def gpu_info(host, fixture=None):
    args = "backend=nvidia_smi"
    if fixture:
        args += f" nvidia_smi_path={DOUBLE_DIR}/{fixture}/nvidia-smi nvcc_path={NVCC}"
    result = host.ansible("blackwell.vllm.gpu_info", args, check=False)
    assert result.get("changed") is False, "gpu_info never reports a change"
    return result["ansible_facts"]["blackwell_gpu"]


def requirements(host, profile, facts):
    """gpu_requirements' result, with `refused`: the failed checks (a refusal is returned, not raised).

    testinfra reads the result from Ansible's one-line output, whose JSON has no `failed` key, so a
    refusal is told by its failed checks (and `failed`, where testinfra does raise).
    """
    try:
        result = host.ansible("blackwell.vllm.gpu_requirements", "profile=" + profile + " gpu_info={{ facts }}",
                              check=False, extra_vars={"facts": facts})
    except testinfra.modules.ansible.AnsibleException as exc:
        result = exc.result
    result["refused"] = [c["name"] for c in result.get("checks", []) if not c["ok"]]
    assert result["refused"] or not result.get("failed"), f"failed without a failed check: {result}"
    return result


@pytest.fixture(scope="module")
def rtx5090_pair(host):
    return gpu_info(host, "rtx5090_pair")


@pytest.fixture(scope="module")
def gb10(host):
    return gpu_info(host, "gb10")


def test_node_has_no_nvidia_smi_on_its_path(host):
    """The double is reachable only through nvidia_smi_path: the no-GPU test below is real."""
    assert host.run("command -v nvidia-smi").rc != 0


def test_gpu_info_on_a_node_without_gpu(host):
    facts = gpu_info(host)
    assert facts["gpu_count"] == 0 and facts["gpus"] == []
    assert facts["backend"] == "none" and facts["capability"] is None
    assert "nvidia-smi not found" in facts["probe_error"]


def test_rtx5090_pair_names_capability_and_memory(rtx5090_pair):
    facts = rtx5090_pair
    assert facts["backend"] == "nvidia_smi"
    assert facts["gpu_count"] == 2
    assert [g["name"] for g in facts["gpus"]] == ["NVIDIA GeForce RTX 5090"] * 2
    assert [g["pci_bus_id"] for g in facts["gpus"]] == ["00000000:41:00.0", "00000000:C1:00.0"]
    assert facts["capabilities"] == ["sm_120"] and facts["capability"] == "sm_120"
    assert [g["compute_capability"] for g in facts["gpus"]] == ["12.0", "12.0"]
    assert [g["memory_total_mib"] for g in facts["gpus"]] == [32607, 32607]
    assert facts["gpus"][0]["pcie"]["gen_max"] == 5
    assert facts["driver_version"] == "570.133.07" and facts["cuda_driver_version"] == "12.8"
    assert facts["unified_memory"] is False
    assert facts["cuda_toolkit"]["version"] == "13.0"


def test_rtx5090_pair_topology_is_pcie_without_nvlink(rtx5090_pair):
    topology = rtx5090_pair["topology"]
    assert topology["interconnect"] == "pcie"
    assert topology["pairs"] == [{"gpus": [0, 1], "link": "NODE", "nvlink": False}]


def test_gb10_is_sm_121_with_unified_memory(gb10):
    assert gb10["gpu_count"] == 1
    assert gb10["gpus"][0]["name"] == "NVIDIA GB10"
    assert gb10["capability"] == "sm_121" and gb10["gpus"][0]["compute_capability"] == "12.1"
    # nvidia-smi prints [N/A] for the memory of the GB10's unified LPDDR5X.
    assert gb10["gpus"][0]["memory_total_mib"] is None
    assert gb10["unified_memory"] is True
    assert gb10["driver_version"] == "580.95.05" and gb10["cuda_driver_version"] == "13.0"
    assert gb10["topology"]["interconnect"] == "none"


def test_gpu_requirements_accepts_each_fixture_for_its_profile(host, rtx5090_pair, gb10):
    for profile, facts in (("rtx5090_pair", rtx5090_pair), ("gb10", gb10)):
        result = requirements(host, profile, facts)
        assert not result["refused"] and not result.get("failed"), f"{profile}: {result.get('msg')}"
        assert f"profile '{profile}'" in result["msg"] and " meet" in result["msg"]


def test_gpu_requirements_refuses_a_gb10_for_an_sm_120_profile(host, gb10):
    result = requirements(host, "rtx5090", gb10)
    assert result["refused"] == ["capability"] and result.get("changed") is False
    assert "GPU 0 (NVIDIA GB10) is sm_121; profile 'rtx5090' allows sm_120" in result["msg"]
    assert "choose a profile that allows sm_121 (e.g. profile: " in result["msg"] and "gb10)" in result["msg"]


def test_gpu_requirements_refuses_rtx5090s_for_the_gb10_profile(host, rtx5090_pair):
    result = requirements(host, "gb10", rtx5090_pair)
    assert "capability" in result["refused"]
    assert "GPU 0 (NVIDIA GeForce RTX 5090) is sm_120; profile 'gb10' allows sm_121" in result["msg"]


def test_gpu_requirements_refuses_a_node_without_gpu_for_gb10(host):
    result = requirements(host, "gb10", gpu_info(host))
    assert result["refused"] == ["min_gpus"]
    assert "host has no NVIDIA GPU" in result["msg"]
    assert "use profile lab_cpu for a host without GPU" in result["msg"]
