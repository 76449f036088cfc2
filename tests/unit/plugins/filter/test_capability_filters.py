"""Filters of plugins/filter/capability.py, and the documentation of every GPU plugin."""

from __future__ import annotations

import ast
import pathlib

import pytest
import yaml

from ansible.errors import AnsibleFilterError

import harness as lib

from ansible_collections.blackwell.vllm.plugins.filter import capability as f
from ansible_collections.blackwell.vllm.plugins.module_utils import gpu_parsers
from ansible_collections.blackwell.vllm.plugins.modules import gpu_info

ROOT = pathlib.Path(__file__).resolve().parents[4]
FILTERS = f.FilterModule().filters()


def facts(monkeypatch, name):
    result, failed = lib.run_gpu_module(gpu_info.main, {"backend": "nvidia_smi"}, monkeypatch, replay=lib.Replay(name))
    assert not failed
    return result["ansible_facts"]["blackwell_gpu"]


def test_filter_names():
    assert sorted(FILTERS) == ["cmake_cuda_architectures", "nvcc_gencode", "serving_defaults", "sm_capability",
                               "torch_cuda_arch_list"]


@pytest.mark.parametrize("value, expected", [
    ("sm_121", "-gencode=arch=compute_121,code=sm_121"),
    ("12.0", "-gencode=arch=compute_120,code=sm_120"),
    (90, "-gencode=arch=compute_90,code=sm_90"),
    (["sm_121", "sm_120", "12.1"], "-gencode=arch=compute_120,code=sm_120 -gencode=arch=compute_121,code=sm_121"),
    ("sm_120;sm_121", "-gencode=arch=compute_120,code=sm_120 -gencode=arch=compute_121,code=sm_121"),
])
def test_nvcc_gencode(value, expected):
    assert f.nvcc_gencode(value) == expected


def test_nvcc_gencode_variants_and_ptx():
    assert f.nvcc_gencode("sm_121", variant="a") == "-gencode=arch=compute_121a,code=sm_121a"
    assert f.nvcc_gencode("sm_90", variant="a") == "-gencode=arch=compute_90a,code=sm_90a"
    assert f.nvcc_gencode(["12.0", "12.1"], ptx=True) == (
        "-gencode=arch=compute_120,code=sm_120 -gencode=arch=compute_121,code=sm_121 "
        "-gencode=arch=compute_121,code=compute_121")
    assert f.nvcc_gencode("sm_121", variant="f") == "-gencode=arch=compute_121f,code=sm_121f"


@pytest.mark.parametrize("value, kwargs, expected", [
    ("sm_120", {}, "12.0"),
    ("sm_121", {}, "12.1"),
    (["sm_120", "sm_121"], {"family": True}, "12.0f;12.1f"),
    ("9.0", {"ptx": True}, "9.0+PTX"),
    (["8.9", "9.0"], {}, "8.9;9.0"),
])
def test_torch_cuda_arch_list(value, kwargs, expected):
    assert f.torch_cuda_arch_list(value, **kwargs) == expected


@pytest.mark.parametrize("value, kwargs, expected", [
    ("sm_121", {}, "121"),
    (["12.0", "12.1"], {}, "120;121"),
    (["12.0", "12.1"], {"variant": "a", "kind": "real"}, "120a-real;121a-real"),
    ("sm_121", {"variant": "f"}, "121f"),
    ("sm_90", {"kind": "virtual"}, "90-virtual"),
])
def test_cmake_cuda_architectures(value, kwargs, expected):
    assert f.cmake_cuda_architectures(value, **kwargs) == expected


@pytest.mark.parametrize("call, message", [
    (lambda: f.nvcc_gencode("blackwell"), "nvcc_gencode: 'blackwell' is not a CUDA compute capability"),
    (lambda: f.nvcc_gencode([]), "nvcc_gencode: no capability given"),
    (lambda: f.nvcc_gencode("sm_121", variant="x"), "variant must be one of '', 'a', 'f', got 'x'"),
    (lambda: f.nvcc_gencode("sm_89", variant="a"), "arch-specific targets (a) exist for capability 9.0 and newer"),
    (lambda: f.torch_cuda_arch_list("sm_90", family=True), "family-specific targets (f) exist for capability 10.0"),
    (lambda: f.cmake_cuda_architectures("sm_121", kind="both"), "kind must be one of '', 'real', 'virtual'"),
    (lambda: f.sm_capability(["sm_120", "sm_121"]), "expected one capability, got 2 (sm_120, sm_121)"),
    (lambda: f.nvcc_gencode({"name": "x"}), "got a dict without 'gpus'"),
    (lambda: f.serving_defaults(["sm_120", "sm_89"]), "GPUs of different capabilities (sm_89, sm_120)"),
    (lambda: f.serving_defaults("sm_120", interconnect="infiniband"), "interconnect must be none, nvlink, pcie or mixed"),
    (lambda: f.nvcc_gencode({"gpus": [{"sm": None}]}), "reports no compute capability"),
])
def test_bad_input_gets_a_clear_error(call, message):
    with pytest.raises(AnsibleFilterError) as err:
        call()
    assert message in str(err.value)


def test_sm_capability():
    assert f.sm_capability("12.1") == "sm_121"
    assert f.sm_capability((9, 0)) == "sm_90"


