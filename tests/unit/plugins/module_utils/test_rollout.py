# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""module_utils/rollout and its filters: serving units, batches, changes, the table, the tps gate."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.filter import rollout as flt
from ansible_collections.blackwell.vllm.plugins.module_utils import rollout

RAY_SVC = [{"name": "qwen", "distributed_executor_backend": "ray"}]
MP_SVC = [{"name": "tiny", "distributed_executor_backend": "mp"}]


def names(plan):
    return [[u["name"] for u in batch] for batch in plan]


def test_every_node_its_own_unit_without_a_ray_service():
    units = rollout.serving_units(["a", "b", "c"], ["a"], ["b", "c"], {"a": MP_SVC})
    assert [(u["name"], u["hosts"], u["kind"]) for u in units] == [
        ("a", ["a"], "node"), ("b", ["b"], "node"), ("c", ["c"], "node")]


def test_a_ray_cluster_serving_on_ray_is_one_unit_at_its_heads_place():
    units = rollout.serving_units(["x", "w1", "head", "w2"], ["head"], ["w1", "w2"], {"head": RAY_SVC})
    assert [(u["name"], u["hosts"]) for u in units] == [("x", ["x"]), ("head", ["head", "w1", "w2"])]
    assert units[1]["kind"] == "ray_cluster"


def test_a_limit_keeps_only_the_clusters_members_in_the_run():
    units = rollout.serving_units(["head", "w1"], ["head"], ["w1", "w2"], {"head": RAY_SVC})
    assert units == [{"name": "head", "hosts": ["head", "w1"], "kind": "ray_cluster"}]


def unit(name):
    return {"name": name, "hosts": [name], "kind": "node"}


@pytest.mark.parametrize("canary,size,expected", [
    (1, "100%", [["n1"], ["n2", "n3", "n4"]]),
    (1, 1, [["n1"], ["n2"], ["n3"], ["n4"]]),
    (1, "50%", [["n1"], ["n2", "n3"], ["n4"]]),
    ("25%", 2, [["n1"], ["n2", "n3"], ["n4"]]),
    (0, 2, [["n1", "n2"], ["n3", "n4"]]),
    ("0", "100%", [["n1", "n2", "n3", "n4"]]),
    (2, "10%", [["n1", "n2"], ["n3"], ["n4"]]),
])
def test_batches(canary, size, expected):
    units = [unit("n%d" % i) for i in range(1, 5)]
    assert names(rollout.batches(units, canary, size)) == expected


def test_the_canary_unit_goes_first():
    units = [unit("n%d" % i) for i in range(1, 4)]
    assert names(rollout.batches(units, 1, "100%", canary_unit="n3")) == [["n3"], ["n1", "n2"]]


@pytest.mark.parametrize("bad", [0, "0%", "150%", "x", "-1", True, "1.5"])
def test_bad_batch_sizes_are_refused(bad):
    with pytest.raises(ValueError):
        rollout.batches([unit("a"), unit("b")], 1, bad)


def test_an_unknown_canary_unit_is_refused_with_the_units():
    with pytest.raises(ValueError, match="names no unit.*a, b"):
        rollout.batches([unit("a"), unit("b")], 1, 1, canary_unit="zz")


def test_plan_filter_gives_serial_order_and_unit_of():
    hostvars = {"head": {"vllm_services": RAY_SVC}, "w": {}, "solo": {"vllm_services": MP_SVC}}
    plan = flt.rollout_plan(["head", "w", "solo"], {"ray_head": ["head"], "ray_workers": ["w"]}, hostvars,
                            canary=1, batch_size=1)
    assert plan["serial"] == [2, 1]
    assert plan["order"] == ["head", "w", "solo"]
    assert plan["unit_of"]["w"]["name"] == "head" and plan["unit_of"]["w"]["batch"] == 0
    assert plan["unit_of"]["solo"]["batch"] == 1
    assert plan["described"] == ["1. head+w", "2. solo"]


