# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Rollouts: serving units, batches, and what a node's fingerprint says changed.

A serving unit is what must change together and is health-checked as one: a Ray cluster
(head + workers) when a service on its head runs across it (distributed_executor_backend ray),
otherwise a single node. Batches are lists of units: the canary batch first, then batches of a
size or a percentage of the units (like Ansible's serial). Pure functions, no Ansible imports,
shared by the rollout filters (plugins/filter/rollout.py) and the fingerprint module.
"""

from __future__ import annotations

import hashlib
import math
import re

STAGES = ("driver", "host", "network", "ray", "vllm")
# The fingerprint's parts, in the order the table shows them, with what a stage may change.
PARTS = ("vllm.release", "vllm.units", "vllm.env", "nccl.current", "files", "ray.version", "driver.version")


def _ray_services(services):
    return [s for s in services or [] if isinstance(s, dict) and s.get("distributed_executor_backend") == "ray"]


def serving_units(hosts, ray_head=None, ray_workers=None, services_by_host=None):
    """Group ``hosts`` (in their order) into serving units.

    Returns [{'name': str, 'hosts': [...], 'kind': 'ray_cluster'|'node'}]. The Ray cluster is one
    unit only when a service of its head runs on Ray; its members outside ``hosts`` (a --limit)
    are left out, and the unit keeps the head's place in the order.
    """
    hosts = list(hosts or [])
    ray_head = list(ray_head or [])
    ray_workers = list(ray_workers or [])
    services_by_host = services_by_host or {}
    cluster = []
    if ray_head and _ray_services(services_by_host.get(ray_head[0])):
        cluster = [h for h in ray_head + ray_workers if h in hosts]
    units, placed = [], set()
    for host in hosts:
        if host in placed:
            continue
        if host in cluster:
            units.append({"name": cluster[0], "hosts": cluster, "kind": "ray_cluster"})
            placed.update(cluster)
        else:
            units.append({"name": host, "hosts": [host], "kind": "node"})
            placed.add(host)
    return units


def _batch_size(value, total):
    """An int, a digit string, or 'N%' of ``total`` units (at least one)."""
    text = str(value).strip()
    if text.endswith("%"):
        number = text[:-1].strip()
        if not number.isdigit() or not 0 < int(number) <= 100:
            raise ValueError("a batch percentage must be from 1%% to 100%%, got %r" % (value,))
        return max(1, int(math.ceil(total * int(number) / 100.0)))
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise ValueError("a batch size must be a whole number >= 1 or a percentage like '25%%', got %r" % (value,))
    return int(text)


def batches(units, canary=1, batch_size="100%", canary_unit=None):
    """Split ``units`` into batches: ``canary`` units first (``canary_unit`` names the first one
    when given), then batches of ``batch_size`` (a number or a percentage of the units left)."""
    units = list(units or [])
    if canary_unit:
        found = [u for u in units if u["name"] == canary_unit or canary_unit in u["hosts"]]
        if not found:
            raise ValueError("rollout_canary_unit %r names no unit of this rollout (units: %s)"
                             % (canary_unit, ", ".join(u["name"] for u in units) or "none"))
        units = found + [u for u in units if u is not found[0]]
    # Both settings are checked even where they split nothing (one unit, or a --limit to the canary).
    first = _batch_size(canary, max(1, len(units))) if canary not in (0, "0") else 0
    rest = units[first:]
    size = _batch_size(batch_size, max(1, len(rest)))
    out = [units[:first]] if first and units else []
    out += [rest[i:i + size] for i in range(0, len(rest), size)]
    return out


def serial_list(plan):
    """Ansible ``serial`` (a list of host counts) that walks the plan batch by batch."""
    return [sum(len(u["hosts"]) for u in batch) for batch in plan]


def flatten(plan):
    """Hosts in the order the plan visits them."""
    return [h for batch in plan for u in batch for h in u["hosts"]]


def unit_of(plan, host):
    for number, batch in enumerate(plan):
        for unit in batch:
            if host in unit["hosts"]:
                return dict(unit, batch=number)
    return None


def changes(before, after):
    """The fingerprint parts that differ between two fingerprints (dotted names, see PARTS)."""
    before, after = before or {}, after or {}
    out = []

    def get(fp, dotted):
        value = fp
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        return value

    for part in PARTS:
        if part == "files":
            keys = sorted(set(before.get("files", {})) | set(after.get("files", {})))
            out += ["file " + k for k in keys if before.get("files", {}).get(k) != after.get("files", {}).get(k)]
        elif get(before, part) != get(after, part):
            out.append(part)
    return out


def summary(fp):
    """One line a person reads in the rollout table: release, units hash, NCCL, driver."""
    if not fp:
        return "-"
    vllm = fp.get("vllm") or {}
    units = fp.get("vllm", {}).get("units") or {}
    digest = "".join(sorted(v or "" for v in units.values()))
    bits = ["vllm %s" % (vllm.get("release") or "none")]
    if units:
        bits.append("units %s" % hashlib.sha256(digest.encode()).hexdigest()[:8])
    if (fp.get("nccl") or {}).get("current"):
        bits.append("nccl %s" % fp["nccl"]["current"].rstrip("/").split("/")[-1])
    if (fp.get("driver") or {}).get("version"):
        bits.append("driver %s" % fp["driver"]["version"])
    return ", ".join(bits)


def table(rows):
    """The end-of-run table: unit, before, after, gate, seconds (rows are dicts)."""
    header = ("unit", "before", "after", "gate", "time")
    lines = [header] + [(str(r.get("unit", "")), str(r.get("before", "")), str(r.get("after", "")),
                         str(r.get("gate", "")), "%.0f s" % float(r.get("seconds") or 0)) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]


def _error_line(lines):
    """The last line of a journal excerpt that names an error, without the journal's prefix."""
    for line in reversed([x for x in lines if isinstance(x, str)]):
        if re.search(r"error|exception|refused|denied", line, re.IGNORECASE):
            return re.sub(r"^\S+ \S+ [\w.@-]+\[\d+\]: ", "", line).strip()
    return None


def failure(task_name, result, default="failed"):
    """One line saying why a task failed: "<task>: <msg>". A looped task's own msg is only "One or
    more items failed", so the failed items' messages are used; a list msg (a message with a journal
    excerpt) gives its first string and the excerpt's last error line."""
    result = result if isinstance(result, dict) else {}
    msgs = [r.get("msg") for r in result.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    msg = "; ".join(m for m in msgs if isinstance(m, str)) or result.get("msg") or default
    if isinstance(msg, (list, tuple)):
        nested = [x for part in msg if isinstance(part, (list, tuple)) for x in part]
        first = next((m for m in msg if isinstance(m, str)), default)
        error = _error_line(nested)
        msg = "%s (%s)" % (first.rstrip(". "), error) if error else first
    return "%s: %s" % (task_name or "a task", " ".join(str(msg).split()).rstrip("."))


def slower(before, after, tolerance):
    """Services whose output tokens/s after the change is below before * (1 - tolerance/100),
    or that measured nothing after while they measured before."""
    out = []
    for name, value in sorted((before or {}).items()):
        if not value:
            continue
        now = (after or {}).get(name)
        if not now or float(now) < float(value) * (1 - float(tolerance) / 100.0):
            out.append(name)
    return out
