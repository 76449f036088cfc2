# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Shared GPU probing and parsing for blackwell.vllm.

Everything here is pure parsing (text in, dicts out) except the ``probe_*``
functions, which take an ``AnsibleModule`` and read the host through
``module.run_command`` and, where it imports, NVML (nvidia-ml-py).

The facts layout (``ansible_facts.blackwell_gpu``) is built by ``probe`` and
documented in ``plugins/modules/gpu_info.py`` (RETURN) and ``docs/gpu.md``.
"""

from __future__ import annotations

import csv
import os
import platform
import re
import time

FACTS_NAME = "blackwell_gpu"

# Fields asked of `nvidia-smi --query-gpu=...`, in this order.
QUERY_FIELDS = (
    "index",
    "name",
    "uuid",
    "pci.bus_id",
    "compute_cap",
    "memory.total",
    "persistence_mode",
    "pcie.link.gen.max",
    "pcie.link.width.max",
    "pcie.link.gen.current",
    "pcie.link.width.current",
    "driver_version",
)

NVIDIA_SMI_QUERY_ARGS = (
    "--query-gpu=" + ",".join(QUERY_FIELDS),
    "--format=csv,noheader,nounits",
)

# What each capability needs: the first CUDA toolkit that can compile for it
# and the first driver branch that runs it. Blackwell: sm_120 (RTX 50xx, RTX PRO
# 6000) arrived with CUDA 12.8 / driver 570; sm_121 (GB10, DGX Spark) is built by
# CUDA 13.0, which needs driver 580.
CAPABILITY_NEEDS = {
    "sm_80": {"cuda": "11.0", "driver": "450"},
    "sm_86": {"cuda": "11.1", "driver": "455"},
    "sm_89": {"cuda": "11.8", "driver": "520"},
    "sm_90": {"cuda": "11.8", "driver": "520"},
    "sm_100": {"cuda": "12.8", "driver": "570"},
    "sm_103": {"cuda": "12.9", "driver": "575"},
    "sm_120": {"cuda": "12.8", "driver": "570"},
    "sm_121": {"cuda": "13.0", "driver": "580"},
}

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

# Named profiles for gpu_requirements. Roles pass `profile: gb10`; explicit
# options override a profile's values. An empty allowed_capabilities allows any.
PROFILES = {
    "gb10": {
        "description": "NVIDIA DGX Spark GB10 (sm_121, unified memory)",
        "allowed_capabilities": ["sm_121"],
        "min_driver": "580",
        "min_gpus": 1,
        "uniform_capability": True,
        "require_toolkit": True,
    },
    "rtx5090": {
        "description": "GeForce RTX 5090 (sm_120, 32 GB)",
        "allowed_capabilities": ["sm_120"],
        "min_driver": "570",
        "min_gpus": 1,
        "uniform_capability": True,
        "require_toolkit": True,
    },
    "rtx5090_pair": {
        "description": "two GeForce RTX 5090 on PCIe, TP=2 (sm_120)",
        "allowed_capabilities": ["sm_120"],
        "min_driver": "570",
        "min_gpus": 2,
        "uniform_capability": True,
        "require_toolkit": True,
    },
    "rtx_pro_6000": {
        "description": "RTX PRO 6000 Blackwell (sm_120, 96 GB)",
        "allowed_capabilities": ["sm_120"],
        "min_driver": "570",
        "min_gpus": 1,
        "uniform_capability": True,
        "require_toolkit": True,
    },
    "rtx5060ti": {
        "description": "GeForce RTX 5060 Ti (sm_120, 16 GB)",
        "allowed_capabilities": ["sm_120"],
        "min_driver": "570",
        "min_gpus": 1,
        "uniform_capability": True,
        "require_toolkit": True,
    },
    "blackwell": {
        "description": "any Blackwell this collection serves on (sm_120 or sm_121)",
        "allowed_capabilities": ["sm_120", "sm_121"],
        "min_driver": "570",
        "min_gpus": 1,
        "uniform_capability": True,
        "require_toolkit": True,
    },
    "hopper": {
        "description": "H100/H200 (sm_90), the development GPU machine",
        "allowed_capabilities": ["sm_90"],
        "min_driver": "535",
        "min_gpus": 1,
        "uniform_capability": True,
        "require_toolkit": True,
    },
    "lab_cpu": {
        "description": "lab node without GPU (containers standing in for DGX nodes)",
        "allowed_capabilities": [],
        "min_driver": None,
        "min_gpus": 0,
        "uniform_capability": True,
        "require_toolkit": False,
    },
}

_NA_RE = re.compile(r"^\[.*\]$")  # [N/A], [Not Supported], [Unknown Error]
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CAP_SM_RE = re.compile(r"^(?:sm|compute)_?(\d{2,3})$", re.IGNORECASE)
_CAP_DOTTED_RE = re.compile(r"^(\d{1,2})\.(\d)$")
_CAP_DIGITS_RE = re.compile(r"^(\d{2,3})$")


class GpuParseError(ValueError):
    """Output of a GPU tool that this code cannot read."""


# --------------------------------------------------------------------------
# Capabilities and versions
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Parsers (text in, data out)
# --------------------------------------------------------------------------

def _cell(value):
    value = value.strip()
    if not value or _NA_RE.match(value):
        return None
    return value


def _int_cell(value):
    value = _cell(value)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def _bool_cell(value):
    value = _cell(value)
    if value is None:
        return None
    return value.lower() in ("enabled", "on", "1", "yes", "true")


def make_gpu(index, name, uuid, pci_bus_id, capability, memory_total_mib, persistence_mode,
             pcie_gen_max, pcie_width_max, pcie_gen_current, pcie_width_current):
    """One GPU's facts, the same for both backends."""
    sm = major = minor = dotted = None
    if capability is not None:
        major, minor = capability_parts(capability)
        sm = "sm_%d%d" % (major, minor)
        dotted = "%d.%d" % (major, minor)
    return {
        "index": index,
        "name": name,
        "uuid": uuid,
        "pci_bus_id": pci_bus_id,
        "compute_capability": dotted,
        "capability_major": major,
        "capability_minor": minor,
        "sm": sm,
        "memory_total_mib": memory_total_mib,
        # GB10 reports no memory of its own (nvidia-smi: [N/A], NVML: NotSupported):
        # its GPU shares the host's LPDDR5X.
        "unified_memory": memory_total_mib is None,
        "persistence_mode": persistence_mode,
        "pcie": {
            "gen_max": pcie_gen_max,
            "width_max": pcie_width_max,
            "gen_current": pcie_gen_current,
            "width_current": pcie_width_current,
        },
    }


