# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""roles/ray_cluster/files/ray_cluster_check.py against recorded node lists of the GCS (ray.nodes()
and the state API), with a stand-in `ray` module: no cluster needed.

The recorded cases: seconds after a raylet restart, when the old and the new raylet are both ALIVE
for one address; DEAD entries of earlier raylets; a node that never joined."""

import importlib.util
import os
import json
import pathlib
import sys
import types

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[3] / "roles/ray_cluster/files/ray_cluster_check.py"
HEAD, WORKER = "10.234.14.10", "10.234.14.11"


def entry(node_id, ip, alive=True):
    """One node as ray.nodes() returns it (a DEAD one keeps its address and ID)."""
    return {"NodeID": node_id, "Alive": alive, "NodeManagerAddress": ip, "NodeManagerHostname": "spark-" + ip[-1],
            "NodeManagerPort": 6380, "Resources": {"CPU": 2.0, "node:" + ip: 1.0} if alive else {},
            "DeathReason": 0 if alive else 1, "DeathReasonMessage": "" if alive else "raylet exited"}


OLD_WORKER = entry("aa" * 28, WORKER)
NEW_WORKER = entry("bb" * 28, WORKER)
HEAD_NODE = entry("cc" * 28, HEAD)
# Recorded just after `systemctl restart ray-worker`: old and new raylet both ALIVE on .11.
BOTH_ALIVE = [HEAD_NODE, OLD_WORKER, NEW_WORKER]
# A few seconds later: the GCS marked the old one DEAD.
OLD_DEAD = [HEAD_NODE, dict(OLD_WORKER, Alive=False, Resources={}), NEW_WORKER]
# The state API's shape (ray.util.state.list_nodes), with DEAD entries that lack fields.
STATE_API = [{"node_id": "cc" * 28, "node_ip": HEAD, "state": "ALIVE", "node_name": "spark-1"},
             {"node_id": "dd" * 28, "state": "DEAD"},
             {"node_id": "aa" * 28, "node_ip": WORKER, "state": "DEAD"},
             {"node_id": "bb" * 28, "node_ip": WORKER, "state": "ALIVE", "node_name": "spark-2"}]


class Unschedulable(Exception):
    pass


def fake_ray(snapshots):
    """A `ray` module whose nodes() walks through the recorded snapshots (the last one repeats) and
    whose pinned tasks run where the GCS says the node ID lives, failing for a node ID that is dead."""
    calls = {"n": 0}
    ray = types.ModuleType("ray")

    def nodes():
        snap = snapshots[min(calls["n"], len(snapshots) - 1)]
        calls["n"] += 1
        return [dict(n) for n in snap]

    def current():
        return snapshots[min(calls["n"], len(snapshots) - 1)]

    class Ref:
        def __init__(self, node_id):
            self.node_id = node_id

    class Remote:
        def __init__(self, fn):
            self.fn = fn

        def options(self, scheduling_strategy):
            return types.SimpleNamespace(remote=lambda *a: Ref(scheduling_strategy.node_id))

    def get(refs, timeout=None):
        out = []
        for ref in refs:
            live = {n.get("NodeID", n.get("node_id")): n for n in current()
                    if n.get("Alive", n.get("state") == "ALIVE")}
            if ref.node_id not in live:
                raise Unschedulable("node %s is dead" % ref.node_id)
            ip = live[ref.node_id].get("NodeManagerAddress", live[ref.node_id].get("node_ip"))
            out.append({"hostname": "spark", "node_id": ref.node_id, "VLLM_HOST_IP": ip, "user": "ray"})
        return out

    ray.init = lambda **kw: None
    ray.shutdown = lambda: None
    ray.nodes = nodes
    ray.get = get
    ray.remote = lambda **kw: Remote
    ray.exceptions = types.SimpleNamespace(TaskUnschedulableError=Unschedulable)
    strategies = types.ModuleType("ray.util.scheduling_strategies")
    strategies.NodeAffinitySchedulingStrategy = lambda node_id, soft: types.SimpleNamespace(node_id=node_id)
    ray.util = types.ModuleType("ray.util")
    ray.util.scheduling_strategies = strategies
    return ray


@pytest.fixture
def check(monkeypatch, capsys):
    def run(snapshots, *args):
        ray = fake_ray(snapshots)
        monkeypatch.setitem(sys.modules, "ray", ray)
        monkeypatch.setitem(sys.modules, "ray.util", ray.util)
        monkeypatch.setitem(sys.modules, "ray.util.scheduling_strategies", ray.util.scheduling_strategies)
        monkeypatch.setattr("time.sleep", lambda s: None)
        spec = importlib.util.spec_from_file_location("ray_cluster_check", SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rc = mod.main(["--address", HEAD + ":6379", "--expect", HEAD + "," + WORKER, *args])
        return rc, json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return run


def test_old_and_new_raylet_alive_for_one_address_count_once(check):
    rc, out = check([BOTH_ALIVE], "--nodes-only", "--wait", "0.2")
    assert rc == 0, out["errors"]
    assert out["listed"] == [HEAD, WORKER]


def test_pinned_tasks_wait_for_the_old_raylet_to_die(check):
    rc, out = check([BOTH_ALIVE, BOTH_ALIVE, OLD_DEAD], "--wait", "30")
    assert rc == 0, out["errors"]
    assert sorted(t["node_id"] for t in out["tasks"]) == sorted([HEAD_NODE["NodeID"], NEW_WORKER["NodeID"]])


def test_old_raylet_that_never_dies_is_named_within_the_bound(check):
    rc, out = check([BOTH_ALIVE], "--wait", "0.2")
    assert rc == 1
    assert WORKER in out["errors"][0] and OLD_WORKER["NodeID"] in out["errors"][0]


@pytest.mark.parametrize("snapshot", [OLD_DEAD, STATE_API], ids=["ray.nodes", "state-api"])
def test_dead_entries_are_ignored(check, snapshot):
    rc, out = check([snapshot], "--wait", "0.2")
    assert rc == 0, out["errors"]
    assert out["listed"] == [HEAD, WORKER]
    assert [t["VLLM_HOST_IP"] for t in out["tasks"]] == [HEAD, WORKER]


def test_missing_node_fails_and_is_named(check):
    rc, out = check([[HEAD_NODE, dict(OLD_WORKER, Alive=False)]], "--nodes-only", "--wait", "0.2")
    assert rc == 1
    assert "missing: ['%s']" % WORKER in out["errors"][0]


RAY_ENV = """# Environment of ray-head.service.
VLLM_HOST_IP=10.234.14.10
RAY_USAGE_STATS_ENABLED=0
RAY_AUTH_MODE=token
RAY_AUTH_TOKEN_PATH=/etc/blackwell/ray-auth-token
NCCL_SOCKET_IFNAME=enp1s0f0np0
"""


def test_ray_env_brings_only_the_token_settings(check, monkeypatch, tmp_path):
    """--ray-env: a client run by hand or by the tests reaches a cluster with token authentication."""
    env_file = tmp_path / "ray.env"
    env_file.write_text(RAY_ENV)
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "NCCL_SOCKET_IFNAME"):
        monkeypatch.delenv(name, raising=False)
    rc, out = check([OLD_DEAD], "--nodes-only", "--ray-env", str(env_file))
    assert rc == 0, out["errors"]
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == "/etc/blackwell/ray-auth-token"
    assert "NCCL_SOCKET_IFNAME" not in os.environ


def test_refused_connection_names_the_token_settings_not_the_token(check, monkeypatch, tmp_path):
    """Ray says only "Failed to connect": the error names the auth mode and an unreadable token file."""
    token = tmp_path / "ray-auth-token"
    token.write_text("0123abcd" * 8)
    token.chmod(0)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))

    def refuse(**kw):
        raise ConnectionError("Failed to connect to Ray cluster at %s" % kw["address"])
    original = fake_ray

    def refusing(snapshots):
        ray = original(snapshots)
        ray.init = refuse
        return ray
    monkeypatch.setattr(sys.modules[__name__], "fake_ray", refusing)
    rc, out = check([OLD_DEAD], "--nodes-only")
    assert rc == 2
    message = out["errors"][0]
    assert "RAY_AUTH_MODE token" in message and "Failed to connect" in message
    if os.getuid() != 0:  # root reads a mode-0 file
        assert "not readable" in message
    assert "0123abcd" not in message
