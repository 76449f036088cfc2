"""Verify what site.yml built on the default scenario's nodes, read against the inventory.

Each test asserts a property of the product that an unconverged lab does not have:
  * the QSFP links run at the inventory's MTU (9000) and carry the largest don't-fragment
    ping (MTU - 28 bytes) to every peer, while one byte more is refused;
  * Ray lists exactly the inventory's Ray members, each by its QSFP address;
  * every vLLM service of the inventory answers a completion with the API key and refuses a
    request without it (401).
The expected values come from the inventory Ansible used, never from the nodes themselves.
"""

import json
import shlex

import pytest
import testinfra

# IPv4 (20) + ICMP (8) headers: the largest don't-fragment ping payload is MTU - 28.
ICMP_OVERHEAD = 28
# The roles' defaults (ray_cluster, common), unless the inventory sets them.
RAY_DEFAULTS = {"ray_cluster_gcs_port": 6379, "ray_cluster_venv": "/opt/vllm/current/venv",
                "blackwell_service_user": "vllm", "blackwell_ray_user": "ray"}


def address(cidr):
    return cidr.split("/")[0]


def inventory_vars(request, name):
    inventory = request.config.option.ansible_inventory
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory).ansible.get_variables()


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


@pytest.fixture
def qsfp(me):
    """The node's QSFP link (interface, address, MTU) as the inventory describes it."""
    iface = me.get("blackwell_qsfp_interface")
    if not iface or not me.get("blackwell_qsfp_address"):
        pytest.skip("this node has no QSFP link in the inventory")
    return {"interface": iface, "address": address(me["blackwell_qsfp_address"]),
            "mtu": int(me.get("blackwell_qsfp_mtu", 9000))}


@pytest.fixture
def peers(me, request):
    """QSFP addresses of the other nodes, read from the same inventory Ansible used."""
    others = [n for n in me["groups"]["blackwell_nodes"] if n != me["inventory_hostname"]]
    found = {n: inventory_vars(request, n).get("blackwell_qsfp_address") for n in others}
    return {n: address(a) for n, a in found.items() if a}


def test_qsfp_link_runs_at_the_inventory_mtu(host, qsfp):
    sysfs = f"/sys/class/net/{qsfp['interface']}"
    assert host.file(sysfs).exists, f"{qsfp['interface']} does not exist"
    mtu = int(host.file(f"{sysfs}/mtu").content_string.strip())
    assert mtu == qsfp["mtu"], f"{qsfp['interface']} has MTU {mtu}, the inventory wants {qsfp['mtu']}"
    assert host.file(f"{sysfs}/operstate").content_string.strip() == "up"
    assert qsfp["address"] in host.interface(qsfp["interface"]).addresses


def test_management_is_not_the_qsfp_network(host, qsfp):
    assert qsfp["address"] not in host.interface("eth0").addresses


def test_largest_dont_fragment_ping_passes_to_every_peer(host, qsfp, peers):
    assert peers, "a two-node lab has a peer"
    size = qsfp["mtu"] - ICMP_OVERHEAD
    for name, ip in peers.items():
        cmd = host.run(f"ping -M do -s {size} -c 3 -i 0.2 -W 2 -I {qsfp['interface']} {ip}")
        assert cmd.rc == 0 and " 0% packet loss" in cmd.stdout, \
            f"{size}-byte DF ping to {name} ({ip}): {cmd.stdout.strip()[-200:]}{cmd.stderr.strip()[-200:]}"
        route = host.run(f"ip -o route get {ip}").stdout
        assert f"dev {qsfp['interface']}" in route, route


