"""The Proxmox source of truth: bad entries refused with the entry, key and value; settings derived."""

from __future__ import annotations

import copy
import pathlib

import pytest
import yaml

from ansible_collections.blackwell.vllm.plugins.module_utils import proxmox

ROOT = pathlib.Path(__file__).resolve().parents[4]
SITE = yaml.safe_load((ROOT / "inventories/proxmox-lxc/group_vars/all/proxmox.yml").read_text())
PROC_DEVICES = """Character devices:
  1 mem
  4 /dev/vc/0
195 nvidia-frontend
508 nvidia-uvm
509 nvidia-caps
Block devices:
  8 sd
510 blkext
"""
HOST_NODES = ["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
              "/dev/nvidia-caps/nvidia-cap1", "/dev/nvidia-caps/nvidia-cap2"]


def site():
    return copy.deepcopy(SITE["proxmox_host"]), copy.deepcopy(SITE["proxmox_template"]), copy.deepcopy(SITE["proxmox_clones"])


def problems(mutate):
    host, template, clones = site()
    mutate(host, template, clones)
    return proxmox.site_problems(host, template, clones)


def test_the_shipped_site_is_clean():
    assert proxmox.site_problems(*site()) == []


@pytest.mark.parametrize("mutate, fragments", [
    (lambda h, t, c: c[1].update(vmid=950), ["proxmox_clones[1] (vmid 950)", "vmid 950 is also the vmid of proxmox_clones[0]"]),
    (lambda h, t, c: c[1].update(vmid=920), ["vmid 920 is also the vmid of proxmox_template"]),
    (lambda h, t, c: c[2].update(address="10.0.0.150/24"), ["address 10.0.0.150/24 is also the address of proxmox_clones[0]"]),
    (lambda h, t, c: c[2].update(address="10.0.0.150/16"), ["is also the address of proxmox_clones[0]"]),
    (lambda h, t, c: c[0].update(mac="bc:24:11:00:09:51"), ["proxmox_clones[1] (vmid 951): mac BC:24:11:00:09:51 is also the mac of proxmox_clones[0]"]),
    (lambda h, t, c: c[0].update(mac="01:24:11:00:09:50"), ["multicast"]),
    (lambda h, t, c: c[0].update(mac="BC:24:11:00:09"), ["mac='BC:24:11:00:09' must be a MAC address"]),
    (lambda h, t, c: c[0].update(gpus=[2]), ["gpus=[2] names GPU index 2, which proxmox_host.gpus does not have (the host has [0, 1])"]),
    (lambda h, t, c: c[0].update(gpus=[0, 0]), ["lists a GPU twice"]),
    (lambda h, t, c: c[0].update(services=[{"name": "a", "model": "m", "port": 8000}, {"name": "b", "model": "m", "port": 8000}]) or c[0].pop("service"),
     ["services a and b both listen on port 8000"]),
    (lambda h, t, c: c[0]["service"].update(port=22), ["port=22 is SSH's port"]),
    (lambda h, t, c: c[0]["service"].update(port=70000), ["port=70000 must be a port number"]),
    (lambda h, t, c: t.clear(), ["proxmox_template={} is missing or has no vmid"]),
    (lambda h, t, c: c[0].update(template=930), ["template=930 is not a template of this site; proxmox_template has vmid 920"]),
    (lambda h, t, c: c[0].update(vmid=99), ["vmid=99 must be a whole number from 100"]),
    (lambda h, t, c: c[0].update(vmid="950"), ["vmid='950' must be a whole number"]),
    (lambda h, t, c: c[0].update(address="10.0.0.150"), ["address='10.0.0.150' must be an IPv4 address with its prefix"]),
    (lambda h, t, c: c[0].update(address="10.9.0.150/24"), ["address=10.9.0.150/24 is not in the subnet of proxmox_host.gateway=10.0.0.1"]),
    (lambda h, t, c: c[0].update(address="10.0.0.1/24"), ["address 10.0.0.1/24 is proxmox_host.gateway's"]),
    (lambda h, t, c: c[0].update(hostname="vllm_950"), ["hostname='vllm_950' must be a DNS name"]),
    (lambda h, t, c: c[0].update(memory="32G"), ["memory='32G' must be a whole number of at least 16 MiB"]),
    (lambda h, t, c: c[0].update(clone_type="thin"), ["clone_type='thin' must be one of full, linked"]),
    (lambda h, t, c: c[0].pop("service"), ["needs a service"]),
    (lambda h, t, c: t.update(build_stages=["driver", "vllm"]), ["build_stages=['driver', 'vllm'] holds ['vllm']"]),
    (lambda h, t, c: t.update(ostemplate="ubuntu.tar.zst"), ["ostemplate='ubuntu.tar.zst' must name an OS template volume"]),
    (lambda h, t, c: h.update(nvidia_driver_version=580.76), ["proxmox_host.nvidia_driver_version=580.76"]),
    (lambda h, t, c: h.update(api_user="ansible"), ["api_user='ansible' needs its realm"]),
    (lambda h, t, c: h.update(gpus=[{"index": 0}, {"index": 0}]), ["proxmox_host.gpus lists index 0 more than once"]),
    (lambda h, t, c: h.pop("bridge"), ["proxmox_host.bridge=None must be a non-empty string"]),
])
def test_bad_entries_are_named(mutate, fragments):
    found = problems(mutate)
    text = "; ".join(found)
    for fragment in fragments:
        assert fragment in text, found


