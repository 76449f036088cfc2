"""module_utils/vllm_patch: the sm_121 patches on the real vLLM 0.32.0 files, the version and layout guard, SM checks."""

from __future__ import annotations

import pathlib

import pytest

from ansible_collections.blackwell.vllm.plugins.module_utils import vllm_patch as vp

FIX = pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "vllm" / "0.32.0"
W8A8 = (FIX / "w8a8_utils.py").read_text()
FP8 = (FIX / "fp8.py").read_text()
TEXT = {"cutlass_fp8": W8A8, "fp8_moe_triton": FP8}


@pytest.mark.parametrize("name", sorted(vp.PATCHES))
def test_patch_applies_to_the_real_file_and_is_idempotent(name):
    first = vp.plan(name, TEXT[name], "0.32.0")
    assert first["status"] == "patched"
    assert first["new_text"] != TEXT[name]
    again = vp.plan(name, first["new_text"], "0.32.0")
    assert again["status"] == "ok"
    assert again["new_text"] == first["new_text"]
    assert vp.strip_blocks(first["new_text"]) == TEXT[name]


@pytest.mark.parametrize("name", sorted(vp.PATCHES))
def test_patched_file_compiles(name):
    compile(vp.plan(name, TEXT[name], "0.32.0")["new_text"], name, "exec")


def test_cutlass_patch_goes_first_in_both_functions():
    new = vp.plan("cutlass_fp8", W8A8, "0.32.0")["new_text"].split("\n")
    for func, block in (("cutlass_fp8_supported", "sm121-cutlass-fp8"),
                        ("cutlass_block_fp8_supported", "sm121-cutlass-block-fp8")):
        i = new.index("def %s() -> bool:" % func)
        assert new[i + 1] == "    # BEGIN blackwell.vllm %s" % block
        assert "to_int() == 121" in "\n".join(new[i:i + 6])
    # cutlass_group_gemm_supported is not touched
    j = new.index("def cutlass_group_gemm_supported() -> bool:")
    assert "blackwell" not in new[j + 1]


def test_cutlass_patch_returns_false_on_sm121_only():
    """Run the patched function against a fake platform: False on 12.1, the original answer elsewhere."""
    new = vp.plan("cutlass_fp8", W8A8, "0.32.0")["new_text"]
    src = new.split("def per_tensor_dequantize")[0]
    src = src.replace("import torch\n", "").replace("from vllm import _custom_ops as ops\n", "")
    src = src.replace("from vllm.platforms import current_platform\n", "")

    class Cap:
        def __init__(self, v):
            self.v = v

        def to_int(self):
            return self.v

    class Platform:
        cap = 121

        def is_cuda(self):
            return True

        def get_device_capability(self, device_id=0):
            return Cap(self.cap)

    class Ops:
        @staticmethod
        def cutlass_scaled_mm_supports_fp8(cap):
            return True

        cutlass_scaled_mm_supports_block_fp8 = cutlass_scaled_mm_supports_fp8
        cutlass_group_gemm_supported = cutlass_scaled_mm_supports_fp8

    plat = Platform()
    ns = {"current_platform": plat, "ops": Ops}
    exec(compile(src, "w8a8", "exec"), ns)
    assert ns["CUTLASS_BLOCK_FP8_SUPPORTED"] is False  # the module-level constant follows the function
    assert ns["cutlass_fp8_supported"]() is False
    assert ns["cutlass_block_fp8_supported"]() is False
    plat.cap = 120
    assert ns["cutlass_fp8_supported"]() is True
    assert ns["cutlass_block_fp8_supported"]() is True


def test_moe_patch_sits_before_the_user_choice_and_keeps_it():
    new = vp.plan("fp8_moe_triton", FP8, "0.32.0")["new_text"]
    i = new.index("# BEGIN blackwell.vllm sm121-fp8-moe-triton")
    assert new.index("def _return_or_raise(") < i < new.index("# Handle explicit moe_backend from user.")
    assert 'config.moe_backend == "auto"' in new[i:i + 800]


@pytest.mark.parametrize("version", ["0.5.4", "v0.5.0"])
def test_old_versions_are_skipped(version):
    res = vp.plan("cutlass_fp8", W8A8, version)
    assert res["status"] == "skipped" and res["new_text"] is None
    assert "older than 0.6.0" in res["reason"]


def test_moe_patch_skipped_before_the_oracle_layout():
    res = vp.plan("fp8_moe_triton", FP8, "0.11.0")
    assert res["status"] == "skipped"


def test_layout_change_is_skipped_not_corrupted():
    moved = W8A8.replace("def cutlass_fp8_supported() -> bool:", "def cutlass_fp8_supported(device=None) -> bool:")
    res = vp.plan("cutlass_fp8", moved, "0.33.0")
    assert res["status"] == "skipped"
    assert "anchor" in res["reason"] and "0 lines" in res["reason"]


def test_duplicate_anchor_is_skipped():
    doubled = W8A8 + "\n\ndef cutlass_fp8_supported() -> bool:\n    return True\n"
    assert vp.plan("cutlass_fp8", doubled, "0.32.0")["status"] == "skipped"


def test_missing_required_import_is_skipped():
    res = vp.plan("fp8_moe_triton", FP8.replace("from vllm.platforms import current_platform\n", ""), "0.32.0")
    assert res["status"] == "skipped" and "current_platform" in res["reason"]


def test_outdated_block_is_replaced():
    new = vp.plan("cutlass_fp8", W8A8, "0.32.0")["new_text"]
    stale = new.replace("to_int() == 121", "to_int() == 999", 1)
    res = vp.plan("cutlass_fp8", stale, "0.32.0")
    assert res["status"] == "patched" and res["new_text"] == new


@pytest.mark.parametrize("text,expected", [
    ("0.32.0", (0, 32, 0)), ("v0.18.1", (0, 18, 1)), ("0.11.0rc2.dev5+g1234", (0, 11, 0)), ("1", (1, 0, 0)),
])
def test_parse_version(text, expected):
    assert vp.parse_version(text) == expected


def test_parse_version_rejects_garbage():
    with pytest.raises(ValueError):
        vp.parse_version("main")


CUOBJDUMP = """
ELF file    1: _C.abi3.1.sm_120.cubin
ELF file    2: _C.abi3.2.sm_120.cubin
ELF file    3: _C.abi3.3.sm_121a.cubin
"""


def test_sm_list_from_cuobjdump():
    assert vp.sm_list_from_cuobjdump(CUOBJDUMP) == ["sm_120", "sm_121a"]
    assert vp.sm_list_from_cuobjdump("") == []


def test_sm_list_from_strings():
    assert vp.sm_list_from_strings(".target sm_120\narch sm_121\nnothing sm_90") == ["sm_120", "sm_121"]


@pytest.mark.parametrize("required,found,missing", [
    ("12.0f;12.1f", ["sm_120", "sm_121a"], []),
    ("12.0;12.1", ["sm_120"], ["sm_121"]),
    ("12.1+PTX", [], ["sm_121"]),
    (["sm_121"], ["sm_121"], []),
    (["sm_120", "sm_121"], ["sm_100"], ["sm_120", "sm_121"]),
])
def test_missing_sms(required, found, missing):
    assert vp.missing_sms(required, found) == missing


def test_missing_sms_rejects_garbage():
    with pytest.raises(ValueError):
        vp.missing_sms("twelve", [])
