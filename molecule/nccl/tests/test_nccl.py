"""Verify the nccl scenario's node after converge, a second build, and rollback to the first."""

import json
import shlex

import pytest

ROOT = "/opt/nccl"
FIRST = "2.28.9-1-sm_121"
SECOND = "2.28.9-1-sm_120"
LOAD = (
    "import ctypes, os; lib = ctypes.CDLL('libnccl.so.2'); v = ctypes.c_int(); lib.ncclGetVersion(ctypes.byref(v)); "
    "p = next(l.split()[-1] for l in open('/proc/self/maps') if 'libnccl.so' in l); print(os.path.realpath(p), v.value)"
)


@pytest.fixture
def interface_env(host):
    """The interface settings the node's inventory asks for: none on this scenario's one-node lab,
    which has no QSFP NIC (the environment must never name a NIC the node lacks)."""
    nic = host.ansible.get_variables().get("blackwell_qsfp_interface")
    if not nic:
        return {}
    assert host.file(f"/sys/class/net/{nic}").exists, f"the inventory names {nic}, which the node lacks"
    return {"NCCL_SOCKET_IFNAME": nic, "UCX_NET_DEVICES": nic, "GLOO_SOCKET_IFNAME": nic}


def env_file(host, path):
    lines = host.file(path).content_string.splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture
def cuobjdump(host):
    cmd = host.run(f"ls {ROOT}/tools/venv/lib/python3*/site-packages/nvidia/cu*/bin/cuobjdump")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.split()[0]


def test_rollback_left_the_first_build_current(host):
    link = host.file(f"{ROOT}/current")
    assert link.is_symlink
    assert link.linked_to == f"{ROOT}/{FIRST}"


@pytest.mark.parametrize("name,sm", [(FIRST, "sm_121"), (SECOND, "sm_120")])
def test_both_builds_are_installed_with_marker_and_log(host, name, sm):
    marker = json.loads(host.file(f"{ROOT}/{name}/.blackwell-nccl.json").content_string)
    assert marker["version"] == "2.28.9-1"
    assert marker["gencode"] == f"-gencode=arch=compute_{sm[3:]},code={sm}"
    assert marker["sms"] == [sm]
    assert marker["cuda"].startswith("13.0")
    assert host.file(f"{ROOT}/{name}/lib/libnccl.so.2.28.9").is_file
    assert host.file(f"{ROOT}/{name}/lib/libnccl.so.2").linked_to == f"{ROOT}/{name}/lib/libnccl.so.2.28.9"
    assert host.file(f"{ROOT}/{name}/include/nccl.h").contains("NCCL_VERSION_CODE 22809")
    assert host.file(f"{ROOT}/{name}/build.log").contains("make -j2 src.build")


@pytest.mark.parametrize("name,sm,other", [(FIRST, "sm_121", "sm_120"), (SECOND, "sm_120", "sm_121")])
def test_each_library_carries_its_sm_and_only_it(host, cuobjdump, name, sm, other):
    out = host.check_output(f"{cuobjdump} --list-elf {ROOT}/{name}/lib/libnccl.so.2")
    assert f".{sm}.cubin" in out
    assert f".{other}.cubin" not in out


def test_loader_config_sorts_first_and_names_current(host):
    conf = host.file("/etc/ld.so.conf.d/00-blackwell-nccl.conf")
    assert conf.contains(f"^{ROOT}/current/lib$")
    first = sorted(host.file("/etc/ld.so.conf.d").listdir())[0]
    assert first == "00-blackwell-nccl.conf"


def test_loader_cache_puts_ours_before_the_decoys(host):
    entries = [line.split("=>")[-1].strip() for line in host.check_output("ldconfig -p").splitlines()
               if line.strip().startswith("libnccl.so.2 ")]
    assert entries[0] == f"{ROOT}/current/lib/libnccl.so.2"
    # the decoys are listed too, after ours (/usr/lib is /lib on merged-/usr Debian)
    assert any(e.endswith("/lib/x86_64-linux-gnu/libnccl.so.2") for e in entries[1:]), entries
    assert "/usr/local/lib/libnccl.so.2" in entries[1:], entries


def test_a_program_loads_our_build_not_a_decoy(host):
    path, version = host.check_output(f"env -u LD_LIBRARY_PATH python3 -c {shlex.quote(LOAD)}").split()
    assert path == f"{ROOT}/{FIRST}/lib/libnccl.so.2.28.9"
    assert version == "22809"  # the decoys say 21801


def test_the_service_environment_loads_our_build_too(host):
    script = f"set -a; . /etc/blackwell/nccl.env; exec python3 -c {shlex.quote(LOAD)}"
    out = host.check_output(f"sh -c {shlex.quote(script)}")
    assert out.split()[0] == f"{ROOT}/{FIRST}/lib/libnccl.so.2.28.9"


def test_env_file_for_ray_and_vllm(host, interface_env):
    f = host.file("/etc/blackwell/nccl.env")
    assert f.mode == 0o644
    env = env_file(host, "/etc/blackwell/nccl.env")
    assert env == {
        **interface_env,
        "NCCL_NET_GDR_LEVEL": "SYS",
        "NCCL_P2P_DISABLE": "1",
        "NCCL_IB_DISABLE": "1",
        # our NCCL first, then the toolkit's libraries (this file's LD_LIBRARY_PATH replaces cuda.env's)
        "LD_LIBRARY_PATH": f"{ROOT}/current/lib:/usr/local/cuda-13.0/lib64",
        "VLLM_NCCL_SO_PATH": f"{ROOT}/current/lib/libnccl.so.2",
    }


def test_nccl_conf_holds_only_nccl_settings(host, interface_env):
    env = env_file(host, "/etc/nccl.conf")
    nccl_nic = {k: v for k, v in interface_env.items() if k.startswith("NCCL_")}
    assert env == {**nccl_nic, "NCCL_NET_GDR_LEVEL": "SYS", "NCCL_P2P_DISABLE": "1", "NCCL_IB_DISABLE": "1"}