def parse_query_gpu_csv(text):
    """Parse `nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits`.

    Returns (gpus, driver_version).
    """
    gpus = []
    driver = None
    rows = [row for row in csv.reader(text.splitlines(), skipinitialspace=True) if row and any(c.strip() for c in row)]
    for number, row in enumerate(rows, start=1):
        if len(row) != len(QUERY_FIELDS):
            raise GpuParseError(
                "nvidia-smi line %d has %d fields, expected %d (%s): %r"
                % (number, len(row), len(QUERY_FIELDS), ",".join(QUERY_FIELDS), ",".join(row))
            )
        cells = dict(zip(QUERY_FIELDS, row))
        index = _int_cell(cells["index"])
        if index is None:
            raise GpuParseError("nvidia-smi line %d has no GPU index: %r" % (number, ",".join(row)))
        capability = _cell(cells["compute_cap"])
        try:
            gpu = make_gpu(
                index=index,
                name=_cell(cells["name"]),
                uuid=_cell(cells["uuid"]),
                pci_bus_id=_cell(cells["pci.bus_id"]),
                capability=capability,
                memory_total_mib=_int_cell(cells["memory.total"]),
                persistence_mode=_bool_cell(cells["persistence_mode"]),
                pcie_gen_max=_int_cell(cells["pcie.link.gen.max"]),
                pcie_width_max=_int_cell(cells["pcie.link.width.max"]),
                pcie_gen_current=_int_cell(cells["pcie.link.gen.current"]),
                pcie_width_current=_int_cell(cells["pcie.link.width.current"]),
            )
        except ValueError as exc:
            raise GpuParseError("nvidia-smi line %d: %s" % (number, exc))
        gpus.append(gpu)
        driver = driver or _cell(cells["driver_version"])
    gpus.sort(key=lambda g: g["index"])
    return gpus, driver


