"""What of the vLLM API another machine reaches, asked from the lab host (the controller).

vLLM checks its API key only under /v1: from another machine POST /invocations, /tokenize,
/metrics, /docs ... answered without the key. The vllm role puts nginx in front of every service
that listens beyond loopback and an nftables table around it. These tests read vLLM's own
openapi.json on the node (from its loopback backend, as root) and then, from the lab host over the
management network, request every path and method it lists:
  * without the key nothing answers 2xx except /health;
  * with the key /v1/models and a completion answer 200;
  * /metrics is refused from a source that is not a scrape source;
  * a source address outside vllm_allowed_clients gets no answer at all;
  * no process of the vLLM unit holds VLLM_API_KEY in its environment;
  * a non-root local process cannot reach the loopback backend (it would bypass the key).
The requests are sent with urllib/socket from the test process, never from the node.
"""

import http.client
import ipaddress
import json
import re
import socket
import subprocess
import urllib.parse

import pytest

# A source address for the "outside vllm_allowed_clients" check: TEST-NET-2, never a lab subnet.
OUTSIDE_SOURCE = "198.51.100.77"


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


def vllm_services(me):
    if me["inventory_hostname"] not in me["groups"].get("vllm_servers", []):
        return []
    return [s for s in me.get("vllm_services", []) if s.get("host", "127.0.0.1") not in ("127.0.0.1", "localhost", "::1")]


@pytest.fixture
def services(me):
    found = vllm_services(me)
    if not found:
        pytest.skip("this node serves no vLLM service beyond loopback")
    return found


def unit(svc):
    return f"vllm-{svc['name']}.service"


def backend_port(host, svc):
    """The port vLLM itself listens on, read from its running unit (--port of ExecStart)."""
    out = host.run(f"systemctl show -p ExecStart --value {unit(svc)}").stdout
    found = re.search(r"--port\s+\"?(\d+)", out)
    assert found, f"{unit(svc)}: no --port in ExecStart: {out[:300]}"
    return int(found.group(1))


def openapi(host, svc):
    port = backend_port(host, svc)
    cmd = host.run(f"python3 -c \"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
                   f"'http://127.0.0.1:{port}/openapi.json', timeout=30).read().decode())\"")
    assert cmd.rc == 0, f"openapi.json from 127.0.0.1:{port} on the node: {cmd.stderr[-300:]}"
    return json.loads(cmd.stdout)


