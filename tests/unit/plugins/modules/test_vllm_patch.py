"""modules/vllm_patch: changed / unchanged / check mode / diff / guard / absent / runtime check / failure."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys

import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.modules import vllm_patch as mod

FIX = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "vllm" / "0.32.0"
W8A8 = "vllm/model_executor/layers/quantization/utils/w8a8_utils.py"
FP8 = "vllm/model_executor/layers/fused_moe/oracle/fp8.py"


def run(monkeypatch, args, check_mode=False, diff=False):
    return lib.run_module(mod.main, args, monkeypatch, check_mode=check_mode, diff=diff)


@pytest.fixture
def site(tmp_path):
    """A site-packages with the two real vLLM 0.32.0 files and just enough stubs to import w8a8_utils."""
    sp = tmp_path / "site-packages"
    for rel, src in ((W8A8, FIX / "w8a8_utils.py"), (FP8, FIX / "fp8.py")):
        (sp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, sp / rel)
    for pkg in ("vllm", "vllm/model_executor", "vllm/model_executor/layers", "vllm/model_executor/layers/quantization",
                "vllm/model_executor/layers/quantization/utils", "vllm/model_executor/layers/fused_moe",
                "vllm/model_executor/layers/fused_moe/oracle"):
        (sp / pkg / "__init__.py").touch()
    (sp / "vllm/platforms").mkdir()
    (sp / "vllm/platforms/__init__.py").write_text(
        "class _P:\n"
        "    def is_cuda(self):\n        return False\n"
        "    def get_device_capability(self, device_id=0):\n        return None\n"
        "current_platform = _P()\n")
    (sp / "vllm/_custom_ops.py").write_text(
        "def cutlass_scaled_mm_supports_fp8(c):\n    return True\n"
        "cutlass_scaled_mm_supports_block_fp8 = cutlass_scaled_mm_supports_fp8\n"
        "cutlass_group_gemm_supported = cutlass_scaled_mm_supports_fp8\n")
    (sp / "torch").mkdir()
    (sp / "torch/__init__.py").write_text("class Tensor:\n    pass\n")
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nPYTHONPATH=%s exec %s \"$@\"\n" % (sp, sys.executable))
    python.chmod(0o755)
    return sp, python


def text(sp, rel):
    return (sp / rel).read_text()


def test_applies_then_changes_nothing(monkeypatch, site):
    sp, _ = site
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0"})
    assert not failed and res["changed"]
    assert [p["status"] for p in res["patches"]] == ["patched", "patched"]
    assert "BEGIN blackwell.vllm sm121-cutlass-fp8" in text(sp, W8A8)
    assert "BEGIN blackwell.vllm sm121-fp8-moe-triton" in text(sp, FP8)
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0"})
    assert not failed and not res["changed"]
    assert [p["status"] for p in res["patches"]] == ["ok", "ok"]


def test_check_mode_predicts_and_writes_nothing(monkeypatch, site):
    sp, _ = site
    before = text(sp, W8A8)
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0", "patches": ["cutlass_fp8"]},
                      check_mode=True, diff=True)
    assert not failed and res["changed"]
    assert text(sp, W8A8) == before
    assert res["diff"][0]["before"] == before and "sm121-cutlass-fp8" in res["diff"][0]["after"]


def test_version_guard_skips_with_a_warning(monkeypatch, site):
    sp, _ = site
    before = text(sp, FP8)
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.11.0", "patches": ["fp8_moe_triton"]})
    assert not failed and not res["changed"]
    assert res["skipped"] == ["fp8_moe_triton"]
    assert res["warnings"] and "skipped" in res["warnings"][0]
    assert text(sp, FP8) == before


def test_layout_change_skips_strict_fails(monkeypatch, site):
    sp, _ = site
    (sp / W8A8).write_text(text(sp, W8A8).replace("def cutlass_fp8_supported() -> bool:", "def cutlass_fp8_supported(x):"))
    before = text(sp, W8A8)
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.40.0", "patches": ["cutlass_fp8"]})
    assert not failed and res["skipped"] == ["cutlass_fp8"] and text(sp, W8A8) == before
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.40.0", "patches": ["cutlass_fp8"],
                                    "strict": True})
    assert failed and "does not fit" in res["msg"]


def test_missing_file_is_skipped(monkeypatch, site):
    sp, _ = site
    os.remove(sp / FP8)
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0", "patches": ["fp8_moe_triton"]})
    assert not failed and res["skipped"] == ["fp8_moe_triton"]


def test_absent_restores_the_original(monkeypatch, site):
    sp, _ = site
    original = text(sp, W8A8)
    run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0", "patches": ["cutlass_fp8"]})
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0", "patches": ["cutlass_fp8"],
                                    "state": "absent"})
    assert not failed and res["changed"] and text(sp, W8A8) == original


def test_not_a_vllm_tree_fails(monkeypatch, tmp_path):
    res, failed = run(monkeypatch, {"site_packages": str(tmp_path), "version": "0.32.0"})
    assert failed and "holds no vllm package" in res["msg"]


def test_runtime_check_runs_the_patched_code(monkeypatch, site):
    sp, python = site
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0", "patches": ["cutlass_fp8"],
                                    "python": str(python)})
    assert not failed, res
    rt = res["runtime"]["cutlass_fp8"]
    assert rt["ok"] and rt["file_matches"] and rt["block_in_source"] and rt["returns_false_on_sm121"]


def test_runtime_check_fails_when_another_vllm_runs(monkeypatch, site, tmp_path):
    sp, _ = site
    other = tmp_path / "other"
    shutil.copytree(sp, other)
    python = tmp_path / "python-other"
    python.write_text("#!/bin/sh\nPYTHONPATH=%s exec %s \"$@\"\n" % (other, sys.executable))
    python.chmod(0o755)
    res, failed = run(monkeypatch, {"site_packages": str(sp), "version": "0.32.0", "patches": ["cutlass_fp8"],
                                    "python": str(python)})
    assert failed and "not what runs" in res["msg"]
    assert json.dumps(res["runtime"]["cutlass_fp8"]["file_matches"]) == "false"


def test_runtime_check_result_is_kept_until_what_it_depends_on_changes(monkeypatch, site, tmp_path):
    sp, python = site
    calls = tmp_path / "calls"
    counting = tmp_path / "python-counting"
    counting.write_text("#!/bin/sh\necho x >> %s\nexec %s \"$@\"\n" % (calls, python))
    counting.chmod(0o755)
    args = {"site_packages": str(sp), "version": "0.32.0", "patches": ["cutlass_fp8"], "python": str(counting)}
    first, failed = run(monkeypatch, args)
    assert not failed and first["runtime_check"] == "ran" and first["runtime"]["cutlass_fp8"]["ok"]
    again, failed = run(monkeypatch, args)
    assert not failed and again["runtime_check"] == "cached" and again["runtime"] == first["runtime"]
    assert calls.read_text().count("x") == 1
    # An edit to the patched file (the block left in place) is checked again, not trusted.
    (sp / W8A8).write_text(text(sp, W8A8) + "\n# edited\n")
    edited, failed = run(monkeypatch, args)
    assert not failed and edited["runtime_check"] == "ran"
    assert calls.read_text().count("x") == 2
    # A new .pth file can put another vllm first on the path: checked again.
    (sp / "other.pth").write_text("/nowhere\n")
    res, failed = run(monkeypatch, args)
    assert not failed and res["runtime_check"] == "ran"


def test_check_mode_writes_no_kept_result(monkeypatch, site):
    sp, python = site
    args = {"site_packages": str(sp), "version": "0.32.0", "patches": ["cutlass_fp8"], "python": str(python)}
    run(monkeypatch, args)
    os.remove(sp / mod.CHECK_MARKER)
    res, failed = run(monkeypatch, args, check_mode=True)
    assert not failed and res["runtime_check"] == "ran" and not (sp / mod.CHECK_MARKER).exists()