def test_clones_not_a_list():
    assert "proxmox_clones={'vmid': 950} must be a list" in "; ".join(proxmox.site_problems(site()[0], site()[1], {"vmid": 950}))


def test_net0():
    host, _, clones = site()
    assert proxmox.net0(clones[0], host) == "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:09:50,ip=10.0.0.150/24,gw=10.0.0.1,type=veth"


def test_proc_devices_reads_character_devices_only():
    assert proxmox.parse_proc_devices(PROC_DEVICES) == {"mem": 1, "/dev/vc/0": 4, "nvidia-frontend": 195,
                                                        "nvidia-uvm": 508, "nvidia-caps": 509}


def test_passthrough_since_8_1_is_dev_entries():
    res = proxmox.passthrough([1], PROC_DEVICES, HOST_NODES, "8.3.0")
    assert res["problems"] == []
    assert res["dev_entries"] == {"dev0": "/dev/nvidia1", "dev1": "/dev/nvidiactl", "dev2": "/dev/nvidia-uvm",
                                  "dev3": "/dev/nvidia-uvm-tools", "dev4": "/dev/nvidia-caps/nvidia-cap1",
                                  "dev5": "/dev/nvidia-caps/nvidia-cap2"}
    assert res["lxc_lines"] == []


def test_passthrough_before_8_1_reads_the_uvm_major_from_the_host():
    res = proxmox.passthrough([0, 1], PROC_DEVICES, HOST_NODES, "8.0.4")
    assert res["dev_entries"] == {}
    assert "lxc.cgroup2.devices.allow: c 508:* rwm" in res["lxc_lines"]
    assert "lxc.cgroup2.devices.allow: c 510:* rwm" not in res["lxc_lines"]
    assert res["lxc_lines"][:3] == ["lxc.cgroup2.devices.allow: c 195:* rwm", "lxc.cgroup2.devices.allow: c 508:* rwm",
                                    "lxc.cgroup2.devices.allow: c 509:* rwm"]
    assert "lxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file" in res["lxc_lines"]
    assert proxmox.lxc_lines_problems(res["lxc_lines"]) == []
    other = proxmox.passthrough([0], PROC_DEVICES.replace("508 nvidia-uvm", "511 nvidia-uvm"), HOST_NODES, "7.4")
    assert "lxc.cgroup2.devices.allow: c 511:* rwm" in other["lxc_lines"]


def test_passthrough_without_uvm_on_the_host_says_why():
    res = proxmox.passthrough([0], PROC_DEVICES.replace("508 nvidia-uvm\n", ""), HOST_NODES[:3], "8.0")
    text = "; ".join(res["problems"])
    assert "no nvidia-uvm" in text and "error 999" in text
    assert "/dev/nvidia-uvm" in text


def test_no_gpus_no_passthrough():
    assert proxmox.passthrough([], "", [], "8.3")["nodes"] == []


def test_lxc_lines_problems_refuses_other_lines():
    assert proxmox.lxc_lines_problems(["lxc.apparmor.profile: unconfined"])


def test_version_tuple():
    assert proxmox.pve_version_tuple("8.1") == (8, 1)
    assert proxmox.pve_version_tuple("8.3.0-1") == (8, 3, 0)
    assert proxmox.pve_version_tuple(None) == (0,)


CONF = """#vLLM clone
arch: amd64
cores: 8
lxc.cgroup2.devices.allow: c 195:* rwm
lxc.cgroup2.devices.allow: c 510:* rwm
lxc.mount.entry: /dev/nvidia1 dev/nvidia1 none bind,optional,create=file
lxc.apparmor.profile: unconfined
net0: name=eth0,bridge=vmbr0

[before-upgrade]
arch: amd64
lxc.mount.entry: /dev/nvidia1 dev/nvidia1 none bind,optional,create=file
"""


def test_lxc_conf_replaces_the_gpu_lines_of_the_main_section_only():
    res = proxmox.passthrough([0], PROC_DEVICES, HOST_NODES, "8.0.4")
    previous = ["lxc.cgroup2.devices.allow: c 510:* rwm"]
    kept = proxmox.lxc_conf_with_devices(CONF, res["lxc_lines"], res["majors"].values())
    assert "c 510:* rwm" in kept.split("[")[0]  # another device's allow line is not ours to remove
    new = proxmox.lxc_conf_with_devices(CONF, res["lxc_lines"], res["majors"].values(), previous)
    main, snap = new.split("[before-upgrade]")
    assert "c 510:* rwm" not in main  # an earlier run's (wrong) major is recognised and removed
    assert "lxc.mount.entry: /dev/nvidia1" not in main
    assert "lxc.apparmor.profile: unconfined" in main and "#vLLM clone" in main
    assert main.rstrip().endswith("lxc.mount.entry: /dev/nvidia-caps/nvidia-cap2 dev/nvidia-caps/nvidia-cap2 none bind,optional,create=file")
    assert "lxc.mount.entry: /dev/nvidia1 dev/nvidia1" in snap
    assert proxmox.lxc_conf_with_devices(new, res["lxc_lines"], res["majors"].values(), res["lxc_lines"]) == new


def test_lxc_conf_without_lines_removes_them():
    new = proxmox.lxc_conf_with_devices("arch: amd64\nlxc.cgroup2.devices.allow: c 195:* rwm\n", [])
    assert new == "arch: amd64\n"
