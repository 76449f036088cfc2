"""lab/proxmox-api-double's pure parts (a TEST DOUBLE of the Proxmox VE API): the config file
format, property strings, parameter verification, UPIDs, authentication, routing and the
cgroup translation. Nothing here needs root or LXC."""

import importlib.machinery
import importlib.util
import os

import pytest

DOUBLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab", "proxmox-api-double")


@pytest.fixture(scope="module")
def pve():
    loader = importlib.machinery.SourceFileLoader("pve_double", DOUBLE)
    spec = importlib.util.spec_from_loader("pve_double", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@pytest.fixture
def double(pve, tmp_path):
    auth = pve.Auth([("root@pam", "ansible", "s3cret")], {"root@pam": "hunter22"})
    return pve.Double(str(tmp_path), bridges={"vmbr0": "bwl18m"}, prefix="pve18-", auth=auth)


CONF = """#serving%20node
#second line
arch: amd64
cores: 4
dev0: /dev/nvidia0,mode=0666
hostname: ct920
memory: 8192
net0: name=eth0,bridge=vmbr0,gw=10.233.18.1,hwaddr=BC:24:11:00:00:01,ip=10.233.18.50/24,type=veth
rootfs: local:920/vm-920-disk-0.raw,size=8G
lxc.cgroup2.devices.allow: c 195:* rwm
lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file

[snap1]
cores: 1
"""


def test_config_file_round_trips_in_proxmox_format(pve):
    conf, lxc = pve.parse_conf(CONF)
    assert conf["cores"] == "4" and conf["hostname"] == "ct920"
    assert conf["description"] == "serving node\nsecond line"
    assert lxc == [["lxc.cgroup2.devices.allow", "c 195:* rwm"],
                   ["lxc.mount.entry", "/dev/nvidia0 dev/nvidia0 none bind,optional,create=file"]]
    text = pve.format_conf(conf, lxc)
    assert "cores: 4\n" in text and text.index("arch:") < text.index("rootfs:") < text.index("lxc.cgroup2")
    assert pve.parse_conf(text) == (conf, lxc)
    assert "[snap1]" not in text


def test_bad_config_line_is_refused(pve):
    with pytest.raises(ValueError, match="unable to parse"):
        pve.parse_conf("this is not a key\n")


def test_net0_parses_and_prints_name_first(pve):
    net = pve.parse_net("bridge=vmbr0,name=eth0,ip=10.0.0.5/24,gw=10.0.0.1,hwaddr=02:00:00:00:00:01")
    assert net["ip"] == "10.0.0.5/24" and net["gw"] == "10.0.0.1"
    assert pve.format_props(net).startswith("name=eth0,bridge=vmbr0,")


@pytest.mark.parametrize("value, word", [
    ("bridge=vmbr0", "missing property 'name'"),
    ("name=eth0,ip=10.0.0.5", "IPv4 network configuration"),
    ("name=eth0,ip=300.0.0.1/24", "IPv4 network configuration"),
    ("name=eth0,hwaddr=01:00:00:00:00:01", "MAC address"),
    ("name=eth0,colour=blue", "property 'colour' not allowed"),
    ("name=eth0,gw=nope", "IPv4 address"),
])
def test_bad_net0_is_refused_with_proxmox_wording(pve, value, word):
    with pytest.raises(ValueError, match=word):
        pve.parse_net(value)


def test_dev_entries_take_a_bare_path_or_path_key(pve):
    assert pve.parse_dev("/dev/nvidia0,mode=0666")["path"] == "/dev/nvidia0"
    assert pve.parse_dev("path=/dev/nvidia-uvm,gid=44")["gid"] == "44"
    with pytest.raises(ValueError):
        pve.parse_dev("/tmp/x")


def test_devn_is_an_unknown_option_before_8_1(pve):
    with pytest.raises(pve.ApiError) as e:
        pve.check_config_params({"dev0": "/dev/nvidia0"}, "8.0.4", creating=False)
    assert e.value.status == 400 and e.value.message == "Parameter verification failed."
    assert "not defined in schema" in e.value.errors["dev0"]
    assert pve.check_config_params({"dev0": "/dev/nvidia0"}, "8.1.0", creating=False) == {"dev0": "/dev/nvidia0"}


def test_parameter_verification_types_and_ranges(pve):
    typed = pve.check_config_params({"cores": "2", "memory": "2048", "onboot": "true", "vmid": "920",
                                     "ostemplate": "x", "cpulimit": "1.5"}, "8.3.0", creating=True)
    assert typed == {"cores": 2, "memory": 2048, "onboot": 1, "cpulimit": 1.5}
    with pytest.raises(pve.ApiError) as e:
        pve.check_config_params({"cores": "two", "memory": "1", "bogus": "1"}, "8.3.0", creating=False)
    assert set(e.value.errors) == {"cores", "memory", "bogus"}
    with pytest.raises(pve.ApiError):
        pve.check_config_params({"ostemplate": "x"}, "8.3.0", creating=False)


def test_upid_format_round_trips(pve):
    upid = pve.make_upid("pve", 0x1A2B, 0x3C4D5E, 0x65A1B2C3, "vzcreate", 920, "root@pam!ansible")
    assert upid == "UPID:pve:00001A2B:003C4D5E:65A1B2C3:vzcreate:920:root@pam!ansible:"
    info = pve.parse_upid(upid)
    assert (info["type"], info["id"], info["user"], info["pid"]) == ("vzcreate", "920", "root@pam!ansible", 0x1A2B)
    with pytest.raises(ValueError):
        pve.parse_upid("UPID:nope")


def test_api_token_auth(pve):
    auth = pve.Auth([pve.parse_token_line("root@pam!ansible=s3cret")])
    assert auth.check("POST", {"Authorization": "PVEAPIToken=root@pam!ansible=s3cret"}, {}) == "root@pam!ansible"
    for header, word in (("PVEAPIToken=root@pam!ansible=wrong", "invalid token value"),
                         ("PVEAPIToken=root@pam!other=s3cret", "no such token"),
                         ("", "No ticket")):
        with pytest.raises(pve.ApiError) as e:
            auth.check("GET", {"Authorization": header}, {})
        assert e.value.status == 401 and word in e.value.message
        assert "s3cret" not in e.value.message
    with pytest.raises(ValueError):
        pve.parse_token_line("root@pam=s3cret")


def test_ticket_auth_needs_csrf_token_for_writes(pve):
    auth = pve.Auth([], {"root@pam": "hunter22"})
    with pytest.raises(pve.ApiError) as e:
        auth.ticket("root@pam", "wrong")
    assert e.value.status == 401
    t = auth.ticket("root@pam", "hunter22")
    cookies = {"PVEAuthCookie": t["ticket"]}
    assert auth.check("GET", {}, cookies) == "root@pam"
    with pytest.raises(pve.ApiError, match="csrf"):
        auth.check("POST", {}, cookies)
    assert auth.check("POST", {"CSRFPreventionToken": t["CSRFPreventionToken"]}, cookies) == "root@pam"
    with pytest.raises(pve.ApiError, match="invalid ticket"):
        auth.check("GET", {}, {"PVEAuthCookie": t["ticket"][:-4] + "AAAA"})


def test_version_nextid_and_unknown_routes(pve, double):
    assert pve.dispatch(double, "GET", "/version", {}, "root@pam")["version"] == "8.3.0"
    assert pve.dispatch(double, "GET", "/cluster/nextid", {}, "root@pam") == "100"
    with open(double.conf_path(100), "w") as f:
        f.write("hostname: a\nmemory: 512\n")
    assert pve.dispatch(double, "GET", "/cluster/nextid", {}, "root@pam") == "101"
    vms = pve.dispatch(double, "GET", "/cluster/resources", {"type": "vm"}, "root@pam")
    assert vms[0]["vmid"] == 100 and vms[0]["id"] == "lxc/100" and vms[0]["name"] == "a"
    with pytest.raises(pve.ApiError) as e:
        pve.dispatch(double, "GET", "/nodes/pve/qemu/100/agent/ping", {}, "root@pam")
    assert e.value.status == 501 and "/nodes/pve/qemu/100/agent/ping" in e.value.message
    with pytest.raises(pve.ApiError, match="hostname lookup 'other'"):
        pve.dispatch(double, "GET", "/nodes/other/status", {}, "root@pam")


def test_config_get_types_and_raw_lxc_pairs(pve, double):
    with open(double.conf_path(920), "w") as f:
        f.write(CONF)
    conf = pve.dispatch(double, "GET", "/nodes/pve/lxc/920/config", {}, "root@pam")
    assert conf["cores"] == 4 and conf["memory"] == 8192 and isinstance(conf["digest"], str)
    assert conf["lxc"][0] == ["lxc.cgroup2.devices.allow", "c 195:* rwm"]
    with pytest.raises(pve.ApiError, match="does not exist"):
        pve.dispatch(double, "GET", "/nodes/pve/lxc/999/config", {}, "root@pam")


def test_config_put_keeps_the_mac_and_refuses_unknown_bridges(pve, double):
    with open(double.conf_path(920), "w") as f:
        f.write(CONF)
    double.update_config(920, {"net0": "name=eth0,bridge=vmbr0,ip=10.233.18.60/24,gw=10.233.18.1", "cores": "2"})
    conf, lxc = double.load(920)
    assert "hwaddr=BC:24:11:00:00:01" in conf["net0"] and "ip=10.233.18.60/24" in conf["net0"]
    assert conf["cores"] == "2" and len(lxc) == 2
    with pytest.raises(pve.ApiError, match="bridge 'vmbr9' does not exist"):
        double.update_config(920, {"net0": "name=eth0,bridge=vmbr9"})
    with pytest.raises(pve.ApiError, match="detected modified configuration"):
        double.update_config(920, {"cores": "1", "digest": "0" * 40})
    double.update_config(920, {"delete": "dev0"})
    assert "dev0" not in double.load(920)[0]


def test_cgroup2_lines_follow_the_host(pve, monkeypatch):
    monkeypatch.setattr(pve, "CGROUP_V2", False)
    assert pve.cgroup_line("lxc.cgroup2.devices.allow", "c 195:* rwm") == "lxc.cgroup.devices.allow = c 195:* rwm"
    assert pve.cgroup_line("lxc.cgroup2.memory.max", "1024") == "lxc.cgroup.memory.limit_in_bytes = 1024"
    assert pve.cgroup_line("lxc.mount.entry", "a b") == "lxc.mount.entry = a b"
    monkeypatch.setattr(pve, "CGROUP_V2", True)
    assert pve.cgroup_line("lxc.cgroup2.memory.max", "1024") == "lxc.cgroup2.memory.max = 1024"


def test_stand_in_host_devices_use_the_configured_majors(pve, tmp_path):
    d = pve.Double(str(tmp_path), gpus=3, uvm_major=508, caps_major=509)
    devs = d.host_devices()
    assert devs["nvidia2"] == (195, 2) and devs["nvidia-uvm"] == (508, 0)
    assert devs["nvidia-caps/nvidia-cap2"] == (509, 2) and "nvidia3" not in devs
