# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""CUDA compute capabilities and versions: parsing and normalising (sm_121, 12.1, 121), comparing versions.

Pure functions, no host access.
"""

from __future__ import annotations

import re

# The first driver branch whose driver API reaches a CUDA version.
CUDA_DRIVER_BRANCH = (
    ("13.0", "580"),
    ("12.9", "575"),
    ("12.8", "570"),
    ("12.6", "560"),
    ("12.4", "550"),
    ("12.2", "535"),
    ("12.0", "525"),
    ("11.8", "520"),
)

_CAP_SM_RE = re.compile(r"^(?:sm|compute)_?(\d{2,3})$", re.IGNORECASE)
_CAP_DOTTED_RE = re.compile(r"^(\d{1,2})\.(\d)$")
_CAP_DIGITS_RE = re.compile(r"^(\d{2,3})$")


def capability_parts(value):
    """Return (major, minor) for a capability given as sm_121, compute_121, 12.1, 121 or (12, 1).

    Raises ValueError with a message naming the accepted forms.
    """
    if isinstance(value, (tuple, list)) and len(value) == 2:
        try:
            major, minor = int(value[0]), int(value[1])
        except (TypeError, ValueError):
            major = minor = -1
        if 3 <= major < 100 and 0 <= minor < 10:
            return major, minor
    elif isinstance(value, bool):
        pass
    elif isinstance(value, (int, float, str)):
        text = str(value).strip()
        match = _CAP_SM_RE.match(text) or _CAP_DIGITS_RE.match(text)
        if match:
            digits = match.group(1)
            major, minor = int(digits[:-1]), int(digits[-1])
        else:
            match = _CAP_DOTTED_RE.match(text)
            major, minor = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        # Capabilities below 3.0 are long gone from CUDA; "12" is more likely 12.x than 1.2.
        if major >= 3:
            return major, minor
    raise ValueError(
        "%r is not a CUDA compute capability; write it as sm_121, 12.1 or 121" % (value,)
    )


def normalize_capability(value):
    """Return the sm_XY form (sm_90, sm_120, sm_121) of a capability."""
    major, minor = capability_parts(value)
    return "sm_%d%d" % (major, minor)


def capability_dotted(value):
    """Return the dotted form (9.0, 12.0, 12.1) of a capability."""
    major, minor = capability_parts(value)
    return "%d.%d" % (major, minor)


def version_tuple(value):
    """Turn '580.159.04', '13.0', 'V13.0.88' or 580 into a tuple of ints; None stays None."""
    if value is None:
        return None
    text = str(value).strip().lstrip("vV")
    if not re.match(r"^\d+(\.\d+)*$", text):
        raise ValueError("%r is not a version such as 580, 12.8 or 580.95.05" % (value,))
    return tuple(int(part) for part in text.split("."))


def version_ge(have, need):
    """True when version `have` >= `need`, comparing component-wise (missing parts are 0)."""
    left, right = list(version_tuple(have)), list(version_tuple(need))
    width = max(len(left), len(right))
    left += [0] * (width - len(left))
    right += [0] * (width - len(right))
    return left >= right


def driver_branch_for_cuda(cuda_version):
    """The first driver branch whose driver API reaches `cuda_version` (None if unknown)."""
    for cuda, branch in reversed(CUDA_DRIVER_BRANCH):
        if version_ge(cuda, cuda_version):
            return branch
    return None


def cuda_from_driver_int(value):
    """NVML's nvmlSystemGetCudaDriverVersion: 13000 -> '13.0', 12080 -> '12.8'."""
    value = int(value)
    return "%d.%d" % (value // 1000, (value % 1000) // 10)
