# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""modules/rollout_fingerprint over a node tree in a temporary directory: what it reads, the copies
it keeps (changed only when a copy is missing or differs), check mode, modes of the copies."""

import os
import stat

import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.modules import rollout_fingerprint as mod


@pytest.fixture
def node(tmp_path):
    base = tmp_path / "opt/vllm"
    rel = base / "releases/0.32.0-aaa"
    site = rel / "venv/lib/python3.11/site-packages/ray-2.60.0.dist-info"
    site.mkdir(parents=True)
    (base / "releases/0.31.0-zzz").mkdir(parents=True)
    os.symlink(str(rel), str(base / "current"))
    os.symlink(str(base / "releases/0.31.0-zzz"), str(base / "previous"))
    units = tmp_path / "units"
    units.mkdir()
    (units / "vllm-tiny.service").write_text("[Service]\nExecStart=/bin/true --port 8000\n")
    (units / "ray-head.service").write_text("[Service]\n")
    env = tmp_path / "etc/vllm"
    env.mkdir(parents=True)
    (env / "tiny.env").write_text("VLLM_API_KEY=secret\n")
    (env / "tiny.env").chmod(0o600)
    nccl = tmp_path / "opt/nccl"
    (nccl / "2.28.9-sm_121").mkdir(parents=True)
    os.symlink(str(nccl / "2.28.9-sm_121"), str(nccl / "current"))
    conf = tmp_path / "etc/blackwell/nccl.env"
    conf.parent.mkdir(parents=True)
    conf.write_text("NCCL_SOCKET_IFNAME=enp1s0f0np0\n")
    return tmp_path


def args(node, **extra):
    out = {"vllm_base_dir": str(node / "opt/vllm"), "unit_dir": str(node / "units"),
           "vllm_env_dir": str(node / "etc/vllm"), "nccl_install_root": str(node / "opt/nccl"),
           "files": [str(node / "etc/blackwell/nccl.env"), str(node / "etc/netplan/60-qsfp.yaml")]}
    out.update(extra)
    return out


def test_reads_the_node_without_changing_it(monkeypatch, node):
    result, failed = lib.run_module(mod.main, args(node), monkeypatch)
    assert not failed and result["changed"] is False and result["backed_up"] == []
    fp = result["fingerprint"]
    assert fp["vllm"]["release"] == "0.32.0-aaa"
    assert fp["vllm"]["previous"].endswith("0.31.0-zzz")
    assert list(fp["vllm"]["units"]) == [str(node / "units/vllm-tiny.service")]  # Ray's units are not vLLM's
    assert len(fp["vllm"]["env"][str(node / "etc/vllm/tiny.env")]) == 64
    assert fp["nccl"]["current"].endswith("2.28.9-sm_121")
    assert fp["files"][str(node / "etc/netplan/60-qsfp.yaml")] is None  # absent, recorded as absent
    assert fp["ray"]["version"] == "2.60.0"
    assert "secret" not in repr(result)


def test_keeps_copies_once_with_their_modes(monkeypatch, node, tmp_path):
    backup = tmp_path / "rollouts/r1/files"
    result, failed = lib.run_module(mod.main, args(node, backup_dir=str(backup)), monkeypatch)
    assert not failed and result["changed"] is True and len(result["backed_up"]) == 3
    copy = backup / str(node / "etc/vllm/tiny.env").lstrip("/")
    assert copy.read_text() == "VLLM_API_KEY=secret\n"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    again, _ = lib.run_module(mod.main, args(node, backup_dir=str(backup)), monkeypatch)
    assert again["changed"] is False and again["backed_up"] == []
    (node / "etc/blackwell/nccl.env").write_text("NCCL_SOCKET_IFNAME=other\n")
    third, _ = lib.run_module(mod.main, args(node, backup_dir=str(backup)), monkeypatch)
    assert third["changed"] is True and third["backed_up"] == [str(node / "etc/blackwell/nccl.env")]


def test_check_mode_copies_nothing(monkeypatch, node, tmp_path):
    backup = tmp_path / "rollouts/r2/files"
    result, failed = lib.run_module(mod.main, args(node, backup_dir=str(backup)), monkeypatch, check_mode=True)
    assert not failed and result["changed"] is True
    assert not backup.exists()


def test_a_node_without_a_release():
    fp = mod.fingerprint("/nonexistent/vllm", "/nonexistent/units", "/nonexistent/env", "/nonexistent/nccl", [])
    assert fp["vllm"] == {"current": None, "previous": None, "release": None, "units": {}, "env": {}}
    assert fp["ray"]["version"] is None and fp["nccl"]["current"] is None


def test_driver_version_from_sysfs_or_proc(tmp_path):
    (tmp_path / "sys/module/nvidia").mkdir(parents=True)
    (tmp_path / "sys/module/nvidia/version").write_text("580.95.05\n")
    assert mod.driver_version(str(tmp_path)) == "580.95.05"
    other = tmp_path / "p"
    (other / "proc/driver/nvidia").mkdir(parents=True)
    (other / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.195.03  Release Build\n")
    assert mod.driver_version(str(other)) == "570.195.03"
    assert mod.driver_version(str(tmp_path / "none")) is None
