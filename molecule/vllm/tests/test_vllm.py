"""Verify the vllm scenario's node: a real vLLM CPU server under systemd, hardened, answering."""

import json

import pytest

UNIT = "vllm-tiny.service"
ENV_FILE = "/etc/vllm/tiny.env"
SERVED = "tiny-llama"
PROBE = "/usr/bin/python3 /opt/vllm/libexec/vllm_probe.py"


@pytest.fixture
def unit(host):
    out = host.check_output(f"systemctl show {UNIT} -p ActiveState,SubState,MainPID,User,FragmentPath,UnitFileState")
    return dict(line.split("=", 1) for line in out.splitlines())


def test_service_is_active_enabled_and_runs_as_vllm(host, unit):
    assert unit["ActiveState"] == "active" and unit["SubState"] == "running"
    assert unit["UnitFileState"] == "enabled"
    assert unit["User"] == "vllm"
    assert host.process.get(pid=int(unit["MainPID"])).user == "vllm"
    user = host.user("vllm")
    assert user.shell == "/usr/sbin/nologin" and user.uid < 1000


@pytest.mark.parametrize("directive", [
    "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/vllm", "PrivateTmp=yes",
    "ProtectHome=yes", "PrivateDevices=yes", "CapabilityBoundingSet=", "RestrictNamespaces=yes",
    "EnvironmentFile=-/etc/blackwell/nccl.env", f"EnvironmentFile={ENV_FILE}", "Restart=on-failure",
])
def test_hardening_directives(host, directive):
    assert directive in host.file(f"/etc/systemd/system/{UNIT}").content_string.splitlines()


def test_systemd_applies_the_sandbox(host):
    out = host.check_output(f"systemctl show {UNIT} -p NoNewPrivileges,ProtectSystem,PrivateTmp,ProtectHome")
    props = dict(line.split("=", 1) for line in out.splitlines())
    assert props == {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes"}


def test_security_report_is_recorded(host):
    report = host.file("/etc/vllm/tiny.security.txt")
    assert report.exists and "Overall exposure level for vllm-tiny.service" in report.content_string


def test_env_file_is_0600_root_and_the_key_is_nginx_s_alone(host):
    f = host.file(ENV_FILE)
    assert f.mode == 0o600 and f.user == "root" and f.group == "root"
    # The service listens beyond loopback: nginx holds the key (0600 root), the vLLM processes never see it.
    assert "VLLM_API_KEY=" not in f.content_string and "HF_HUB_OFFLINE=" in f.content_string
    key = host.file("/etc/nginx/blackwell-vllm-key.conf")
    assert key.mode == 0o600 and key.user == "root" and '"Bearer ' in key.content_string


def test_the_api_key_is_not_on_the_command_line(host, unit):
    cmdline = host.file(f"/proc/{unit['MainPID']}/cmdline").content_string
    assert "api-key" not in cmdline and "lab-only" not in cmdline


def test_release_layout(host):
    current = host.file("/opt/vllm/current")
    assert current.is_symlink and current.linked_to.startswith("/opt/vllm/releases/0.32.0-")
    marker = json.loads(host.file(current.linked_to + "/.blackwell-release.json").content_string)
    assert marker["mode"] == "cpu" and "ray[default]==2.60.0" in marker["packages"]
    assert current.linked_to + "/venv/bin/python" in host.file(f"/etc/systemd/system/{UNIT}").content_string


def test_blackwell_patches_are_in_the_release(host):
    site = host.file("/opt/vllm/current").linked_to + "/venv/lib/python3.11/site-packages/vllm"
    w8a8 = host.file(site + "/model_executor/layers/quantization/utils/w8a8_utils.py").content_string
    assert w8a8.count("# BEGIN blackwell.vllm") == 2
    assert host.file(site + "/model_executor/layers/fused_moe/configs/"
                            "E=512,N=512,device_name=NVIDIA_GB10,dtype=fp8_w8a8.json").exists


def test_models_lists_the_served_name_and_a_completion_returns_tokens(host):
    cmd = host.run(f"{PROBE} verify --url http://127.0.0.1:8000 --served-name {SERVED} "
                   "--key-file /etc/nginx/blackwell-vllm-key.conf --require-key --max-tokens 16")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    res = json.loads(cmd.stdout)
    assert SERVED in res["models"]
    assert res["completion_tokens"] == 16
    assert res["unauthenticated_status"] == 401


def test_the_gateway_listens_on_all_addresses_and_vllm_on_loopback(host):
    assert host.socket("tcp://0.0.0.0:8000").is_listening
    assert host.socket("tcp://127.0.0.1:28000").is_listening
    assert not host.socket("tcp://0.0.0.0:28000").is_listening
