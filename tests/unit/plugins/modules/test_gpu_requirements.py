"""blackwell.vllm.gpu_requirements: profiles, explicit options, and failure messages that say what to fix."""

from __future__ import annotations


import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.modules import gpu_info, gpu_requirements


def facts(monkeypatch, name, **replay_overrides):
    """gpu_info's facts for a fixture (nvidia-smi backend), as a role would pass them."""
    meta = lib.meta(name) if name else {}
    bins = None if name else {"nvidia-smi": None, "nvcc": None}
    result, failed = lib.run_gpu_module(gpu_info.main, {"backend": "nvidia_smi"}, monkeypatch,
                                    replay=lib.Replay(name, **replay_overrides), bins=bins,
                                    realpaths=meta.get("realpaths"))
    assert not failed
    return result["ansible_facts"]["blackwell_gpu"]


def check(monkeypatch, args, check_mode=False, **kwargs):
    return lib.run_gpu_module(gpu_requirements.main, args, monkeypatch, check_mode=check_mode, **kwargs)


@pytest.mark.parametrize("name, profile", [
    ("h100", "hopper"), ("gb10", "gb10"), ("gb10", "blackwell"), ("rtx5090_pair", "rtx5090_pair"),
    ("rtx5090_pair", "rtx5090"), ("rtx_pro_6000", "rtx_pro_6000"), ("rtx5060ti_pair", "rtx5060ti"),
    ("h100_nvl_pair", "hopper"), ("h100", "lab_cpu"), (None, "lab_cpu"),
])
def test_profiles_that_pass(monkeypatch, name, profile):
    result, failed = check(monkeypatch, {"profile": profile, "gpu_info": facts(monkeypatch, name)})
    assert not failed, result["msg"]
    assert result["changed"] is False and result["passed"] is True and result["failures"] == []
    assert all(c["ok"] for c in result["checks"])
    assert result["profile"] == profile


def test_pass_message_names_the_gpus(monkeypatch):
    result, _ = check(monkeypatch, {"profile": "gb10", "gpu_info": facts(monkeypatch, "gb10")})
    assert result["msg"] == "GPU 0 (NVIDIA GB10, sm_121) meets profile 'gb10'"
    result, _ = check(monkeypatch, {"profile": "lab_cpu", "gpu_info": facts(monkeypatch, None)})
    assert result["msg"] == "host without GPU meets profile 'lab_cpu'"
    assert result["requirements"]["min_gpus"] == 0 and result["requirements"]["require_toolkit"] is False


def test_blackwell_profile_refuses_sm_90(monkeypatch):
    result, failed = check(monkeypatch, {"profile": "blackwell", "gpu_info": facts(monkeypatch, "h100")})
    assert failed and result["changed"] is False
    assert result["msg"] == ("GPU 0 (NVIDIA H100 80GB HBM3) is sm_90; profile 'blackwell' allows sm_120, sm_121: "
                             "run this on a host with such a GPU, or choose a profile that allows sm_90 "
                             "(e.g. profile: hopper)")
    assert [c["name"] for c in result["checks"] if not c["ok"]] == ["capability"]
    assert result["capabilities"] == ["sm_90"] and result["gpu_count"] == 1


def test_gb10_with_cuda_12_8_toolkit(monkeypatch):
    gb10 = facts(monkeypatch, "gb10", nvcc="rtx5090_pair")
    result, failed = check(monkeypatch, {"profile": "gb10", "gpu_info": gb10})
    assert failed
    assert result["msg"] == ("install CUDA toolkit >= 13.0 for sm_121 (found nvcc 12.8 at "
                             "/usr/local/cuda/bin/nvcc)")


def test_gb10_without_toolkit(monkeypatch):
    gb10 = facts(monkeypatch, "gb10", nvcc=(127, "", "not found"))
    result, failed = check(monkeypatch, {"profile": "gb10", "gpu_info": gb10})
    assert failed
    assert "no CUDA toolkit (nvcc) found" in result["msg"]
    assert "install CUDA toolkit >= 13.0 for sm_121" in result["msg"]
    result, failed = check(monkeypatch, {"profile": "gb10", "require_toolkit": False, "gpu_info": gb10})
    assert not failed


