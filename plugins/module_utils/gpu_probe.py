# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Probes of a host's GPUs through NVML (nvidia-ml-py, optional) or nvidia-smi, nvcc and ldconfig.

Each probe takes an ``AnsibleModule`` and reads the host through ``module.run_command``; the text
it reads goes through ``gpu_parsers``.
"""

from __future__ import annotations

import os
import platform
import time

from ansible_collections.blackwell.vllm.plugins.module_utils.capability import cuda_from_driver_int
from ansible_collections.blackwell.vllm.plugins.module_utils.gpu_parsers import (
    NVIDIA_SMI_QUERY_ARGS,
    QUERY_FIELDS,
    GpuParseError,
    empty_facts,
    host_summary,
    make_gpu,
    parse_nvcc_version,
    parse_query_gpu_csv,
    parse_smi_version,
    parse_topo_matrix,
    resolve_library,
    summarize_topology,
)


def _machine():
    return platform.machine()


def _realpath(path):
    return os.path.realpath(path)


def _executable(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


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