def ask(url, method="GET", key=None, body=None, timeout=30, source=None):
    """Status of one request from the lab host, or a word saying why there was none."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, parsed.path or "/", body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data
    except (OSError, http.client.HTTPException) as exc:
        return "no answer (%s)" % type(exc).__name__, b""
    finally:
        conn.close()


def base_url(me, svc):
    return f"http://{me['ansible_host']}:{svc.get('port', 8000)}"


def served_name(svc):
    return svc.get("served_name") or svc["model"].split("/")[-1]


def dummy_body(svc):
    return {"model": served_name(svc), "prompt": "hi", "max_tokens": 1, "input": "hi", "text": "hi",
            "messages": [{"role": "user", "content": "hi"}], "tokens": [1, 2]}


def test_no_path_of_the_openapi_answers_without_the_key(host, me, services):
    for svc in services:
        spec = openapi(host, svc)
        answered = []
        for path, methods in sorted(spec["paths"].items()):
            filled = re.sub(r"\{[^}]+\}", "dummy", path)
            for method in sorted(m.upper() for m in methods if m.lower() in ("get", "post", "put", "delete", "patch")):
                status, _ = ask(base_url(me, svc) + filled, method,
                                body=dummy_body(svc) if method in ("POST", "PUT", "PATCH") else None)
                if isinstance(status, int) and 200 <= status < 300 and filled != "/health":
                    answered.append(f"{method} {filled} -> {status}")
        assert not answered, f"{svc['name']}: answered without the API key from the lab host: {answered}"


def test_the_key_opens_models_and_a_completion(me, services):
    for svc in services:
        status, data = ask(base_url(me, svc) + "/v1/models", key=me["vllm_api_key"])
        assert status == 200, f"{svc['name']}: GET /v1/models with the key -> {status}"
        assert served_name(svc) in [m["id"] for m in json.loads(data)["data"]]
        status, data = ask(base_url(me, svc) + "/v1/completions", "POST", key=me["vllm_api_key"], timeout=120,
                           body={"model": served_name(svc), "prompt": "The quick brown fox", "max_tokens": 4})
        assert status == 200, f"{svc['name']}: POST /v1/completions with the key -> {status} {data[:200]}"
        assert json.loads(data)["usage"]["completion_tokens"] > 0
        status, _ = ask(base_url(me, svc) + "/v1/models", key="wrong-" + me["vllm_api_key"])
        assert status == 401, f"{svc['name']}: GET /v1/models with a wrong key -> {status} (wants 401)"


def test_metrics_is_refused_from_a_source_that_is_not_a_scrape_source(me, services):
    route = subprocess.run(["ip", "-o", "route", "get", me["ansible_host"]], capture_output=True, text=True).stdout
    mine = re.search(r"\bsrc (\S+)", route).group(1)
    scrapers = [ipaddress.ip_network(c, strict=False) for c in me.get("vllm_metrics_scrape_sources", [])]
    if any(ipaddress.ip_address(mine) in n for n in scrapers):
        pytest.skip(f"the lab host {mine} is a scrape source in this inventory")
    for svc in services:
        for key in (None, me["vllm_api_key"]):
            status, _ = ask(base_url(me, svc) + "/metrics", key=key)
            assert status in (403, 404), f"{svc['name']}: GET /metrics from {mine} (key {bool(key)}) -> {status}"


@pytest.fixture
def outside_source(me):
    """OUTSIDE_SOURCE on the lab bridge for the duration of a test (the node replies via its default route)."""
    route = subprocess.run(["ip", "-o", "route", "get", me["ansible_host"]], capture_output=True, text=True).stdout
    bridge = re.search(r"\bdev (\S+)", route).group(1)
    allowed = [ipaddress.ip_network(c, strict=False) for c in me.get("vllm_allowed_clients") or []]
    assert not any(ipaddress.ip_address(OUTSIDE_SOURCE) in n for n in allowed)
    subprocess.run(["ip", "addr", "add", OUTSIDE_SOURCE + "/32", "dev", bridge], check=True)
    try:
        yield OUTSIDE_SOURCE
    finally:
        subprocess.run(["ip", "addr", "del", OUTSIDE_SOURCE + "/32", "dev", bridge], check=False)


def test_a_source_outside_the_allowed_clients_gets_no_answer(me, services, outside_source):
    for svc in services:
        status, _ = ask(base_url(me, svc) + "/health", timeout=5, source=outside_source)
        assert not isinstance(status, int), \
            f"{svc['name']}: GET /health from {outside_source} (not in vllm_allowed_clients) answered {status}"
        # The same path from the lab host's own address answers: the drop is the source's.
        status, _ = ask(base_url(me, svc) + "/health", timeout=10)
        assert status == 200, f"{svc['name']}: GET /health from the management subnet -> {status}"


def test_no_vllm_process_holds_the_api_key(host, services):
    for svc in services:
        cgroup = host.run(f"systemctl show -p ControlGroup --value {unit(svc)}").stdout.strip()
        assert cgroup, f"{unit(svc)} has no control group (not running?)"
        # Every process of the unit (the API server and its engine workers), read from /proc.
        pids = host.run(f"for d in /proc/[0-9]*; do grep -qx '0::{cgroup}' $d/cgroup 2>/dev/null && echo ${{d#/proc/}}; "
                        f"done").stdout.split()
        assert pids, f"{unit(svc)} runs no process"
        holding = [p for p in pids
                   if host.run(f"tr '\\0' '\\n' < /proc/{p}/environ | grep -q '^VLLM_API_KEY='").rc == 0]
        assert not holding, f"{unit(svc)}: processes {holding} hold VLLM_API_KEY in their environment"


def test_a_local_non_root_process_cannot_reach_the_backend(host, services):
    for svc in services:
        port = backend_port(host, svc)
        probe = (f"python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', {port}), timeout=5); "
                 f"s.sendall(b'GET /health HTTP/1.0\\r\\n\\r\\n'); print(s.recv(12))\"")
        assert host.run(probe).rc == 0, f"root cannot reach the backend 127.0.0.1:{port}"
        cmd = host.run(f"runuser -u nobody -- {probe}")
        assert cmd.rc != 0, f"{unit(svc)}: user nobody reached the backend 127.0.0.1:{port}: {cmd.stdout.strip()}"