def test_one_byte_more_is_refused_for_the_inventory_mtu(host, qsfp, peers):
    """Refused because of the inventory's MTU (ping names it), not some smaller one on the path."""
    assert peers, "a two-node lab has a peer"
    size = qsfp["mtu"] - ICMP_OVERHEAD + 1
    for name, ip in peers.items():
        cmd = host.run(f"ping -M do -s {size} -c 1 -W 1 -I {qsfp['interface']} {ip}")
        out = (cmd.stdout + cmd.stderr).replace(" = ", "=")
        assert cmd.rc != 0 and f"mtu={qsfp['mtu']}" in out, \
            f"a {size}-byte DF ping to {name} ({ip}) was not refused for MTU {qsfp['mtu']}: {out.strip()[-200:]}"


# Ray's token authentication: a driver presents the cluster's token, from the Ray unit's environment file.
RAY_AUTH = "env $(grep -h '^RAY_AUTH_' /etc/blackwell/ray.env)"
RAY_NODES = """
import json, ray
ray.init(address=%r, logging_level="ERROR", log_to_driver=False)
print(json.dumps(sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])))
"""


def test_ray_lists_exactly_the_inventory_nodes_by_qsfp_address(host, me, request):
    heads = me["groups"].get("ray_head", [])
    members = heads + me["groups"].get("ray_workers", [])
    if me["inventory_hostname"] not in heads:
        pytest.skip("Ray is asked from the head")
    expected = sorted(address(inventory_vars(request, n)["blackwell_qsfp_address"]) for n in members)
    settings = {k: me.get(k, v) for k, v in RAY_DEFAULTS.items()}
    gcs = f"{address(me['blackwell_qsfp_address'])}:{settings['ray_cluster_gcs_port']}"
    python = f"{settings['ray_cluster_venv']}/bin/python"
    # As Ray's own account, from /, as an operator's driver on the head would run.
    cmd = host.run(f"cd / && runuser -u {settings['blackwell_ray_user']} -- {RAY_AUTH} timeout 90 {python} -c "
                   f"{shlex.quote(RAY_NODES % gcs)}")
    errors = [line for line in cmd.stderr.splitlines() if line.strip() and "Permanently added" not in line]
    assert cmd.rc == 0, f"cannot ask Ray at {gcs} (rc {cmd.rc}): {' / '.join(errors)[-300:]}"
    listed = json.loads(cmd.stdout.strip().splitlines()[-1])
    assert listed == expected, f"Ray lists {listed}, the inventory has {expected}"


def vllm_services(me):
    if me["inventory_hostname"] not in me["groups"].get("vllm_servers", []):
        return []
    return me.get("vllm_services", [])


def completion(host, svc, key):
    url_host = "127.0.0.1" if svc.get("host", "0.0.0.0") in ("0.0.0.0", "::", "") else svc["host"]
    url = f"http://{url_host}:{svc.get('port', 8000)}/v1/completions"
    body = json.dumps({"model": svc.get("served_name") or svc["model"].split("/")[-1],
                       "prompt": "The quick brown fox", "max_tokens": 4, "temperature": 0})
    auth = f"-H {shlex.quote('Authorization: Bearer ' + key)} " if key else ""
    cmd = host.run(f"curl -s -m 120 -o /tmp/completion.json -w '%{{http_code}}' {auth}"
                   f"-H 'Content-Type: application/json' -d {shlex.quote(body)} {url}")
    return url, cmd.stdout.strip() or f"no answer (curl rc {cmd.rc})", host.file("/tmp/completion.json")


def test_every_vllm_service_answers_a_completion_with_the_key(host, me):
    services = vllm_services(me)
    if not services:
        pytest.skip("this node serves no vLLM service")
    for svc in services:
        url, status, body = completion(host, svc, me["vllm_api_key"])
        assert status == "200", f"{svc['name']}: {url} answered {status} with the API key"
        result = json.loads(body.content_string)
        assert result["usage"]["completion_tokens"] > 0, result


def test_every_vllm_service_refuses_a_request_without_the_key(host, me):
    services = vllm_services(me)
    if not services:
        pytest.skip("this node serves no vLLM service")
    for svc in services:
        url, status, _ = completion(host, svc, None)
        assert status == "401", f"{svc['name']}: {url} answered {status} without the API key (wants 401)"
