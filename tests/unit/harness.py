"""The one harness of the unit tests (imported as ``harness``; pytest.ini puts tests/unit on the path).

- ``run_module``: run a module's main() in-process and get (result, failed) back, with check mode,
  diff, a stand-in run_command / get_bin_path and the module's warnings in result["warnings"].
- ``run_gpu_module``: the same for gpu_info / gpu_requirements, with the host's GPU tools answered
  from a fixture folder (``Replay``) and NVML from a fake pynvml (``fake_pynvml``).
- The GPU fixtures: tests/fixtures/gpu/<name>/ (see the README there); recorded ones were read on
  a real GPU, reconstructed ones say so in their meta.yml.
"""

from __future__ import annotations

import json
import pathlib
import types

import pytest
import yaml

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.blackwell.vllm.plugins.module_utils import gpu_probe

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "gpu"
NVIDIA_SMI = "/usr/bin/nvidia-smi"
NVCC = "/usr/local/cuda/bin/nvcc"
LDCONFIG = "/sbin/ldconfig"


def fixture_names():
    return sorted(p.name for p in FIXTURES.iterdir() if (p / "meta.yml").is_file())


def read(name, filename):
    path = FIXTURES / name / filename
    return path.read_text() if path.is_file() else None


def meta(name):
    return yaml.safe_load(read(name, "meta.yml"))


class Replay:
    """A stand-in for AnsibleModule.run_command that answers from a fixture folder.

    overrides: {"nvcc": "<fixture name>" or (rc, out, err), "query": (rc, out, err), ...}
    Each call is recorded in .calls.
    """

    def __init__(self, name, **overrides):
        self.name = name
        self.overrides = overrides
        self.calls = []

    def _file(self, key, filename, missing):
        if key in self.overrides:
            value = self.overrides[key]
            if isinstance(value, tuple):
                return value
            text = read(value, filename)
            return (0, text, "") if text is not None else missing
        text = read(self.name, filename) if self.name else None
        return (0, text, "") if text is not None else missing

    def __call__(self, args, **kwargs):
        argv = list(args)
        self.calls.append(argv)
        tool = pathlib.PurePath(argv[0]).name
        if tool == "nvidia-smi":
            if len(argv) == 1:
                return self._file("smi", "smi.txt", (9, "", "NVIDIA-SMI has failed"))
            if argv[1] == "--version":
                return self._file("version", "smi_version.txt", (2, "", "unknown option --version"))
            if argv[1:3] == ["topo", "-m"]:
                return self._file("topo", "topo_m.txt", (2, "", "no topo"))
            if argv[1].startswith("--query-gpu="):
                return self._file("query", "query_gpu.csv", (6, "No devices were found\n", ""))
        if tool == "nvcc":
            return self._file("nvcc", "nvcc_version.txt", (127, "", "nvcc: not found"))
        if tool == "ldconfig":
            return self._file("ldconfig", "ldconfig_p.txt", (0, "0 libs found in cache `/etc/ld.so.cache'\n", ""))
        raise AssertionError("unexpected command %r" % (argv,))

    def tools_called(self):
        return [" ".join([pathlib.PurePath(c[0]).name] + c[1:2]) for c in self.calls]


# --------------------------------------------------------------------------
# Fake pynvml replaying tests/fixtures/gpu/<name>/nvml.json
# --------------------------------------------------------------------------

class NVMLError(Exception):
    pass


def _error_class(name):
    return type(str(name), (NVMLError,), {})


