"""filter/report: node_report results (tests/fixtures/report/fleet.json) into the report document and
its HTML page: the summary a person reads first, one card per node, problems in red with the reason."""

from __future__ import annotations

import copy
import json
import pathlib
import re

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.filter.report import FilterModule, fleet_report, fleet_report_html
from ansible_collections.blackwell.vllm.plugins.module_utils import fleet_report as fr

REPO = pathlib.Path(__file__).resolve().parents[4]
FIXTURE = REPO / "tests" / "fixtures" / "report" / "fleet.json"


def results():
    return json.loads(FIXTURE.read_text())


def hostvars(res=None):
    """What hostvars holds for the report: the registered result and the address."""
    res = results() if res is None else res
    out = {}
    for i, host in enumerate(sorted(res)):
        out[host] = {"ansible_host": "10.0.0.%d" % (11 + i)}
        if res[host] is not None:
            out[host]["__report_node"] = res[host]
    return out


def document(res=None):
    res = results() if res is None else res
    return fleet_report(sorted(res), hostvars(res), generated="2026-12-07 08:55:00 UTC", inventory="inventories/dgx-pair")


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"fleet_report", "fleet_report_html"}


def test_summary_counts():
    doc = document()
    assert doc["summary"] == {"nodes": 4, "nodes_read": 3, "nodes_ok": 2, "services": 3, "services_healthy": 2,
                              "problems": 3, "line": "4 nodes, 2 of 3 services healthy, 3 problems"}
    assert fr.summary_line(doc) == "4 nodes, 2 of 3 services healthy, 3 problems"
    assert [n["host"] for n in doc["nodes"]] == ["lab-1", "spark-1", "spark-2", "spark-4"]
    assert doc["nodes"][1]["address"] == "10.0.0.12"


def test_unreachable_failed_and_missing_nodes_are_problems():
    res = results()
    res["spark-5"] = {"failed": False, "msg": "MODULE FAILURE: /usr/bin/python3: not found", "changed": False}
    res["spark-6"] = None
    nodes = {n["host"]: n for n in document(res)["nodes"]}
    assert nodes["spark-4"]["problems"] == [
        "unreachable: Failed to connect to the host via ssh: ssh: connect to host 10.0.0.14 port 22: No route to host"]
    assert nodes["spark-5"]["problems"] == ["node_report failed: MODULE FAILURE: /usr/bin/python3: not found"]
    assert nodes["spark-6"]["problems"] == ["not read: the node failed or was unreachable earlier in this run"]
    assert not any(nodes[h]["read"] for h in ("spark-4", "spark-5", "spark-6"))


def test_document_is_json():
    doc = document()
    assert json.loads(json.dumps(doc)) == doc


def test_part_texts():
    nodes = {n["host"]: n for n in document()["nodes"]}
    assert fr.gpu_text(nodes["lab-1"]) == "no GPU (profile lab_cpu)"
    assert fr.gpu_text(nodes["spark-1"]) == "1 x NVIDIA GB10, unified memory, compute 12.1 (sm_121) (profile gb10)"
    assert fr.nccl_text(nodes["spark-1"]) == "2.28.9-1-sm_121 (2.28.9-1; CUDA 13.0; sm_121)"
    assert fr.nccl_text(nodes["lab-1"]) == "no NCCL build in use (profile lab_cpu builds none)"
    assert fr.qsfp_text(nodes["spark-2"]) == "enp1s0f0np0 192.168.100.11/24, up, MTU 1500"
    assert fr.ray_text(nodes["spark-1"]) == "head, ray-head.service active, 2 nodes alive"
    assert fr.vllm_text(nodes["spark-1"]) == "0.18.1-0a1b2c3d4e (vLLM 0.18.1, wheels)"
    assert fr.patches_text(nodes["spark-1"]) == "cutlass_fp8, fp8_moe_triton"
    assert fr.rollout_text(nodes["spark-2"]) == (
        "20261207T083000Z (rollout) rolled_back: vllm.release, vllm.units; 2026-12-07T08:30:05Z")
    assert fr.rollout_text(nodes["lab-1"]) == "no rollout record"
    running = {"rollout": {"id": "r7", "kind": "rollout", "gate": "in_progress", "started": "2026-12-07T08:30:29Z",
                           "finished": None, "changed": []}}
    assert fr.rollout_text(running) == "r7 (rollout) in progress, started 2026-12-07T08:30:29Z"


