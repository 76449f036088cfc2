"""blackwell.vllm.gpu_info over recorded (h100) and reconstructed (Blackwell) outputs."""

from __future__ import annotations

import copy
import os
import pathlib

import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.module_utils import gpu_parsers, gpu_probe

from ansible_collections.blackwell.vllm.plugins.modules import gpu_info

ALL = lib.fixture_names()
WITH_NVML = [n for n in ALL if lib.read(n, "nvml.json")]
TEST_DOUBLE = pathlib.Path(__file__).resolve().parents[4] / "molecule" / "gpu_info" / "files" / "nvidia-smi-test-double"


def run(monkeypatch, name, args=None, **kwargs):
    meta = lib.meta(name) if name else {}
    kwargs.setdefault("realpaths", meta.get("realpaths"))
    if name and "AArch64" in (lib.read(name, "ldconfig_p.txt") or ""):
        kwargs.setdefault("machine", "aarch64")
    kwargs.setdefault("replay", lib.Replay(name))
    return lib.run_gpu_module(gpu_info.main, args or {}, monkeypatch, **kwargs)


def facts_of(result):
    assert set(result["ansible_facts"]) == {"blackwell_gpu"}
    return result["ansible_facts"]["blackwell_gpu"]


@pytest.mark.parametrize("name", ALL)
def test_nvidia_smi_backend_over_each_fixture(monkeypatch, name):
    expected = lib.meta(name)["expected"]
    result, failed = run(monkeypatch, name, {"backend": "nvidia_smi"})
    assert not failed and result["changed"] is False
    facts = facts_of(result)
    assert facts["backend"] == "nvidia_smi"
    assert facts["gpu_count"] == expected["gpu_count"] == len(facts["gpus"])
    assert facts["capabilities"] == expected["capabilities"]
    assert facts["capability"] == (expected["capabilities"][0] if len(expected["capabilities"]) == 1 else None)
    assert facts["unified_memory"] is expected["unified_memory"]
    assert facts["driver_version"] == expected["driver_version"]
    assert facts["driver_branch"] == int(expected["driver_version"].split(".")[0])
    assert facts["cuda_driver_version"] == expected["cuda_driver_version"]
    assert facts["topology"]["interconnect"] == expected["interconnect"]
    assert facts["cuda_toolkit"]["found"] is True and facts["cuda_toolkit"]["version"] == expected["nvcc"]
    assert facts["nccl"]["path"] == expected["nccl_path"]
    assert facts["nccl"]["version"] == expected.get("nccl_version")
    assert facts["probe_error"] is None
    assert isinstance(result["probe_seconds"], float)


@pytest.mark.parametrize("name", WITH_NVML)
def test_nvml_backend_agrees_with_nvidia_smi(monkeypatch, name):
    smi, failed = run(monkeypatch, name, {"backend": "nvidia_smi"})
    assert not failed
    fake = lib.fake_pynvml(name)
    nvml, failed = run(monkeypatch, name, {"backend": "nvml"}, pynvml=fake)
    assert not failed and nvml["changed"] is False
    smi, nvml = facts_of(smi), facts_of(nvml)
    assert nvml["backend"] == "nvml"
    for key in ("gpus", "gpu_count", "capabilities", "capability", "driver_version", "cuda_driver_version",
                "unified_memory", "cuda_toolkit", "nccl"):
        assert nvml[key] == smi[key], key
    assert nvml["topology"]["interconnect"] == smi["topology"]["interconnect"]
    assert fake.calls[0] == "nvmlInit" and fake.calls[-1] == "nvmlShutdown"


def test_nvml_recorded_h100_values(monkeypatch):
    result, failed = run(monkeypatch, "h100", {"backend": "nvml"}, pynvml=lib.fake_pynvml("h100"))
    facts = facts_of(result)
    assert facts["nvml_version"] == "13.580.159.04"
    assert facts["gpus"][0]["memory_total_mib"] == 81559
    assert facts["gpus"][0]["pci_bus_id"] == "00000000:00:06.0"
    assert facts["nccl"]["realpath"] == "/usr/lib/x86_64-linux-gnu/libnccl.so.2.28.3"


