# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""What one node runs, read cheaply and without changing anything: the fleet report's per-node part.

Every reader takes the paths it reads (tests point them at a fake node tree) and returns plain data;
``problems`` turns a node's report into sentences a person can act on. Commands go through a
``run(argv) -> (rc, out, err)`` callable (``module.run_command`` in the module). Nothing here
returns a secret: the vLLM API key is read only by vllm_probe.py, the Ray token only to ask the
head's dashboard, and neither is kept.
"""

from __future__ import annotations

import glob
import json
import os
import re
import time
import urllib.error

from ansible.module_utils.urls import open_url

from ansible_collections.blackwell.vllm.plugins.module_utils import hardware_profiles
from ansible_collections.blackwell.vllm.plugins.module_utils.vllm_patch import PATCHES

SYS_CLASS_NET = "/sys/class/net"
NCCL_MARKER = ".blackwell-nccl.json"
RELEASE_MARKER = ".blackwell-release.json"
RAY_UNITS = {"head": "ray-head.service", "worker": "ray-worker.service"}
# The unit header the vllm role writes: "# vLLM service <name>: <served> on <host>:<port> (profile <p>)."
UNIT_HEADER = re.compile(r"(?m)^# vLLM service (\S+): (\S+) on (\S+):(\d+) \(profile ([^)]*)\)")
UNIT_RELEASE = re.compile(r"(?m)^# Release (\S+?)\.?(?:\s|$)")
SHOW_PROPERTIES = "Id,LoadState,ActiveState,SubState,Result,NRestarts,ActiveEnterTimestamp"
# Fields of a rollout record and of a bench result that the report shows (the records hold more:
# fingerprints, backups, the completion text).
ROLLOUT_FIELDS = ("id", "kind", "unit", "gate", "changed", "started", "finished", "seconds", "error")


def read_json(path):
    """(data, None) or (None, reason)."""
    try:
        with open(path) as f:
            return json.load(f), None
    except (OSError, ValueError) as exc:
        return None, "%s: %s" % (path, getattr(exc, "strerror", None) or exc)


def read_text(path, limit=1 << 20):
    try:
        with open(path, errors="replace") as f:
            return f.read(limit)
    except OSError:
        return None


def link_target(path):
    """The name a link points at (its last path part) and where it resolves, or (None, None)."""
    if not os.path.islink(path):
        return None, None
    target = os.readlink(path)
    return os.path.basename(target.rstrip("/")), os.path.realpath(path)


# --------------------------------------------------------------------------
# NCCL
# --------------------------------------------------------------------------

def nccl_build(install_root):
    """The NCCL build `current` names, from the marker the nccl role's build writes (no cuobjdump:
    the marker lists the SMs the build was made for, and the role's own check proved them)."""
    current = os.path.join(install_root, "current")
    builds = sorted(os.path.basename(os.path.dirname(p))
                    for p in glob.glob(os.path.join(install_root, "*", NCCL_MARKER))
                    if not os.path.islink(os.path.dirname(p)))
    name, real = link_target(current)
    out = {"install_root": install_root, "current": name, "path": real, "builds": builds,
           "version": None, "sms": [], "cuda": None, "built_at": None, "library": False, "marker": False}
    if name is None:
        return out
    out["library"] = os.path.exists(os.path.join(current, "lib", "libnccl.so.2"))
    marker, dummy = read_json(os.path.join(current, NCCL_MARKER))
    if isinstance(marker, dict):
        out.update(marker=True, version=marker.get("version"), sms=list(marker.get("sms") or []),
                   cuda=marker.get("cuda") or None, built_at=marker.get("built_at"))
    return out


# --------------------------------------------------------------------------
# vLLM: the release and its patches, the units
# --------------------------------------------------------------------------

def patches_applied(release_dir):
    """name -> applied | partial | absent | no file, from the BEGIN lines vllm_patch writes."""
    states = {}
    for name, spec in sorted(PATCHES.items()):
        files = glob.glob(os.path.join(release_dir, "venv", "lib", "python3*", "site-packages", spec["path"]))
        text = read_text(files[0]) if files else None
        if text is None:
            states[name] = "no file"
            continue
        found = [block for block, dummy, dummy2, dummy3 in spec["inserts"]
                 if "# BEGIN blackwell.vllm %s" % block in text]
        states[name] = ("applied" if len(found) == len(spec["inserts"]) else "partial" if found else "absent")
    return states