def test_gb10_on_a_570_driver(monkeypatch):
    gb10 = facts(monkeypatch, "gb10", query=(0, lib.read("gb10", "query_gpu.csv").replace("580.95.05", "570.133.07"),
                                             ""), version="rtx5090_pair")
    result, failed = check(monkeypatch, {"profile": "gb10", "gpu_info": gb10})
    assert failed
    assert "driver 570.133.07 is older than 580 needed for profile 'gb10': install NVIDIA driver branch 580 or newer" \
        in result["failures"]
    assert ("driver 570.133.07 supports CUDA up to 12.8, sm_121 needs CUDA 13.0: upgrade the NVIDIA driver to "
            "branch 580 or newer") in result["failures"]


def test_capability_driver_minimum_beats_a_lower_profile_minimum(monkeypatch):
    old = facts(monkeypatch, "gb10", query=(0, lib.read("gb10", "query_gpu.csv").replace("580.95.05", "575.64.03"),
                                            ""))
    result, failed = check(monkeypatch, {"allowed_capabilities": ["12.1"], "min_driver": "550", "gpu_info": old})
    assert failed
    assert "driver 575.64.03 is older than 580 needed for sm_121: install NVIDIA driver branch 580 or newer" \
        in result["failures"]


def test_unreadable_driver_version_is_reported(monkeypatch):
    odd = facts(monkeypatch, "gb10")
    odd["driver_version"] = "r580_00"
    result, failed = check(monkeypatch, {"profile": "gb10", "gpu_info": odd})
    assert failed and result["msg"] == ("driver version unknown; profile 'gb10' needs driver 580 or newer: "
                                        "install the NVIDIA driver")


def test_pair_profile_on_one_gpu(monkeypatch):
    result, failed = check(monkeypatch, {"profile": "rtx5090_pair", "gpu_info": facts(monkeypatch, "rtx_pro_6000")})
    assert failed
    assert result["msg"].startswith("host has 1 GPU(s), profile 'rtx5090_pair' needs at least 2")


def test_mixed_capabilities(monkeypatch):
    result, failed = check(monkeypatch, {"profile": "blackwell", "gpu_info": facts(monkeypatch, "mixed_5090_4090")})
    assert failed
    assert result["failures"] == [
        "GPU 1 (NVIDIA GeForce RTX 4090) is sm_89; profile 'blackwell' allows sm_120, sm_121: run this on a host "
        "with such a GPU, or choose a profile that allows sm_89",
        "GPUs differ in capability (GPU 0: sm_120, GPU 1: sm_89); profile 'blackwell' needs one capability across "
        "all GPUs: serve from GPUs of one kind (CUDA_VISIBLE_DEVICES) or set uniform_capability: false",
    ]
    result, failed = check(monkeypatch, {"allowed_capabilities": [], "uniform_capability": False, "min_gpus": 2,
                                         "gpu_info": facts(monkeypatch, "mixed_5090_4090")})
    assert not failed, result["msg"]


def test_host_without_gpu_fails_a_blackwell_profile_clearly(monkeypatch):
    result, failed = check(monkeypatch, {"profile": "gb10", "gpu_info": facts(monkeypatch, None)})
    assert failed
    assert result["msg"].startswith("host has no NVIDIA GPU (nvidia-smi not found); profile 'gb10' needs at least "
                                    "1 GPU(s) of sm_121: run this on such a host")
    assert "install the NVIDIA driver (branch 580 or newer)" in result["msg"]
    assert "use profile lab_cpu for a host without GPU" in result["msg"]


def test_reads_the_host_itself_without_gpu_info(monkeypatch):
    replay = lib.Replay("rtx5090_pair")
    result, failed = check(monkeypatch, {"profile": "rtx5090_pair", "backend": "nvidia_smi"}, replay=replay,
                           realpaths=lib.meta("rtx5090_pair")["realpaths"])
    assert not failed, result["msg"]
    assert replay.tools_called()[0].startswith("nvidia-smi --query-gpu=")
    replay = lib.Replay(None)
    result, failed = check(monkeypatch, {"profile": "gb10"}, replay=replay, bins={"nvidia-smi": None, "nvcc": None})
    assert failed and result["msg"].startswith("host has no NVIDIA GPU")