def test_nvml_topology_nvlink_and_pcie(monkeypatch):
    nvl, _ = run(monkeypatch, "h100_nvl_pair", {"backend": "nvml"}, pynvml=lib.fake_pynvml("h100_nvl_pair"))
    assert facts_of(nvl)["topology"]["pairs"] == [{"gpus": [0, 1], "link": "NV12", "nvlink": True}]
    pair, _ = run(monkeypatch, "rtx5090_pair", {"backend": "nvml"}, pynvml=lib.fake_pynvml("rtx5090_pair"))
    assert facts_of(pair)["topology"] == {"interconnect": "pcie", "pcie_only": True,
                                          "pairs": [{"gpus": [0, 1], "link": "NODE", "nvlink": False}]}


def test_auto_prefers_nvml_and_runs_no_nvidia_smi(monkeypatch):
    replay = lib.Replay("gb10")
    result, failed = run(monkeypatch, "gb10", {}, pynvml=lib.fake_pynvml("gb10"), replay=replay)
    assert not failed and facts_of(result)["backend"] == "nvml"
    assert replay.tools_called() == ["nvcc --version", "ldconfig -p"]


def test_auto_falls_back_to_nvidia_smi_without_pynvml(monkeypatch):
    replay = lib.Replay("rtx5090_pair")
    result, failed = run(monkeypatch, "rtx5090_pair", {}, pynvml=None, replay=replay)
    assert not failed and facts_of(result)["backend"] == "nvidia_smi"
    assert replay.tools_called() == ["nvidia-smi --query-gpu=" + ",".join(gpu_parsers.QUERY_FIELDS),
                                     "nvidia-smi --version", "nvidia-smi topo", "nvcc --version", "ldconfig -p"]


def test_auto_falls_back_when_nvml_cannot_start(monkeypatch):
    fake = lib.fake_pynvml("h100", init_error="NVMLError_LibraryNotFound")
    result, failed = run(monkeypatch, "h100", {}, pynvml=fake)
    assert not failed and facts_of(result)["backend"] == "nvidia_smi"
    assert facts_of(result)["gpu_count"] == 1


def test_single_gpu_reads_no_topology(monkeypatch):
    replay = lib.Replay("h100")
    run(monkeypatch, "h100", {"backend": "nvidia_smi"}, replay=replay)
    assert "nvidia-smi topo" not in replay.tools_called()


def test_check_mode_reads_the_same_facts(monkeypatch):
    normal, _ = run(monkeypatch, "rtx5090_pair", {"backend": "nvidia_smi"})
    checked, failed = run(monkeypatch, "rtx5090_pair", {"backend": "nvidia_smi"}, check_mode=True)
    assert not failed and checked["changed"] is False
    assert facts_of(checked) == facts_of(normal)


def test_unchanged_on_every_run(monkeypatch):
    first, _ = run(monkeypatch, "gb10", {}, pynvml=lib.fake_pynvml("gb10"))
    second, _ = run(monkeypatch, "gb10", {}, pynvml=lib.fake_pynvml("gb10"))
    assert first["changed"] is second["changed"] is False
    assert facts_of(first) == facts_of(second)


def test_host_without_gpu_returns_zero_and_does_not_fail(monkeypatch):
    result, failed = run(monkeypatch, None, {}, pynvml=None,
                         bins={"nvidia-smi": None, "nvcc": None, "ldconfig": "/sbin/ldconfig"})
    assert not failed and result["changed"] is False
    facts = facts_of(result)
    assert facts["gpu_count"] == 0 and facts["gpus"] == [] and facts["backend"] == "none"
    assert facts["capability"] is None and facts["unified_memory"] is False
    assert facts["cuda_toolkit"]["found"] is False and facts["nccl"]["found"] is False
    assert "nvidia-smi not found" in facts["probe_error"] and "pynvml not importable" in facts["probe_error"]


