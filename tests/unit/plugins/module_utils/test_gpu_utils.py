"""Parsing and capability helpers of plugins/module_utils (capability, gpu_parsers, gpu_requirements), over the recorded and reconstructed fixtures."""

from __future__ import annotations


import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.module_utils import capability, gpu_parsers, gpu_requirements, hardware_profiles

ALL = lib.fixture_names()
WITH_TOPO = [n for n in ALL if lib.read(n, "topo_m.txt")]


def test_fixture_set_is_complete_and_labelled():
    assert {"h100", "gb10", "rtx5090_pair", "rtx_pro_6000", "rtx5060ti_pair"} <= set(ALL)
    for name in ALL:
        meta = lib.meta(name)
        assert meta["provenance"] in ("recorded", "reconstructed"), name
        assert meta["device"], name
        if meta["provenance"] == "recorded":
            assert meta["date"] and meta["recorded_with"], name
        else:
            assert meta["sources"] and "Not read from" in meta["notes"], name
        assert lib.read(name, "query_gpu.fields").strip() == ",".join(gpu_parsers.QUERY_FIELDS), name
    assert lib.meta("h100")["provenance"] == "recorded"


@pytest.mark.parametrize("value, sm, dotted", [
    ("sm_121", "sm_121", "12.1"),
    ("SM_120", "sm_120", "12.0"),
    ("sm120", "sm_120", "12.0"),
    ("compute_90", "sm_90", "9.0"),
    ("12.1", "sm_121", "12.1"),
    ("9.0", "sm_90", "9.0"),
    ("121", "sm_121", "12.1"),
    (100, "sm_100", "10.0"),
    (12.0, "sm_120", "12.0"),
    ((12, 1), "sm_121", "12.1"),
    ([8, 9], "sm_89", "8.9"),
])
def test_capability_forms(value, sm, dotted):
    assert capability.normalize_capability(value) == sm
    assert capability.capability_dotted(value) == dotted


@pytest.mark.parametrize("value", ["blackwell", "sm_", "12", "12.10", "1.2.3", "", None, True, (12,), ("a", "b"), "sm_121a"])
def test_capability_rejects_with_the_accepted_forms(value):
    with pytest.raises(ValueError, match="not a CUDA compute capability; write it as sm_121, 12.1 or 121"):
        capability.capability_parts(value)


def test_versions():
    assert capability.version_tuple("580.159.04") == (580, 159, 4)
    assert capability.version_tuple("V13.0.88") == (13, 0, 88)
    assert capability.version_tuple(None) is None
    assert capability.version_ge("580.95.05", "580")
    assert capability.version_ge("13.0", "13")
    assert not capability.version_ge("12.8", "13.0")
    assert capability.version_ge("12.10", "12.9")
    assert not capability.version_ge("570.133.07", "580")
    with pytest.raises(ValueError, match="not a version"):
        capability.version_tuple("latest")


@pytest.mark.parametrize("cuda, branch", [("13.0", "580"), ("12.8", "570"), ("12.9", "575"), ("12.5", "560"),
                                          ("11.8", "520"), ("14.0", None)])
def test_driver_branch_for_cuda(cuda, branch):
    assert capability.driver_branch_for_cuda(cuda) == branch


def test_cuda_from_driver_int():
    assert capability.cuda_from_driver_int(13000) == "13.0"
    assert capability.cuda_from_driver_int(12080) == "12.8"


@pytest.mark.parametrize("name", ALL)
def test_query_csv_of_each_fixture(name):
    expected = lib.meta(name)["expected"]
    gpus, driver = gpu_parsers.parse_query_gpu_csv(lib.read(name, "query_gpu.csv"))
    assert len(gpus) == expected["gpu_count"]
    assert driver == expected["driver_version"]
    assert sorted({g["sm"] for g in gpus}, key=capability.capability_parts) == expected["capabilities"]
    assert gpus[0]["memory_total_mib"] == expected.get("memory_total_mib")
    assert any(g["unified_memory"] for g in gpus) == expected["unified_memory"]
    assert [g["index"] for g in gpus] == list(range(len(gpus)))
    for g in gpus:
        assert g["uuid"].startswith("GPU-")
        assert g["sm"] == "sm_%d%d" % (g["capability_major"], g["capability_minor"])


def test_query_csv_h100_recorded_values():
    gpus, driver = gpu_parsers.parse_query_gpu_csv(lib.read("h100", "query_gpu.csv"))
    assert gpus == [{
        "index": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-2e5f1953-f58a-2341-600a-5679ea62f47e",
        "pci_bus_id": "00000000:00:06.0", "compute_capability": "9.0", "capability_major": 9,
        "capability_minor": 0, "sm": "sm_90", "memory_total_mib": 81559, "unified_memory": False,
        "persistence_mode": True, "pcie": {"gen_max": 5, "width_max": 16, "gen_current": 5, "width_current": 16},
    }]
    assert driver == "580.159.04"


