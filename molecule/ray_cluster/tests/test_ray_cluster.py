"""Verify the ray_cluster scenario against the real lab nodes (testinfra, over Ansible's connection).

Ray runs as systemd services on the QSFP addresses; Ray's own state (the state API on the head's
dashboard) lists exactly the inventory's nodes by those addresses; a task pinned to each node
reports its VLLM_HOST_IP; a gloo all-reduce sums right over the QSFP link; the firewall names every
port a Ray process listens on.
"""

import json
from shlex import quote as shlex_quote

import pytest
import testinfra

VENV = "/opt/vllm/current/venv"
CHECK = "/usr/local/libexec/blackwell-ray/ray_cluster_check.py"
GCS_PORT = 6379
DASHBOARD_PORT = 8265
# Ray's token authentication: a driver presents the cluster's token, from the Ray unit's environment file.
RAY_AUTH = "env $(grep -h '^RAY_AUTH_' /etc/blackwell/ray.env)"


def address(cidr):
    return cidr.split("/")[0]


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


@pytest.fixture
def is_head(me):
    return me["inventory_hostname"] in me["groups"]["ray_head"]


@pytest.fixture
def cluster(host, me, request):
    """QSFP and management addresses of every node, from the inventory Ansible used."""
    inventory = request.config.option.ansible_inventory
    nodes = {}
    for name in me["groups"]["blackwell_nodes"]:
        hv = testinfra.get_host("ansible://" + name, ansible_inventory=inventory).ansible.get_variables()
        nodes[name] = {"qsfp": address(hv["blackwell_qsfp_address"]), "mgmt": hv["ansible_host"]}
    head = me["groups"]["ray_head"][0]
    return {"nodes": nodes, "head": head, "head_ip": nodes[head]["qsfp"]}


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def service(is_head):
    return "ray-head.service" if is_head else "ray-worker.service"


def test_service_runs_enabled_as_ray_not_vllm_and_restarts_on_failure(host, is_head):
    svc = host.service(service(is_head))
    assert svc.is_running and svc.is_enabled
    props = host.run("systemctl show -p User -p Restart -p NoNewPrivileges -p ProtectSystem %s", service(is_head)).stdout
    assert "User=ray" in props and "Restart=on-failure" in props and "NoNewPrivileges=yes" in props, props
    other = service(not is_head)
    assert not host.service(other).is_running
    pid = host.run("systemctl show -p MainPID --value %s", service(is_head)).stdout.strip()
    assert host.run("ps -o user= -p %s", pid).stdout.strip() == "ray"
    # Every Ray process (raylet, GCS, workers) runs as ray, none as the vLLM account.
    ray_pids = host.run("pgrep -x 'raylet|gcs_server'").stdout.split()
    assert ray_pids
    assert {host.run("ps -o user= -p %s", p).stdout.strip() for p in ray_pids} == {"ray"}
    user = host.user("ray")
    assert user.exists and user.shell in ("/usr/sbin/nologin", "/bin/false") and user.home == "/var/lib/ray"
    assert host.file("/var/lib/ray").user == "ray" and host.file("/var/lib/ray").mode == 0o750


def test_units_exposure_at_most_5(host, is_head):
    """systemd-analyze security: the Ray unit and the firewall oneshot score 5.0 or less."""
    for unit in (service(is_head), "blackwell-ray-firewall.service"):
        out = host.run("systemd-analyze security --no-pager %s", unit)
        line = [x for x in out.stdout.splitlines() if "Overall exposure level" in x]
        assert out.rc == 0 and line, out.stdout + out.stderr
        score = float(line[0].split("Overall exposure level for %s:" % unit)[1].split()[0])
        assert score <= 5.0, "%s: %s" % (unit, line[0])


def test_unit_uses_the_qsfp_addresses_only(host, me, is_head, cluster):
    unit = host.file("/etc/systemd/system/" + service(is_head)).content_string
    mine = address(me["blackwell_qsfp_address"])
    assert "--node-ip-address=%s " % mine in unit
    if is_head:
        assert "--head --port=%d" % GCS_PORT in unit
    else:
        assert "--address=%s:%d" % (cluster["head_ip"], GCS_PORT) in unit
        assert "ray-wait-for-head %s %d" % (cluster["head_ip"], GCS_PORT) in unit
    for node in cluster["nodes"].values():
        assert node["mgmt"] not in unit
    assert "EnvironmentFile=-/etc/blackwell/nccl.env" in unit
    assert "--num-gpus=0" in unit  # lab_cpu