@pytest.mark.parametrize("rc, out, err, words", [
    (6, "No devices were found\n", "", "exited 6: No devices were found"),
    (9, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", "",
     "exited 9: NVIDIA-SMI has failed"),
])
def test_nvidia_smi_without_gpu_or_driver(monkeypatch, rc, out, err, words):
    replay = lib.Replay("h100", query=(rc, out, err))
    result, failed = run(monkeypatch, "h100", {"backend": "nvidia_smi"}, replay=replay)
    assert not failed
    facts = facts_of(result)
    assert facts["gpu_count"] == 0 and words in facts["probe_error"]
    assert replay.tools_called()[1:] == ["nvcc --version", "ldconfig -p"]


def test_nvml_backend_needs_nvidia_ml_py(monkeypatch):
    result, failed = run(monkeypatch, "h100", {"backend": "nvml"}, pynvml=None)
    assert failed
    assert "nvidia-ml-py" in result["msg"] and "backend=nvml" in result["msg"]


def test_nvml_backend_without_driver_returns_zero(monkeypatch):
    fake = lib.fake_pynvml("h100", init_error="NVMLError_DriverNotLoaded")
    result, failed = run(monkeypatch, "h100", {"backend": "nvml"}, pynvml=fake)
    assert not failed
    facts = facts_of(result)
    assert facts["gpu_count"] == 0 and facts["backend"] == "nvml"
    assert "NVML could not start" in facts["probe_error"]


def test_old_driver_without_compute_cap_field_fails_clearly(monkeypatch):
    replay = lib.Replay("h100", query=(2, 'Field "compute_cap" is not a valid field to query.\n', ""))
    result, failed = run(monkeypatch, "h100", {"backend": "nvidia_smi"}, replay=replay)
    assert failed
    assert "driver too old" in result["msg"] and "510" in result["msg"] and result["rc"] == 2


def test_unreadable_csv_fails_with_its_output(monkeypatch):
    replay = lib.Replay("h100", query=(0, "0, NVIDIA H100\n", ""))
    result, failed = run(monkeypatch, "h100", {"backend": "nvidia_smi"}, replay=replay)
    assert failed
    assert "line 1 has 2 fields, expected 12" in result["msg"]
    assert result["stdout"] == "0, NVIDIA H100\n"


def test_banner_fallback_when_version_option_is_missing(monkeypatch):
    replay = lib.Replay("h100", version=(2, "", "Unknown option: --version"))
    result, failed = run(monkeypatch, "h100", {"backend": "nvidia_smi"}, replay=replay)
    assert not failed and facts_of(result)["cuda_driver_version"] == "13.0"
    assert "nvidia-smi" in replay.tools_called()


def test_options_nvcc_path_and_ld_library_path(monkeypatch, tmp_path):
    (tmp_path / "libnccl.so.2").write_text("")
    replay = lib.Replay("rtx_pro_6000")
    result, failed = run(monkeypatch, "rtx_pro_6000",
                         {"backend": "nvidia_smi", "nvcc_path": "/ganuda/cuda-12.8/bin/nvcc",
                          "nvidia_smi_path": "/opt/nvidia/bin/nvidia-smi", "ld_library_path": [str(tmp_path)]},
                         replay=replay, bins={"nvcc": None, "nvidia-smi": None})
    assert not failed
    facts = facts_of(result)
    assert facts["cuda_toolkit"] == {"found": True, "path": "/ganuda/cuda-12.8/bin/nvcc", "version": "12.8",
                                     "build": "V12.8.93"}
    assert facts["nccl"]["source"] == "LD_LIBRARY_PATH" and facts["nccl"]["path"] == str(tmp_path / "libnccl.so.2")
    assert replay.calls[0][0] == "/opt/nvidia/bin/nvidia-smi"


