"""Every example inventory is its guide's tuned setup, flag for flag, and passes preflight's inventory checks.

For each inventory, inventory_render.yml renders (ansible-playbook against the inventory itself, connection
local, no node contacted) what the vllm and nccl roles would write on each vLLM server: the unit, its
environment file, the NCCL environment, the install script and the facts. The vLLM command line of the
unit (flags and values, order-insensitive) and the environment the unit gets (the NCCL file, then the
service's file) are compared with the guide's tuned command, written out below as the guide gives it.
The only differences allowed are listed beside each guide, each with its reason: the model path (the
one value a user edits), the listen address behind the gateway (nginx takes host:port, vLLM listens on
127.0.0.1:port+20000), and flags an inventory adds or drops on purpose. So a change in the inventory,
in the role's templates or in a guide's command here fails.

The preflight part runs `playbooks/preflight.yml --tags preflight_inventory` against every inventory
under inventories/ (the checks are asserts and argument-spec validation, which run on the controller:
no host is reached) and requires every check to have run and passed on every host; broken copies of
two inventories must be refused, naming the variable and the value.
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "tests" / "unit" / "roles" / "inventory_render.yml"
BIN = pathlib.Path(sys.executable).parent
API_KEY = "test-key-0123456789abcdef"

NVCC = """#!/bin/sh
echo "nvcc: NVIDIA (R) Cuda compiler driver"
echo "Cuda compilation tools, release 13.0, V13.0.88"
"""


def _env(**more):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH="%s:%s" % (BIN, os.environ.get("PATH", "")), BLACKWELL_VLLM_API_KEY=API_KEY, HF_TOKEN="",
               PROXMOX_API_TOKEN_SECRET="")
    env.update(more)
    return env


def render(tmp, inventory, extra=None):
    """{host: {'facts': ..., 'files': {name: text}}} of the inventory's vLLM servers."""
    out = tmp / "out"
    out.mkdir(parents=True)
    cuda = tmp / "cuda"
    (cuda / "bin").mkdir(parents=True)
    (cuda / "bin" / "nvcc").write_text(NVCC)
    (cuda / "bin" / "nvcc").chmod(0o755)
    variables = {"render_out": str(out), "render_roles": str(REPO / "roles"), "ansible_connection": "local",
                 "ansible_become": False, "ansible_python_interpreter": sys.executable,
                 # Only the nccl role's set_vars runs: a stand-in toolkit and paths of this test.
                 "nccl_cuda_home": str(cuda), "nccl_install_root": str(tmp / "nccl"),
                 "nccl_build_root": str(tmp / "nccl-build"), "nccl_source_checksum": "sha256:" + "0" * 64,
                 # The guides send NCCL over sockets: no RDMA device, whatever this machine has.
                 "nccl_rdma_sysfs_root": str(REPO / "tests" / "fixtures" / "rdma" / "none")}
    variables.update(extra or {})
    res = subprocess.run([shutil.which("ansible-playbook", path=_env()["PATH"]), str(PLAYBOOK), "-i",
                          str(REPO / "inventories" / inventory), "-e", json.dumps(variables)],
                         cwd=REPO, env=_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    hosts = {}
    for d in sorted(out.iterdir()):
        hosts[d.name] = {"facts": json.loads((d / "facts.json").read_text()),
                         "files": {f.name: f.read_text() for f in d.iterdir()}}
    return hosts


# --- reading what was rendered -------------------------------------------------------------------

def flags(argv):
    """{flag: value or None}; a positional model (`vllm serve <model>`) is --model. Twice the same flag fails."""
    out = {}
    i = 0
    if argv[:2] == ["vllm", "serve"]:
        out["--model"] = argv[2]
        i = 3
    elif argv[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]:
        i = 3
    else:
        raise AssertionError("not a vLLM command: %s" % argv[:3])
    while i < len(argv):
        flag = argv[i]
        assert flag.startswith("--"), "not a flag: %r in %s" % (flag, argv)
        assert flag not in out, "%s given twice" % flag
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[flag] = argv[i + 1]
            i += 2
        else:
            out[flag] = None
            i += 1
    return out


def unit_argv(unit):
    """ExecStart of a rendered unit as an argv (systemd's quoting: \\-continued lines, %% and $$)."""
    lines = unit.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ExecStart="))
    cmd = []
    for line in lines[start:]:
        cmd.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            break
    text = " ".join(cmd)[len("ExecStart="):].replace("%%", "%").replace("$$", "$")
    return shlex.split(text)


def env_file(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value[1:-1] if value[:1] == '"' == value[-1:] else value
    return out


def effective_env(files, service):
    """What the unit's process sees of our files: nccl.env, then the service's own file (systemd: the later wins)."""
    env = env_file(files["nccl.env"])
    env.update(env_file(files[service + ".env"]))
    return env


def norm(flag, value):
    if value is None:
        return None
    if flag == "--attention-backend":
        return value.upper()  # vLLM takes the backend's enum name in any case
    try:
        return repr(float(value))
    except ValueError:
        return value


# --- the guides' tuned commands, as the guides give them ----------------------------------------------

class Guide:
    """A guide's command and environment, and the differences an inventory is allowed, each with its reason."""

    def __init__(self, command, env=None, model=None, host="0.0.0.0", port="8000", added=None, changed=None,
                 dropped=(), env_renamed=None, env_dropped=(), env_added=None):
        self.argv = command if isinstance(command, list) else shlex.split(command)
        self.env = env or {}
        self.model = model  # the model as the inventory gives it to vLLM (the path a user edits)
        self.host, self.port = host, port  # where the guide's server listened (vLLM's defaults: 0.0.0.0:8000)
        self.added = added or {}
        self.changed = changed or {}
        self.dropped = dropped
        self.env_renamed = env_renamed or {}
        self.env_dropped = env_dropped
        self.env_added = env_added or {}

    def expected(self, svc):
        """The command the unit must carry, and the guide's listen address."""
        exp = {k: norm(k, v) for k, v in flags(self.argv).items()}
        host, port = exp.pop("--host", self.host), exp.pop("--port", self.port)
        exp["--model"] = self.model
        # vLLM's defaults that the role always writes.
        exp.setdefault("--tensor-parallel-size", norm("", "1"))
        exp.setdefault("--pipeline-parallel-size", norm("", "1"))
        for key in self.dropped:
            exp.pop(key)
        exp.update({k: norm(k, v) for k, v in {**self.changed, **self.added}.items()})
        # Behind the gateway nginx listens on host:port and vLLM on loopback.
        exp["--host"], exp["--port"] = "127.0.0.1", norm("", str(svc["backend_port"]))
        return exp, (host, norm("", port))

    def expected_env(self):
        env = {self.env_renamed.get(k, k): v for k, v in self.env.items() if k not in self.env_dropped}
        env.update(self.env_added)
        return env


# Two RTX 5090, the Blackwell stack guide for kernel 6.14: the server command and environment of its
# docker-compose.yml (entrypoint python3 -m vllm.entrypoints.openai.api_server).
RTX5090 = Guide(
    """python3 -m vllm.entrypoints.openai.api_server
      --model /model_dir
      --tensor-parallel-size 2
      --max-model-len 32768
      --quantization awq
      --dtype float16
      --gpu-memory-utilization 0.9
      --enforce-eager
      --distributed-executor-backend mp
      --disable-custom-all-reduce
      --attention-backend flashinfer
      --trust-remote-code""",
    env={"HUGGING_FACE_HUB_TOKEN": "${HF_TOKEN}", "VLLM_USE_V1": "0", "NCCL_DMABUF_ENABLE": "1",
         "NCCL_P2P_LEVEL": "PCI", "VLLM_GPU_ARCH": "12.0", "NVIDIA_DISABLE_REQUIREMENTS": "1",
         "VLLM_SKIP_P2P_CHECK": "1", "NCCL_IGNORE_CPU_AFFINITY": "1", "PYTORCH_ALLOC_CONF": "expandable_segments:True"},
    model="/srv/models/deepseek-r1-32b-awq",
    added={"--served-model-name": "deepseek-r1-32b-awq",
           # The guide's benchmark counts on prefix-cache hits (44.4%); said explicitly, not left to the version.
           "--enable-prefix-caching": None},
    # The role's name of the allocator variable; torch reads it as it reads PYTORCH_ALLOC_CONF.
    env_renamed={"PYTORCH_ALLOC_CONF": "PYTORCH_CUDA_ALLOC_CONF"},
    # VLLM_USE_V1=0: the V0 engine is gone since vLLM 0.11, the variable does nothing. VLLM_GPU_ARCH: read by
    # nothing in vLLM (the build takes TORCH_CUDA_ARCH_LIST). NVIDIA_DISABLE_REQUIREMENTS: a container
    # runtime setting. The hub token: the weights are on disk and the unit runs with HF_HUB_OFFLINE=1.
    env_dropped=("VLLM_USE_V1", "VLLM_GPU_ARCH", "NVIDIA_DISABLE_REQUIREMENTS", "HUGGING_FACE_HUB_TOKEN"),
    env_added={"HF_HUB_OFFLINE": "1"},
)

# One DGX Spark, the DGX-vLLM guide: its `docker run` variables, which the image's entrypoint turns into
# `vllm serve $MODEL --port $PORT --max-model-len $MAX_MODEL_LEN --gpu-memory-utilization $GPU_MEMORY_UTIL
#  $VLLM_EXTRA_ARGS` (TP=1: no distributed arguments).
DGX_SPARK_RUN = """
  -e MODEL="DevQuasar/Qwen.Qwen3-Next-80B-A3B-Instruct-FP8-Dynamic" \\
  -e PORT=8888 \\
  -e TENSOR_PARALLEL_SIZE=1 \\
  -e MAX_MODEL_LEN=65536 \\
  -e GPU_MEMORY_UTIL=0.88 \\
  -e VLLM_EXTRA_ARGS="--kv-cache-dtype fp8 --swap-space 32 --tool-call-parser hermes --reasoning-parser qwen3" \\
"""


def _docker_run_command(text):
    run = dict(tok.split("=", 1) for tok in shlex.split(text.replace("\\\n", " ")) if tok != "-e")
    return (["vllm", "serve", run["MODEL"], "--port", run["PORT"], "--tensor-parallel-size", run["TENSOR_PARALLEL_SIZE"],
             "--max-model-len", run["MAX_MODEL_LEN"], "--gpu-memory-utilization", run["GPU_MEMORY_UTIL"]]
            + shlex.split(run["VLLM_EXTRA_ARGS"]))


DGX_SPARK = Guide(
    _docker_run_command(DGX_SPARK_RUN),
    model="/var/lib/vllm/models/DevQuasar--Qwen.Qwen3-Next-80B-A3B-Instruct-FP8-Dynamic/main",  # downloaded once
    added={"--served-model-name": "DevQuasar/Qwen.Qwen3-Next-80B-A3B-Instruct-FP8-Dynamic",  # vllm serve's name
           # A request with tools and tool_choice "auto" is refused without it.
           "--enable-auto-tool-choice": None},
    env_added={"HF_HUB_OFFLINE": "1", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"},
)

# Two DGX Spark over QSFP, the vllm-gb10 guide: "Step 4: Launch vLLM (on head node)" and the variables of
# steps 2-4 and fix 4.
DGX_PAIR = Guide(
    """vllm serve /home/atc/hf_models/Qwen3.5-122B-A10B-FP8 \\
  --served-model-name manthan-general \\
  --port 8000 \\
  --tensor-parallel-size 2 \\
  --distributed-executor-backend ray \\
  --trust-remote-code \\
  --gpu-memory-utilization 0.80 \\
  --max-model-len 16384 \\
  --enforce-eager \\
  --enable-prefix-caching \\
  --reasoning-parser qwen3 \\
  --tool-call-parser qwen3_coder \\
  --max-num-batched-tokens 4096""".replace("\\\n", " "),
    env={"HF_HUB_OFFLINE": "1", "VLLM_HOST_IP": "192.168.100.10", "RAY_memory_usage_threshold": "1.0",
         "NCCL_SOCKET_IFNAME": "enp1s0f0np0", "UCX_NET_DEVICES": "enp1s0f0np0", "NCCL_NET_GDR_LEVEL": "SYS",
         "NCCL_P2P_DISABLE": "1", "NCCL_IB_DISABLE": "1"},
    model="/srv/models/Qwen3.5-122B-A10B-FP8",
    added={"--enable-auto-tool-choice": None},
    # The unit's PrivateTmp hides a local Ray's files in /tmp: the head's GCS address is given.
    env_added={"RAY_ADDRESS": "192.168.100.10:6379"},
)

# One RTX PRO 6000, the native sm_120 build notes: the service of /ganuda/config/vllm.service.native.
RTX_PRO_6000_NATIVE = """ExecStart=/home/dereadi/cherokee_venv/bin/python -m vllm.entrypoints.openai.api_server \\
  --model /ganuda/models/qwen2.5-72b-instruct-awq \\
  --port 8000 \\
  --quantization awq_marlin \\
  --dtype float16 \\
  --gpu-memory-utilization 0.85 \\
  --max-model-len 32768 \\
  --max-num-seqs 256 \\
  --trust-remote-code
"""


def _exec_start(text):
    return shlex.split(text.replace("\\\n", " ").split("=", 1)[1])


RTX_PRO_6000 = Guide(_exec_start(RTX_PRO_6000_NATIVE), model="/srv/models/qwen2.5-72b-instruct-awq",
                     added={"--served-model-name": "qwen2.5-72b-instruct-awq"})
# "Before (Workaround)": the same service with the three workaround settings.
RTX_PRO_6000_WORKAROUND = Guide(
    _exec_start(RTX_PRO_6000_NATIVE) + ["--attention-backend", "TRITON_ATTN", "--enforce-eager"],
    env={"VLLM_DISABLED_KERNELS": "MarlinLinearKernel"}, model="/srv/models/qwen2.5-72b-instruct-awq",
    added={"--served-model-name": "qwen2.5-72b-instruct-awq"})

# Proxmox with two RTX 5060 Ti, the FP8 test in the cloned container 921.
PROXMOX_921 = Guide(
    "/opt/vllm/bin/python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3.2-3B-Instruct"
    " --quantization fp8 --kv-cache-dtype fp8 --max-model-len 2048 --tensor-parallel-size 2 --host 0.0.0.0 --port 8000",
    model="/var/lib/vllm/models/meta-llama--Llama-3.2-3B-Instruct/main",
    added={"--served-model-name": "Llama-3.2-3B-Instruct",
           # The clone shares the cards with clones 950 and 951: 40% of each card, not vLLM's 90%.
           "--gpu-memory-utilization": "0.4"},
    # The pair's PCIe settings (profile rtx5060ti_pair), as on the two RTX 5090.
    env_added={"NCCL_P2P_LEVEL": "PCI", "NCCL_DMABUF_ENABLE": "1"},
)


# --- the renders ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    cases = {"dgx-spark": None, "rtx5090-workstation": None, "rtx-pro-6000": None, "proxmox-lxc": None,
             "dgx-pair": None, "rtx-pro-6000@workaround": {"site_vllm_build": "workaround"}}
    out = {}
    for name, extra in cases.items():
        out[name] = render(tmp_path_factory.mktemp(name.replace("@", "-")), name.split("@")[0], extra)
    return out


def check_service(host, service, guide):
    svc = next(s for s in host["facts"]["services"] if s["name"] == service)
    got = {k: norm(k, v) for k, v in flags(unit_argv(host["files"][service + ".service"])).items()}
    exp, listen = guide.expected(svc)
    assert got == exp, "\nonly in the unit: %s\nonly in the guide: %s" % (
        {k: v for k, v in got.items() if exp.get(k, "<absent>") != v},
        {k: v for k, v in exp.items() if got.get(k, "<absent>") != v})
    assert svc["gateway"] is True and (svc["host"], norm("", str(svc["port"]))) == listen
    env = effective_env(host["files"], service)
    want = guide.expected_env()
    assert {k: env.get(k) for k in want} == want
    for key in guide.env_dropped:
        assert key not in env, key
    # The key stays with nginx: never in the vLLM unit or its environment.
    assert API_KEY not in host["files"][service + ".service"] and "VLLM_API_KEY" not in env
    return svc, env


def check_sm120_source_build(host, max_jobs):
    """vLLM built from source for sm_120 with CUDA 12.8 and the guide's MAX_JOBS; returns the install script."""
    facts = host["facts"]
    assert facts["install_mode"] == "source" and facts["cuda_toolkit"] == "12.8" and facts["arch_list"] == "12.0"
    script = host["files"]["install.sh"]
    for line in ("export TORCH_CUDA_ARCH_LIST=12.0", "export MAX_JOBS=%d" % max_jobs):
        assert line in script, line
    return script


def test_dgx_spark_is_the_dgx_vllm_setup(rendered):
    host = rendered["dgx-spark"]["spark-1"]
    svc, env = check_service(host, "qwen3-next", DGX_SPARK)
    facts = host["facts"]
    assert facts["profile"] == "gb10" and facts["cuda_toolkit"] == "13.0" and facts["install_mode"] == "wheels"
    # The FP8 routing patches (torch for FP8 linear, Triton for FP8 MoE) and the GB10 MoE configs.
    assert facts["patches"] is True and facts["patch_list"] == ["cutlass_fp8", "fp8_moe_triton"]
    assert facts["moe_configs"] is True
    # --swap-space exists only before vLLM 0.18.0.
    assert tuple(int(x) for x in facts["vllm_version"].split(".")) < (0, 18, 0)
    assert "--speculative-config" not in host["files"]["qwen3-next.service"]
    assert svc["model_source"] == "huggingface" and "RAY_ADDRESS" not in env
    assert facts["driver_mode"] == "auto" and facts["driver_branch"] == "580" and facts["nccl_build"] is False


def test_rtx5090_workstation_is_the_tuned_tp2_setup(rendered):
    host = rendered["rtx5090-workstation"]["rtx5090-ws"]
    check_service(host, "deepseek-r1", RTX5090)
    facts = host["facts"]
    assert facts["profile"] == "rtx5090_pair"
    script = check_sm120_source_build(host, max_jobs=10)
    assert "flash-attn" in facts["remove"] and facts["patches"] is False and facts["moe_configs"] is False
    assert "uninstall -y flash-attn flash_attn" in script and "flashinfer-python" in script
    # CPU affinity is off unless asked for.
    assert not [line for line in host["files"]["deepseek-r1.service"].splitlines() if line.startswith("CPUAffinity=")]
    assert facts["driver_branch"] == "580" and facts["nccl_build"] is False


def test_rtx5090_cpu_affinity_when_asked(tmp_path):
    inv = yaml.safe_load((REPO / "inventories/rtx5090-workstation/group_vars/all/vllm.yml").read_text())
    services = [dict(inv["vllm_services"][0], cpu_affinity="1-5 25-29")]
    out = render(tmp_path, "rtx5090-workstation", {"vllm_services": services})
    assert "CPUAffinity=1-5 25-29" in out["rtx5090-ws"]["files"]["deepseek-r1.service"].splitlines()


def test_rtx_pro_6000_native_build(rendered):
    host = rendered["rtx-pro-6000"]["pro6000"]
    check_service(host, "qwen72b", RTX_PRO_6000)
    assert host["facts"]["profile"] == "rtx_pro_6000"
    script = check_sm120_source_build(host, max_jobs=16)
    for line in ("export CUDA_HOME=/usr/local/cuda-12.8", 'export CMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc"'):
        assert line in script, line
    assert "checkout --force v0.15.1" in script
    env = effective_env(host["files"], "qwen72b")
    assert "VLLM_DISABLED_KERNELS" not in env
    assert "--enforce-eager" not in host["files"]["qwen72b.service"]


def test_rtx_pro_6000_workaround_is_one_variable_away(rendered):
    native, back = rendered["rtx-pro-6000"]["pro6000"], rendered["rtx-pro-6000@workaround"]["pro6000"]
    check_service(back, "qwen72b", RTX_PRO_6000_WORKAROUND)
    assert back["facts"]["install_mode"] == "wheels" and "step build build_wheel" not in back["files"]["install.sh"]
    assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128" in back["files"]["install.sh"]
    # A release of its own: going back does not touch the native one.
    assert back["facts"]["packages"] != native["facts"]["packages"]


def _proxmox():
    base = REPO / "inventories" / "proxmox-lxc"
    return (yaml.safe_load((base / "group_vars/all/proxmox.yml").read_text()),
            yaml.safe_load((base / "hosts.yml").read_text()))


def test_proxmox_clones_are_derived_from_one_source(rendered):
    data, hosts = _proxmox()
    clones = {c["hostname"]: c for c in data["proxmox_clones"]}
    listed = hosts["all"]["children"]["blackwell_nodes"]["children"]["lxc_clones"]["hosts"]
    assert sorted(listed) == sorted(clones) == sorted(rendered["proxmox-lxc"])
    assert hosts["all"]["children"]["vllm_servers"] == {"children": {"lxc_clones": {}}}
    vmids = [data["proxmox_template"]["vmid"]] + [c["vmid"] for c in clones.values()]
    assert sorted(vmids) == [920, 921, 950, 951] and len(set(vmids)) == len(vmids)
    for field in ("address", "mac"):
        values = [data["proxmox_template"][field]] + [c[field] for c in clones.values()]
        assert len(set(values)) == len(values), field
    host_gpus = {g["index"] for g in data["proxmox_host"]["gpus"]}
    for name, clone in clones.items():
        facts = rendered["proxmox-lxc"][name]["facts"]
        assert set(clone["gpus"]) <= host_gpus, name
        assert facts["ansible_host"] == clone["address"].split("/")[0], name
        assert facts["profile"] == ("rtx5060ti" if len(clone["gpus"]) == 1 else "rtx5060ti_pair"), name
        assert facts["driver_mode"] == "userspace_only" and facts["driver_host_version"] == "580.76.05", name
        assert facts["cuda_toolkit"] == "12.8" and facts["vllm_version"] == "0.10.2", name
        (svc,) = facts["services"]
        assert svc["tensor_parallel_size"] == len(clone["gpus"]) and svc["host"] == "0.0.0.0", name
        for key, value in clone["service"].items():
            assert svc[key] == value, (name, key)
        flags_ = flags(unit_argv(rendered["proxmox-lxc"][name]["files"][svc["name"] + ".service"]))
        assert flags_["--tensor-parallel-size"] == str(len(clone["gpus"])), name
        if "quantization" in clone["service"]:
            assert flags_["--quantization"] == clone["service"]["quantization"], name
    # Clones that share a card split it: at most the whole card on each.
    for gpu in host_gpus:
        share = sum(c["service"]["gpu_memory_utilization"] for c in clones.values() if gpu in c["gpus"])
        assert share <= 0.95, (gpu, share)


def test_proxmox_fp8_clone_is_the_guides_fp8_test(rendered):
    check_service(rendered["proxmox-lxc"]["vllm-921"], "fp8-test", PROXMOX_921)


def test_dgx_pair_is_the_vllm_gb10_setup(rendered):
    host = rendered["dgx-pair"]["spark-1"]
    check_service(host, "general", DGX_PAIR)
    assert host["facts"]["patches"] is True and host["facts"]["moe_configs"] is True


def test_a_drift_from_the_guide_fails(rendered):
    """The comparison can fail: one changed value, one extra flag and one missing variable are each caught."""
    host = rendered["rtx5090-workstation"]["rtx5090-ws"]
    for change in ({"--max-model-len": "16384"}, {"--enforce-eager": "__drop__"}, {"--kv-cache-dtype": "fp8"}):
        bent = dict(flags(RTX5090.argv))
        for k, v in change.items():
            bent.pop(k) if v == "__drop__" else bent.update({k: v})
        argv = ["python3", "-m", "vllm.entrypoints.openai.api_server"]
        for k, v in bent.items():
            argv += [k] if v is None else [k, v]
        guide = Guide(argv, env=RTX5090.env, model=RTX5090.model, added=RTX5090.added,
                      env_renamed=RTX5090.env_renamed, env_dropped=RTX5090.env_dropped, env_added=RTX5090.env_added)
        with pytest.raises(AssertionError):
            check_service(host, "deepseek-r1", guide)
    guide = Guide(RTX5090.argv, env=dict(RTX5090.env, NCCL_ALGO="Ring"), model=RTX5090.model, added=RTX5090.added,
                  env_renamed=RTX5090.env_renamed, env_dropped=RTX5090.env_dropped, env_added=RTX5090.env_added)
    with pytest.raises(AssertionError):
        check_service(host, "deepseek-r1", guide)


# --- preflight's inventory checks ----------------------------------------------------------------------

INVENTORIES = sorted(p.name for p in (REPO / "inventories").iterdir() if (p / "hosts.yml").is_file())
# The checks that must have run (not skipped) and passed on every host of every inventory.
ALWAYS = ("Check the groups (blackwell_nodes; ray_head, ray_workers and vllm_servers drawn from it)",
          "Validate the variables of each role against its argument spec",
          "Check that the variables match every role's argument spec",
          "Check blackwell_hardware_profile", "Check the version formats", "Check the driver version formats",
          "Check the CUDA toolkit against the GPUs and the driver",
          "Check that every port Ray and vLLM listen on is unique on the node",
          "Check that a vLLM service beyond loopback has an API key",
          "Check that swap_space is asked only of a vLLM that still has --swap-space")


def preflight(inventory):
    env = _env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json")
    res = subprocess.run([shutil.which("ansible-playbook", path=env["PATH"]), str(REPO / "playbooks" / "preflight.yml"),
                          "-i", str(inventory), "--tags", "preflight_inventory"],
                         cwd=REPO, env=env, capture_output=True, text=True)
    return res, json.loads(res.stdout[res.stdout.index("{"):])


def _task_results(report):
    out = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            name = task["task"]["name"].split(" : ", 1)[-1]  # without "blackwell.vllm.preflight : "
            out.setdefault(name, {}).update(task["hosts"])
    return out


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_every_inventory_passes_preflights_inventory_checks(inventory):
    res, report = preflight(REPO / "inventories" / inventory)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    hosts = sorted(report["stats"])
    assert hosts, inventory
    for host in hosts:
        assert report["stats"][host]["failures"] == 0 and report["stats"][host]["unreachable"] == 0, host
    tasks = _task_results(report)
    for name in ALWAYS:
        ran = tasks.get(name, {})
        # run_once checks answer for one host; every other check for each.
        assert ran and all(not r.get("skipped") and not r.get("failed") for r in ran.values()), (inventory, name, ran)
        if name not in ALWAYS[:1]:
            assert sorted(ran) == hosts, (inventory, name)
    specs = next(iter(tasks["Validate the variables of each role against its argument spec"].values()))
    assert [r["item"] for r in specs["results"]] == ["preflight", "common", "nvidia_driver", "cuda_toolkit", "nccl",
                                                    "qsfp_network", "ray_cluster", "vllm"]


@pytest.mark.parametrize("inventory, defect, expect", [
    ("dgx-spark", {"blackwell_hardware_profile": "gb100"}, ["blackwell_hardware_profile=gb100", "gb10"]),
    ("rtx-pro-6000", {"site_vllm_build": "native", "vllm_services": [
        {"name": "qwen72b", "model": "/srv/models/qwen2.5-72b-instruct-awq", "host": "0.0.0.0", "port": 8000,
         "tensor_parallel_size": 2}]}, ["tensor_parallel_size=2", "rtx_pro_6000", "has 1"]),
    ("proxmox-lxc", {"nvidia_driver_host_version": "560.35.03"}, ["nvidia_driver_host_version=560.35.03", "570"]),
    ("dgx-spark", {"vllm_version": "0.18.1"}, ["qwen3-next set swap_space", "vllm_version=0.18.1", "0.17.1"]),
])
def test_a_broken_copy_of_an_inventory_is_refused(tmp_path, inventory, defect, expect):
    copy = tmp_path / inventory
    shutil.copytree(REPO / "inventories" / inventory, copy)
    (copy / "group_vars" / "all" / "zz-defect.yml").write_text("---\n" + yaml.safe_dump(defect))
    res, report = preflight(copy)
    assert res.returncode != 0
    failed = [(name, host, r) for name, by_host in _task_results(report).items() for host, r in by_host.items()
              if r.get("failed")]
    assert failed, res.stdout[-3000:]
    msg = " ".join(str(r.get("msg", "")) + " ".join(str(i.get("msg", "")) for i in r.get("results", []) if i.get("failed"))
                   for _, _, r in failed)
    for fragment in expect:
        assert fragment in msg, (fragment, msg)
