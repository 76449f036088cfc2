"""Every bad inventory of the corpus is refused by the preflight stage, before any host changes.

The corpus (tests/integration/bad_inventories/<name>.yml) holds the lab inventory plus ONE defect
each: an extra inventory file (`inventory:`, or `raw:` text for a file that does not parse) laid
beside the lab's own hosts.yml (`@i@` in an address stands for the lab's --index), the role the defect belongs to, and the fragments the failure
message must hold (the variable, the bad value, what is accepted); `forbid` lists secrets that nothing
the run prints may hold.

Against a real two-node lab (`lab/lab up`), for each entry `site.yml` runs through ansible-runner
and its events must say: the run failed, the failing task is in role preflight (for `stage:
inventory` entries in the inventory checks, which run on the controller before any node is
contacted), no event before it reported a change, and the message holds every fragment. A
fingerprint of each node (file listings with mtimes under /etc /opt /usr/local /var/lib and the
states of `systemctl list-units --all`) is taken after the good inventory passed preflight and
again after the corpus: both must be equal.

    pytest tests/integration -q          # make preflight-corpus
    BLACKWELL_CORPUS_LAB=pf BLACKWELL_CORPUS_INDEX=21 BLACKWELL_CORPUS_KEEP_LAB=1 pytest tests/integration
"""

from __future__ import annotations

import concurrent.futures
import difflib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS_DIR = ROOT / "tests" / "integration" / "bad_inventories"
CORPUS = sorted(CORPUS_DIR.glob("*.yml"))
# BLACKWELL_CORPUS_ONLY=name,name runs a part of the corpus (while writing an entry).
ONLY = [n for n in os.environ.get("BLACKWELL_CORPUS_ONLY", "").split(",") if n]
if ONLY:
    CORPUS = [p for p in CORPUS if p.stem in ONLY]
LAB = os.environ.get("BLACKWELL_CORPUS_LAB", "mol-preflight")
INDEX = os.environ.get("BLACKWELL_CORPUS_INDEX", "17")
KEEP = os.environ.get("BLACKWELL_CORPUS_KEEP_LAB", "") not in ("", "0")
PARALLEL = int(os.environ.get("BLACKWELL_CORPUS_PARALLEL", "4"))
NODES = ("spark-1", "spark-2")
BIN = pathlib.Path(sys.executable).parent

FINGERPRINT = r"""
find /etc /opt /usr/local /var/lib -xdev \( -path /var/lib/systemd/timers -o -path /var/lib/systemd/random-seed \) -prune \
     -o -printf '%p %y %m %U:%G %T@ %s\n' 2>/dev/null | sort
# The SSH logins of the run itself come and go as session scopes and the user's manager.
systemctl list-units --all --no-legend --plain \
  | grep -v -E '^(session-[0-9]+\.scope|user@[0-9]+\.service|user-runtime-dir@[0-9]+\.service|user-[0-9]+\.slice) ' | sort
"""


def _env():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = "%s:%s" % (BIN, env.get("PATH", ""))
    return env


def lab_cmd(*args, **kw):
    with tempfile.TemporaryFile("w+") as f:
        res = subprocess.run([sys.executable, str(ROOT / "lab" / "lab"), *args, "--name", LAB] + list(kw.pop("extra", [])),
                             cwd=ROOT, env=_env(), stdout=f, stderr=subprocess.STDOUT, text=True, **kw)
        f.seek(0)
        res.stdout = f.read()
    return res


def fingerprint():
    out = {}
    for node in NODES:
        with tempfile.TemporaryFile("w+") as f:
            res = subprocess.run([sys.executable, str(ROOT / "lab" / "lab"), "ssh", node, "--name", LAB, "--",
                                  "sudo", "sh", "-s"], input=FINGERPRINT, cwd=ROOT, env=_env(),
                                 stdout=f, stderr=subprocess.STDOUT, text=True, timeout=120)
            f.seek(0)
            out[node] = f.read()
        assert res.returncode == 0 and out[node].count("\n") > 500, out[node][-2000:]
    return out


def load_entry(path):
    """One corpus entry; @i@ in its addresses stands for the lab's --index (10.234.@i@.10 is node 1's QSFP address)."""
    return yaml.safe_load(path.read_text().replace("@i@", str(int(INDEX))))


def inventory_for(entry, lab_inventory, where):
    """The lab's inventory (hosts.yml, group_vars) with the entry's defect as one more file."""
    inv = pathlib.Path(where) / "inventory"
    inv.mkdir()
    for item in lab_inventory.iterdir():
        (inv / item.name).symlink_to(item.resolve())
    text = entry["raw"] if "raw" in entry else "---\n" + yaml.safe_dump(entry["inventory"], sort_keys=False)
    (inv / "zz-defect.yml").write_text(text)
    return inv