def vllm_release(base_dir):
    """The release `current` names, its marker (version, install mode) and the patches in it."""
    current, real = link_target(os.path.join(base_dir, "current"))
    previous, dummy = link_target(os.path.join(base_dir, "previous"))
    out = {"base_dir": base_dir, "current": current, "previous": previous, "path": real,
           "version": None, "mode": None, "installed_at": None, "patches": {}, "patches_applied": []}
    if current is None:
        return out
    marker, dummy = read_json(os.path.join(real, RELEASE_MARKER))
    if isinstance(marker, dict):
        out.update(version=marker.get("version"), mode=marker.get("mode"), installed_at=marker.get("installed_at"))
    out["patches"] = patches_applied(real)
    out["patches_applied"] = [name for name, state in sorted(out["patches"].items()) if state == "applied"]
    return out


def exec_start_address(text):
    """(host, port) of vLLM's own listener from the unit's ExecStart (behind the gateway that is
    127.0.0.1:backend_port); a wildcard host is asked on loopback."""
    joined = text.replace("\\\n", " ")
    found = {}
    for line in joined.splitlines():
        if line.startswith("ExecStart="):
            words = [w.strip('"') for w in line.split()]
            for flag in ("--host", "--port"):
                if flag in words and words.index(flag) + 1 < len(words):
                    found[flag] = words[words.index(flag) + 1]
    host = found.get("--host") or "127.0.0.1"
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    try:
        port = int(found.get("--port") or 8000)
    except ValueError:
        port = 8000
    return host, port


def vllm_units(systemd_dir):
    """One entry per vllm-<name>.service: its header (served name, public address, profile, release)
    and the address vLLM itself listens on."""
    units = []
    for path in sorted(glob.glob(os.path.join(systemd_dir, "vllm-*.service"))):
        text = read_text(path) or ""
        unit = os.path.basename(path)
        entry = {"unit": unit, "name": unit[len("vllm-"):-len(".service")], "served_name": None,
                 "listen": None, "profile": None, "release": None}
        header = UNIT_HEADER.search(text)
        if header:
            entry.update(name=header.group(1), served_name=header.group(2),
                         listen="%s:%s" % (header.group(3), header.group(4)), profile=header.group(5))
        release = UNIT_RELEASE.search(text)
        if release:
            entry["release"] = release.group(1)
        host, port = exec_start_address(text)
        entry["url"] = "http://%s:%d" % (host if ":" not in host else "[%s]" % host, port)
        units.append(entry)
    return units


def parse_systemctl_show(text):
    """`systemctl show -p ... A B` (blocks split by blank lines) -> {Id: {property: value}}."""
    units, block = {}, {}
    for line in text.splitlines() + [""]:
        if not line.strip():
            if block.get("Id"):
                units[block["Id"]] = block
            block = {}
            continue
        if "=" in line:
            key, value = line.split("=", 1)
            block[key] = value
    return units


def unit_states(run, units):
    """{unit: {active, sub, result, restarts, since, loaded}} for the units that exist, one systemctl call."""
    if not units:
        return {}, None
    rc, out, err = run(["systemctl", "show", "-p", SHOW_PROPERTIES, "--"] + list(units))
    if rc != 0:
        return {}, "systemctl show exited %d: %s" % (rc, (err or out).strip()[:200])
    states = {}
    for unit, props in parse_systemctl_show(out).items():
        try:
            restarts = int(props.get("NRestarts") or 0)
        except ValueError:
            restarts = 0
        states[unit] = {"loaded": props.get("LoadState"), "active": props.get("ActiveState"),
                        "sub": props.get("SubState"), "result": props.get("Result"),
                        "restarts": restarts, "since": props.get("ActiveEnterTimestamp") or None}
    return states, None


