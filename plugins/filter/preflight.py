# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters the preflight role checks the inventory with, on the controller, before any change.

A role's public contract is its ``meta/argument_specs.yml``. ``role_argument_spec`` reads it
from the collection (``roles/<role>/meta/argument_specs.yml`` beside this file, in a checkout
and in an installed collection alike) so that ``ansible.builtin.validate_argument_spec`` can
check a host's variables against every role the site runs before the first role starts.

``ansible.builtin.validate_argument_spec`` converts some values without a word: a string where
a list belongs becomes a one-item list, ``null`` passes for any type, ``0.30`` given for a
version string becomes ``"0.3"``. ``argument_spec_strict_problems`` names those.

Documentation of each filter lies beside this file in <filter name>.yml.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils import hardware_profiles
from ansible_collections.blackwell.vllm.plugins.module_utils.values import whole_number

ROLES_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles"))
_TEMPLATE = re.compile(r"{{|{%")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SPEC_CACHE = {}


def _spec_file(role):
    if not isinstance(role, str) or not re.match(r"^[a-z0-9_]+$", role):
        raise AnsibleFilterError("role_argument_spec: %r is not a role name of blackwell.vllm" % (role,))
    return os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")


def _load(role, entry):
    key = (role, entry)
    if key not in _SPEC_CACHE:
        path = _spec_file(role)
        try:
            with open(path) as f:
                doc = yaml.safe_load(f) or {}
        except OSError as exc:
            raise AnsibleFilterError("role_argument_spec: role %r has no argument spec (%s)" % (role, exc))
        specs = doc.get("argument_specs") or {}
        if entry not in specs:
            raise AnsibleFilterError("role_argument_spec: role %r has no entry point %r (it has %s)"
                                     % (role, entry, ", ".join(sorted(specs))))
        _SPEC_CACHE[key] = specs[entry].get("options") or {}
    return _SPEC_CACHE[key]


def _strip(options):
    """The options without defaults (recursively) and without documentation."""
    out = {}
    for name, opt in options.items():
        opt = {k: v for k, v in opt.items() if k not in ("default", "description", "version_added")}
        if isinstance(opt.get("options"), Mapping):
            opt["options"] = _strip(opt["options"])
        out[name] = opt
    return out


def role_argument_spec(role, entry="main"):
    """The options of a role's entry point, ready for ansible.builtin.validate_argument_spec.

    Defaults are left out: only what the inventory sets is checked (the role's own defaults are
    checked against the same spec by the collection's tests), and a templated default such as
    "{{ blackwell_qsfp_mtu }}" is never mistaken for a value.
    """
    return _strip(_load(role, entry))


def role_argument_defaults(role, entry="main"):
    """{option: default} of a role's entry point, for the defaults that are plain values (no template)."""
    out = {}
    for name, opt in _load(role, entry).items():
        if "default" in opt and not (isinstance(opt["default"], str) and _TEMPLATE.search(opt["default"])):
            out[name] = opt["default"]
    return out


def _get(hv, key):
    """(found, value) of one variable of hostvars[host].

    Read through hostvars, a value that is a template naming other magic variables (a ray_address
    built from hostvars[...]) may not resolve inside a filter: it counts as not found here, and
    validate_argument_spec, which resolves it with the task's variables, checks it.
    """
    try:
        if key in hv:
            return True, hv[key]
    except Exception:  # pylint: disable=broad-except  # an unresolvable template is not ours to judge here
        pass
    return False, None


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return "a list"
    return type(value).__name__