def run_site(inventory, where):
    """site.yml through ansible-runner; returns a summary of its events."""
    import ansible_runner

    t0 = time.monotonic()
    runner = ansible_runner.run(
        private_data_dir=str(where), project_dir=str(ROOT), playbook="site.yml", inventory=str(inventory),
        envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
                 "PATH": "%s:%s" % (BIN, os.environ.get("PATH", ""))},
        quiet=True, timeout=300)
    events = list(runner.events)
    failed_at = None
    changed_before = []
    tasks_before = 0
    for ev in events:
        data = ev.get("event_data") or {}
        kind = ev.get("event", "")
        if kind in ("runner_on_ok", "runner_item_on_ok") and (data.get("res") or {}).get("changed"):
            changed_before.append("%s %s: %s" % (data.get("host"), data.get("role"), data.get("task")))
        if kind in ("runner_on_ok", "runner_on_skipped"):
            tasks_before += 1
        if kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            res = data.get("res") or {}
            # A loop's failure says "One or more items failed": the items' messages say what.
            msgs = [str(res.get("msg", ""))] + [str(i.get("msg", "")) for i in res.get("results") or []
                                                 if isinstance(i, dict) and i.get("failed")]
            failed_at = {"event": kind, "host": data.get("host"), "role": data.get("role"), "task": data.get("task"),
                         "play": data.get("play"), "task_path": data.get("task_path") or "",
                         "msg": " ".join(" ".join(msgs).split())}
            break
    stdout = runner.stdout.read() if hasattr(runner.stdout, "read") else ""
    return {"rc": runner.rc, "status": runner.status, "failed_at": failed_at, "changed_before": changed_before,
            "tasks_before": tasks_before, "seconds": round(time.monotonic() - t0, 1),
            "stdout": " ".join(stdout.split())}


@pytest.fixture(scope="module")
def corpus_run():
    up = lab_cmd("up", extra=["--index", INDEX, "--nodes", "2"], timeout=900)
    assert up.returncode == 0, up.stdout[-5000:]
    lab_inventory = ROOT / ".lab" / LAB / "inventory"
    work = pathlib.Path(tempfile.mkdtemp(prefix="bad-inventories-"))
    try:
        # The good inventory passes preflight (and its connection leaves nothing behind to count).
        # Output to a file, not a pipe: SSH's ControlPersist master keeps a pipe open for a minute.
        log = work / "good-preflight.log"
        with open(log, "w") as out:
            good = subprocess.run([str(BIN / "ansible-playbook"), "playbooks/preflight.yml", "-i", str(lab_inventory)],
                                  cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT, timeout=600)
        assert good.returncode == 0, log.read_text()[-5000:]
        before = fingerprint()
        t0 = time.monotonic()

        def one(path):
            entry = load_entry(path)
            where = work / path.stem
            where.mkdir()
            return path.stem, entry, run_site(inventory_for(entry, lab_inventory, where), where)

        with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            results = {name: (entry, res) for name, entry, res in pool.map(one, CORPUS)}
        wall = round(time.monotonic() - t0, 1)
        after = fingerprint()
        refused = sorted(n for n, (e, r) in results.items() if not problems(e, r))
        summary = {"lab": LAB, "entries": len(results), "refused_before_any_change": len(refused),
                   "wall_seconds": wall, "parallel": PARALLEL,
                   "per_entry_seconds": {n: r["seconds"] for n, (e, r) in sorted(results.items())}}
        (ROOT / ".cache").mkdir(exist_ok=True)
        (ROOT / ".cache" / "bad-inventories.json").write_text(json.dumps(
            dict(summary, results={n: dict(r, stdout=r["stdout"][-2000:]) for n, (e, r) in results.items()}), indent=1))
        print("\n%d of %d refused before any change in %.1f s (%d in parallel)"
              % (len(refused), len(results), wall, PARALLEL))
        yield {"results": results, "before": before, "after": after}
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not KEEP:
            lab_cmd("down", timeout=300)


def problems(entry, res):
    """What is wrong with one result, as sentences (empty: refused as it must be)."""
    out = []
    if res["rc"] == 0:
        return ["site.yml succeeded"]
    if res["changed_before"]:
        out.append("tasks reported a change before the failure: %s" % res["changed_before"])
    if entry.get("stage") == "parse":
        if res["failed_at"] is not None or res["tasks_before"]:
            out.append("an inventory that does not parse must stop the run before any task; got %s" % res["failed_at"])
        text = res["stdout"]
    else:
        fail = res["failed_at"]
        if fail is None:
            return out + ["no task failed (rc %s): %s" % (res["rc"], res["stdout"][-1500:])]
        if fail["role"] != "preflight":
            out.append("failed in role %r, task %r, not in preflight" % (fail["role"], fail["task"]))
        if entry.get("stage") == "inventory" and "/preflight/tasks/node.yml" in fail["task_path"]:
            out.append("failed only in the node checks (%s), not in the inventory checks" % fail["task"])
        text = fail["msg"]
    missing = [frag for frag in map(str, entry["expect"]) if frag not in text]
    if missing:
        out.append("message lacks %s: %s" % (missing, text[-2500:]))
    # `forbid`: secrets of the entry, which must appear nowhere in what the run printed.
    leaked = [frag for frag in map(str, entry.get("forbid", [])) if frag in text or frag in res["stdout"]]
    if leaked:
        out.append("the run printed the secret %s" % leaked)
    return out


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_inventory_is_refused_by_preflight_before_any_change(corpus_run, path):
    entry, res = corpus_run["results"][path.stem]
    assert not problems(entry, res), "\n".join(problems(entry, res))


def test_no_node_changed(corpus_run):
    for node in NODES:
        before, after = corpus_run["before"][node], corpus_run["after"][node]
        diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
        assert before == after, "%s changed:\n%s" % (node, "\n".join(diff[:60]))


def test_the_corpus_covers_every_role_and_rule():
    entries = [load_entry(p) for p in CORPUS]
    if ONLY:
        pytest.skip("BLACKWELL_CORPUS_ONLY selects a part of the corpus")
    assert len(entries) >= 40
    assert {e["role"] for e in entries} >= {"preflight", "common", "nccl", "qsfp_network", "ray_cluster", "vllm"}
    for p, e in zip(CORPUS, entries):
        assert e.get("expect") and ("inventory" in e) != ("raw" in e), p.name
        assert e.get("stage") in ("inventory", "node", "parse"), p.name