def test_env_file_and_the_raylet_environment(host, me):
    env = host.file("/etc/blackwell/ray.env")
    assert env.mode == 0o644 and env.user == "root"
    mine = address(me["blackwell_qsfp_address"])
    assert "VLLM_HOST_IP=%s\n" % mine in env.content_string
    assert "GLOO_SOCKET_IFNAME=%s\n" % me["blackwell_qsfp_interface"] in env.content_string
    assert "RAY_memory_usage_threshold" not in env.content_string  # lab_cpu keeps Ray's default
    raylet = host.run("pgrep -u ray -x raylet").stdout.split()
    assert len(raylet) == 1
    environ = host.file("/proc/%s/environ" % raylet[0]).content_string.split("\0")
    assert "VLLM_HOST_IP=%s" % mine in environ


def test_ray_version_in_the_venv(host):
    out = host.run("%s/bin/python -c 'import ray; print(ray.__version__)'", VENV)
    assert out.rc == 0 and out.stdout.strip() == "2.60.0", out.stderr


def test_state_api_lists_exactly_the_inventory_by_qsfp_address(host, is_head, cluster):
    if not is_head:
        pytest.skip("asked from the head")
    # Every node Ray has known, dead ones (from the raylet that side_effect killed) included;
    # the alive ones must be exactly the inventory's QSFP addresses.
    code = ("import json; from ray.util.state import list_nodes; "
            "print(json.dumps([n.node_ip for n in list_nodes(address='http://%s:%d', limit=1000) "
            "if n.state == 'ALIVE']))" % (cluster["head_ip"], DASHBOARD_PORT))
    out = host.run("cd / && runuser -u ray -- " + RAY_AUTH + " %s/bin/python -c %s", VENV, code)
    assert out.rc == 0, out.stderr
    listed = last_json(out.stdout)
    assert sorted(listed) == sorted(n["qsfp"] for n in cluster["nodes"].values())
    assert not set(listed) & {n["mgmt"] for n in cluster["nodes"].values()}


def test_pinned_tasks_and_gloo_all_reduce_over_the_qsfp_link(host, me, is_head, cluster):
    if not is_head:
        pytest.skip("run from the head")
    expect = ",".join(n["qsfp"] for n in cluster["nodes"].values())
    out = host.run("cd / && runuser -u ray -- %s/bin/python %s --ray-env=/etc/blackwell/ray.env --address=%s:%s "
                   "--expect=%s --gloo --interface=%s --elements=262144 --iterations=5", VENV, CHECK, cluster["head_ip"], str(GCS_PORT), expect,
                   me["blackwell_qsfp_interface"])
    result = last_json(out.stdout)
    assert out.rc == 0 and result["ok"], result["errors"] or out.stderr
    for task in result["tasks"]:
        assert task["VLLM_HOST_IP"] == task["ray_node_ip"]
        assert task["user"] == "ray"
    ranks = result["gloo"]["ranks"]
    assert len(ranks) == len(cluster["nodes"])
    expected_sum = float(sum(range(1, len(ranks) + 1)))
    for rank in ranks:
        assert rank["ok"] and rank["got"] == expected_sum
        assert rank["GLOO_SOCKET_IFNAME"] == me["blackwell_qsfp_interface"]
        assert rank["qsfp_tx_bytes"] >= rank["bytes"] * rank["iterations"] // 2


def test_firewall_table_allows_only_the_peers(host, me, cluster):
    table = host.run("nft -j list table inet blackwell_ray")
    assert table.rc == 0, table.stderr
    text = host.run("nft list table inet blackwell_ray").stdout
    for node in cluster["nodes"].values():
        assert node["qsfp"] in text
        assert node["mgmt"] not in text
    assert 'iifname "%s" ip saddr @peers accept' % me["blackwell_qsfp_interface"] in text
    assert "tcp dport @ray_ports counter" in text and "drop" in text
    assert host.service("blackwell-ray-firewall.service").is_enabled


def _ray_ports(host):
    out = json.loads(host.run("nft -j list set inet blackwell_ray ray_ports").stdout)
    ports = set()
    for item in out["nftables"]:
        for element in item.get("set", {}).get("elem", []):
            if isinstance(element, dict) and "range" in element:
                low, high = element["range"]
                ports.update(range(low, high + 1))
            else:
                ports.add(element)
    return ports