def _strict(where, value, opt, top, problems):
    kind = opt.get("type", "str")
    if value is None:
        if top and opt.get("required"):
            problems.append("%s is null; the role requires it (%s)" % (where, kind))
        elif top and opt.get("default") is not None:
            problems.append("%s is null; the role needs %s (its default is %r): set a value or leave it out"
                            % (where, kind, opt["default"]))
        return
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            problems.append("%s=%r is %s; it must be a YAML list%s" % (
                where, value, _kind(value), " (a string would be split at commas)" if isinstance(value, str) else ""))
            return
        elements = opt.get("elements")
        for i, item in enumerate(value):
            if item is None:
                problems.append("%s[%d] is null; every item must be %s" % (where, i, elements or "a value"))
            elif elements == "str" and isinstance(item, (bool, float, Mapping, list, tuple)):
                problems.append("%s[%d]=%r is %s; every item must be a string (quote it)" % (where, i, item, _kind(item)))
            elif elements == "dict" and isinstance(item, Mapping) and isinstance(opt.get("options"), Mapping):
                for key, sub in opt["options"].items():
                    if key in item:
                        _strict("%s[%d].%s" % (where, i, key), item[key], sub, False, problems)
    elif kind == "dict":
        if isinstance(value, Mapping) and isinstance(opt.get("options"), Mapping):
            for key, sub in opt["options"].items():
                if key in value:
                    _strict("%s.%s" % (where, key), value[key], sub, False, problems)
    elif kind == "str":
        if isinstance(value, (bool, float)):
            problems.append("%s=%r is %s, not a string: YAML read it as %s (e.g. 0.30 becomes 0.3); quote it, "
                            "e.g. \"%s\"" % (where, value, _kind(value), _kind(value), value))
        elif isinstance(value, (Mapping, list, tuple)):
            problems.append("%s=%r is %s; it must be a string" % (where, value, _kind(value)))


def argument_spec_strict_problems(role, hostvars, node="", entry="main"):
    """Sentences about the host's values for a role's options that validate_argument_spec would convert.

    hostvars: the host's variables (hostvars[inventory_hostname]). A string for a list, a null
    item of a list, a bool or float for a string, a null for an option whose role default is a
    value; inside list/dict options with sub-options the same rules (a null sub-option there
    means "the default" and passes).
    """
    problems = []
    for name, opt in sorted(_load(role, entry).items()):
        found, value = _get(hostvars, name)
        if found:
            try:
                _strict(name, value, opt, True, problems)
            except Exception:  # pylint: disable=broad-except  # a lazy template (see _get): validate_argument_spec checks it
                pass
    prefix = ("%s: " % node) if node else ""
    return [prefix + p for p in problems]


def argument_spec_given(hostvars, role, errors, entry="main", hide=()):
    """{option: value} of the options that the error sentences name, for the failure message.

    Secrets (no_log options and the names in hide) show as '********'.
    """
    text = " ".join(str(e) for e in errors or [])
    out = {}
    for name, opt in sorted(_load(role, entry).items()):
        if not re.search(r"(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_])" % re.escape(name), text):
            continue
        found, value = _get(hostvars, name)
        if not found:
            continue
        out[name] = "********" if (opt.get("no_log") or name in hide) else value
    return out


def vllm_service_list(services, defaults):
    """vllm_services merged with vllm_service_defaults as the vllm role merges them (a null key takes the default)."""
    if not isinstance(services, (list, tuple)):
        return []
    out = []
    for item in services:
        if not isinstance(item, Mapping):
            continue
        svc = dict(defaults or {})
        svc.update({k: v for k, v in item.items() if v is not None})
        out.append(svc)
    return out


# vLLM 0.18.0 dropped --swap-space (the V1 engine never used it): such a server exits at once with
# "unrecognized arguments: --swap-space".
SWAP_SPACE_REMOVED_IN = (0, 18, 0)


def swap_space_problems(services, vllm_version):
    """Sentences about services that set swap_space on a vLLM without --swap-space ([] when none)."""
    asking = [s.get("name", "?") for s in services or [] if isinstance(s, Mapping) and s.get("swap_space") is not None]
    release = tuple(int(p) for p in re.findall(r"\d+", str(vllm_version))[:3])
    if not asking or release < SWAP_SPACE_REMOVED_IN:
        return []
    return ["vllm_services %s set swap_space, but vllm_version=%s has no --swap-space (removed in vLLM %s; the server "
            "would exit with \"unrecognized arguments: --swap-space\"); leave swap_space unset, or pin vllm_version "
            "to 0.17.1 or earlier" % (", ".join(asking), vllm_version, ".".join(map(str, SWAP_SPACE_REMOVED_IN)))]