def parse_smi_version(text):
    """Read driver and CUDA versions from `nvidia-smi --version` or the plain `nvidia-smi` banner.

    Returns a dict with driver_version, cuda_driver_version, nvml_version (None where absent).
    """
    result = {"driver_version": None, "cuda_driver_version": None, "nvml_version": None}
    patterns = {
        "driver_version": r"DRIVER version\s*:\s*([\d.]+)|Driver Version:\s*([\d.]+)",
        "cuda_driver_version": r"CUDA Version\s*:\s*([\d.]+)",
        "nvml_version": r"NVML version\s*:\s*([\d.]+)",
    }
    for key, pattern in patterns.items():
        match = re.search(pattern, text, re.IGNORECASE)
        if match:
            result[key] = next(group for group in match.groups() if group)
    return result


def _split_topo_line(line):
    if "\t" in line:
        return [cell.strip() for cell in line.split("\t")]
    return [cell.strip() for cell in re.split(r"\s{2,}", line)]


def parse_topo_matrix(text):
    """Parse `nvidia-smi topo -m` into {'GPU0': {'GPU1': 'NV18', ...}, ...} (GPU columns only)."""
    lines = [_ANSI_RE.sub("", line).rstrip() for line in text.splitlines()]
    header = None
    matrix = {}
    for line in lines:
        if not line.strip():
            if header is not None and matrix:
                break
            continue
        if line.strip().startswith("Legend"):
            break
        if header is None:
            header = [cell for cell in _split_topo_line(line) if cell]
            if not header or not header[0].startswith(("GPU", "NIC")):
                raise GpuParseError("nvidia-smi topo -m: no GPU header in %r" % line)
            continue
        cells = _split_topo_line(line)
        label = cells[0]
        if not re.match(r"^GPU\d+$", label):
            continue
        values = cells[1:]
        row = {}
        for column, value in zip(header, values):
            if re.match(r"^GPU\d+$", column):
                row[column] = value
        matrix[label] = row
    if header is None:
        raise GpuParseError("nvidia-smi topo -m printed nothing to read")
    return matrix


def link_is_nvlink(link):
    return bool(link) and bool(re.match(r"^NV\d+$", link))


def summarize_topology(matrix, gpu_indexes):
    """Pairs and the kind of interconnect between the GPUs.

    interconnect: none (fewer than 2 GPUs), nvlink (every pair over NVLink),
    pcie (no pair over NVLink: P2P goes over PCIe or the host), mixed.
    """
    pairs = []
    indexes = sorted(gpu_indexes)
    for pos, first in enumerate(indexes):
        for second in indexes[pos + 1:]:
            link = (matrix.get("GPU%d" % first) or {}).get("GPU%d" % second)
            pairs.append({"gpus": [first, second], "link": link, "nvlink": link_is_nvlink(link)})
    if len(indexes) < 2:
        interconnect = "none"
    elif all(pair["nvlink"] for pair in pairs):
        interconnect = "nvlink"
    elif not any(pair["nvlink"] for pair in pairs):
        interconnect = "pcie"
    else:
        interconnect = "mixed"
    return {
        "interconnect": interconnect,
        "pcie_only": interconnect == "pcie",
        "pairs": pairs,
    }


def parse_nvcc_version(text):
    """`nvcc --version` -> {'version': '13.0', 'build': 'V13.0.88'}; raises if there is no release line."""
    match = re.search(r"release\s+(\d+\.\d+)\s*,\s*(V[\d.]+)?", text)
    if not match:
        raise GpuParseError("nvcc --version printed no 'release X.Y' line: %r" % text.strip()[-200:])
    return {"version": match.group(1), "build": match.group(2)}


def parse_ldconfig(text, name="libnccl.so.2"):
    """Entries of `ldconfig -p` for one soname: [{'path': ..., 'flags': 'libc6,x86-64'}, ...]."""
    entries = []
    pattern = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s*(?:OS ABI:[^=]*)?=>\s*(\S+)\s*$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match and match.group(1) == name:
            entries.append({"path": match.group(3), "flags": match.group(2)})
    return entries


def _arch_flag(machine):
    return {"x86_64": "x86-64", "aarch64": "AArch64", "arm64": "AArch64"}.get(machine)


def _machine():
    return platform.machine()