def test_query_csv_gb10_reports_no_memory_and_no_pcie():
    (g10,), driver = gpu_parsers.parse_query_gpu_csv(lib.read("gb10", "query_gpu.csv"))
    assert g10["sm"] == "sm_121" and g10["memory_total_mib"] is None and g10["unified_memory"] is True
    assert g10["pcie"] == {"gen_max": None, "width_max": None, "gen_current": None, "width_current": None}


def test_query_csv_errors_name_the_line():
    with pytest.raises(gpu_parsers.GpuParseError, match="line 1 has 3 fields, expected 12"):
        gpu_parsers.parse_query_gpu_csv("0, NVIDIA H100, GPU-1\n")
    row = lib.read("h100", "query_gpu.csv").replace("0, NVIDIA", "[N/A], NVIDIA")
    with pytest.raises(gpu_parsers.GpuParseError, match="line 1 has no GPU index"):
        gpu_parsers.parse_query_gpu_csv(row)
    row = lib.read("h100", "query_gpu.csv").replace(", 9.0,", ", nine,")
    with pytest.raises(gpu_parsers.GpuParseError, match="line 1: 'nine' is not a CUDA compute capability"):
        gpu_parsers.parse_query_gpu_csv(row)
    assert gpu_parsers.parse_query_gpu_csv("\n") == ([], None)


@pytest.mark.parametrize("name", ALL)
def test_smi_version_of_each_fixture(name):
    expected = lib.meta(name)["expected"]
    parsed = gpu_parsers.parse_smi_version(lib.read(name, "smi_version.txt"))
    assert parsed["driver_version"] == expected["driver_version"]
    assert parsed["cuda_driver_version"] == expected["cuda_driver_version"]
    assert parsed["nvml_version"]


def test_smi_banner_of_plain_nvidia_smi():
    parsed = gpu_parsers.parse_smi_version(lib.read("h100", "smi.txt"))
    assert parsed == {"driver_version": "580.159.04", "cuda_driver_version": "13.0", "nvml_version": None}
    assert gpu_parsers.parse_smi_version("nothing here") == {"driver_version": None, "cuda_driver_version": None,
                                                      "nvml_version": None}


def test_topo_recorded_single_gpu():
    assert gpu_parsers.parse_topo_matrix(lib.read("h100", "topo_m.txt")) == {"GPU0": {"GPU0": "X"}}


@pytest.mark.parametrize("name", WITH_TOPO)
def test_topo_of_each_fixture(name):
    expected = lib.meta(name)["expected"]
    matrix = gpu_parsers.parse_topo_matrix(lib.read(name, "topo_m.txt"))
    assert sorted(matrix) == ["GPU%d" % i for i in range(expected["gpu_count"])]
    summary = gpu_parsers.summarize_topology(matrix, range(expected["gpu_count"]))
    assert summary["interconnect"] == expected["interconnect"]


def test_topo_nvlink_pair_with_nic_columns():
    matrix = gpu_parsers.parse_topo_matrix(lib.read("h100_nvl_pair", "topo_m.txt"))
    assert matrix == {"GPU0": {"GPU0": "X", "GPU1": "NV12"}, "GPU1": {"GPU0": "NV12", "GPU1": "X"}}
    summary = gpu_parsers.summarize_topology(matrix, [0, 1])
    assert summary == {"interconnect": "nvlink", "pcie_only": False,
                       "pairs": [{"gpus": [0, 1], "link": "NV12", "nvlink": True}]}


def test_topo_pcie_pair_seed_000():
    summary = gpu_parsers.summarize_topology(gpu_parsers.parse_topo_matrix(lib.read("rtx5090_pair", "topo_m.txt")), [0, 1])
    assert summary == {"interconnect": "pcie", "pcie_only": True,
                       "pairs": [{"gpus": [0, 1], "link": "NODE", "nvlink": False}]}


def test_topo_space_separated_and_mixed():
    text = ("        GPU0    GPU1    GPU2    CPU Affinity    NUMA Affinity\n"
            "GPU0     X      NV4     SYS     0-7     0\n"
            "GPU1    NV4      X      PIX     0-7     0\n"
            "GPU2    SYS     PIX      X      0-7     0\n")
    matrix = gpu_parsers.parse_topo_matrix(text)
    summary = gpu_parsers.summarize_topology(matrix, [0, 1, 2])
    assert summary["interconnect"] == "mixed"
    assert [p["link"] for p in summary["pairs"]] == ["NV4", "SYS", "PIX"]
    assert gpu_parsers.summarize_topology({}, [0])["interconnect"] == "none"


def test_topo_unreadable():
    with pytest.raises(gpu_parsers.GpuParseError, match="no GPU header"):
        gpu_parsers.parse_topo_matrix("something else entirely\n")
    with pytest.raises(gpu_parsers.GpuParseError, match="printed nothing"):
        gpu_parsers.parse_topo_matrix("\n\n")