def test_nvcc_that_fails_is_reported_not_found(monkeypatch):
    replay = lib.Replay("h100", nvcc=(1, "", "segfault"))
    result, failed = run(monkeypatch, "h100", {"backend": "nvidia_smi"}, replay=replay)
    assert not failed
    assert facts_of(result)["cuda_toolkit"] == {"found": False, "path": lib.NVCC, "version": None, "build": None}


def test_missing_nvcc_path_is_not_found(monkeypatch):
    replay = lib.Replay("h100")
    result, failed = run(monkeypatch, "h100", {"backend": "nvidia_smi", "nvcc_path": "/opt/cuda-13.0/bin/nvcc"},
                         replay=replay, missing_files=("/opt/cuda-13.0/bin/nvcc",))
    assert not failed
    assert facts_of(result)["cuda_toolkit"]["found"] is False
    assert facts_of(result)["cuda_toolkit"]["path"] == "/opt/cuda-13.0/bin/nvcc"
    assert "nvcc --version" not in replay.tools_called()


def test_missing_nvidia_smi_path_is_a_bad_argument(monkeypatch):
    result, failed = run(monkeypatch, "h100", {"nvidia_smi_path": "/opt/nvidia-smi"}, missing_files=("/opt/nvidia-smi",))
    assert failed and result["msg"] == "nvidia_smi_path: /opt/nvidia-smi is not an executable file"


@pytest.mark.parametrize("args, words", [
    ({"backend": "cuda"}, "value of backend must be one of: auto, nvml, nvidia_smi"),
    ({"bogus": 1}, "Unsupported parameters"),
    ({"ld_library_path": "/opt/a"}, None),
])
def test_bad_arguments(monkeypatch, args, words):
    result, failed = run(monkeypatch, "h100", dict(args, backend=args.get("backend", "nvidia_smi")))
    if words is None:
        assert not failed  # a string is split into a list
        return
    assert failed and words in result["msg"]


@pytest.mark.parametrize("name", ALL)
def test_module_through_the_nvidia_smi_test_double(monkeypatch, name):
    """The stand-in nvidia-smi of molecule/gpu_info replays each fixture to the real run_command."""
    monkeypatch.setenv("NVIDIA_SMI_TEST_DOUBLE_FIXTURE", str(lib.FIXTURES / name))
    monkeypatch.setattr(gpu_probe, "import_pynvml", lambda: (None, "absent"))
    args = {"backend": "auto", "nvidia_smi_path": str(TEST_DOUBLE), "nvcc_path": "/nonexistent/nvcc"}
    result, failed = lib.run_module(gpu_info.main, args, monkeypatch)
    assert not failed
    facts = result["ansible_facts"]["blackwell_gpu"]
    expected = lib.meta(name)["expected"]
    assert facts["backend"] == "nvidia_smi"
    assert facts["capabilities"] == expected["capabilities"]
    assert facts["topology"]["interconnect"] == expected["interconnect"]
    assert facts["cuda_driver_version"] == expected["cuda_driver_version"]


def test_test_double_refuses_other_fields(monkeypatch, tmp_path):
    fixture = tmp_path / "fx"
    fixture.mkdir()
    (fixture / "query_gpu.fields").write_text("index,name\n")
    monkeypatch.setenv("NVIDIA_SMI_TEST_DOUBLE_FIXTURE", str(fixture))
    import subprocess
    done = subprocess.run([str(TEST_DOUBLE), "--query-gpu=index,uuid", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    assert done.returncode == 2 and "the fixture holds index,name" in done.stdout
    (fixture / "query_gpu.fields").unlink()
    done = subprocess.run([str(TEST_DOUBLE), "--query-gpu=index", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    assert done.returncode == 6 and "No devices were found" in done.stderr


def test_facts_are_not_shared_between_runs(monkeypatch):
    first, _ = run(monkeypatch, "h100", {"backend": "nvidia_smi"})
    snapshot = copy.deepcopy(facts_of(first))
    facts_of(first)["gpus"].clear()
    second, _ = run(monkeypatch, "h100", {"backend": "nvidia_smi"})
    assert facts_of(second) == snapshot