def listen_port_problems(listeners, node="", worker_range=None):
    """[{var, port}] of everything that listens on a node -> sentences about clashes.

    Every port is a whole number within 1-65535 and unique on the node; none lies in Ray's
    worker port range worker_range=[min, max] (Ray hands those to its worker processes).
    """
    prefix = ("%s: " % node) if node else ""
    problems = []
    seen = {}
    lo, hi = (None, None)
    if worker_range:
        lo, hi = whole_number(worker_range[0]), whole_number(worker_range[1])
    for entry in listeners or []:
        var, raw = entry.get("var"), entry.get("port")
        port = whole_number(raw)
        if port is None or not 1 <= port <= 65535:
            problems.append("%s%s=%r is not a port (a whole number within 1-65535)" % (prefix, var, raw))
            continue
        if port in seen:
            problems.append("%s%s=%d is already taken by %s on this node; every port Ray and vLLM listen on must "
                            "differ" % (prefix, var, port, seen[port]))
        else:
            seen[port] = var
        if lo is not None and hi is not None and lo <= port <= hi:
            problems.append("%s%s=%d lies in Ray's worker port range ray_cluster_min_worker_port-"
                            "ray_cluster_max_worker_port=%d-%d; choose a port outside it" % (prefix, var, port, lo, hi))
    return problems


# Ray's ports that only the head listens on; the others every Ray node listens on.
RAY_HEAD_PORTS = ("ray_cluster_gcs_port", "ray_cluster_client_server_port", "ray_cluster_dashboard_port",
                  "ray_cluster_dashboard_metric_port", "ray_cluster_autoscaler_metric_port",
                  "ray_cluster_verify_gloo_port")
RAY_WORKER_RANGE = ("ray_cluster_min_worker_port", "ray_cluster_max_worker_port")


def _value(hv, name, defaults):
    found, value = _get(hv, name)
    return value if found and value is not None else defaults.get(name)


def ray_listeners(hostvars, ray_role):
    """[{var, port}] of the ports Ray listens on for a node (ray_role: head, worker, or none)."""
    if ray_role not in ("head", "worker"):
        return []
    defaults = role_argument_defaults("ray_cluster")
    names = sorted(n for n in _load("ray_cluster", "main") if n.endswith("_port") and n not in RAY_WORKER_RANGE)
    return [{"var": n, "port": _value(hostvars, n, defaults)} for n in names
            if ray_role == "head" or n not in RAY_HEAD_PORTS]


def ray_worker_range(hostvars):
    """[min, max] of Ray's worker ports for a node."""
    defaults = role_argument_defaults("ray_cluster")
    return [_value(hostvars, n, defaults) for n in RAY_WORKER_RANGE]


def vllm_listeners(services):
    """[{var, port}] of merged vLLM services (vllm_service_list): host:port, and beyond loopback the
    backend port vLLM listens on behind the gateway (backend_port, unset port + 20000)."""
    out = []
    for svc in services or []:
        out.append({"var": "vllm_services[%s].port" % svc.get("name"), "port": svc.get("port")})
        if str(svc.get("host", "127.0.0.1")) not in ("127.0.0.1", "localhost", "::1"):
            backend = svc.get("backend_port")
            if backend is None:
                port = whole_number(svc.get("port"))
                backend = port + 20000 if port is not None else None
            out.append({"var": "vllm_services[%s].backend_port" % svc.get("name"), "port": backend})
    return out


def node_gpus(hostvars, nodes):
    """The GPUs each node offers Ray and vLLM: ray_cluster_num_gpus where set, else the profile's gpus.

    Returns {node: count}; a node with an unknown profile counts 0 (preflight names the profile first).
    """
    out = {}
    for node in nodes or []:
        hv = _get(hostvars, node)[1] or {}
        found, num = _get(hv, "ray_cluster_num_gpus")
        if found and num is not None:
            out[node] = whole_number(num) or 0
            continue
        found, name = _get(hv, "blackwell_hardware_profile")
        try:
            out[node] = int(hardware_profiles.get(name)["gpus"])
        except hardware_profiles.UnknownProfile:
            out[node] = 0
    return out


class FilterModule(object):
    """blackwell.vllm preflight filters."""

    def filters(self):
        return {
            "role_argument_spec": role_argument_spec,
            "role_argument_defaults": role_argument_defaults,
            "argument_spec_strict_problems": argument_spec_strict_problems,
            "argument_spec_given": argument_spec_given,
            "vllm_service_list": vllm_service_list,
            "swap_space_problems": swap_space_problems,
            "listen_port_problems": listen_port_problems,
            "ray_listeners": ray_listeners,
            "ray_worker_range": ray_worker_range,
            "vllm_listeners": vllm_listeners,
            "node_gpus": node_gpus,
        }
