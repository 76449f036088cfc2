#!/usr/bin/env python3
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Check a Ray cluster from its head: the nodes Ray lists, a task pinned to each, a gloo all-reduce.

    ray_cluster_check.py --address 10.234.14.10:6379 --expect 10.234.14.10,10.234.14.11 [--wait 120]
                         [--nodes-only] [--gloo --interface enp1s0f0np0 --gloo-port 29511]
                         [--ray-env /etc/blackwell/ray.env]

Installed by blackwell.vllm.ray_cluster. Run it with the venv's Python, as the Ray service user.
Prints one JSON object as its last line of output; exits 1 (with the reason in "errors") when a check fails, 2 when it cannot connect.

1. Ray's alive nodes are exactly --expect, by address: a management address in the list is the
   "Expected 2 unique IPs but got 3" failure of vLLM on nodes with a LAN and a QSFP NIC.
2. A task pinned to each node (NodeAffinitySchedulingStrategy, soft=False) reports the node's
   VLLM_HOST_IP, which must be the address Ray knows the node by.
3. One actor per node runs torch.distributed's gloo all_reduce (GLOO_SOCKET_IFNAME from the node's
   service environment, MASTER at the head's address) and checks the sum; the QSFP NIC's byte
   counters show the traffic went over it.
"""

import argparse
import json
import os
import socket
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--address", required=True, help="the head's GCS address, QSFP_IP:PORT")
    p.add_argument("--expect", required=True, help="comma-separated node addresses Ray must list, no more, no less")
    p.add_argument("--wait", type=float, default=0, help="seconds to wait for the expected node set")
    p.add_argument("--nodes-only", action="store_true", help="only check the node list")
    p.add_argument("--gloo", action="store_true", help="also run a gloo all-reduce across the nodes")
    p.add_argument("--interface", default=None, help="the QSFP NIC whose byte counters are read")
    p.add_argument("--gloo-port", type=int, default=29511)
    p.add_argument("--elements", type=int, default=1 << 20, help="float32 elements per all-reduce")
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--ray-env", default=None, metavar="FILE",
                   help="the Ray unit's environment file: its RAY_AUTH_* settings (token authentication) are used")
    return p.parse_args(argv)


def emit(out):
    """The result, on a line of its own after anything Ray printed."""
    sys.stdout.flush()
    sys.stderr.flush()
    print("\n" + json.dumps(out, sort_keys=True), flush=True)


def _normalise(n):
    """One node entry, from ray.nodes() (NodeID, Alive, NodeManagerAddress) or the state API
    (node_id, state, node_ip); DEAD entries may lack fields."""
    alive = n.get("Alive")
    if alive is None:
        alive = str(n.get("state", n.get("State", ""))).upper() == "ALIVE"
    out = dict(n)
    out["Alive"] = bool(alive)
    out["NodeID"] = n.get("NodeID") or n.get("node_id") or ""
    out["NodeManagerAddress"] = n.get("NodeManagerAddress") or n.get("node_ip") or ""
    out.setdefault("NodeManagerHostname", n.get("node_name"))
    out.setdefault("Resources", n.get("resources_total") or {})
    return out


def alive_nodes(ray):
    return [n for n in (_normalise(x) for x in ray.nodes()) if n["Alive"] and n["NodeManagerAddress"]]


def by_address(nodes):
    """Alive entries per address. Just after a raylet restart the GCS lists the old and the new
    raylet ALIVE for the same address until it notices the old one is gone (seconds): an address
    counts once, and one with two entries is ambiguous (which node ID to pin a task to?)."""
    groups = {}
    for n in nodes:
        groups.setdefault(n["NodeManagerAddress"], []).append(n)
    return groups


def wait_for_members(ray, expected, wait, clock=time.monotonic, sleep=time.sleep):
    """Read the alive nodes until each expected address is listed exactly once, or `wait` s pass.
    Returns (listed addresses, one entry per address, {address: [node IDs]} still listed twice)."""
    deadline = clock() + wait
    while True:
        groups = by_address(alive_nodes(ray))
        listed = sorted(groups)
        twice = {a: sorted(n["NodeID"] for n in g) for a, g in groups.items() if len(g) > 1}
        if (listed == expected and not twice) or clock() >= deadline:
            break
        sleep(0.5)
    return listed, [g[-1] for a, g in sorted(groups.items())], twice


def node_report():
    """Runs on the node the task is pinned to."""
    import ray
    return {
        "hostname": socket.gethostname(),
        "ray_node_ip": ray.util.get_node_ip_address(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "VLLM_HOST_IP": os.environ.get("VLLM_HOST_IP"),
        "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME"),
        "NCCL_SOCKET_IFNAME": os.environ.get("NCCL_SOCKET_IFNAME"),
        "RAY_memory_usage_threshold": os.environ.get("RAY_memory_usage_threshold"),
        "user": os.environ.get("USER") or str(os.getuid()),
    }


def _counters(interface):
    if not interface:
        return None
    base = "/sys/class/net/%s/statistics/" % interface
    try:
        with open(base + "tx_bytes") as tx, open(base + "rx_bytes") as rx:
            return int(tx.read()), int(rx.read())
    except OSError:
        return None


class GlooMember:
    """One rank of the all-reduce; an actor pinned to its node."""

    def run(self, master_addr, master_port, rank, world_size, elements, iterations, interface):
        import datetime
        import torch
        import torch.distributed as dist

        before = _counters(interface)
        t0 = time.monotonic()
        dist.init_process_group("gloo", init_method="tcp://%s:%d" % (master_addr, master_port), rank=rank,
                                world_size=world_size, timeout=datetime.timedelta(seconds=120))
        init_s = time.monotonic() - t0
        expected = float(sum(range(1, world_size + 1)))
        data = torch.full((elements,), float(rank + 1), dtype=torch.float32)
        warm = data.clone()
        dist.all_reduce(warm)  # warm-up: connections, buffers
        times = []
        ok = bool(torch.all(warm == expected))
        for dummy in range(iterations):
            t = data.clone()
            dist.barrier()
            t1 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t1)
            ok = ok and bool(torch.all(t == expected))
        got = float(t[0]) if iterations else float(warm[0])
        dist.destroy_process_group()
        after = _counters(interface)
        times.sort()
        return {
            "rank": rank, "hostname": socket.gethostname(), "ok": ok, "expected": expected, "got": got,
            "GLOO_SOCKET_IFNAME": os.environ.get("GLOO_SOCKET_IFNAME"), "interface": interface,
            "init_s": round(init_s, 3), "iterations": iterations, "bytes": elements * 4,
            "median_ms": round(1000 * times[len(times) // 2], 3) if times else None,
            "min_ms": round(1000 * times[0], 3) if times else None,
            "qsfp_tx_bytes": (after[0] - before[0]) if before and after else None,
            "qsfp_rx_bytes": (after[1] - before[1]) if before and after else None,
        }


def auth_env(path):
    """The RAY_AUTH_* settings of an environment file (NAME=value lines), to reach a cluster with token auth."""
    found = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, sep, value = line.strip().partition("=")
            if sep and name.startswith("RAY_AUTH_"):
                found[name] = value.strip().strip('"')
    return found


def auth_state():
    """What a refused connection was presented with, for the error message (never the token)."""
    mode = os.environ.get("RAY_AUTH_MODE", "unset")
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if mode != "token":
        return "RAY_AUTH_MODE %s" % mode
    if path and not os.access(path, os.R_OK):
        return "RAY_AUTH_MODE token, token file %s not readable by uid %d" % (path, os.getuid())
    return "RAY_AUTH_MODE token, token from %s" % (path or "RAY_AUTH_TOKEN or ~/.ray/auth_token")


def main(argv=None):
    args = parse_args(argv)
    if args.ray_env:
        os.environ.update(auth_env(args.ray_env))
    expected = sorted(set(a.strip() for a in args.expect.split(",") if a.strip()))
    head_ip = args.address.rsplit(":", 1)[0]
    out = {"address": args.address, "expected": expected, "errors": []}
    errors = out["errors"]
    t0 = time.monotonic()
    try:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        ray.init(address=args.address, logging_level="ERROR", log_to_driver=False)
    except Exception as exc:  # a person reads this: which address, what went wrong
        out["errors"].append("cannot connect to the Ray cluster at %s (%s): %s: %s" % (
            args.address, auth_state(), type(exc).__name__, exc))
        emit(out)
        return 2
    out["connect_s"] = round(time.monotonic() - t0, 2)

    listed, nodes, twice = wait_for_members(ray, expected, args.wait)
    out["waited_s"] = round(time.monotonic() - t0, 2)
    out["listed"] = listed
    out["nodes"] = [{"address": n["NodeManagerAddress"], "node_id": n["NodeID"], "hostname": n.get("NodeManagerHostname"),
                     "resources": n.get("Resources", {})} for n in nodes]
    if listed != expected:
        extra = sorted(set(listed) - set(expected))
        missing = sorted(set(expected) - set(listed))
        errors.append("Ray lists nodes %s, expected exactly %s%s%s" % (
            listed, expected,
            "; not in the inventory (a management address?): %s" % extra if extra else "",
            "; missing: %s" % missing if missing else ""))
    if twice:
        out["listed_twice"] = twice
        if not args.nodes_only and not errors:
            # A task needs one node ID per address; the old raylet's entry did not die within --wait.
            errors.append("Ray still lists two ALIVE nodes for %s after %.0fs (old and new raylet): %s" % (
                ", ".join(sorted(twice)), args.wait, "; ".join("%s: %s" % (a, ", ".join(i)) for a, i in sorted(twice.items()))))
    out["summary"] = "Ray lists %d node(s) %s after %.1fs" % (len(listed), ", ".join(listed), out["waited_s"])

    if not args.nodes_only and not errors:
        report = ray.remote(num_cpus=0)(node_report)
        task_deadline = time.monotonic() + args.wait
        while True:
            # Just after a raylet restart Ray may still list the dead node's ID for its address:
            # a task pinned to it is unschedulable. Read the nodes again and retry until --wait.
            try:
                refs = [report.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
                        for n in nodes]
                out["tasks"] = ray.get(refs, timeout=120)
                break
            except ray.exceptions.TaskUnschedulableError:
                if time.monotonic() >= task_deadline:
                    raise
                time.sleep(1)
                groups = by_address(alive_nodes(ray))
                if sorted(groups) == expected and all(len(g) == 1 for g in groups.values()):
                    nodes = [g[0] for a, g in sorted(groups.items())]
        out["nodes"] = [{"address": n["NodeManagerAddress"], "node_id": n["NodeID"], "hostname": n.get("NodeManagerHostname"),
                         "resources": n.get("Resources", {})} for n in nodes]
        for node, task in zip(nodes, out["tasks"]):
            if task["node_id"] != node["NodeID"]:
                errors.append("the task pinned to %s ran on node %s" % (node["NodeManagerAddress"], task["node_id"]))
            if task["VLLM_HOST_IP"] != node["NodeManagerAddress"]:
                errors.append("node %s (%s): VLLM_HOST_IP is %r, Ray knows it as %s" % (
                    task["hostname"], task["node_id"][:8], task["VLLM_HOST_IP"], node["NodeManagerAddress"]))

        if args.gloo and not errors:
            member = ray.remote(num_cpus=0)(GlooMember)
            ordered = sorted(nodes, key=lambda n: n["NodeManagerAddress"] != head_ip)  # rank 0 on the head
            actors = [member.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
                      for n in ordered]
            t1 = time.monotonic()
            results = ray.get([a.run.remote(head_ip, args.gloo_port, rank, len(actors), args.elements, args.iterations,
                                            args.interface) for rank, a in enumerate(actors)], timeout=300)
            out["gloo"] = {"world_size": len(actors), "elements": args.elements, "iterations": args.iterations,
                           "wall_s": round(time.monotonic() - t1, 2), "ranks": results}
            for r in results:
                if not r["ok"]:
                    errors.append("gloo all-reduce on %s (rank %d): got %s, expected %s" % (
                        r["hostname"], r["rank"], r["got"], r["expected"]))
                if args.interface and r["GLOO_SOCKET_IFNAME"] != args.interface:
                    errors.append("gloo on %s ran with GLOO_SOCKET_IFNAME=%r, not %s" % (
                        r["hostname"], r["GLOO_SOCKET_IFNAME"], args.interface))
                # A ring all-reduce of N bytes sends about N bytes per rank and iteration.
                floor = r["bytes"] * r["iterations"] // 2
                if args.interface and (r["qsfp_tx_bytes"] or 0) < floor:
                    errors.append("gloo on %s sent %s bytes over %s, expected at least %d: not over the QSFP link" % (
                        r["hostname"], r["qsfp_tx_bytes"], args.interface, floor))
            if not errors:
                slow = max(results, key=lambda r: r["median_ms"])
                out["summary"] += "; gloo all-reduce of %d x %.1f MiB across %d nodes = %s (sum %g), median %.2f ms" % (
                    args.iterations, args.elements * 4 / 2 ** 20, len(actors), "ok", slow["got"], slow["median_ms"])
    ray.shutdown()
    out["ok"] = not errors
    emit(out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
