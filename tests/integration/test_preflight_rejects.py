"""The preflight stage refuses bad inventories before anything changes, naming variable and value.

These run the real playbook (ansible-playbook, the collection from this checkout) against
inventories written here, with a local connection: the inventory checks happen on the
controller, so no node is needed and nothing on any node is touched.
"""

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = os.path.join(ROOT, "playbooks", "preflight.yml")


def inventory(tmp_path, hosts=None, **overrides):
    hosts = hosts or {
        "ray_head": {"spark-1": {"blackwell_qsfp_address": "192.168.100.10/24"}},
        "ray_workers": {"spark-2": {"blackwell_qsfp_address": "192.168.100.11/24"}},
    }
    all_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "blackwell_hardware_profile": "gb10",
        "blackwell_qsfp_interface": "enp1s0f0np0",
        "blackwell_qsfp_prefix": "192.168.100.0/24",
        "blackwell_qsfp_mtu": 9000,
    }
    all_vars.update(overrides)
    inv = {"all": {"vars": all_vars, "children": {"blackwell_nodes": {
        "children": {g: {"hosts": h} for g, h in hosts.items()}}}}}
    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump(inv))
    return path


def run_preflight(inv):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.run(
        ["ansible-playbook", PLAYBOOK, "-i", str(inv), "--tags", "preflight_inventory"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_good_inventory_passes(tmp_path):
    res = run_preflight(inventory(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "failed=0" in res.stdout


@pytest.mark.parametrize("hosts, overrides, expected", [
    pytest.param(
        {"ray_head": {"spark-1": {"blackwell_qsfp_address": "192.168.100.10/24"}},
         "ray_workers": {"spark-2": {"blackwell_qsfp_address": "192.168.100.10/24"}}},
        {}, ["blackwell_qsfp_address must differ", "192.168.100.10"], id="duplicate-address"),
    pytest.param(
        {"ray_head": {"spark-1": {"blackwell_qsfp_address": "192.168.100.10/24"}},
         "ray_workers": {"spark-2": {"blackwell_qsfp_address": "10.9.9.9/24"}}},
        {}, ["spark-2", "blackwell_qsfp_address=10.9.9.9/24", "192.168.100.0/24"], id="outside-subnet"),
    pytest.param(
        {"ray_head": {"spark-1": {"blackwell_qsfp_address": "192.168.100.300/24"}},
         "ray_workers": {"spark-2": {"blackwell_qsfp_address": "192.168.100.11/24"}}},
        {}, ["spark-1", "blackwell_qsfp_address=192.168.100.300/24"], id="not-an-address"),
    pytest.param(None, {"blackwell_hardware_profile": "h100"},
                 ["blackwell_hardware_profile=h100", "gb10"], id="unknown-profile"),
    pytest.param(None, {"blackwell_qsfp_prefix": "192.168.100.0/33"},
                 ["blackwell_qsfp_prefix=192.168.100.0/33"], id="bad-prefix"),
    pytest.param(
        {"ray_head": {"spark-1": {"blackwell_qsfp_address": "192.168.100.10/24"},
                      "spark-2": {"blackwell_qsfp_address": "192.168.100.11/24"}}},
        {}, ["exactly one host in ray_head", "spark-1", "spark-2"], id="two-heads"),
])
def test_a_bad_inventory_is_refused_naming_what_is_wrong(tmp_path, hosts, overrides, expected):
    res = run_preflight(inventory(tmp_path, hosts, **overrides))
    out = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, out
    for word in expected:
        assert word in out, f"{word!r} not in: {out[-2000:]}"