def _realpath(path):
    return os.path.realpath(path)


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def nccl_version_from_path(path):
    match = re.search(r"libnccl\.so\.(\d+\.\d+\.\d+)$", path or "")
    return match.group(1) if match else None


def resolve_library(ldconfig_text, ld_library_path=None, name="libnccl.so.2", machine=None,
                    isfile=None, realpath=None):
    """Which file the dynamic loader would open for `name`.

    The loader looks in LD_LIBRARY_PATH first, then in the ld.so cache (`ldconfig -p`),
    taking the cache's first entry built for this machine. (A binary's own RUNPATH, as
    PyTorch's wheels use for their bundled NCCL, is not seen here.)
    """
    machine = machine or platform.machine()
    isfile = isfile or os.path.isfile
    realpath = realpath or os.path.realpath
    candidates = []
    for directory in ld_library_path or []:
        if not directory:
            continue
        path = os.path.join(directory, name)
        if isfile(path):
            candidates.append({"path": path, "source": "LD_LIBRARY_PATH"})
    arch = _arch_flag(machine)
    cache = parse_ldconfig(ldconfig_text or "", name)
    native = [entry for entry in cache if arch and arch in entry["flags"].split(",")]
    # A cache without this machine's flag (an odd libc): take its entries as they come.
    for entry in native or cache:
        candidates.append({"path": entry["path"], "source": "ldconfig"})
    if not candidates:
        return {"found": False, "name": name, "path": None, "realpath": None, "version": None,
                "source": None, "candidates": []}
    chosen = candidates[0]
    real = realpath(chosen["path"])
    return {
        "found": True,
        "name": name,
        "path": chosen["path"],
        "realpath": real,
        "version": nccl_version_from_path(real) or nccl_version_from_path(chosen["path"]),
        "source": chosen["source"],
        "candidates": [c["path"] for c in candidates],
    }


def host_summary(facts):
    """Fill in the per-host fields derived from the GPUs (capabilities, unified memory, driver branch)."""
    gpus = facts["gpus"]
    capabilities = sorted({g["sm"] for g in gpus if g["sm"]}, key=lambda c: capability_parts(c))
    facts["gpu_count"] = len(gpus)
    facts["capabilities"] = capabilities
    facts["capability"] = capabilities[0] if len(capabilities) == 1 and all(g["sm"] for g in gpus) else None
    facts["unified_memory"] = bool(gpus) and any(g["unified_memory"] for g in gpus)
    try:
        facts["driver_branch"] = int(version_tuple(facts.get("driver_version"))[0])
    except (TypeError, ValueError):  # no driver, or a version of another shape
        facts["driver_branch"] = None
    return facts


def empty_facts(backend="none", probe_error=None):
    return {
        "backend": backend,
        "gpu_count": 0,
        "gpus": [],
        "capabilities": [],
        "capability": None,
        "driver_version": None,
        "driver_branch": None,
        "cuda_driver_version": None,
        "nvml_version": None,
        "unified_memory": False,
        "topology": {"interconnect": "none", "pcie_only": False, "pairs": []},
        "cuda_toolkit": {"found": False, "path": None, "version": None, "build": None},
        "nccl": {"found": False, "name": "libnccl.so.2", "path": None, "realpath": None,
                 "version": None, "source": None, "candidates": []},
        "probe_error": probe_error,
    }


# --------------------------------------------------------------------------
# Probes (need an AnsibleModule)
# --------------------------------------------------------------------------

class ProbeFailure(Exception):
    """A probe that must fail the module (tool present but its output unreadable)."""

    def __init__(self, msg, **kwargs):
        super().__init__(msg)
        self.msg = msg
        self.details = kwargs

    def fail(self, module):
        """Fail `module` with this probe's message; a missing optional library is named as such."""
        from ansible.module_utils.basic import missing_required_lib

        details = dict(self.details)
        missing = details.pop("missing_lib", None)
        if missing:
            module.fail_json(msg=missing_required_lib(missing, reason="backend=nvml") + " " + self.msg)
        module.fail_json(msg=self.msg, **details)