def last_json_line(text):
    for line in reversed((text or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


def probe_service(run, python, probe, unit, timeout):
    """/health, then /v1/models (must list the served name) and a one-token completion, through
    vllm_probe.py on vLLM's own listener. The probe reads the API key from the service's 0600
    environment file itself; nothing of it comes back here."""
    out = {"health": None, "models": [], "served": False, "completion_seconds": None, "auth": None, "error": None}
    if not os.path.exists(probe):
        out["error"] = "no %s (the vllm role installs it)" % probe
        return out
    wrap = ["timeout", "-k", "2", "%g" % timeout] if run.has_timeout else []
    rc, stdout, stderr = run(wrap + [python, probe, "wait", "--unit", unit["unit"], "--url", unit["url"],
                                     "--slice", "0", "--allow-restarts", "--journal", "0"])
    health = last_json_line(stdout)
    if rc == 124 or health is None:
        out.update(health="no answer", error="/health on %s: %s" % (
            unit["url"], "no answer within %g s" % timeout if rc == 124 else (stderr or stdout).strip()[-200:] or "rc %d" % rc))
        return out
    out["health"] = health.get("state")
    if out["health"] != "healthy":
        out["error"] = "/health on %s: %s" % (unit["url"], health.get("last_error") or health.get("state"))
        if out["health"] == "loading" and health.get("seconds_since_start") is not None:
            # The unit runs but vLLM does not answer yet: starting (a restart, a rollout) or stuck.
            out["error"] = "not answering %.0f s after its start, %s" % (health["seconds_since_start"], out["error"])
        return out
    argv = [python, probe, "verify", "--url", unit["url"], "--served-name", unit["served_name"] or unit["name"],
            "--max-tokens", "1"]
    if unit.get("env_file"):
        argv += ["--env-file", unit["env_file"]]
    rc, stdout, stderr = run(wrap + argv)
    verify = last_json_line(stdout)
    if rc == 124 or verify is None:
        out["error"] = "/v1/models on %s: %s" % (
            unit["url"], "no answer within %g s" % timeout if rc == 124 else (stderr or stdout).strip()[-200:] or "rc %d" % rc)
        return out
    out["models"] = [m for m in verify.get("models") or [] if isinstance(m, str)]
    out["served"] = (unit["served_name"] or unit["name"]) in out["models"]
    out["completion_seconds"] = verify.get("completion_seconds")
    out["auth"] = verify.get("auth")
    out["error"] = verify.get("error")
    return out


# --------------------------------------------------------------------------
# QSFP link, Ray
# --------------------------------------------------------------------------

def qsfp_link(run, interface, expected_address=None, expected_mtu=None):
    """State, MTU and addresses of the QSFP NIC (sysfs and one `ip -j addr show`)."""
    out = {"interface": interface, "exists": False, "state": None, "carrier": None, "mtu": None,
           "addresses": [], "expected_address": expected_address, "expected_mtu": expected_mtu}
    base = os.path.join(SYS_CLASS_NET, interface)
    if not os.path.isdir(base):
        return out
    out["exists"] = True
    out["state"] = (read_text(os.path.join(base, "operstate")) or "").strip() or None
    carrier = (read_text(os.path.join(base, "carrier")) or "").strip()
    out["carrier"] = carrier == "1" if carrier in ("0", "1") else None
    try:
        out["mtu"] = int((read_text(os.path.join(base, "mtu")) or "").strip())
    except ValueError:
        pass
    rc, stdout, dummy = run(["ip", "-j", "addr", "show", "dev", interface])
    if rc == 0:
        try:
            for link in json.loads(stdout or "[]"):
                for addr in link.get("addr_info") or []:
                    if addr.get("family") == "inet":
                        out["addresses"].append("%s/%s" % (addr.get("local"), addr.get("prefixlen")))
        except (ValueError, AttributeError):
            pass
    return out


def env_file_values(paths, names):
    """The values of `names` in systemd environment files (later files win)."""
    values = {}
    for path in paths:
        for line in (read_text(path) or "").splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                if key.strip() in names:
                    values[key.strip()] = value.strip().strip('"')
    return values


def ray_dashboard(unit_text):
    """(url, env files) of the head's dashboard from its unit, or (None, files) when it has none."""
    joined = unit_text.replace("\\\n", " ")
    files = [line.split("=", 1)[1].lstrip("-").strip() for line in joined.splitlines() if line.startswith("EnvironmentFile=")]
    if re.search(r"--include-dashboard[= ]false", joined):
        return None, files
    host = re.search(r"--dashboard-host[= ](\S+)", joined)
    port = re.search(r"--dashboard-port[= ](\d+)", joined)
    if not host:
        return None, files
    return "http://%s:%s" % (host.group(1), port.group(1) if port else "8265"), files


def ray_node_count(url, env_files, timeout):
    """Alive nodes as the head's dashboard lists them (GET /nodes?view=summary): one local HTTP call,
    with the cluster's token when the Ray environment names one. (count, None) or (None, reason)."""
    env = env_file_values(env_files, ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH"))
    headers = {}
    if env.get("RAY_AUTH_MODE", "disabled") == "token" and env.get("RAY_AUTH_TOKEN_PATH"):
        token = (read_text(env["RAY_AUTH_TOKEN_PATH"]) or "").strip()
        if token:
            headers["Authorization"] = "Bearer " + token
    try:
        with open_url(url.rstrip("/") + "/nodes?view=summary", headers=headers, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return None, "the dashboard answered HTTP %s" % exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, "the dashboard did not answer: %s" % (getattr(exc, "reason", None) or exc)
    summary = ((data.get("data") or {}).get("summary")) if isinstance(data, dict) else None
    if not isinstance(summary, list):
        return None, "the dashboard's answer has no node summary"
    alive = 0
    for node in summary:
        raylet = node.get("raylet") if isinstance(node, dict) else None
        state = (raylet or {}).get("state") or (node.get("state") if isinstance(node, dict) else None)
        if str(state).upper() == "ALIVE":
            alive += 1
    return alive, None


def ray_membership(systemd_dir, states, expected_role, dashboard_timeout):
    """The Ray unit on this node (head or worker), whether it is active, and on the head the number
    of alive nodes from the dashboard."""
    present = {role: unit for role, unit in RAY_UNITS.items() if os.path.exists(os.path.join(systemd_dir, unit))}
    role = "head" if "head" in present else "worker" if "worker" in present else None
    out = {"expected_role": expected_role, "role": role, "unit": present.get(role), "active": None,
           "state": None, "nodes_alive": None, "nodes_note": None}
    if role is None:
        return out
    state = states.get(present[role]) or {}
    out["state"] = state.get("active")
    out["active"] = state.get("active") == "active"
    if role == "head" and out["active"] and dashboard_timeout > 0:
        url, files = ray_dashboard(read_text(os.path.join(systemd_dir, present[role])) or "")
        if url:
            out["nodes_alive"], out["nodes_note"] = ray_node_count(url, files, dashboard_timeout)
        else:
            out["nodes_note"] = "the head runs without a dashboard"
    return out


# --------------------------------------------------------------------------
# Records: the last rollout, the last bench per service
# --------------------------------------------------------------------------

def last_rollout(rollout_dir):
    """The newest rollout or rollback record (by finished, else started, else the file's time)."""
    records = []
    for path in glob.glob(os.path.join(rollout_dir, "*.json")):
        data, dummy = read_json(path)
        if not isinstance(data, dict):
            continue
        try:
            mtime = os.path.getmtime(path)
        except OSError:
            mtime = 0
        key = str(data.get("finished") or data.get("started") or "")
        records.append((key, mtime, os.path.basename(path), data))
    if not records:
        return None, 0
    dummy, dummy2, dummy3, data = max(records, key=lambda r: (r[0], r[1], r[2]))
    record = {k: data.get(k) for k in ROLLOUT_FIELDS}
    if not isinstance(record["changed"], list):
        record["changed"] = [] if record["changed"] in (None, "") else [str(record["changed"])]
    return record, len(records)


def bench_results(bench_dir):
    """service name -> the last bench result of that service (<bench_dir>/<name>.json)."""
    results = {}
    for path in sorted(glob.glob(os.path.join(bench_dir, "*.json"))):
        data, dummy = read_json(path)
        if not isinstance(data, dict):
            continue
        ttft = data.get("ttft_ms") or {}
        tpot = data.get("tpot_ms") or {}
        try:
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(path)))
        except OSError:
            when = None
        results[os.path.basename(path)[:-len(".json")]] = {
            "output_tokens_per_s": data.get("output_tokens_per_s"),
            "ttft_ms_median": ttft.get("median"), "ttft_ms_mean": ttft.get("mean"), "ttft_ms_p99": ttft.get("p99"),
            "tpot_ms_mean": tpot.get("mean"), "completed": data.get("completed"), "failed": data.get("failed"),
            "concurrency": data.get("concurrency"), "when": data.get("finished") or when,
        }
    return results


# --------------------------------------------------------------------------
# The whole node, and what is wrong with it
# --------------------------------------------------------------------------

def gpu_summary(facts):
    """The fleet report's view of gpu_info's facts."""
    facts = facts or {}
    return {
        "count": facts.get("gpu_count", 0),
        "gpus": [{"index": g.get("index"), "name": g.get("name"), "memory_total_mib": g.get("memory_total_mib"),
                  "compute_capability": g.get("compute_capability"), "sm": g.get("sm"),
                  "unified_memory": g.get("unified_memory")} for g in facts.get("gpus") or []],
        "driver_version": facts.get("driver_version"),
        "cuda_driver_version": facts.get("cuda_driver_version"),
        "cuda_toolkit": (facts.get("cuda_toolkit") or {}).get("version"),
        "nccl_loaded": (facts.get("nccl") or {}).get("realpath"),
        "backend": facts.get("backend"),
        "probe_error": facts.get("probe_error"),
    }


def problems(node):
    """Sentences naming what is wrong on the node, each with its reason."""
    out = []
    profile = node.get("profile") or {}
    gpu = node.get("gpu") or {}
    if profile.get("error"):
        out.append(profile["error"])
    want = profile.get("min_gpus") or 0
    if gpu.get("count", 0) < want:
        out.append("GPUs: profile %s needs %d, found %d%s" % (
            profile.get("name"), want, gpu.get("count", 0), " (%s)" % gpu["probe_error"] if gpu.get("probe_error") else ""))
    nccl = node.get("nccl") or {}
    if profile.get("capability") and not nccl.get("current"):
        out.append("NCCL: no build in use (%s/current is missing)" % nccl.get("install_root"))
    elif nccl.get("current") and not (nccl.get("marker") and nccl.get("library")):
        out.append("NCCL: %s is not a complete build (%s)" % (
            nccl["current"], "no libnccl.so.2" if not nccl.get("library") else "no " + NCCL_MARKER))
    link = node.get("qsfp")
    if link:
        if not link.get("exists"):
            out.append("QSFP: interface %s does not exist" % link["interface"])
        else:
            if link.get("state") not in ("up", "unknown"):
                out.append("QSFP: %s is %s" % (link["interface"], link.get("state") or "in an unknown state"))
            if link.get("expected_mtu") and link.get("mtu") != link["expected_mtu"]:
                out.append("QSFP: %s has MTU %s, not %s" % (link["interface"], link.get("mtu"), link["expected_mtu"]))
            if link.get("expected_address") and link["expected_address"] not in link.get("addresses", []):
                out.append("QSFP: %s lacks %s (has %s)" % (
                    link["interface"], link["expected_address"], ", ".join(link.get("addresses") or []) or "no address"))
    ray = node.get("ray") or {}
    if ray.get("expected_role") and ray.get("role") != ray["expected_role"]:
        out.append("Ray: the inventory makes this node the %s, but it has %s" % (
            ray["expected_role"], "the %s unit" % ray["role"] if ray.get("role") else "no Ray unit"))
    if ray.get("role") and not ray.get("active"):
        out.append("Ray: %s is %s" % (ray.get("unit"), ray.get("state") or "not loaded"))
    if ray.get("role") == "head" and ray.get("nodes_alive") is not None and node.get("ray_members"):
        if ray["nodes_alive"] != node["ray_members"]:
            out.append("Ray: %d alive nodes, the inventory has %d" % (ray["nodes_alive"], node["ray_members"]))
    vllm = node.get("vllm") or {}
    services = node.get("services") or []
    if services and not vllm.get("current"):
        out.append("vLLM: no release in use (%s/current is missing)" % vllm.get("base_dir"))
    for svc in services:
        if svc.get("healthy") is False:
            out.append("vLLM %s: %s" % (svc["name"], svc.get("reason") or "unhealthy"))
        elif vllm.get("current") and svc.get("release") and svc["release"] != vllm["current"]:
            out.append("vLLM %s: the unit runs release %s, current is %s" % (svc["name"], svc["release"], vllm["current"]))
    for name in node.get("missing_services") or []:
        out.append("vLLM %s: the inventory serves it here, but there is no unit vllm-%s.service" % (name, name))
    for error in node.get("errors") or []:
        out.append(error)
    return out


def service_verdict(unit, state, probe):
    """healthy (bool) and the reason when not."""
    if not state or state.get("loaded") == "not-found":
        return False, "the unit is not loaded"
    if state.get("active") != "active":
        reason = "the unit is %s" % state.get("active")
        if state.get("sub") and state["sub"] != state.get("active"):
            reason += " (%s)" % state["sub"]
        if state.get("result") and state["result"] != "success":
            reason += ", result %s" % state["result"]
        return False, reason
    if probe is None:
        return None, "not probed"
    if probe.get("health") != "healthy":
        return False, probe.get("error") or "/health: %s" % probe.get("health")
    if probe.get("error"):
        return False, probe["error"]
    if not probe.get("served"):
        return False, "/v1/models does not list %s (lists %s)" % (
            unit.get("served_name"), ", ".join(probe.get("models") or []) or "nothing")
    return True, None


class Runner(object):
    """run(argv) -> (rc, out, err) through AnsibleModule.run_command; has_timeout: coreutils timeout exists."""

    def __init__(self, module):
        self.module = module
        self.has_timeout = bool(module.get_bin_path("timeout"))

    def __call__(self, argv):
        return self.module.run_command(argv, check_rc=False)


def collect(run, params, gpu_facts, python):
    """The node's report: everything above, and its problems."""
    started = time.monotonic()
    node = {"errors": []}
    try:
        prof = hardware_profiles.get(params["hardware_profile"])
        node["profile"] = {"name": prof["name"], "description": prof["description"], "capability": prof["capability"],
                           "gpus": prof["gpus"], "min_gpus": prof.get("min_gpus", prof["gpus"])}
    except hardware_profiles.UnknownProfile as exc:
        node["profile"] = {"name": params["hardware_profile"], "error": "profile: %s" % exc}
    node["gpu"] = gpu_summary(gpu_facts)
    node["nccl"] = nccl_build(params["nccl_install_root"])
    node["vllm"] = vllm_release(params["vllm_base_dir"])
    units = vllm_units(params["systemd_dir"])
    ray_units = [u for u in RAY_UNITS.values() if os.path.exists(os.path.join(params["systemd_dir"], u))]
    states, error = unit_states(run, [u["unit"] for u in units] + ray_units)
    if error:
        node["errors"].append(error)
    node["qsfp"] = (qsfp_link(run, params["qsfp_interface"], params.get("qsfp_address"), params.get("qsfp_mtu"))
                    if params.get("qsfp_interface") else None)
    node["ray"] = ray_membership(params["systemd_dir"], states, params.get("ray_role"),
                                 params["probe_timeout"] if params.get("ray_nodes") else 0)
    node["ray_members"] = params.get("ray_members")
    bench = bench_results(params["bench_dir"])
    probe = os.path.join(params["vllm_base_dir"], "libexec", "vllm_probe.py")
    services = []
    for unit in units:
        unit["env_file"] = os.path.join(params["vllm_config_dir"], unit["name"] + ".env")
        state = states.get(unit["unit"])
        result = None
        if params["probe_services"] and state and state.get("active") == "active":
            result = probe_service(run, python, probe, unit, params["probe_timeout"])
        healthy, reason = service_verdict(unit, state, result)
        services.append({
            "name": unit["name"], "unit": unit["unit"], "served_name": unit["served_name"], "listen": unit["listen"],
            "url": unit["url"], "profile": unit["profile"], "release": unit["release"],
            "state": state, "probe": result, "healthy": healthy, "reason": reason,
            "bench": bench.get(unit["name"]),
        })
    node["services"] = services
    node["missing_services"] = sorted(set(params.get("expected_services") or []) - set(u["name"] for u in units))
    node["bench_other"] = sorted(set(bench) - set(u["name"] for u in units))
    node["rollout"], node["rollout_records"] = last_rollout(params["rollout_dir"])
    node["problems"] = problems(node)
    node["seconds"] = round(time.monotonic() - started, 3)
    return node
