# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""module_utils/model_files: checksums (sha256, git blob sha1), the hub's file list, size sums,
manifest and marker, the cheap check (size+mtime) against the full one, resumed downloads,
all against the lab's hub TEST DOUBLE on loopback."""

import hashlib
import os
import subprocess
import tarfile

import pytest

from hub_double import HubDouble

from ansible_collections.blackwell.vllm.plugins.module_utils import model_files as mf


@pytest.fixture
def model(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "llama"}\n')
    (src / "model.safetensors").write_bytes(os.urandom(200_000))
    (src / "sub").mkdir()
    (src / "sub" / "tokenizer.json").write_text('{"v": 1}\n')
    return src


@pytest.fixture
def hub(model):
    double = HubDouble(model)
    yield double
    double.stop()


def test_git_blob_sha1_is_gits_object_id(tmp_path):
    f = tmp_path / "a"
    f.write_bytes(b"hello\n")
    want = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True, check=True).stdout.strip()
    assert mf.git_blob_sha1(str(f)) == want


def test_is_pinned():
    assert mf.is_pinned("a" * 40)
    assert not mf.is_pinned("main")
    assert not mf.is_pinned("A" * 40)
    assert not mf.is_pinned(None)


def test_hub_files_lfs_and_blob():
    info = {"siblings": [
        {"rfilename": "model.safetensors", "size": 135, "blobId": "b" * 40, "lfs": {"sha256": "c" * 64, "size": 10}},
        {"rfilename": "config.json", "size": 3, "blobId": "d" * 40},
        {"rfilename": ".cache/x", "size": 1, "blobId": "e" * 40},
    ]}
    assert mf.hub_files(info) == [
        {"path": "config.json", "size": 3, "git_sha1": "d" * 40},
        {"path": "model.safetensors", "size": 10, "sha256": "c" * 64},
    ]
    with pytest.raises(mf.ModelFilesError, match="blobs=true"):
        mf.hub_files({"siblings": [{"rfilename": "x"}]})


def test_hub_info_from_the_double(hub, model):
    info = mf.hub_info(hub.endpoint, hub.repo, hub.commit)
    assert info["sha"] == hub.commit
    by = {f["path"]: f for f in info["files"]}
    data = (model / "model.safetensors").read_bytes()
    assert by["model.safetensors"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert by["model.safetensors"]["size"] == len(data)
    assert by["config.json"]["git_sha1"] == mf.git_blob_sha1(str(model / "config.json"))
    assert mf.total_size(info["files"]) == sum(os.path.getsize(model / p) for p in ("config.json", "model.safetensors", "sub/tokenizer.json"))
    assert mf.hub_info(hub.endpoint, hub.repo, "main")["sha"] == hub.commit
    with pytest.raises(mf.ModelFilesError, match="HTTP 404.*no such repository or revision"):
        mf.hub_info(hub.endpoint, hub.repo, "f" * 40)
    with pytest.raises(mf.ModelFilesError, match="cannot reach"):
        mf.hub_info("http://127.0.0.1:9", hub.repo, hub.commit, timeout=2)


def test_download_resumes_a_part_file(hub, model, tmp_path):
    data = (model / "model.safetensors").read_bytes()
    dest = tmp_path / "out" / "model.safetensors"
    dest.parent.mkdir()
    (tmp_path / "out" / "model.safetensors.part").write_bytes(data[:50_000])
    got = mf.hub_download(hub.endpoint, hub.repo, hub.commit, "model.safetensors", str(dest), len(data))
    assert got == len(data) - 50_000
    assert dest.read_bytes() == data
    assert hub.requests("GET /lab/tiny-llama/resolve/")


def test_check_cheap_then_full_and_manifest(model, tmp_path):
    expected = [dict(f, sha256=mf.sha256_file(str(model / f["path"]))) for f in mf.directory_files(str(model))]
    bad, marker, hashed, extra = mf.check(str(model), expected, "r1")
    assert (bad, hashed, extra) == ({}, 3, [])
    changed, manifest = mf.commit_state(str(model), expected, marker, "r1", "directory")
    assert changed and manifest["size"] == mf.total_size(expected)
    assert [f["path"] for f in manifest["files"]] == ["config.json", "model.safetensors", "sub/tokenizer.json"]
    # Unchanged: the cheap check hashes nothing, the state files stay.
    bad, marker2, hashed, _ = mf.check(str(model), expected, "r1")
    assert (bad, hashed) == ({}, 0)
    assert mf.commit_state(str(model), expected, marker2, "r1", "directory")[0] is False
    # full hashes all.
    assert mf.check(str(model), expected, "r1", full=True)[2] == 3
    # Same size, other bytes, other mtime: the cheap check hashes it and finds it.
    raw = bytearray((model / "model.safetensors").read_bytes())
    raw[100] ^= 0xFF
    (model / "model.safetensors").write_bytes(bytes(raw))
    bad, _, hashed, _ = mf.check(str(model), expected, "r1")
    assert hashed == 1 and bad["model.safetensors"].startswith("sha256 ")
    # A truncated file: by size, without hashing; an extra file is reported.
    (model / "config.json").write_text("{")
    (model / "stale.safetensors").write_bytes(b"x")
    bad, _, _, extra = mf.check(str(model), expected, "r1")
    assert bad["config.json"].startswith("size 1, expected")
    assert extra == ["stale.safetensors"]
    os.unlink(model / "sub" / "tokenizer.json")
    assert mf.check(str(model), expected, "r1")[0]["sub/tokenizer.json"] == "missing"


def test_manifest_files_refuses_incomplete_entries():
    with pytest.raises(mf.ModelFilesError, match="lacks"):
        mf.manifest_files({"files": [{"path": "a", "size": 1}]})
    assert mf.manifest_files({"files": [{"path": "b", "size": "2", "sha256": "x"}]}) == [{"path": "b", "size": 2, "sha256": "x"}]


def test_sizes_archive_free_and_human(model, tmp_path):
    arc = tmp_path / "m.tar"
    with tarfile.open(arc, "w") as tar:
        tar.add(str(model), arcname="m")
    assert mf.archive_size(str(arc)) == mf.total_size(mf.directory_files(str(model)))
    free, probe = mf.free_bytes(str(tmp_path / "not" / "yet"))
    assert probe == str(tmp_path) and free > 0
    assert mf.human(512) == "512 B" and mf.human(3 * 1024 ** 3) == "3.0 GiB"
    assert mf.safe_name("refs/pr/1") == "refs_pr_1"