def import_pynvml():
    """Import nvidia-ml-py's `pynvml` lazily (it is optional). Returns (module, error_text)."""
    try:
        import pynvml  # pylint: disable=import-outside-toplevel
    except ImportError as exc:  # nvidia-ml-py is not installed for this interpreter
        return None, str(exc)
    return pynvml, None


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _nvml_try(func, *args):
    """Call an NVML function; None where the GPU does not support it."""
    try:
        return func(*args)
    except Exception:  # pynvml raises NVMLError_NotSupported & co.; all mean "no value"
        return None


# NVML topology levels -> the words of `nvidia-smi topo -m`.
_NVML_TOPO_WORDS = {0: "PIX", 10: "PIX", 20: "PXB", 30: "PHB", 40: "NODE", 50: "SYS"}


def probe_nvml(pynvml):
    """Read GPUs through NVML. Raises whatever nvmlInit raises when there is no driver."""
    pynvml.nvmlInit()
    try:
        facts = empty_facts("nvml")
        facts["driver_version"] = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda = _nvml_try(pynvml.nvmlSystemGetCudaDriverVersion_v2) or _nvml_try(pynvml.nvmlSystemGetCudaDriverVersion)
        facts["cuda_driver_version"] = cuda_from_driver_int(cuda) if cuda else None
        facts["nvml_version"] = _text(_nvml_try(pynvml.nvmlSystemGetNVMLVersion))
        handles = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            handles.append(handle)
            pci = _nvml_try(pynvml.nvmlDeviceGetPciInfo, handle)
            capability = _nvml_try(pynvml.nvmlDeviceGetCudaComputeCapability, handle)
            memory = _nvml_try(pynvml.nvmlDeviceGetMemoryInfo, handle)
            persistence = _nvml_try(pynvml.nvmlDeviceGetPersistenceMode, handle)
            facts["gpus"].append(make_gpu(
                index=index,
                name=_text(pynvml.nvmlDeviceGetName(handle)),
                uuid=_text(_nvml_try(pynvml.nvmlDeviceGetUUID, handle)),
                pci_bus_id=_text(pci.busId) if pci is not None else None,
                capability=tuple(capability) if capability else None,
                memory_total_mib=int(memory.total) // (1024 * 1024) if memory is not None else None,
                persistence_mode=None if persistence is None else bool(persistence),
                pcie_gen_max=_nvml_try(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
                pcie_width_max=_nvml_try(pynvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
                pcie_gen_current=_nvml_try(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
                pcie_width_current=_nvml_try(pynvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
            ))
        facts["topology"] = summarize_topology(_nvml_matrix(pynvml, handles, facts["gpus"]),
                                               [g["index"] for g in facts["gpus"]])
        return facts
    finally:
        _nvml_try(pynvml.nvmlShutdown)


def _nvml_matrix(pynvml, handles, gpus):
    """Build a topo -m style matrix from NVML: NV<links> where NVLink joins a pair, else the PCIe level."""
    matrix = {}
    if len(handles) < 2:
        return matrix
    max_links = getattr(pynvml, "NVML_NVLINK_MAX_LINKS", 18)
    bus_ids = [(g["pci_bus_id"] or "").lower() for g in gpus]
    nvlinks = {}
    for index, handle in enumerate(handles):
        for link in range(max_links):
            state = _nvml_try(pynvml.nvmlDeviceGetNvLinkState, handle, link)
            if not state:
                continue
            remote = _nvml_try(pynvml.nvmlDeviceGetNvLinkRemotePciInfo_v2, handle, link)
            remote_bus = (_text(remote.busId) or "").lower() if remote is not None else ""
            if remote_bus in bus_ids:
                pair = (index, bus_ids.index(remote_bus))
                nvlinks[pair] = nvlinks.get(pair, 0) + 1
    for first, handle in enumerate(handles):
        row = {}
        for second, other in enumerate(handles):
            if first == second:
                row["GPU%d" % second] = "X"
                continue
            count = nvlinks.get((first, second)) or nvlinks.get((second, first))
            if count:
                row["GPU%d" % second] = "NV%d" % count
            else:
                level = _nvml_try(pynvml.nvmlDeviceGetTopologyCommonAncestor, handle, other)
                row["GPU%d" % second] = _NVML_TOPO_WORDS.get(level, "SYS" if level is None else str(level))
        matrix["GPU%d" % first] = row
    return matrix


def _run(module, argv):
    rc, out, err = module.run_command(list(argv))
    return rc, out or "", err or ""


def probe_nvidia_smi(module, nvidia_smi):
    """Read GPUs through nvidia-smi. A host whose nvidia-smi finds no GPU/driver gets gpu_count 0."""
    rc, out, err = _run(module, [nvidia_smi] + list(NVIDIA_SMI_QUERY_ARGS))
    if rc != 0:
        message = (err.strip() or out.strip() or "no output").splitlines()[-1]
        if "not a valid field" in (out + err):
            raise ProbeFailure(
                "nvidia-smi does not know one of the fields %s (driver too old? compute_cap needs "
                "driver 510 or newer): %s" % (",".join(QUERY_FIELDS), message),
                rc=rc, stdout=out, stderr=err)
        # rc 6: no devices; rc 9: driver not loaded; others: nvidia-smi cannot read the GPUs.
        return empty_facts("nvidia_smi", "nvidia-smi exited %d: %s" % (rc, message))
    try:
        gpus, driver = parse_query_gpu_csv(out)
    except GpuParseError as exc:
        raise ProbeFailure(str(exc), rc=rc, stdout=out, stderr=err)
    facts = empty_facts("nvidia_smi")
    facts["gpus"] = gpus
    facts["driver_version"] = driver
    if not gpus:
        return facts
    rc, vout, verr = _run(module, [nvidia_smi, "--version"])
    versions = parse_smi_version(vout) if rc == 0 else {}
    if not versions.get("cuda_driver_version"):
        # Drivers before `nvidia-smi --version` existed: read the banner of plain nvidia-smi.
        rc, vout, verr = _run(module, [nvidia_smi])
        versions = parse_smi_version(vout) if rc == 0 else {}
    facts["cuda_driver_version"] = versions.get("cuda_driver_version")
    facts["nvml_version"] = versions.get("nvml_version")
    facts["driver_version"] = facts["driver_version"] or versions.get("driver_version")
    matrix = {}
    if len(gpus) > 1:
        rc, tout, terr = _run(module, [nvidia_smi, "topo", "-m"])
        if rc == 0:
            try:
                matrix = parse_topo_matrix(tout)
            except GpuParseError as exc:
                module.warn("could not read nvidia-smi topo -m: %s" % exc)
        else:
            module.warn("nvidia-smi topo -m exited %d: %s" % (rc, (terr or tout).strip()))
    facts["topology"] = summarize_topology(matrix, [g["index"] for g in gpus])
    return facts


def probe_nvcc(module, nvcc_path=None):
    """The CUDA toolkit's nvcc: on PATH, else /usr/local/cuda/bin; `nvcc_path` wins when given."""
    nvcc = nvcc_path or module.get_bin_path("nvcc", opt_dirs=["/usr/local/cuda/bin"])
    result = {"found": False, "path": nvcc, "version": None, "build": None}
    if not nvcc or not _executable(nvcc):
        return result
    rc, out, err = _run(module, [nvcc, "--version"])
    if rc != 0:
        module.warn("%s --version exited %d: %s" % (nvcc, rc, (err or out).strip()))
        return result
    try:
        parsed = parse_nvcc_version(out)
    except GpuParseError as exc:
        module.warn(str(exc))
        return result
    result.update(found=True, version=parsed["version"], build=parsed["build"])
    return result


def probe_nccl(module, ld_library_path=None):
    """Which libnccl.so.2 the loader would pick (LD_LIBRARY_PATH, then the ld.so cache)."""
    if ld_library_path is None:
        ld_library_path = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    ldconfig = module.get_bin_path("ldconfig", opt_dirs=["/sbin", "/usr/sbin"])
    text = ""
    if ldconfig:
        rc, out, err = _run(module, [ldconfig, "-p"])
        if rc == 0:
            text = out
        else:
            module.warn("ldconfig -p exited %d: %s" % (rc, (err or out).strip()))
    return resolve_library(text, ld_library_path, machine=_machine(), realpath=_realpath)


def probe(module, backend="auto", nvidia_smi_path=None, nvcc_path=None, ld_library_path=None):
    """All of gpu_info's facts. backend: auto (NVML if it imports and starts, else nvidia-smi), nvml, nvidia_smi."""
    started = time.monotonic()
    facts = None
    notes = []
    if backend in ("auto", "nvml"):
        pynvml, import_error = import_pynvml()
        if pynvml is None:
            if backend == "nvml":
                raise ProbeFailure("backend=nvml needs nvidia-ml-py (import pynvml failed: %s)" % import_error,
                                   missing_lib="nvidia-ml-py")
            notes.append("pynvml not importable")
        else:
            try:
                facts = probe_nvml(pynvml)
            except Exception as exc:  # NVMLError_LibraryNotFound, NVMLError_DriverNotLoaded, ...
                notes.append("NVML: %s" % (exc,))
                if backend == "nvml":
                    facts = empty_facts("nvml", "NVML could not start: %s" % (exc,))
    if facts is None:
        if nvidia_smi_path and not _executable(nvidia_smi_path):
            raise ProbeFailure("nvidia_smi_path: %s is not an executable file" % nvidia_smi_path)
        nvidia_smi = nvidia_smi_path or module.get_bin_path("nvidia-smi", opt_dirs=["/usr/bin", "/usr/local/nvidia/bin"])
        if nvidia_smi:
            facts = probe_nvidia_smi(module, nvidia_smi)
        else:
            notes.append("nvidia-smi not found")
            facts = empty_facts("none", "; ".join(notes))
    facts["cuda_toolkit"] = probe_nvcc(module, nvcc_path)
    facts["nccl"] = probe_nccl(module, ld_library_path)
    host_summary(facts)
    return facts, time.monotonic() - started


# --------------------------------------------------------------------------
# Requirements
# --------------------------------------------------------------------------

def profiles_allowing(capability):
    return sorted(name for name, prof in PROFILES.items()
                  if capability in prof["allowed_capabilities"])


def validate_facts(facts):
    """Raise ValueError when `facts` is not gpu_info's blackwell_gpu dict."""
    if not isinstance(facts, dict):
        raise ValueError("gpu_info must be the %s facts dict returned by blackwell.vllm.gpu_info, got %s"
                         % (FACTS_NAME, type(facts).__name__))
    for key in ("gpu_count", "gpus"):
        if key not in facts:
            raise ValueError("gpu_info must be the %s facts returned by blackwell.vllm.gpu_info (missing key '%s')"
                             % (FACTS_NAME, key))


def check_requirements(facts, spec, profile_name=None):
    """Check facts against an effective requirement spec.

    spec keys: allowed_capabilities (list of sm_XY), min_driver, min_gpus, max_gpus,
    uniform_capability, require_toolkit, min_toolkit (dict sm_XY -> version).
    Returns a list of checks: {'name', 'ok', 'msg'}; failures have a msg that says what would fix them.
    """
    label = "profile '%s'" % profile_name if profile_name else "the requirements"
    checks = []

    def add(name, ok, msg):
        checks.append({"name": name, "ok": bool(ok), "msg": msg})

    gpus = facts.get("gpus") or []
    count = len(gpus)
    allowed = list(spec.get("allowed_capabilities") or [])
    allowed_text = ", ".join(allowed) if allowed else "any capability"
    min_gpus = spec.get("min_gpus") or 0
    max_gpus = spec.get("max_gpus")

    if count < min_gpus:
        if count == 0:
            why = facts.get("probe_error") or "no NVIDIA GPU found"
            msg = ("host has no NVIDIA GPU (%s); %s needs at least %d GPU(s) of %s: run this on such a host, "
                   "install the NVIDIA driver%s so that nvidia-smi sees the GPU, or use profile lab_cpu for a host without GPU"
                   % (why, label, min_gpus, allowed_text,
                      " (branch %s or newer)" % spec["min_driver"] if spec.get("min_driver") else ""))
        else:
            msg = ("host has %d GPU(s), %s needs at least %d: add GPUs, make them visible to the driver "
                   "(CUDA_VISIBLE_DEVICES, MIG off), or lower min_gpus" % (count, label, min_gpus))
        add("min_gpus", False, msg)
    else:
        add("min_gpus", True, "%d GPU(s), at least %d needed" % (count, min_gpus))
    if max_gpus is not None:
        add("max_gpus", count <= max_gpus,
            "%d GPU(s), at most %d allowed by %s" % (count, max_gpus, label)
            + ("" if count <= max_gpus else ": use a profile meant for GPU hosts"))

    for gpu in gpus:
        cap = gpu.get("sm")
        name = "GPU %s (%s)" % (gpu.get("index"), gpu.get("name") or "unknown model")
        if cap is None:
            add("capability", False,
                "%s reports no compute capability; %s allows %s: update the NVIDIA driver "
                "(the compute_cap query needs 510 or newer)" % (name, label, allowed_text))
        elif allowed and cap not in allowed:
            others = profiles_allowing(cap)
            hint = (" (e.g. profile: %s)" % " or ".join(others)) if others else ""
            add("capability", False,
                "%s is %s; %s allows %s: run this on a host with such a GPU, or choose a profile "
                "that allows %s%s" % (name, cap, label, allowed_text, cap, hint))
        else:
            add("capability", True, "%s is %s, allowed (%s)" % (name, cap, allowed_text))

    caps = sorted({g.get("sm") for g in gpus if g.get("sm")}, key=capability_parts)
    if spec.get("uniform_capability", True) and len(caps) > 1:
        listing = ", ".join("GPU %s: %s" % (g.get("index"), g.get("sm")) for g in gpus)
        add("uniform_capability", False,
            "GPUs differ in capability (%s); %s needs one capability across all GPUs: serve from GPUs "
            "of one kind (CUDA_VISIBLE_DEVICES) or set uniform_capability: false" % (listing, label))
    elif gpus:
        add("uniform_capability", True, "one capability across all GPUs" if len(caps) <= 1 else "mixed allowed")

    if not gpus:
        return checks

    # Driver: the profile's minimum and what each capability needs.
    driver = facts.get("driver_version")
    try:
        version_tuple(driver)
    except ValueError:
        driver = None  # unreadable: reported as unknown below
    need_driver, need_driver_why = spec.get("min_driver"), label
    for cap in caps:
        cap_driver = (CAPABILITY_NEEDS.get(cap) or {}).get("driver")
        if cap_driver and (need_driver is None or not version_ge(need_driver, cap_driver)):
            need_driver, need_driver_why = cap_driver, cap
    if need_driver:
        if not driver:
            add("driver", False, "driver version unknown; %s needs driver %s or newer: install the NVIDIA driver"
                % (need_driver_why, need_driver))
        elif not version_ge(driver, need_driver):
            add("driver", False, "driver %s is older than %s needed for %s: install NVIDIA driver branch %s or newer"
                % (driver, need_driver, need_driver_why, need_driver))
        else:
            add("driver", True, "driver %s >= %s" % (driver, need_driver))

    # Toolkit per capability, and the driver's CUDA ceiling for that toolkit.
    toolkit_needs = dict((cap, v["cuda"]) for cap, v in CAPABILITY_NEEDS.items())
    toolkit_needs.update(spec.get("min_toolkit") or {})
    cuda_driver = facts.get("cuda_driver_version")
    toolkit = facts.get("cuda_toolkit") or {}
    for cap in caps:
        need = toolkit_needs.get(cap)
        if not need:
            continue
        if cuda_driver:
            if version_ge(cuda_driver, need):
                add("driver_cuda", True, "driver supports CUDA %s >= %s for %s" % (cuda_driver, need, cap))
            else:
                branch = driver_branch_for_cuda(need)
                add("driver_cuda", False,
                    "driver %s supports CUDA up to %s, %s needs CUDA %s: upgrade the NVIDIA driver%s"
                    % (driver or "?", cuda_driver, cap, need, " to branch %s or newer" % branch if branch else ""))
        if not spec.get("require_toolkit", True):
            continue
        if not toolkit.get("found"):
            add("toolkit", False,
                "no CUDA toolkit (nvcc) found%s; %s needs CUDA toolkit >= %s: install CUDA toolkit >= %s "
                "for %s and put its bin/ on PATH (or pass nvcc_path)"
                % (" at %s" % toolkit["path"] if toolkit.get("path") else "", cap, need, need, cap))
        elif not version_ge(toolkit.get("version"), need):
            add("toolkit", False, "install CUDA toolkit >= %s for %s (found nvcc %s at %s)"
                % (need, cap, toolkit.get("version"), toolkit.get("path")))
        else:
            add("toolkit", True, "nvcc %s >= %s for %s" % (toolkit.get("version"), need, cap))
    return checks
