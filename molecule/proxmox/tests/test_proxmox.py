"""Inside each clone made through the Proxmox API (the lab's TEST DOUBLE of it): its GPUs' device
nodes, the NVIDIA user space of the host's driver, and its vLLM service answering on its address."""

import json
import os

import pytest

# force_ansible: the inventory holds templated values (the lab key, addresses) that only Ansible renders.
testinfra_hosts = ["ansible://lxc_clones?force_ansible=True"]

GPUS = {"vllm-950": [0], "vllm-951": [1], "vllm-921": [0, 1]}
STATE = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", "."), ".lab/mol-proxmox/pve-double")
VMID = {"vllm-950": 950, "vllm-951": 951, "vllm-921": 921}


def _name(host):
    return host.backend.get_hostname()


def _char_device(host, path):
    return host.run("stat -c %%F %s" % path).stdout.strip() == "character special file"


def test_gpu_device_nodes_are_passed_through(host):
    name = _name(host)
    for index in GPUS[name]:
        assert _char_device(host, "/dev/nvidia%d" % index)
    for other in {0, 1} - set(GPUS[name]):
        assert not host.file("/dev/nvidia%d" % other).exists
    for node in ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"):
        assert _char_device(host, node)
    # The nvidia-uvm major is the host's (the double's stand-in host has 508, not the often assumed 510).
    assert host.run("stat -c %t /dev/nvidia-uvm").stdout.strip() == "%x" % 508


def test_the_host_config_names_only_its_gpus(host):
    name = _name(host)
    with open(os.path.join(STATE, "etc/pve/lxc/%d.conf" % VMID[name])) as f:
        lines = [ln.strip() for ln in f if ln.startswith("dev")]
    paths = [ln.split(":", 1)[1].strip().split(",")[0] for ln in lines]
    assert [p for p in paths if p.startswith("/dev/nvidia") and p[11:].isdigit()] == ["/dev/nvidia%d" % i for i in GPUS[name]]
    assert "/dev/nvidia-uvm" in paths


def test_driver_user_space_is_the_hosts(host):
    out = host.check_output("nvidia-smi --query-gpu=driver_version --format=csv,noheader")
    assert out.strip().split(",")[-1].strip() == "580.95.05"
    assert host.package("libnvidia-ml1").version.startswith("580.95.05")


def test_service_answers_a_completion(host):
    name = _name(host)
    svc = {"vllm-950": "qwen7b", "vllm-951": "granite-embed", "vllm-921": "fp8-test"}[name]
    assert host.service("vllm-%s" % svc).is_running
    key = "lab-only-not-a-secret-3f6c1e0a9b"
    out = host.check_output(
        "curl -sf -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' "
        "-d '{\"model\": \"tiny-llama\", \"prompt\": \"Hello\", \"max_tokens\": 8}' http://127.0.0.1:8000/v1/completions" % key)
    assert json.loads(out)["choices"]
