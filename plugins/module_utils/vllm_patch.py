# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Source patches for an installed vLLM, and the checks around them. Pure text in, text out.

The sm_121 (GB10) patches (docs/known-problems.md):

* ``cutlass_fp8``: ``cutlass_fp8_supported()`` and ``cutlass_block_fp8_supported()`` in
  ``vllm/model_executor/layers/quantization/utils/w8a8_utils.py`` return False on sm_121.
  Prebuilt CUTLASS FP8 kernels carry no sm_121 code ("Error Internal" at runtime); with the
  functions False, FP8 linear layers fall through to the torch (``torch._scaled_mm``) kernels.
  Module-level constants (``CUTLASS_FP8_SUPPORTED = cutlass_fp8_supported()``, and
  ``CUTLASS_BLOCK_FP8_SUPPORTED``) are computed by the patched functions at import, so they
  are False too.
* ``fp8_moe_triton``: ``select_fp8_moe_backend()`` in
  ``vllm/model_executor/layers/fused_moe/oracle/fp8.py`` returns the Triton backend on sm_121
  when no ``--moe-backend`` was asked for.

Each patch is a block between BEGIN/END marker lines inserted at an anchor. Applying is
idempotent (an up-to-date block is left alone, an outdated one is replaced) and guarded:
when the vLLM version is below the one where the file got this layout, or an anchor is not
found exactly once, the patch is skipped with a reason instead of writing a broken file.
"""

from __future__ import annotations

import re

MARK = "blackwell.vllm"
BEGIN = "# BEGIN %s %s"
END = "# END %s %s"


def parse_version(text):
    """'0.32.0', 'v0.18.1', '0.11.0rc2.dev5+g1234' -> (0, 32, 0). Unknown parts become 0."""
    if text is None:
        raise ValueError("no vLLM version given")
    m = re.match(r"^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        raise ValueError("not a version: %r" % (text,))
    return tuple(int(p or 0) for p in m.groups())


_CUTLASS_BODY = '''\
    # GB10 (sm_121): prebuilt CUTLASS FP8 kernels carry no sm_121 code; use torch/Triton.
    _bw_cap = current_platform.get_device_capability() if current_platform.is_cuda() else None
    if _bw_cap is not None and _bw_cap.to_int() == 121:
        return False
'''

_MOE_BODY = '''\
    # GB10 (sm_121): CUTLASS FP8 MoE kernels fail at runtime; Triton compiles for the GPU.
    _bw_cap = current_platform.get_device_capability() if current_platform.is_cuda() else None
    if config.moe_backend == "auto" and _bw_cap is not None and _bw_cap.to_int() == 121:
        logger.info_once("[vLLM SM_121] Detected GB10 (SM_121) - using Triton backend for MoE layers")
        _bw_backend = (
            Fp8MoeBackend.BATCHED_TRITON
            if activation_format == mk.FusedMoEActivationFormat.BatchedExperts
            else Fp8MoeBackend.TRITON
        )
        return _return_or_raise(_bw_backend, config, weight_key, activation_key, activation_format)
'''

# name -> what, where, since which version the layout holds, what must be in the file, and
# the insertion points: (block id, regex of the anchor line, 'after' or 'before', body).
PATCHES = {
    "cutlass_fp8": {
        "description": "sm_121: cutlass_fp8_supported() and cutlass_block_fp8_supported() return False "
                       "(FP8 linear layers use the torch backend)",
        "path": "vllm/model_executor/layers/quantization/utils/w8a8_utils.py",
        "min_version": (0, 6, 0),
        "requires": [r"^from vllm\.platforms import current_platform$"],
        "inserts": [
            ("sm121-cutlass-fp8", r"^def cutlass_fp8_supported\(\) -> bool:$", "after", _CUTLASS_BODY),
            ("sm121-cutlass-block-fp8", r"^def cutlass_block_fp8_supported\(\) -> bool:$", "after", _CUTLASS_BODY),
        ],
    },
    "fp8_moe_triton": {
        "description": "sm_121: select_fp8_moe_backend() returns the Triton backend (FP8 MoE layers)",
        "path": "vllm/model_executor/layers/fused_moe/oracle/fp8.py",
        "min_version": (0, 14, 0),
        "requires": [
            r"^from vllm\.platforms import current_platform$",
            r"^import vllm\.model_executor\.layers\.fused_moe\.modular_kernel as mk$",
            r"^def select_fp8_moe_backend\($",
            r"^    def _return_or_raise\($",
            r"^    activation_format = \($",
            r"Fp8MoeBackend\.BATCHED_TRITON",
            r"^logger = init_logger",
        ],
        "inserts": [
            ("sm121-fp8-moe-triton", r"^    # Handle explicit moe_backend from user\.$", "before", _MOE_BODY),
        ],
    },
}


def block_lines(block_id, body):
    indent = re.match(r"^(\s*)", body).group(1)
    return ([indent + BEGIN % (MARK, block_id)] + body.rstrip("\n").split("\n")
            + [indent + END % (MARK, block_id)])


def strip_blocks(text):
    """The text without any blackwell.vllm block (the original file, as installed)."""
    out, skipping = [], False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("# BEGIN %s " % MARK):
            skipping = True
            continue
        if stripped.startswith("# END %s " % MARK):
            skipping = False
            continue
        if not skipping:
            out.append(line)
    return "\n".join(out)


def has_blocks(text):
    return ("# BEGIN %s " % MARK) in text


def plan(name, text, version):
    """What applying patch ``name`` to ``text`` of vLLM ``version`` would give.

    Returns a dict: status ('patched' = the text would change, 'ok' = already up to date,
    'skipped'), reason, new_text (for 'patched' and 'ok').
    """
    spec = PATCHES[name]
    vers = parse_version(version)
    if vers < spec["min_version"]:
        return {"status": "skipped", "new_text": None,
                "reason": "vLLM %s is older than %s, where %s got the layout this patch is written for"
                          % (version, ".".join(str(p) for p in spec["min_version"]), spec["path"])}
    original = strip_blocks(text)
    lines = original.split("\n")
    for pattern in spec["requires"]:
        if not any(re.search(pattern, line) for line in lines):
            return {"status": "skipped", "new_text": None,
                    "reason": "%s: layout differs (no line matching %r); not patching" % (spec["path"], pattern)}
    for block_id, pattern, where, body in spec["inserts"]:
        hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
        if len(hits) != 1:
            return {"status": "skipped", "new_text": None,
                    "reason": "%s: layout differs (%d lines match anchor %r, need exactly 1); not patching"
                              % (spec["path"], len(hits), pattern)}
        at = hits[0] + 1 if where == "after" else hits[0]
        lines[at:at] = block_lines(block_id, body)
    new_text = "\n".join(lines)
    return {"status": "ok" if new_text == text else "patched", "new_text": new_text, "reason": None}


def sm_list_from_cuobjdump(text):
    """`cuobjdump --list-elf LIB` output -> sorted unique ['sm_120', 'sm_121', ...].

    Lines look like ``ELF file    1: _C.abi3.1.sm_120.cubin`` (names vary between CUDA versions;
    the sm_XY[a|f] part does not).
    """
    found = set(re.findall(r"\bsm_(\d{2,3}[af]?)\b", text or ""))
    return sorted("sm_" + s for s in found)


def sm_list_from_strings(text):
    """`strings LIB` output (PTX/fatbin headers, '.target sm_120', 'arch sm_120') -> sorted SMs."""
    found = set(re.findall(r"(?:\.target|arch)\s+sm_(\d{2,3}[af]?)\b", text or ""))
    return sorted("sm_" + s for s in found)


def missing_sms(required, found):
    """SMs of ``required`` (['sm_121', ...] or a TORCH_CUDA_ARCH_LIST '12.0f;12.1f') not in ``found``.

    A family/arch-specific build (sm_121a, sm_120f) carries the plain SM too.
    """
    if isinstance(required, str):
        items = [p for p in re.split(r"[;,\s]+", required) if p]
    else:
        items = list(required)
    want = set()
    for item in items:
        item = item.replace("+PTX", "")
        m = re.match(r"^(?:sm_)?(\d+)\.?(\d)?([af]?)$", item)
        if not m:
            raise ValueError("not a capability or SM: %r" % (item,))
        major, minor = (m.group(1), m.group(2)) if m.group(2) is not None else (m.group(1)[:-1], m.group(1)[-1])
        want.add("sm_%s%s" % (major, minor))
    have = set(re.sub(r"[af]$", "", s) for s in found)
    return sorted(want - have)