def test_every_port_ray_listens_on_is_firewalled(host):
    pids = set(host.run("pgrep -u ray").stdout.split())  # every process of Ray's user
    listening = set()
    for line in host.run("ss -Hltnp").stdout.splitlines():
        cols = line.split()
        local = cols[3]
        if local.startswith("127.") or local.startswith("[::1]"):
            continue
        if any("pid=%s," % pid in line for pid in pids):
            listening.add(int(local.rsplit(":", 1)[1]))
    assert listening, "no Ray listener found"
    assert listening <= _ray_ports(host), "ports outside the firewall's set: %s" % sorted(listening - _ray_ports(host))


TOKEN_FILE = "/etc/blackwell/ray-auth-token"
# A driver that connects to the head's GCS and runs one task; prints what Ray said.
CONNECT = """
import sys, ray
try:
    ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
    print("accepted", ray.get(ray.remote(num_cpus=0)(lambda: 42).remote(), timeout=60))
except Exception as exc:
    print("refused", type(exc).__name__)
"""
# The dashboard's HTTP API (the state API, job submission): status code for a given Authorization header.
HTTP = """
import sys, urllib.request, urllib.error
request = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    request.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
"""


def test_token_file_is_the_same_on_every_node_and_private_to_ray(host, cluster):
    token = host.file(TOKEN_FILE)
    assert token.exists and token.user == "root" and token.group == "ray" and token.mode == 0o640
    assert host.run("runuser -u nobody -- cat %s", TOKEN_FILE).rc != 0
    sums = set()
    for name in cluster["nodes"]:
        other = testinfra.get_host("ansible://" + name, ansible_inventory=host.backend.ansible_inventory)
        sums.add(other.file(TOKEN_FILE).sha256sum)
    assert len(sums) == 1, "the nodes hold different tokens"
    value = token.content_string.strip()
    assert len(value) >= 32
    env = host.file("/etc/blackwell/ray.env").content_string
    assert "RAY_AUTH_MODE=token\n" in env and "RAY_AUTH_TOKEN_PATH=%s\n" % TOKEN_FILE in env
    assert value not in env
    # Ray's own logs and the journal name the token file, never the token.
    journal = host.run("journalctl --no-pager -q -u ray-head.service -u ray-worker.service")
    assert value not in journal.stdout


@pytest.mark.parametrize("presented", ["none", "wrong"])
def test_a_peer_without_the_token_is_refused(host, is_head, cluster, presented):
    """From a QSFP peer (inside the firewall), as Ray's own account: no token, or a wrong one, gets
    nothing from the GCS; the cluster's token gets a task run."""
    if is_head:
        pytest.skip("a peer of the head asks")
    gcs = "%s:%d" % (cluster["head_ip"], GCS_PORT)
    env = "env -u RAY_AUTH_TOKEN_PATH HOME=/nonexistent " + (
        "RAY_AUTH_MODE=token RAY_AUTH_TOKEN=%s" % ("0" * 64) if presented == "wrong" else "RAY_AUTH_MODE=disabled")
    out = host.run("cd / && runuser -u ray -- %s timeout 90 %s/bin/python -c %s %s" % (
        env, VENV, shlex_quote(CONNECT), gcs))
    assert out.stdout.strip().splitlines()[-1:] == ["refused ConnectionError"], out.stdout + out.stderr[-1500:]
    assert "Authentication token is missing or incorrect" in out.stderr, out.stderr[-1500:]
    good = host.run("cd / && runuser -u ray -- %s timeout 90 %s/bin/python -c %s %s" % (
        RAY_AUTH, VENV, shlex_quote(CONNECT), gcs))
    assert good.stdout.strip().splitlines()[-1:] == ["accepted 42"], good.stdout + good.stderr[-1500:]


def test_dashboard_refuses_requests_without_the_token(host, is_head, cluster):
    if is_head:
        pytest.skip("a peer of the head asks")
    url = "http://%s:%d/api/v0/nodes" % (cluster["head_ip"], DASHBOARD_PORT)
    token = host.file(TOKEN_FILE).content_string.strip()
    codes = {}
    for name, header in (("none", ""), ("wrong", "0" * 64), ("token", token)):
        out = host.run("%s/bin/python -c %s %s %s" % (VENV, shlex_quote(HTTP), url, shlex_quote(header)))
        codes[name] = out.stdout.strip()
    assert codes == {"none": "401", "wrong": "403", "token": "200"}, codes
