# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Parsers for the text GPU tools print (nvidia-smi, nvcc, ldconfig): text in, data out.

Also builds the facts layout (``ansible_facts.blackwell_gpu``) that the probes fill in; it is
documented in ``plugins/modules/gpu_info.py`` (RETURN) and ``docs/gpu.md``.
"""

from __future__ import annotations

import csv
import os
import platform
import re

from ansible_collections.blackwell.vllm.plugins.module_utils.capability import capability_parts, version_tuple

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

_NA_RE = re.compile(r"^\[.*\]$")  # [N/A], [Not Supported], [Unknown Error]
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class GpuParseError(ValueError):
    """Output of a GPU tool that this code cannot read."""


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
    capabilities = sorted({g["sm"] for g in gpus if g["sm"]}, key=capability_parts)
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
