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


def _passed_paths(conf_text):
    """The device nodes a Proxmox config passes: devN entries (8.1 and later) or lxc.mount.entry lines (before)."""
    paths = []
    for line in conf_text.split("\n[")[0].splitlines():
        key, _, value = line.partition(":")
        if key.startswith("dev") and key[3:].isdigit():
            paths.append(value.strip().split(",")[0])
        elif key == "lxc.mount.entry":
            paths.append(value.split()[0])
    return paths


def test_the_host_config_names_only_its_gpus(host):
    name = _name(host)
    with open(os.path.join(STATE, "etc/pve/lxc/%d.conf" % VMID[name])) as f:
        text = f.read()
    paths = _passed_paths(text)
    assert [p for p in paths if p[len("/dev/nvidia"):].isdigit()] == ["/dev/nvidia%d" % i for i in GPUS[name]], text
    assert "/dev/nvidia-uvm" in paths and "/dev/nvidiactl" in paths, text
    if "lxc.mount.entry" in text:
        # Before Proxmox VE 8.1 the cgroup allows carry the host's nvidia-uvm major (508 on the double's host).
        assert "lxc.cgroup2.devices.allow: c 508:* rwm" in text and "c 510:" not in text, text


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