def test_plan_filter_refuses_with_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="rollout_plan: a batch size"):
        flt.rollout_plan(["a"], {}, {}, batch_size="lots")


def fp(release="0.32.0-aaa", unit_hash="u1", nccl="/opt/nccl/2.28.9", files=None, driver=None):
    return {"vllm": {"current": "/opt/vllm/releases/" + release, "previous": None, "release": release,
                     "units": {"/etc/systemd/system/vllm-tiny.service": unit_hash},
                     "env": {"/etc/vllm/tiny.env": "e1"}},
            "nccl": {"current": nccl}, "files": files or {"/etc/blackwell/nccl.env": "n1"},
            "ray": {"version": "2.60.0"}, "driver": {"version": driver}}


def test_changes_names_each_part_that_moved():
    assert rollout.changes(fp(), fp()) == []
    assert rollout.changes(fp(), fp(release="0.32.1-bbb", unit_hash="u2")) == ["vllm.release", "vllm.units"]
    assert rollout.changes(fp(), fp(files={"/etc/blackwell/nccl.env": "n2"})) == ["file /etc/blackwell/nccl.env"]
    assert rollout.changes(fp(driver="570.1"), fp(driver="580.2")) == ["driver.version"]


def test_summary_and_table():
    line = rollout.summary(fp(driver="580.95.05"))
    assert line.startswith("vllm 0.32.0-aaa, units ") and "nccl 2.28.9" in line and line.endswith("driver 580.95.05")
    assert rollout.summary({}) == "-"
    rows = rollout.table([{"unit": "spark-1", "before": "vllm a", "after": "vllm b", "gate": "passed", "seconds": "61.4"}])
    assert rows[0].split() == ["unit", "before", "after", "gate", "time"]
    assert rows[1].split() == ["spark-1", "vllm", "a", "vllm", "b", "passed", "61", "s"]


def test_slower_finds_services_below_the_tolerance():
    before = {"vllm-a.service": 100.0, "vllm-b.service": 100.0, "vllm-c.service": None}
    after = {"vllm-a.service": 91.0, "vllm-b.service": 89.0, "vllm-c.service": 5.0}
    assert rollout.slower(before, after, 10) == ["vllm-b.service"]
    assert rollout.slower(before, {"vllm-a.service": 100.0}, 10) == ["vllm-b.service"]
    assert flt.rollout_slower(before, after, "10") == ["vllm-b.service"]


def test_failure_reads_the_failed_items_of_a_loop():
    looped = {"msg": "One or more items failed", "results": [
        {"failed": False, "msg": "ok"}, {"failed": True, "msg": "vllm-tiny.service did not become\n healthy"}]}
    assert rollout.failure("Verify", looped) == "Verify: vllm-tiny.service did not become healthy"
    assert flt.rollout_failure({"msg": ["first", 2]}, "Stage vllm") == "Stage vllm: first"
    assert rollout.failure(None, {}) == "a task: failed"


def test_failure_names_the_journals_error_line():
    result = {"msg": ["vllm-tiny.service on release 0.32.0-110eed7d2d did not become healthy; the deploy is rolled back.",
                      "The previous unit is back and healthy.", "Last 40 journal lines of the failed start:",
                      ["2026-12-07T08:21:32+0000 spark-1 python[4756]:                      [model_tag]",
                       "2026-12-07T08:21:32+0000 spark-1 python[4756]: api_server.py: error: unrecognized arguments: --no-such-flag",
                       "2026-12-07T08:21:35+0000 spark-1 systemd[1]: vllm-tiny.service: Failed with result 'exit-code'."]]}
    assert rollout.failure("Fail with the journal of the failed start", result) == (
        "Fail with the journal of the failed start: vllm-tiny.service on release 0.32.0-110eed7d2d did not become "
        "healthy; the deploy is rolled back (api_server.py: error: unrecognized arguments: --no-such-flag)")
