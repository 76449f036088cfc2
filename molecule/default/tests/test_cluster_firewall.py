"""Only the QSFP peers reach the QSFP address of a node converged by the whole site.yml.

vLLM's gloo/NCCL workers listen on ephemeral ports of the QSFP address, outside Ray's firewall,
and Linux answers for a local address on any interface: a host on the management LAN that routes
the QSFP address through the node's management address reached those ports. These tests:
  * start a temporary listener on the node's QSFP address (a random high port) and connect to it,
    and to Ray's GCS port, from the controller through a temporary host route via the node's
    management address: both must be dropped (a timeout, not a refusal);
  * connect to the same listener from every QSFP peer over the QSFP link: it must answer;
  * check every TCP socket Ray's user listens on (outside loopback): one bound to the QSFP address
    is behind the QSFP table, any other must be in the Ray firewall's port set.
The expected addresses come from the inventory Ansible used, never from the nodes themselves.
The management-side vLLM API port is not looked at here.
"""

import json
import random
import shlex
import socket
import subprocess
import time

import pytest
import testinfra

RAY_DEFAULTS = {"ray_cluster_gcs_port": 6379}
QSFP_TABLE = "blackwell_qsfp"
RAY_TABLE = "blackwell_ray"


def address(cidr):
    return cidr.split("/")[0]


def inventory_host(request, name):
    inventory = request.config.option.ansible_inventory
    return testinfra.get_host(f"ansible://{name}?force_ansible=true", ansible_inventory=inventory, sudo=True)


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


@pytest.fixture
def qsfp(me):
    iface = me.get("blackwell_qsfp_interface")
    if not iface or not me.get("blackwell_qsfp_address"):
        pytest.skip("this node has no QSFP link in the inventory")
    return {"interface": iface, "address": address(me["blackwell_qsfp_address"])}


@pytest.fixture
def listener(host, qsfp):
    """A TCP listener on the node's QSFP address on a random high port, for 120 s at most."""
    port = random.randint(40000, 59999)
    code = ("import socket,sys\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{qsfp['address']}', {port})); s.listen(8)\n"
            "while True:\n"
            "    c,_=s.accept(); c.sendall(b'ok'); c.close()\n")
    host.run(f"nohup timeout 120 python3 -c {shlex.quote(code)} >/dev/null 2>&1 &")
    for _ in range(20):
        if f"{qsfp['address']}:{port}" in host.run("ss -Hltn").stdout:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the temporary listener on {qsfp['address']}:{port} did not start")
    yield port
    host.run(f"pkill -f 's.bind\\(\\(.{qsfp['address']}., {port}\\)\\)' || true")


@pytest.fixture
def route_via_management(me, qsfp):
    """A host route on the controller to the node's QSFP address via its management address."""
    dest = f"{qsfp['address']}/32"
    add = subprocess.run(["ip", "route", "add", dest, "via", me["ansible_host"]], capture_output=True, text=True)
    if add.returncode != 0:
        pytest.skip(f"cannot add a route on the controller: {add.stderr.strip()}")
    yield qsfp["address"]
    subprocess.run(["ip", "route", "del", dest, "via", me["ansible_host"]], capture_output=True, text=True)


def connect(addr, port, timeout=3.0):
    """'answered', 'refused' or 'dropped' (no answer within timeout)."""
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return "answered"
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, TimeoutError):
        return "dropped"


def test_management_lan_cannot_reach_a_port_on_the_qsfp_address(listener, route_via_management):
    assert connect(route_via_management, listener) == "dropped"


def test_management_lan_cannot_reach_ray_gcs_on_the_qsfp_address(me, route_via_management):
    port = int(me.get("ray_cluster_gcs_port", RAY_DEFAULTS["ray_cluster_gcs_port"]))
    assert connect(route_via_management, port) == "dropped"


def test_every_qsfp_peer_reaches_the_listener(request, me, qsfp, listener):
    others = [n for n in me["groups"]["blackwell_nodes"] if n != me["inventory_hostname"]]
    if not others:
        pytest.skip("no QSFP peer in the inventory")
    for name in others:
        peer = inventory_host(request, name)
        got = peer.run(f"python3 -c \"import socket; s=socket.create_connection(('{qsfp['address']}', {listener}), 5);"
                       f" print(s.recv(2).decode())\"")
        assert got.rc == 0 and got.stdout.strip() == "ok", f"{name}: {got.stderr}"


def _ray_ports(host):
    out = host.run(f"nft -j list set inet {RAY_TABLE} ray_ports")
    assert out.rc == 0, out.stderr
    ports = set()
    for item in json.loads(out.stdout)["nftables"]:
        for element in item.get("set", {}).get("elem", []):
            if isinstance(element, dict) and "range" in element:
                low, high = element["range"]
                ports.update(range(low, high + 1))
            else:
                ports.add(element)
    return ports


def test_qsfp_table_drops_everything_else_to_the_qsfp_address(host, qsfp):
    text = host.run(f"nft list table inet {QSFP_TABLE}")
    assert text.rc == 0, text.stderr
    assert f"ip daddr {qsfp['address']} counter" in text.stdout and "drop" in text.stdout
    assert f'ip daddr {qsfp["address"]} iifname "{qsfp["interface"]}" ip saddr' in text.stdout


def test_every_port_ray_listens_on_is_firewalled(host, qsfp):
    """Ray's sockets outside loopback: on the QSFP address the QSFP table drops all but the peers;
    on any other address (the wildcard) the port must be in the Ray table's set."""
    pids = set(host.run("pgrep -u ray").stdout.split())
    if not pids:
        pytest.skip("Ray does not run on this node")
    ray_ports = _ray_ports(host)
    listening, outside = set(), set()
    for line in host.run("ss -Hltnp").stdout.splitlines():
        cols = line.split()
        local = cols[3]
        addr, port = local.rsplit(":", 1)
        if addr.startswith("127.") or addr.startswith("[::1]"):
            continue
        if not any("pid=%s," % pid in line for pid in pids):
            continue
        listening.add(local)
        if addr != qsfp["address"] and int(port) not in ray_ports:
            outside.add(local)
    assert listening, "no Ray listener found"
    assert not outside, "Ray sockets outside both firewalls: %s" % sorted(outside)
