"""nccl.env, /etc/nccl.conf and the Ray and vLLM units follow the one NCCL transport fact (blackwell_nccl_transport).

transport_render.yml runs the nccl role's transport and set_vars, the ray_cluster and vllm validations, and
renders those files for hosts that each point nccl_rdma_sysfs_root at a recorded tree of tests/fixtures/rdma:
a GB10 on the two-port ConnectX-7 (auto and ib give RoCE), the same with nccl_transport socket, a GB10 with no
RDMA device, and a lab_cpu node (no GPU) on the two-port tree. A host on sockets must get what the socket-only
collection rendered, byte for byte: the socket host's files are compared with the ib host's after removing
exactly the lines RoCE adds.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "tests" / "unit" / "roles" / "transport_render.yml"
BIN = pathlib.Path(sys.executable).parent
TREES = REPO / "tests" / "fixtures" / "rdma"
HCA = "=rocep1s0f0:1,roceP2p1s0f0:1"

HOSTS = {
    "gb10_auto": {"blackwell_hardware_profile": "gb10", "nccl_rdma_sysfs_root": "cx7-two-ports"},
    "gb10_ib": {"blackwell_hardware_profile": "gb10", "nccl_rdma_sysfs_root": "cx7-two-ports", "nccl_transport": "ib"},
    "gb10_socket": {"blackwell_hardware_profile": "gb10", "nccl_rdma_sysfs_root": "cx7-two-ports",
                    "nccl_transport": "socket"},
    "gb10_none": {"blackwell_hardware_profile": "gb10", "nccl_rdma_sysfs_root": "none"},
    "lab_ib": {"blackwell_hardware_profile": "lab_cpu", "nccl_rdma_sysfs_root": "cx7-two-ports"},
    "lab_none": {"blackwell_hardware_profile": "lab_cpu", "nccl_rdma_sysfs_root": "none"},
}


def inventory():
    """Each host the one member of a Ray cluster of its own (head group head_<host>)."""
    hosts, groups = {}, {}
    for name, variables in HOSTS.items():
        groups["head_" + name] = {"hosts": {name: None}}
        groups["workers_" + name] = {"hosts": {}}
        cpu = variables["blackwell_hardware_profile"] == "lab_cpu"
        hosts[name] = dict(variables, ansible_connection="local", ansible_python_interpreter=sys.executable,
                           nccl_rdma_sysfs_root=str(TREES / variables["nccl_rdma_sysfs_root"]),
                           # Ray's validation reads the address on its interface: lo here (the tree names enp1s0f0np0)
                           blackwell_qsfp_interface="enp1s0f0np0", blackwell_qsfp_address="127.0.0.1/8",
                           ray_cluster_interface="lo",
                           nccl_build=False, vllm_install_mode="cpu" if cpu else "wheels",
                           ray_cluster_head_group="head_" + name, ray_cluster_worker_group="workers_" + name,
                           vllm_services=[{"name": "solo", "model": "/srv/models/m", "distributed_executor_backend": "mp"}])
    return {"all": {"hosts": hosts, "children": groups}}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("transport")
    out = tmp / "out"
    out.mkdir()
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory()))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH="%s:%s" % (BIN, os.environ.get("PATH", "")),
               ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS=str(len(HOSTS)))
    extra = {"render_out": str(out), "render_roles": str(REPO / "roles")}
    res = subprocess.run([shutil.which("ansible-playbook", path=env["PATH"]), str(PLAYBOOK), "-i", str(tmp / "hosts.yml"),
                          "-e", json.dumps(extra)], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
    return {d.name: {f.name: f.read_text() for f in d.iterdir()} for d in out.iterdir()}


def env_of(text):
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_the_transport_fact_of_each_host(rendered):
    names = {h: json.loads(files["transport.json"])["name"] for h, files in rendered.items()}
    assert names == {"gb10_auto": "ib", "gb10_ib": "ib", "gb10_socket": "socket", "gb10_none": "socket",
                     "lab_ib": "ib", "lab_none": "socket"}
    assert json.loads(rendered["gb10_auto"]["transport.json"])["summary"] == (
        "ib (rocep1s0f0:1 + roceP2p1s0f0:1 behind enp1s0f0np0/enP2p1s0f0np0, RoCE v2 GID 3)")


@pytest.mark.parametrize("host", ["gb10_auto", "gb10_ib"])
def test_nccl_env_and_conf_over_roce(rendered, host):
    env = env_of(rendered[host]["nccl.env"])
    assert env == {"NCCL_SOCKET_IFNAME": "enp1s0f0np0", "GLOO_SOCKET_IFNAME": "enp1s0f0np0",
                   "UCX_NET_DEVICES": "rocep1s0f0:1,roceP2p1s0f0:1", "NCCL_IB_HCA": HCA, "NCCL_IB_GID_INDEX": "3",
                   "NCCL_IB_DISABLE": "0", "NCCL_NET_GDR_LEVEL": "SYS", "NCCL_P2P_DISABLE": "1"}
    conf = env_of(rendered[host]["nccl.conf"])
    assert conf == {k: v for k, v in env.items() if k.startswith("NCCL_")}
    # the validate patterns of tasks/environment.yml accept every line
    assert all(line.startswith("#") or line.split("=", 1)[1].strip() == line.split("=", 1)[1]
               for line in rendered[host]["nccl.conf"].splitlines() if line)


@pytest.mark.parametrize("host", ["gb10_socket", "gb10_none"])
def test_nccl_env_on_sockets_is_the_guides(rendered, host):
    env = env_of(rendered[host]["nccl.env"])
    assert env == {"NCCL_SOCKET_IFNAME": "enp1s0f0np0", "GLOO_SOCKET_IFNAME": "enp1s0f0np0",
                   "UCX_NET_DEVICES": "enp1s0f0np0", "NCCL_NET_GDR_LEVEL": "SYS", "NCCL_P2P_DISABLE": "1",
                   "NCCL_IB_DISABLE": "1"}


ROCE_UNIT_LINES = ("LimitMEMLOCK=infinity", "DeviceAllow=char-infiniband_verbs rw", "DeviceAllow=/dev/infiniband/rdma_cm rw")


def _roce_lines(text):
    return [line for line in text.splitlines() if "infiniband" in line or "RoCE" in line]


def test_ray_unit_over_roce_pins_memory_and_opens_the_verbs_devices(rendered):
    unit = rendered["gb10_ib"]["ray-head.service"].splitlines()
    for line in ROCE_UNIT_LINES:
        assert line in unit, line
    assert "DevicePolicy=closed" in unit and "DeviceAllow=char-nvidia* rw" in unit
    assert not any(line.startswith("PrivateDevices=yes") for line in unit)
    assert any(HCA in line for line in unit)


def test_ray_unit_on_sockets_has_nothing_of_roce(rendered):
    for host in ("gb10_socket", "gb10_none", "lab_none"):
        unit = rendered[host]["ray-head.service"]
        assert _roce_lines(unit) == [] and "LimitMEMLOCK" not in unit, host
    assert "PrivateDevices=yes" in rendered["lab_none"]["ray-head.service"].splitlines()


def test_the_socket_units_are_the_roce_units_without_the_roce_lines(rendered):
    """What RoCE adds is these lines and nothing else: removing them from the ib host's units gives the socket host's."""
    for unit in ("ray-head.service", "vllm-solo.service"):
        ib = rendered["gb10_ib"][unit].splitlines()
        socket = rendered["gb10_socket"][unit].splitlines()
        added = [line for line in ib if line not in socket]
        assert all(line in ROCE_UNIT_LINES or line.startswith("#") for line in added), (unit, added)
        assert [line for line in ib if line not in added] == socket, unit
        assert rendered["gb10_socket"][unit] == rendered["gb10_none"][unit], unit


def test_vllm_unit_over_roce(rendered):
    unit = rendered["gb10_ib"]["vllm-solo.service"].splitlines()
    assert unit.count("LimitMEMLOCK=infinity") == 1  # a GPU unit has it already: not twice
    assert "DeviceAllow=char-infiniband_verbs rw" in unit and "DeviceAllow=/dev/infiniband/rdma_cm rw" in unit
    assert "PrivateDevices=no" in unit and "DevicePolicy=closed" in unit


def test_a_node_without_gpu_over_roce_gets_only_the_rdma_devices(rendered):
    for unit_name in ("ray-head.service", "vllm-solo.service"):
        unit = rendered["lab_ib"][unit_name].splitlines()
        assert "PrivateDevices=yes" not in unit and "DevicePolicy=closed" in unit, unit_name
        allows = [line for line in unit if line.startswith("DeviceAllow=")]
        assert allows == ["DeviceAllow=char-infiniband_verbs rw", "DeviceAllow=/dev/infiniband/rdma_cm rw"], unit_name
        assert "LimitMEMLOCK=infinity" in unit, unit_name
        plain = rendered["lab_none"][unit_name].splitlines()
        assert "PrivateDevices=yes" in plain and "LimitMEMLOCK=infinity" not in plain, unit_name


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze here")
@pytest.mark.parametrize("host", ["gb10_ib", "lab_ib"])
def test_roce_units_parse(rendered, host, tmp_path):
    """systemd parses the RoCE lines (DeviceAllow= by group and by path, LimitMEMLOCK=): no message names them."""
    for unit in ("ray-head.service", "vllm-solo.service"):
        path = tmp_path / unit
        path.write_text(rendered[host][unit])
        res = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
        text = res.stdout + res.stderr
        for word in ("DeviceAllow", "LimitMEMLOCK", "DevicePolicy", "PrivateDevices"):
            assert word not in text, (unit, text)
