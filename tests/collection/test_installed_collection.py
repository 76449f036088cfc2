"""blackwell.vllm as a user installs it: the tarball `ansible-galaxy collection build` makes.

Builds the collection from this checkout, checks what the tarball holds (no development files;
the LICENSE, the execution-environment metadata, every tracked plugin, role and playbook), that
galaxy.yml's dependencies are the collections the content uses, installs it into a temporary
collections path and runs `ansible-playbook blackwell.vllm.site` from there. Nothing of the
checkout is on the collections path, the roles path or the Python path of those runs.
"""

import glob
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INVENTORY = os.path.join(ROOT, "inventories", "lab")
BIN = os.path.dirname(sys.executable)

# Development files that must not ship: directories (a prefix) and files at the top.
DEV_DIRS = (".venv/", ".cache/", ".lab/", ".collections/", ".ansible/", ".ci/", ".whl/", ".gl/",
            ".pytest_cache/", "lab/", "molecule/", "inventories/lab/", "tests/unit/",
            "tests/integration/", "tests/fixtures/", "tests/collection/", "tests/output/")
DEV_FILES = ("Makefile", "ansible.cfg", "pytest.ini", "requirements.txt", "site.yml", ".gitignore",
             ".ansible-lint", ".yamllint", "galaxy.yml")
# Tracked content a user needs: all of it ships.
SHIPPED_DIRS = ("plugins", "roles", "playbooks", "meta", "docs", "changelogs", "tests/sanity")


def run(cmd, env, cwd, timeout=120):
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def isolated_env(tmp_path, collections_path):
    """An environment that sees only collections_path and the pinned `ansible` package's collections."""
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    (tmp_path / "roles").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k != "PYTHONPATH"}
    env.update(
        PATH=BIN + os.pathsep + env.get("PATH", ""),
        ANSIBLE_CONFIG=str(cfg),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_ROLES_PATH=str(tmp_path / "roles"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
    )
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tarball and the collection installed from it (offline: ansible.utils is already installed)."""
    tmp = tmp_path_factory.mktemp("collection")
    env = isolated_env(tmp, tmp / "collections")
    res = run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp / "dist"), ROOT], env, tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    (tarball,) = glob.glob(str(tmp / "dist" / "blackwell-vllm-*.tar.gz"))
    res = run(["ansible-galaxy", "collection", "install", "--offline", "-p", str(tmp / "collections"), tarball],
              env, tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    installed = tmp / "collections" / "ansible_collections" / "blackwell" / "vllm"
    assert (installed / "MANIFEST.json").is_file(), res.stdout
    return {"tmp": tmp, "env": env, "tarball": tarball, "installed": installed}


@pytest.fixture(scope="module")
def members(built):
    with tarfile.open(built["tarball"]) as tar:
        return {m.name + ("/" if m.isdir() else "") for m in tar.getmembers()}


def test_no_development_files_ship(members):
    shipped_dev = sorted(m for m in members
                         if m.startswith(DEV_DIRS) or m in DEV_FILES
                         or "__pycache__" in m or m.endswith((".pyc", ".tar.gz")))
    assert not shipped_dev, "development files in the tarball: %s" % shipped_dev


def test_every_tracked_plugin_role_playbook_and_doc_ships(members):
    tracked = subprocess.run(["git", "ls-files", "--", *SHIPPED_DIRS], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    tracked = [p for p in tracked if os.path.exists(os.path.join(ROOT, p))]  # not deleted in the work tree
    assert tracked
    missing = sorted(p for p in tracked if p not in members)
    assert not missing, "tracked files missing from the tarball: %s" % missing


def test_license_and_execution_environment_metadata(built):
    installed = built["installed"]
    text = (installed / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text, "LICENSE is not the full Apache 2.0 text"
    manifest = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]
    assert manifest["license"] == ["Apache-2.0"]
    assert "example.invalid" not in json.dumps(manifest)
    ee = yaml.safe_load((installed / "meta" / "execution-environment.yml").read_text())
    python_reqs = (installed / ee["dependencies"]["python"]).read_text()
    names = {re.split(r"[<>=!~;\[ ]", line.strip())[0].lower() for line in python_reqs.splitlines()
             if line.strip() and not line.startswith("#")}
    assert names == {"netaddr"}, "controller-side Python of the plugins: %s" % names


def test_dependencies_are_the_collections_the_content_uses(built):
    """galaxy.yml's dependencies: every collection whose FQCN the roles/playbooks/plugins name, no other."""
    site_collections = os.path.join(sysconfig.get_paths()["purelib"], "ansible_collections")
    known = {"%s.%s" % tuple(p.split(os.sep)[-3:-1])
             for p in glob.glob(os.path.join(site_collections, "*", "*", "MANIFEST.json"))}
    assert "ansible.utils" in known, site_collections
    installed = built["installed"]
    used = set()
    for top in ("roles", "playbooks", "plugins"):
        for dirpath, _dirs, files in os.walk(installed / top):
            for name in files:
                with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                    for ns, coll in re.findall(r"\b([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*", f.read()):
                        if "%s.%s" % (ns, coll) in known:
                            used.add("%s.%s" % (ns, coll))
    used -= {"ansible.builtin", "blackwell.vllm"}
    declared = json.loads((installed / "MANIFEST.json").read_text())["collection_info"]["dependencies"]
    assert set(declared) == used, "declared %s, the content uses %s" % (sorted(declared), sorted(used))


def test_site_playbook_runs_from_the_installed_collection(built):
    env, tmp = built["env"], built["tmp"]
    res = run(["ansible-galaxy", "collection", "list", "blackwell.vllm", "--format", "json"], env, tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    paths = list(json.loads(res.stdout))
    assert paths == [str(tmp / "collections" / "ansible_collections")], paths

    res = run(["ansible-playbook", "blackwell.vllm.site", "-i", INVENTORY, "--syntax-check"], env, tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    assert str(built["installed"] / "playbooks" / "site.yml") in res.stdout

    res = run(["ansible-playbook", "blackwell.vllm.site", "-i", INVENTORY, "--list-tasks"], env, tmp)
    assert res.returncode == 0, res.stdout + res.stderr
    # Every stage of playbooks/site.yml is a play, and every stage's role has its tasks listed.
    stages = {tag for entry in yaml.safe_load((built["installed"] / "playbooks" / "site.yml").read_text())
              for tag in entry.get("tags", [])}
    play_tags = set(re.findall(r"play #\d+ .*TAGS: \[([^\]]*)\]", res.stdout))
    play_tags = {t.strip() for tags in play_tags for t in tags.split(",")}
    assert stages and stages <= play_tags, (stages, play_tags)
    for role in ("preflight", "nvidia_driver", "cuda_toolkit", "nccl", "qsfp_network", "ray_cluster", "vllm"):
        assert "blackwell.vllm.%s : " % role in res.stdout, role


def test_without_the_installed_collection_the_site_playbook_is_not_found(built, tmp_path):
    """The check above can fail: the same environment without the install finds no blackwell.vllm."""
    env = isolated_env(tmp_path, tmp_path / "empty")
    res = run(["ansible-playbook", "blackwell.vllm.site", "-i", INVENTORY, "--syntax-check"], env, tmp_path)
    assert res.returncode != 0
    assert "blackwell.vllm.site could not be found" in res.stdout + res.stderr
