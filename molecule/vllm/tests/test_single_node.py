"""Verify site.yml on one node without a QSFP link: vLLM serves, Ray does not run, and no
NCCL/UCX/Gloo setting names a network interface the node does not have.

The expectations come from the inventory Ansible used (no QSFP variables, empty Ray groups).
"""

import json
import shlex

import pytest

# Every variable through which NCCL, UCX, Gloo or torch pick a NIC by name.
IF_VARIABLES = ("NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "UCX_NET_DEVICES", "TP_SOCKET_IFNAME")
ENV_GLOBS = "/etc/blackwell/*.env /etc/vllm/*.env /etc/nccl.conf"
RAY_UNITS = ("ray-head.service", "ray-worker.service")


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


@pytest.fixture
def nics(host):
    return set(host.check_output("ls /sys/class/net").split())


def named_interfaces(value):
    """'^docker,lo' -> [] (exclusions); '=eth0' -> ['eth0']; 'mlx5_0:1,eth1' -> ['mlx5_0', 'eth1']."""
    value = value.strip().strip('"')
    if not value or value.startswith("^") or value == "all":
        return []
    return [item.lstrip("=").split(":")[0] for item in value.split(",") if item.strip()]


def settings(text):
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and key.strip() in IF_VARIABLES:
            out[key.strip()] = value
    return out


def test_the_inventory_describes_a_node_without_a_qsfp_link(me, nics):
    assert not me.get("blackwell_qsfp_interface") and not me.get("blackwell_qsfp_address")
    assert not me["groups"].get("ray_head") and not me["groups"].get("ray_workers")
    assert me["inventory_hostname"] in me["groups"]["vllm_servers"]
    assert "enp1s0f0np0" not in nics, "the one-node lab has no QSFP NIC"


def test_the_network_stage_changed_nothing(host):
    assert not host.file("/etc/netplan/60-qsfp.yaml").exists
    assert not host.file("/var/lib/blackwell/qsfp-network").exists
    assert not host.file("/etc/systemd/system/blackwell-qsfp-rollback-boot.service").exists


def test_no_env_file_names_a_missing_interface(host, nics):
    nccl_env = host.file("/etc/blackwell/nccl.env")
    assert nccl_env.exists, "the host stage writes the NCCL/UCX/Gloo environment"
    files = host.check_output(f"ls -1 {ENV_GLOBS} 2>/dev/null || true").split()
    assert "/etc/vllm/tiny.env" in files
    bad = {}
    for path in files:
        for key, value in settings(host.file(path).content_string).items():
            missing = [n for n in named_interfaces(value) if n not in nics]
            if missing:
                bad[f"{path}: {key}"] = missing
    assert not bad, f"interfaces this node does not have ({sorted(nics)}): {bad}"


def test_the_running_vllm_names_no_missing_interface(host, nics):
    pid = host.check_output("systemctl show -p MainPID --value vllm-tiny.service")
    assert pid not in ("", "0"), "vllm-tiny.service is not running"
    environ = host.file(f"/proc/{pid}/environ").content_string.replace("\0", "\n")
    bad = {k: v for k, v in settings(environ).items() if any(n not in nics for n in named_interfaces(v))}
    assert not bad, f"vLLM runs with {bad}; the node has {sorted(nics)}"


def test_ray_is_not_running(host):
    for unit in RAY_UNITS:
        assert not host.file(f"/etc/systemd/system/{unit}").exists, unit
        assert host.run(f"systemctl is-active {unit}").stdout.strip() in ("inactive", "unknown"), unit
    # Process names (raylet, gcs_server) and titles (ray::IDLE): never the pgrep's own command line.
    for pattern in ("pgrep -a -x 'raylet|gcs_server'", "pgrep -a -f '^ray::'"):
        procs = host.run(pattern)
        assert procs.rc == 1, f"Ray processes run: {procs.stdout}"


def test_every_vllm_service_answers_a_completion(host, me):
    services = me["vllm_services"]
    assert services
    for svc in services:
        url_host = "127.0.0.1" if svc.get("host", "0.0.0.0") in ("0.0.0.0", "::", "") else svc["host"]
        url = f"http://{url_host}:{svc.get('port', 8000)}/v1/completions"
        body = json.dumps({"model": svc.get("served_name") or svc["model"].split("/")[-1],
                           "prompt": "The quick brown fox", "max_tokens": 8, "temperature": 0})
        auth = shlex.quote("Authorization: Bearer " + me["vllm_api_key"])
        cmd = host.run(f"curl -s -m 120 -H {auth} -H 'Content-Type: application/json' -d {shlex.quote(body)} {url}")
        assert cmd.rc == 0, f"{svc['name']}: {url} did not answer: {cmd.stderr}"
        result = json.loads(cmd.stdout)
        assert result["usage"]["completion_tokens"] == 8, result