def test_self_read_with_nvml_needs_nvidia_ml_py(monkeypatch):
    result, failed = check(monkeypatch, {"profile": "gb10", "backend": "nvml"})
    assert failed and "nvidia-ml-py" in result["msg"]


def test_check_mode_gives_the_same_answer(monkeypatch):
    h100 = facts(monkeypatch, "h100")
    for profile, should_fail in (("hopper", False), ("blackwell", True)):
        normal, failed_normal = check(monkeypatch, {"profile": profile, "gpu_info": h100})
        checked, failed_checked = check(monkeypatch, {"profile": profile, "gpu_info": h100}, check_mode=True)
        assert failed_normal is failed_checked is should_fail
        assert checked["changed"] is False and checked["msg"] == normal["msg"]


def test_explicit_options_override_the_profile(monkeypatch):
    gb10 = facts(monkeypatch, "gb10")
    result, failed = check(monkeypatch, {"profile": "gb10", "min_driver": "590", "gpu_info": gb10})
    assert failed and "driver 580.95.05 is older than 590 needed for profile 'gb10'" in result["msg"]
    result, failed = check(monkeypatch, {"profile": "gb10", "min_toolkit": {"12.1": "13.1"}, "gpu_info": gb10})
    assert failed and result["failures"] == [
        "driver 580.95.05 supports CUDA up to 13.0, sm_121 needs CUDA 13.1: upgrade the NVIDIA driver",
        "install CUDA toolkit >= 13.1 for sm_121 (found nvcc 13.0 at /usr/local/cuda/bin/nvcc)"]
    result, failed = check(monkeypatch, {"profile": "hopper", "allowed_capabilities": ["121", "sm_90"], "gpu_info": gb10})
    assert not failed and result["requirements"]["allowed_capabilities"] == ["sm_121", "sm_90"]
    result, failed = check(monkeypatch, {"profile": "gb10", "max_gpus": 0, "min_gpus": 0, "gpu_info": gb10})
    assert failed and "1 GPU(s), at most 0 allowed by profile 'gb10'" in result["msg"]


@pytest.mark.parametrize("args, message", [
    ({}, "give a profile (blackwell, gb10, hopper, lab_cpu, rtx5060ti, rtx5060ti_pair, rtx5090, rtx5090_pair, rtx_pro_6000) or at "
         "least one of allowed_capabilities, min_driver, min_gpus, max_gpus"),
    ({"profile": "b200"}, "profile: 'b200' is not a hardware profile; use one of blackwell, gb10, hopper, lab_cpu,"),
    ({"allowed_capabilities": ["blackwell"]},
     "allowed_capabilities: 'blackwell' is not a CUDA compute capability; write it as sm_121, 12.1 or 121"),
    ({"min_driver": "newest"}, "min_driver: 'newest' is not a version such as 580, 12.8 or 580.95.05"),
    ({"min_gpus": -1}, "min_gpus must be 0 or more, got -1"),
    ({"min_gpus": 2, "max_gpus": 1}, "max_gpus (1) is less than min_gpus (2)"),
    ({"profile": "gb10", "min_toolkit": {"sm_121": "thirteen"}}, "min_toolkit: 'thirteen' is not a version"),
    ({"profile": "gb10", "min_toolkit": {"gb10": "13.0"}}, "min_toolkit: 'gb10' is not a CUDA compute capability"),
    ({"profile": "gb10", "gpu_info": {"gpu_count": 1}},
     "gpu_info must be the blackwell_gpu facts returned by blackwell.vllm.gpu_info (missing key 'gpus')"),
    ({"profile": "gb10", "backend": "smi"}, "value of backend must be one of: auto, nvml, nvidia_smi"),
])
def test_bad_arguments_get_clear_errors(monkeypatch, args, message):
    result, failed = check(monkeypatch, args)
    assert failed
    assert message in result["msg"]
