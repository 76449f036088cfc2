"""blackwell.vllm.proxmox_lxc_devices against recorded Proxmox API responses (tests/fixtures/proxmox)."""

from __future__ import annotations

import copy
import json
import pathlib

import pytest

import harness as lib

from ansible_collections.blackwell.vllm.plugins.modules import proxmox_lxc_devices as mod

API = json.loads((pathlib.Path(__file__).resolve().parents[3] / "fixtures" / "proxmox" / "api.json").read_text())
AUTH = {"api_host": "pve.example", "api_user": "ansible@pve", "api_token_id": "blackwell",
        "api_token_secret": "s3cret-not-printed", "node": "pve"}


class FakeApi:
    """The part of proxmoxer's ProxmoxAPI the module calls, answering from the recordings."""

    def __init__(self, version="version", status="stopped"):
        self.puts = []
        self._version = API[version]
        self._config = copy.deepcopy(API["config"])
        self._status = dict(API["status"], status=status)

    def __call__(self, host, **kwargs):
        assert kwargs["token_value"] == AUTH["api_token_secret"]
        return self

    @property
    def version(self):
        return type("V", (), {"get": lambda _: self._version})()

    def nodes(self, node):
        assert node == "pve"
        return self

    def lxc(self, vmid):
        api = self

        class Ct:
            class config:  # noqa: N801 - proxmoxer's attribute names
                get = staticmethod(lambda: api._config)
                put = staticmethod(lambda **kw: api.puts.append(kw))

            class status:  # noqa: N801
                class current:  # noqa: N801
                    get = staticmethod(lambda: api._status)

        return Ct


def run(monkeypatch, api, check_mode=False, **args):
    monkeypatch.setattr(mod, "ProxmoxAPI", api)
    return lib.run_module(mod.main, dict(AUTH, **args), monkeypatch, check_mode=check_mode, diff=True)


def test_only_the_version_without_vmid(monkeypatch):
    api = FakeApi()
    res, failed = run(monkeypatch, api)
    assert not failed and res["pve_version"] == "8.3.0" and not res["changed"] and api.puts == []


def test_a_clone_of_a_two_gpu_template_keeps_gpu0_and_drops_gpu1(monkeypatch):
    api = FakeApi()
    res, failed = run(monkeypatch, api, vmid=950, devices=["/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"])
    assert not failed and res["changed"]
    assert api.puts == [{"dev4": "/dev/nvidia-uvm", "delete": "dev1"}]
    assert res["entries"] == {"dev0": "/dev/nvidia0", "dev2": "/dev/nvidiactl", "dev3": "/dev/dri/renderD128,gid=104",
                              "dev4": "/dev/nvidia-uvm"}
    assert "dev1: /dev/nvidia1" in res["diff"]["before"] and "dev1" not in res["diff"]["after"]
    assert not res["pending_restart"]
    assert "s3cret" not in json.dumps(res)


def test_nothing_to_do_is_not_a_change(monkeypatch):
    api = FakeApi()
    res, failed = run(monkeypatch, api, vmid=950, devices=["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl"])
    assert not failed and not res["changed"] and api.puts == []


def test_check_mode_reports_and_writes_nothing(monkeypatch):
    api = FakeApi(status="running")
    res, failed = run(monkeypatch, api, check_mode=True, vmid=950, devices=["/dev/nvidia1"])
    assert not failed and res["changed"] and res["pending_restart"] and api.puts == []


def test_before_8_1_devn_entries_are_refused_with_the_way_out(monkeypatch):
    api = FakeApi(version="version_80")
    res, failed = run(monkeypatch, api, vmid=950, devices=["/dev/nvidia0"])
    assert failed and "8.0.4 has no devN entries" in res["msg"] and "lxc.mount.entry" in res["msg"]
    res, failed = run(monkeypatch, FakeApi(version="version_80"), vmid=950, devices=[])
    assert not failed


@pytest.mark.parametrize("devices, current, want, delete", [
    (["/dev/nvidia0"], {}, {"dev0": "/dev/nvidia0"}, []),
    (["/dev/nvidia0"], {"dev0": "/dev/dri/card0"}, {"dev1": "/dev/nvidia0"}, []),
    ([], {"dev0": "/dev/nvidia0,mode=0666"}, {}, ["dev0"]),
])
def test_wanted_entries(devices, current, want, delete):
    assert mod.wanted_entries(devices, current) == (want, delete)