def test_html_reads_without_help():
    page = fleet_report_html(document())
    assert page.startswith("<!DOCTYPE html>") and "<title>Fleet report: 4 nodes, 2 of 3 services healthy, 3 problems</title>" in page
    assert '<div class="summary bad">4 nodes, 2 of 3 services healthy, 3 problems</div>' in page
    for host in ("lab-1", "spark-1", "spark-2", "spark-4"):
        assert 'id="node-%s"' % host in page and 'href="#node-%s"' % host in page
    assert "no GPU (profile lab_cpu)" in page
    # Problems in red, with the reason.
    problems = re.search(r'<section class="card bad" id="node-spark-2">.*?<ul class="problems">(.*?)</ul>', page, re.S).group(1)
    assert "<li>QSFP: enp1s0f0np0 has MTU 1500, not 9000</li>" in problems
    assert "<li>vLLM qwen: the unit is failed, result exit-code</li>" in problems
    assert '<td class="bad">unhealthy: the unit is failed, result exit-code</td>' in page
    assert '<td class="bad" colspan="6">unreachable: Failed to connect' in page
    assert "<td>812.4</td><td>143 ms</td>" in page  # tokens/s and TTFT of spark-1's last bench
    assert '<section class="card" id="node-spark-1">' in page and '<span class="badge ok">OK</span>' in page


def test_html_is_self_contained():
    page = fleet_report_html(document())
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)\s*=\s*"?(https?:)?//', page, re.I)
    assert "@import" not in page and "url(" not in page
    assert "<style>" in page


def test_html_escapes_what_the_nodes_report():
    res = results()
    res["spark-1"]["node"]["services"][0]["served_name"] = "<script>alert(1)</script>"
    res["spark-1"]["node"]["problems"] = ["vLLM qwen: <b>bold</b> & more"]
    page = fleet_report_html(document(res))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<li>vLLM qwen: &lt;b&gt;bold&lt;/b&gt; &amp; more</li>" in page


def test_healthy_fleet_is_green():
    res = {h: r for h, r in results().items() if h in ("lab-1", "spark-1")}
    page = fleet_report_html(document(res))
    assert '<div class="summary ok">2 nodes, 2 of 2 services healthy, 0 problems</div>' in page
    assert 'class="card bad"' not in page


def test_fixture_has_the_fields_node_report_returns(tmp_path, monkeypatch):
    """The fixture was made by module_utils/node_report from fake trees; it must not drift from it."""
    import node_tree as nt
    from ansible_collections.blackwell.vllm.plugins.module_utils import node_report as nr

    monkeypatch.setattr(nr, "SYS_CLASS_NET", str(tmp_path / "sys" / "class" / "net"))
    tree = nt.NodeTree(tmp_path).converged(port=1)
    fresh = nr.collect(nt.Commands(tree), tree.params(ray_nodes=False), {}, "/usr/bin/python3")
    fixture = results()["spark-1"]["node"]
    assert set(fixture) == set(fresh)
    for key in ("gpu", "nccl", "vllm", "qsfp", "ray", "rollout"):
        assert set(fixture[key]) == set(fresh[key]), key
    assert set(fixture["services"][0]) == set(fresh["services"][0])


def test_bad_input():
    with pytest.raises(AnsibleFilterError):
        fleet_report("spark-1", {})
    with pytest.raises(AnsibleFilterError):
        fleet_report(["nowhere"], {})
    with pytest.raises(AnsibleFilterError):
        fleet_report_html({"nodes": []})
    doc = copy.deepcopy(document())
    assert fleet_report_html(doc) == fleet_report_html(document())