@pytest.mark.parametrize("name", ALL)
def test_nvcc_of_each_fixture(name):
    parsed = gpu_parsers.parse_nvcc_version(lib.read(name, "nvcc_version.txt"))
    assert parsed["version"] == lib.meta(name)["expected"]["nvcc"]
    assert parsed["build"].startswith("V" + parsed["version"])


def test_nvcc_unreadable():
    with pytest.raises(gpu_parsers.GpuParseError, match="no 'release X.Y' line"):
        gpu_parsers.parse_nvcc_version("bash: nvcc: command not found")


@pytest.mark.parametrize("name", ALL)
def test_nccl_resolution_of_each_fixture(name):
    meta = lib.meta(name)
    machine = "aarch64" if "AArch64" in lib.read(name, "ldconfig_p.txt") else "x86_64"
    realpaths = meta.get("realpaths") or {}
    result = gpu_parsers.resolve_library(lib.read(name, "ldconfig_p.txt"), [], machine=machine,
                                 realpath=lambda p: realpaths.get(p, p))
    assert result["path"] == meta["expected"]["nccl_path"]
    assert result["found"] == (meta["expected"]["nccl_path"] is not None)
    assert result["version"] == meta["expected"].get("nccl_version")
    if result["found"]:
        assert result["source"] == "ldconfig"


def test_nccl_ld_library_path_wins(tmp_path):
    lib_dir = tmp_path / "nccl" / "lib"
    lib_dir.mkdir(parents=True)
    (lib_dir / "libnccl.so.2.28.9").write_text("")
    (lib_dir / "libnccl.so.2").symlink_to("libnccl.so.2.28.9")
    result = gpu_parsers.resolve_library(lib.read("h100", "ldconfig_p.txt"), ["", str(tmp_path / "empty"), str(lib_dir)],
                                 machine="x86_64")
    assert result["source"] == "LD_LIBRARY_PATH"
    assert result["path"] == str(lib_dir / "libnccl.so.2")
    assert result["version"] == "2.28.9"
    assert result["candidates"] == [str(lib_dir / "libnccl.so.2"), "/lib/x86_64-linux-gnu/libnccl.so.2"]


def test_nccl_skips_other_architectures():
    text = ("3 libs found in cache `/etc/ld.so.cache'\n"
            "\tlibnccl.so.2 (libc6) => /lib/i386-linux-gnu/libnccl.so.2\n"
            "\tlibnccl.so.2 (libc6,x86-64) => /opt/nccl/lib/libnccl.so.2.27.7\n")
    result = gpu_parsers.resolve_library(text, [], machine="x86_64", realpath=lambda p: p)
    assert result["path"] == "/opt/nccl/lib/libnccl.so.2.27.7" and result["version"] == "2.27.7"
    assert result["candidates"] == ["/opt/nccl/lib/libnccl.so.2.27.7"]
    assert gpu_parsers.resolve_library("", None, machine="x86_64")["found"] is False


def test_host_summary_and_profiles():
    gpus, driver = gpu_parsers.parse_query_gpu_csv(lib.read("mixed_5090_4090", "query_gpu.csv"))
    facts = gpu_parsers.empty_facts("nvidia_smi")
    facts.update(gpus=gpus, driver_version=driver)
    gpu_parsers.host_summary(facts)
    assert facts["capabilities"] == ["sm_89", "sm_120"] and facts["capability"] is None
    assert facts["driver_branch"] == 575 and facts["gpu_count"] == 2
    assert hardware_profiles.allowing("sm_121") == ["blackwell", "gb10"]
    assert hardware_profiles.allowing("sm_90") == ["hopper"]
    for name, profile in hardware_profiles.PROFILES.items():
        assert set(profile) == set(hardware_profiles.FIELDS), name
        assert set(gpu_requirements.profile_requirements(name)) == set(gpu_requirements.PROFILE_KEYS)
        for cap in profile["allowed_capabilities"]:
            assert capability.normalize_capability(cap) == cap and cap in gpu_requirements.CAPABILITY_NEEDS
    assert hardware_profiles.PROFILES["lab_cpu"]["min_gpus"] == 0


def test_host_summary_with_an_odd_driver_version():
    gpus, driver = gpu_parsers.parse_query_gpu_csv(lib.read("h100", "query_gpu.csv").replace("580.159.04", "r580_00"))
    facts = gpu_parsers.empty_facts("nvidia_smi")
    facts.update(gpus=gpus, driver_version=driver)
    assert gpu_parsers.host_summary(facts)["driver_branch"] is None
    assert gpu_parsers.host_summary(gpu_parsers.empty_facts())["driver_branch"] is None


def test_validate_facts():
    with pytest.raises(ValueError, match="got list"):
        gpu_requirements.validate_facts([])
    with pytest.raises(ValueError, match="missing key 'gpus'"):
        gpu_requirements.validate_facts({"gpu_count": 0})
    gpu_requirements.validate_facts(gpu_parsers.empty_facts())
