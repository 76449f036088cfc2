# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""roles/vllm/files/vllm_probe.py: where a unit listens, its served name, requests in flight from
vLLM's /metrics, and the drain loop against a real HTTP server on loopback."""

import http.server
import importlib.util
import json
import pathlib
import subprocess
import sys
import threading

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[3] / "roles/vllm/files/vllm_probe.py"
spec = importlib.util.spec_from_file_location("vllm_probe", SCRIPT)
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)

UNIT = """# vLLM service tiny: tiny-llama on 0.0.0.0:8000 (profile lab_cpu)
[Service]
ExecStart=/opt/vllm/current/venv/bin/python -m vllm.entrypoints.openai.api_server \\
    --model /var/lib/vllm/models/tiny-llama \\
    --served-model-name tiny-llama \\
    --host {host} \\
    --port {port}
"""

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="tiny-llama"}} {running}
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="tiny-llama"}} {waiting}
vllm:num_requests_running_total_not_a_gauge 7
"""


def unit(tmp_path, host="0.0.0.0", port=8000):
    path = tmp_path / "vllm-tiny.service"
    path.write_text(UNIT.format(host=host, port=port))
    return str(path)


def test_address_from_the_units_exec_start(tmp_path):
    assert probe.unit_address(unit(tmp_path)) == ("127.0.0.1", 8000)
    assert probe.unit_address(unit(tmp_path, "127.0.0.1", 18000)) == ("127.0.0.1", 18000)
    assert probe.unit_served_name(unit(tmp_path)) == "tiny-llama"


def test_in_flight_adds_running_and_waiting():
    assert probe.in_flight(METRICS.format(running="2.0", waiting="1.0")) == 3
    assert probe.in_flight(METRICS.format(running="0.0", waiting="0.0")) == 0


class Metrics(http.server.BaseHTTPRequestHandler):
    answers = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        running = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        body = METRICS.format(running=running, waiting="0.0").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = http.server.HTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def drain(tmp_path, port, timeout):
    res = subprocess.run([sys.executable, str(SCRIPT), "drain", "--unit-file", unit(tmp_path, "127.0.0.1", port),
                          "--timeout", str(timeout)], capture_output=True, text=True, timeout=60)
    return res.returncode, json.loads(res.stdout)


def test_drain_waits_until_nothing_runs(tmp_path, server):
    Metrics.answers = ["2.0", "1.0", "0.0"]
    rc, out = drain(tmp_path, server.server_address[1], 30)
    assert rc == 0 and out["state"] == "drained" and out["seconds"] >= 1.5


def test_drain_gives_up_at_the_timeout_with_what_is_left(tmp_path, server):
    Metrics.answers = ["4.0"]
    rc, out = drain(tmp_path, server.server_address[1], 2)
    assert rc == 3 and out["state"] == "timeout" and out["in_flight"] == 4


def test_drain_of_a_service_that_is_down_has_nothing_in_flight(tmp_path):
    rc, out = drain(tmp_path, 9, 5)
    assert rc == 0 and out["state"] == "not_serving"
