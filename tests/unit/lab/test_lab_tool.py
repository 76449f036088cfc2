"""The lab tool's pure parts: addressing, validation and the inventory it writes."""

import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

LAB = os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab", "lab")


@pytest.fixture(scope="module")
def lab():
    loader = importlib.machinery.SourceFileLoader("labtool", LAB)
    spec = importlib.util.spec_from_loader("labtool", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_addresses_follow_the_index(lab):
    l = lab.Lab("fleet", index=7, nodes=4)
    assert [l.mgmt_ip(k) for k in l.all_nodes()] == ["10.233.7.10", "10.233.7.11", "10.233.7.12", "10.233.7.13"]
    assert l.qsfp_ip(2) == "10.234.7.11"
    assert l.gateway() == "10.233.7.1"
    assert l.container(3) == "fleet-spark-3"


def test_names_fit_linux_interface_limits(lab):
    l = lab.Lab("x", index=200, nodes=16)
    for name in [l.mgmt_br, l.qsfp_br, l.qsfp_host_if(16), f"bwl{l.index}n16m"]:
        assert len(name) <= 15, name


def test_macs_are_stable_and_local(lab):
    a, b = lab.Lab("a"), lab.Lab("a")
    assert a.mac(1, "qsfp") == b.mac(1, "qsfp")
    assert a.mac(1, "qsfp") != a.mac(2, "qsfp")
    assert a.mac(1, "mgmt").startswith("02:")


@pytest.mark.parametrize("kwargs, word", [
    ({"name": "bad name"}, "--name"),
    ({"name": "ok", "index": 201}, "--index"),
    ({"name": "ok", "nodes": 0}, "--nodes"),
])
def test_bad_arguments_are_refused_with_the_option_named(lab, kwargs, word):
    with pytest.raises(lab.LabError, match=word):
        lab.Lab(**kwargs)


def test_inventory_has_the_dgx_pair_groups_and_variables(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "STATE_ROOT", str(tmp_path))
    l = lab.Lab("fleet", index=3, nodes=4)
    l.state_dir = str(tmp_path / "fleet")
    inv = yaml.safe_load(open(lab.write_inventory(l)))
    nodes = inv["all"]["children"]["blackwell_nodes"]["children"]
    assert list(nodes["ray_head"]["hosts"]) == ["spark-1"]
    assert list(nodes["ray_workers"]["hosts"]) == ["spark-2", "spark-3", "spark-4"]
    assert nodes["ray_workers"]["hosts"]["spark-4"]["blackwell_qsfp_address"] == "10.234.3.13/24"
    assert list(inv["all"]["children"]["vllm_servers"]["hosts"]) == ["spark-1", "spark-2", "spark-3", "spark-4"]
    dgx = yaml.safe_load(open(os.path.join(os.path.dirname(LAB), "..", "inventories", "dgx-pair", "group_vars", "all", "main.yml")))
    blackwell_vars = {k for k in dgx if k.startswith("blackwell_")}
    assert blackwell_vars <= set(inv["all"]["vars"]), blackwell_vars - set(inv["all"]["vars"])


def test_single_node_lab_has_an_empty_worker_group(lab, tmp_path):
    l = lab.Lab("one", index=1, nodes=1)
    l.state_dir = str(tmp_path / "one")
    inv = yaml.safe_load(open(lab.write_inventory(l)))
    assert inv["all"]["children"]["blackwell_nodes"]["children"]["ray_workers"]["hosts"] == {}


def test_committed_lab_inventory_matches_the_default_lab(lab, tmp_path):
    """inventories/lab must describe exactly what `lab/lab up` (name bwlab, index 0) creates."""
    l = lab.Lab("bwlab", index=0, nodes=2)
    l.state_dir = str(tmp_path / "bwlab")
    generated = yaml.safe_load(open(lab.write_inventory(l)))
    root = os.path.join(os.path.dirname(LAB), "..", "inventories", "lab")
    committed = yaml.safe_load(open(os.path.join(root, "hosts.yml")))
    group_vars = yaml.safe_load(open(os.path.join(root, "group_vars", "all", "main.yml")))
    group_vars.update(yaml.safe_load(open(os.path.join(root, "group_vars", "blackwell_nodes", "connection.yml"))))

    def hosts(inv):
        out = {}
        for group in ("ray_head", "ray_workers"):
            for name, hv in inv["all"]["children"]["blackwell_nodes"]["children"][group]["hosts"].items():
                out[name] = (group, hv["ansible_host"], hv["blackwell_qsfp_address"])
        return out

    assert hosts(generated) == hosts(committed)
    for key in ("blackwell_qsfp_prefix", "blackwell_qsfp_interface", "blackwell_hardware_profile", "ansible_user"):
        assert generated["all"]["vars"][key] == group_vars[key], key
    assert group_vars["ansible_ssh_private_key_file"].endswith(".lab/bwlab/id_ed25519")


def test_single_node_lab_has_no_qsfp_link_and_no_ray(lab, tmp_path):
    """A one-node lab has no QSFP NIC: the inventory must say so (the contract of a node without a cable)."""
    l = lab.Lab("one", index=1, nodes=1)
    l.state_dir = str(tmp_path / "one")
    inv = yaml.safe_load(open(lab.write_inventory(l)))
    assert not {k for k in inv["all"]["vars"] if k.startswith("blackwell_qsfp_")}
    nodes = inv["all"]["children"]["blackwell_nodes"]
    assert nodes["children"]["ray_head"]["hosts"] == {} and nodes["children"]["ray_workers"]["hosts"] == {}
    spark = nodes["hosts"]["spark-1"]
    assert spark["ansible_host"] == "10.233.1.10"
    assert spark["blackwell_qsfp_interface"] == "" and "blackwell_qsfp_address" not in spark
    assert list(inv["all"]["children"]["vllm_servers"]["hosts"]) == ["spark-1"]


def test_single_node_inventory_dir_outranks_the_lab_group_vars(lab, tmp_path):
    """inventories/lab/group_vars names the two-node lab's QSFP NIC; the one node's empty interface must win."""
    tool = shutil.which("ansible-inventory") or os.path.join(os.path.dirname(sys.executable), "ansible-inventory")
    if not os.path.exists(tool):
        pytest.skip("ansible-inventory is not installed")
    l = lab.Lab("one", index=1, nodes=1)
    l.state_dir = str(tmp_path / "one")
    lab.write_inventory(l)
    out = subprocess.run([tool, "-i", os.path.join(l.state_dir, "inventory"), "--host", "spark-1"],
                         capture_output=True, text=True, check=True).stdout
    hv = json.loads(out)
    assert hv["blackwell_qsfp_interface"] == ""
    assert "blackwell_qsfp_address" not in hv
    assert hv["ansible_ssh_private_key_file"] == l.key
    assert hv["vllm_services"], "the lab's vLLM settings come from the linked group_vars"
    groups = json.loads(subprocess.run([tool, "-i", os.path.join(l.state_dir, "inventory"), "--list"],
                                       capture_output=True, text=True, check=True).stdout)
    assert not groups.get("ray_head", {}).get("hosts") and not groups.get("ray_workers", {}).get("hosts")
    assert groups["vllm_servers"]["hosts"] == ["spark-1"]
