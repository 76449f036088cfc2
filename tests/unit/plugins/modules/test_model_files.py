# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""modules/model_files against the lab's hub TEST DOUBLE on loopback: a fetch writes the manifest,
a second run changes nothing and hashes nothing, a corrupted file is fetched again, check mode
fetches nothing, info measures and refuses a model that does not fit; a directory source is checked
against a given manifest and its bad files removed."""

import json
import os

import pytest

import harness as lib
from hub_double import HubDouble

from ansible_collections.blackwell.vllm.plugins.modules import model_files as mod


@pytest.fixture
def hub(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "llama"}\n')
    (src / "model.safetensors").write_bytes(os.urandom(300_000))
    double = HubDouble(src)
    yield double
    double.stop()


def args(hub, path, **kw):
    return dict(dict(path=str(path), repo=hub.repo, revision=hub.commit, endpoint=hub.endpoint, token="hf_secret_token"), **kw)


def test_fetch_verify_then_unchanged(hub, tmp_path, monkeypatch):
    dest = tmp_path / "models" / "lab--tiny-llama" / hub.commit
    res, failed = lib.run_module(mod.main, args(hub, dest), monkeypatch)
    assert not failed and res["changed"] and res["verified"]
    assert sorted(res["fetched"]) == ["config.json", "model.safetensors"]
    assert res["bytes_fetched"] == res["size"] == 300_000 + len('{"model_type": "llama"}\n')
    manifest = json.loads((dest / ".blackwell" / (hub.commit + ".manifest.json")).read_text())
    assert manifest == res["manifest"] and manifest["revision"] == hub.commit
    assert (dest / ".blackwell" / (hub.commit + ".marker.json")).is_file()
    again, failed = lib.run_module(mod.main, args(hub, dest), monkeypatch)
    assert not failed and not again["changed"] and again["hashed"] == 0 and again["fetched"] == []
    full, _ = lib.run_module(mod.main, args(hub, dest, verify="full"), monkeypatch)
    assert not full["changed"] and full["hashed"] == 2


def test_corrupted_file_is_fetched_again(hub, tmp_path, monkeypatch):
    dest = tmp_path / "m"
    lib.run_module(mod.main, args(hub, dest), monkeypatch)
    raw = bytearray((dest / "model.safetensors").read_bytes())
    raw[7] ^= 0x01
    (dest / "model.safetensors").write_bytes(bytes(raw))
    (dest / "stale.bin").write_bytes(b"old shard")
    check, _ = lib.run_module(mod.main, args(hub, dest, remove_extra=True), monkeypatch, check_mode=True)
    assert check["changed"] and not check["verified"] and "model.safetensors" in check["bad"]
    assert (dest / "stale.bin").exists() and bytes(raw) == (dest / "model.safetensors").read_bytes()
    res, failed = lib.run_module(mod.main, args(hub, dest, remove_extra=True), monkeypatch)
    assert not failed and res["changed"] and res["fetched"] == ["model.safetensors"]
    assert res["bad"]["model.safetensors"].startswith("sha256 ") and res["removed"] == ["stale.bin"]
    assert (dest / "model.safetensors").read_bytes() != bytes(raw)
    assert not (dest / "stale.bin").exists()


def test_check_mode_on_a_fresh_node_fetches_nothing(hub, tmp_path, monkeypatch):
    dest = tmp_path / "fresh"
    res, failed = lib.run_module(mod.main, args(hub, dest), monkeypatch, check_mode=True)
    assert not failed and res["changed"] and res["missing_bytes"] == res["size"]
    assert not dest.exists()


def test_info_measures_and_refuses_what_does_not_fit(hub, tmp_path, monkeypatch):
    dest = tmp_path / "info"
    res, failed = lib.run_module(mod.main, args(hub, dest, mode="info"), monkeypatch)
    assert not failed and not res["changed"] and res["missing_bytes"] == res["size"] > 0
    res, failed = lib.run_module(mod.main, args(hub, dest, mode="info", headroom=1 << 60), monkeypatch)
    assert failed and "plus headroom 1048576.0 TiB" in res["msg"] and res["free_path"] in res["msg"]
    assert not dest.exists() and "hf_secret_token" not in json.dumps(res)
    # present refuses too, before fetching anything.
    res, failed = lib.run_module(mod.main, args(hub, dest, headroom=1 << 60), monkeypatch)
    assert failed and "nothing was fetched" in res["msg"] and not dest.exists()


def test_unknown_revision_says_so(hub, tmp_path, monkeypatch):
    res, failed = lib.run_module(mod.main, args(hub, tmp_path / "x", revision="0" * 40), monkeypatch)
    assert failed and "HTTP 404" in res["msg"]


def test_directory_against_a_manifest(hub, tmp_path, monkeypatch):
    head = tmp_path / "head"
    res, _ = lib.run_module(mod.main, args(hub, head), monkeypatch)
    manifest = res["manifest"]
    worker = tmp_path / "worker"
    worker.mkdir()
    (worker / "config.json").write_bytes((head / "config.json").read_bytes())
    (worker / "model.safetensors").write_bytes((head / "model.safetensors").read_bytes()[:1000])
    d = dict(path=str(worker), source="directory", revision=hub.commit, manifest=manifest)
    res, failed = lib.run_module(mod.main, dict(d, fail_on_bad=False), monkeypatch)
    assert not failed and res["bad"] == {"model.safetensors": "size 1000, expected 300000"}
    assert res["removed"] == ["model.safetensors"] and not (worker / "model.safetensors").exists()
    res, failed = lib.run_module(mod.main, d, monkeypatch)
    assert failed and "copy them again" in res["msg"] and res["bad"] == {"model.safetensors": "missing"}
    (worker / "model.safetensors").write_bytes((head / "model.safetensors").read_bytes())
    res, failed = lib.run_module(mod.main, d, monkeypatch)
    assert not failed and res["verified"] and res["manifest"]["files"] == manifest["files"]


def test_local_directory_first_sight_then_guarded(tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    (local / "config.json").write_text("{}")
    res, failed = lib.run_module(mod.main, dict(path=str(local), source="directory"), monkeypatch)
    assert not failed and res["changed"] and res["revision"] == "local"
    (local / "config.json").write_text("{1}")
    res, failed = lib.run_module(mod.main, dict(path=str(local), source="directory"), monkeypatch)
    assert failed and "config.json" in res["msg"]
    res, failed = lib.run_module(mod.main, dict(path=str(tmp_path / "nope"), source="directory"), monkeypatch)
    assert failed and "must be on the node" in res["msg"]


def test_info_of_a_controller_directory(hub, tmp_path, monkeypatch):
    src = tmp_path / "src"
    res, failed = lib.run_module(mod.main, dict(path=str(tmp_path / "n"), source="directory", mode="info", source_path=str(src)),
                                 monkeypatch)
    assert not failed and res["size"] == 300_000 + len('{"model_type": "llama"}\n')


def test_info_with_an_expected_size(tmp_path, monkeypatch):
    d = dict(path=str(tmp_path / "w"), source="directory", mode="info", expected_size=12345)
    res, failed = lib.run_module(mod.main, d, monkeypatch)
    assert not failed and res["size"] == res["missing_bytes"] == 12345
    res, failed = lib.run_module(mod.main, dict(d, expected_size=1 << 62), monkeypatch)
    assert failed and "4.0 EiB" not in res["msg"] and "needs" in res["msg"]