def test_filters_take_gpu_info_facts(monkeypatch):
    gb10 = facts(monkeypatch, "gb10")
    assert f.sm_capability(gb10) == "sm_121"
    assert f.nvcc_gencode(gb10) == "-gencode=arch=compute_121,code=sm_121"
    assert f.cmake_cuda_architectures(gb10) == "121"
    mixed = facts(monkeypatch, "mixed_5090_4090")
    assert f.torch_cuda_arch_list(mixed) == "8.9;12.0"
    with pytest.raises(AnsibleFilterError, match="hold no GPU"):
        f.nvcc_gencode(gpu_parsers.empty_facts())


def test_serving_defaults_rtx5090_pair_over_pcie(monkeypatch):
    result = f.serving_defaults(facts(monkeypatch, "rtx5090_pair"))
    assert result["capability"] == "sm_120" and result["gpu_count"] == 2 and result["interconnect"] == "pcie"
    assert result["quantization"] == "awq_marlin" and result["attention_backend"] == "FLASHINFER"
    assert result["disable_custom_all_reduce"] is True
    assert result["unified_memory"] is False and result["ray_memory_usage_threshold"] is None
    assert result["torch_cuda_arch_list"] == "12.0"
    assert any("custom all-reduce off" in n for n in result["notes"])


def test_serving_defaults_single_sm_120():
    result = f.serving_defaults("sm_120")
    assert result["disable_custom_all_reduce"] is False and result["interconnect"] == "none"
    assert f.serving_defaults("sm_120", gpu_count=2)["disable_custom_all_reduce"] is True


def test_serving_defaults_gb10(monkeypatch):
    result = f.serving_defaults(facts(monkeypatch, "gb10"))
    assert result["quantization"] == "fp8"
    assert (result["fp8_linear_backend"], result["fp8_moe_backend"]) == ("torch", "triton")
    assert result["unified_memory"] is True and result["ray_memory_usage_threshold"] == 1.0
    assert result["gpu_memory_utilization"] == 0.85
    assert result["torch_cuda_arch_list"] == "12.0f;12.1f"
    assert result["nvcc_gencode"] == "-gencode=arch=compute_121,code=sm_121"
    assert f.serving_defaults("12.1", unified_memory=False)["ray_memory_usage_threshold"] is None


def test_serving_defaults_hopper(monkeypatch):
    nvl = f.serving_defaults(facts(monkeypatch, "h100_nvl_pair"))
    assert nvl["interconnect"] == "nvlink" and nvl["disable_custom_all_reduce"] is False
    assert nvl["quantization"] is None and nvl["attention_backend"] is None and nvl["notes"] == []
    assert f.serving_defaults("sm_90", gpu_count=2, interconnect="pcie")["disable_custom_all_reduce"] is True


# --------------------------------------------------------------------------
# Documentation: every filter has a sidecar, every module documents its arguments
# --------------------------------------------------------------------------

def _descriptions_are_text(node, path):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "short_description", "notes") and not (isinstance(value, dict) and "type" in value):
                # (a dict with a type is a returned field or option that happens to be called so)
                items = value if isinstance(value, list) else [value]
                assert all(isinstance(i, str) for i in items), "%s.%s is not text: %r" % (path, key, value)
            _descriptions_are_text(value, "%s.%s" % (path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _descriptions_are_text(value, "%s[%d]" % (path, index))


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_sidecar_documentation(name):
    doc = yaml.safe_load((ROOT / "plugins" / "filter" / ("%s.yml" % name)).read_text())
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["short_description"] and "_input" in doc["DOCUMENTATION"]["options"]
    assert "blackwell.vllm.%s" % name in doc["EXAMPLES"]
    assert "_value" in doc["RETURN"]
    _descriptions_are_text(doc, name)


def _with_fragments(documentation):
    """The documentation with the collection's own doc fragments merged in, as ansible-doc shows it."""
    for name in documentation.get("extends_documentation_fragment", []):
        namespace, collection, plugin, variable = name.split(".")
        assert (namespace, collection) == ("blackwell", "vllm"), name
        tree = ast.parse((ROOT / "plugins" / "doc_fragments" / ("%s.py" % plugin)).read_text())
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ModuleDocFragment")
        text = next(ast.literal_eval(a.value) for a in cls.body
                    if isinstance(a, ast.Assign) and a.targets[0].id == variable.upper())
        for key, value in yaml.safe_load(text).items():
            documentation.setdefault(key, {}).update(value)
    return documentation


@pytest.mark.parametrize("module", ["gpu_info", "gpu_requirements"])
def test_module_documentation_matches_argument_spec(module):
    source = (ROOT / "plugins" / "modules" / ("%s.py" % module)).read_text()
    tree = ast.parse(source)
    docs = {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body
            if isinstance(t, ast.Assign) and getattr(t.targets[0], "id", "") in ("DOCUMENTATION", "EXAMPLES", "RETURN")}
    documentation = _with_fragments(yaml.safe_load(docs["DOCUMENTATION"]))
    yaml.safe_load(docs["EXAMPLES"])
    returned = yaml.safe_load(docs["RETURN"])
    assert documentation["module"] == module
    assert documentation["attributes"]["check_mode"]["support"] == "full"
    _descriptions_are_text(documentation, module)
    _descriptions_are_text(returned, module)
    spec_call = [n for n in ast.walk(tree) if isinstance(n, ast.keyword) and n.arg == "argument_spec"][0]
    spec_keys = {k.arg for k in spec_call.value.keywords}
    assert spec_keys == set(documentation["options"])
    assert "supports_check_mode=True" in source