def fake_pynvml(name=None, data=None, init_error=None):
    """A module object with the pynvml functions gpu_info calls, answering from nvml.json."""
    if data is None:
        data = json.loads(read(name, "nvml.json"))
    errors = {}
    mod = types.ModuleType("pynvml")
    mod.NVMLError = NVMLError
    mod.NVML_NVLINK_MAX_LINKS = 18
    mod.calls = []
    state = {"init": False}

    def value(raw):
        if isinstance(raw, dict) and set(raw) == {"error"}:
            cls = errors.setdefault(raw["error"], _error_class(raw["error"]))
            raise cls(raw["error"])
        return raw

    def need_init():
        if not state["init"]:
            raise _error_class("NVMLError_Uninitialized")("NVML not initialized")

    def handle(i):
        need_init()
        return data["gpus"][i]

    def nvmlInit():
        mod.calls.append("nvmlInit")
        if init_error:
            raise _error_class(init_error)(init_error)
        state["init"] = True

    def nvmlShutdown():
        mod.calls.append("nvmlShutdown")
        state["init"] = False

    def system(key):
        def get():
            need_init()
            return value(data["system"][key])
        return get

    def field(key, wrap=None):
        def get(h):
            result = value(h[key])
            return wrap(result) if wrap else result
        return get

    def link_state(h, link):
        links = {entry["link"]: entry for entry in h.get("nvlinks", [])}
        if link not in links:
            return value({"error": "NVMLError_NotSupported"})
        return value(links[link]["state"])

    def link_remote(h, link):
        links = {entry["link"]: entry for entry in h.get("nvlinks", [])}
        return types.SimpleNamespace(busId=value(links[link]["remote_bus_id"]))

    def ancestor(h1, h2):
        i, j = sorted((data["gpus"].index(h1), data["gpus"].index(h2)))
        raw = data.get("common_ancestor", {}).get("%d-%d" % (i, j), {"error": "NVMLError_NotSupported"})
        return value(raw)

    mod.nvmlInit = nvmlInit
    mod.nvmlShutdown = nvmlShutdown
    mod.nvmlSystemGetDriverVersion = system("driver_version")
    mod.nvmlSystemGetCudaDriverVersion_v2 = system("cuda_driver_version")
    mod.nvmlSystemGetCudaDriverVersion = system("cuda_driver_version")
    mod.nvmlSystemGetNVMLVersion = system("nvml_version")
    mod.nvmlDeviceGetCount = lambda: (need_init(), len(data["gpus"]))[1]
    mod.nvmlDeviceGetHandleByIndex = handle
    mod.nvmlDeviceGetName = field("name", lambda v: v.encode())  # old nvidia-ml-py returned bytes
    mod.nvmlDeviceGetUUID = field("uuid")
    mod.nvmlDeviceGetPciInfo = field("pci_bus_id", lambda v: types.SimpleNamespace(busId=v.encode()))
    mod.nvmlDeviceGetCudaComputeCapability = field("cuda_compute_capability", tuple)
    mod.nvmlDeviceGetMemoryInfo = field("memory_total", lambda v: types.SimpleNamespace(total=v, used=0, free=v))
    mod.nvmlDeviceGetPersistenceMode = field("persistence_mode")
    mod.nvmlDeviceGetMaxPcieLinkGeneration = field("max_pcie_link_generation")
    mod.nvmlDeviceGetMaxPcieLinkWidth = field("max_pcie_link_width")
    mod.nvmlDeviceGetCurrPcieLinkGeneration = field("curr_pcie_link_generation")
    mod.nvmlDeviceGetCurrPcieLinkWidth = field("curr_pcie_link_width")
    mod.nvmlDeviceGetNvLinkState = link_state
    mod.nvmlDeviceGetNvLinkRemotePciInfo_v2 = link_remote
    mod.nvmlDeviceGetTopologyCommonAncestor = ancestor
    return mod


# --------------------------------------------------------------------------
# Running a module in-process
# --------------------------------------------------------------------------

class ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class ModuleFail(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def run_module(main, args, monkeypatch, check_mode=False, diff=False, run_command=None, get_bin_path=None):
    """Run a module's main() with args; return (result, failed).

    run_command: a callable(argv, **kwargs) -> (rc, out, err) standing in for AnsibleModule.run_command
    (default: the real one); get_bin_path: a callable(name) -> path or None.
    result["warnings"] holds what the module passed to module.warn().
    """
    warnings = []

    def exit_json(self, **kwargs):
        kwargs.setdefault("changed", False)
        kwargs["warnings"] = list(warnings)
        raise ModuleExit(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs.update(failed=True, msg=msg, warnings=list(warnings))
        raise ModuleFail(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text))
    if run_command is not None:
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kw: run_command(argv, **kw))
    if get_bin_path is not None:
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda self, name, required=False, opt_dirs=None: get_bin_path(name))
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    with patch_module_args(args):
        try:
            main()
        except ModuleExit as done:
            return done.result, False
        except ModuleFail as failed:
            return failed.result, True
    pytest.fail("module returned without exit_json or fail_json")
    return None, None


def run_gpu_module(main, args, monkeypatch, replay=None, pynvml=None, pynvml_error="No module named 'pynvml'",
                   bins=None, realpaths=None, machine="x86_64", check_mode=False, missing_files=()):
    """run_module for the GPU modules, over a fixture: returns (result, failed).

    replay: a Replay for run_command; pynvml: a fake_pynvml() or None (not importable);
    bins: {tool: path or None} for get_bin_path (default: nvidia-smi, nvcc and ldconfig present).
    missing_files: paths that are not executable files (every other path given is).
    """
    paths = {"nvidia-smi": NVIDIA_SMI, "nvcc": NVCC, "ldconfig": LDCONFIG}
    paths.update(bins or {})
    monkeypatch.setattr(gpu_probe, "import_pynvml", lambda: (pynvml, None if pynvml else pynvml_error))
    monkeypatch.setattr(gpu_probe, "_realpath", lambda p: (realpaths or {}).get(p, p))
    monkeypatch.setattr(gpu_probe, "_machine", lambda: machine)
    monkeypatch.setattr(gpu_probe, "_executable", lambda p: p not in missing_files)
    monkeypatch.delenv("LD_LIBRARY_PATH", raising=False)
    return run_module(main, args, monkeypatch, check_mode=check_mode, run_command=replay or Replay(None),
                      get_bin_path=paths.get)
