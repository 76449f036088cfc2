"""The hardware profiles are defined once: in plugins/module_utils/hardware_profiles.py.

A copy is what made the profiles drift before (six tables, each with its own list of names): a table
keyed by profile names, a list of profile names (an argument spec's choices), a capability given to a
profile, or role code that branches on a profile's name. The scan below looks for those three shapes in the code of roles/, plugins/ and playbooks/
(YAML and Python parsed, Jinja expressions read; comments, descriptions and docs are not code).
"""

from __future__ import annotations

import ast
import pathlib
import re

import yaml

from ansible_collections.blackwell.vllm.plugins.module_utils import hardware_profiles

REPO = pathlib.Path(__file__).resolve().parents[2]
TABLE = "plugins/module_utils/hardware_profiles.py"
NAMES = hardware_profiles.names(deployable_only=False)
CAPABILITY_KEYS = {"capability", "vllm_capability", "allowed_capabilities", "nccl_cuda_arch"}
# preflight_hardware_profiles (roles/preflight/defaults/main.yml) goes over to the hardware_profile filter
# with the preflight work; until then it is the one copy left, and it holds no capability.
PENDING = {"roles/preflight/defaults/main.yml"}

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
_NAME_LITERAL = re.compile(r"""['"](%s)['"]""" % "|".join(map(re.escape, NAMES)))


def _is_capability(value):
    values = value if isinstance(value, (list, tuple)) else [value]
    return any(isinstance(v, str) and re.match(r"^(sm_)?\d{2,3}$|^\d{1,2}\.\d$", v) for v in values) and bool(values)


def _yaml_findings(data, where):
    """(kind, detail) for each mapping keyed by profile names and each capability given to a key."""
    found = []
    if isinstance(data, dict):
        keyed = sorted(k for k in data if k in NAMES)
        if keyed:
            found.append(("profile-keyed table", "%s: %s" % (where, ", ".join(keyed))))
        for key, value in data.items():
            if key in CAPABILITY_KEYS and _is_capability(value):
                found.append(("capability", "%s.%s = %r" % (where, key, value)))
            found += _yaml_findings(value, "%s.%s" % (where, key))
    elif isinstance(data, list):
        if len(data) > 1 and all(isinstance(item, str) and item in NAMES for item in data):
            found.append(("profile name list", "%s: %s" % (where, ", ".join(data))))
        for item in data:
            found += _yaml_findings(item, where)
    return found


def _python_findings(source):
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                and any(isinstance(target, ast.Name) and target.id == "DOCUMENTATION" for target in node.targets)):
            found += _yaml_findings(yaml.safe_load(node.value.value), "DOCUMENTATION")
        elif isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            if len(items) > 1 and len(items) == len(node.elts) and all(isinstance(i, str) and i in NAMES for i in items):
                found.append(("profile name list", "line %d: %s" % (node.lineno, ", ".join(items))))
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            keyed = sorted(k for k in keys if k in NAMES)
            if keyed:
                found.append(("profile-keyed table", "line %d: %s" % (node.lineno, ", ".join(keyed))))
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in CAPABILITY_KEYS:
                    try:
                        literal = ast.literal_eval(value)
                    except ValueError:
                        continue
                    if _is_capability(literal):
                        found.append(("capability", "line %d: %s = %r" % (node.lineno, key.value, literal)))
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg in CAPABILITY_KEYS:
                    try:
                        literal = ast.literal_eval(kw.value)
                    except ValueError:
                        continue
                    if _is_capability(literal):
                        found.append(("capability", "line %d: %s=%r" % (node.lineno, kw.arg, literal)))
    return found


def _branch_findings(text):
    """Profile names written as literals inside Jinja expressions (role code that branches on a name)."""
    text = _JINJA_COMMENT.sub("", text)
    return [("name branch", "%r" % m.group(0)) for expr in _JINJA.findall(text) for m in _NAME_LITERAL.finditer(expr)]


def scan(root):
    """{relative path: [(kind, detail), ...]} for every copy of a profile fact under root."""
    root = pathlib.Path(root)
    result = {}
    for base in ("roles", "plugins", "playbooks"):
        for path in sorted((root / base).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(root).as_posix()
            text = path.read_text(errors="replace")
            found = []
            if path.suffix == ".py":
                found = _python_findings(text)
            elif path.suffix in (".yml", ".yaml"):
                try:
                    docs = list(yaml.safe_load_all(text))
                except yaml.YAMLError:
                    docs = []
                for doc in docs:
                    found += _yaml_findings(doc, path.stem)
                found += _branch_findings(text)
            elif path.suffix == ".j2":
                found = _branch_findings(text)
            if found:
                result[rel] = found
    return result


def test_the_profile_facts_are_defined_in_the_table_only():
    found = scan(REPO)
    assert TABLE in found  # the scan sees the table itself
    copies = {path: items for path, items in found.items() if path != TABLE and path not in PENDING}
    assert copies == {}, "hardware profile facts outside %s (read the table instead): %s" % (TABLE, copies)
    for path in PENDING & set(found):
        assert all(kind == "profile-keyed table" for kind, detail in found[path]), found[path]


def test_each_profile_capability_is_given_in_one_file():
    found = scan(REPO)
    for capability in sorted({p["capability"] for p in hardware_profiles.PROFILES.values() if p["capability"]}):
        files = {path for path, items in found.items()
                 if any(kind == "capability" and repr(capability) in detail for kind, detail in items)}
        assert files == {TABLE}, (capability, files)
    assert {"sm_121", "sm_120", "sm_90"} <= {p["capability"] for p in hardware_profiles.PROFILES.values()}


def test_the_scan_finds_the_copies_it_looks_for(tmp_path):
    """The three shapes, as they were in the roles before the table, are each reported."""
    (tmp_path / "roles" / "x" / "vars").mkdir(parents=True)
    (tmp_path / "roles" / "x" / "templates").mkdir(parents=True)
    (tmp_path / "plugins" / "module_utils").mkdir(parents=True)
    (tmp_path / "roles" / "x" / "vars" / "main.yml").write_text(
        "---\n__x_profile_cuda_arch:\n  gb10: '121'\n__x_profiles:\n  lab_cpu:\n    capability: cpu\n"
        "  rtx5090:\n    capability: sm_120\n# gb10: '121' in a comment is not code\n")
    (tmp_path / "roles" / "x" / "templates" / "x.env.j2").write_text(
        "{# 'gb10' in a comment #}\n{% if blackwell_hardware_profile == 'gb10' %}RAY=1{% endif %}\n")
    (tmp_path / "plugins" / "module_utils" / "gpu.py").write_text(
        "PROFILES = {'hopper': {'allowed_capabilities': ['sm_90'], 'min_driver': '535'}}\n"
        "DOCUMENTATION = '''\noptions:\n  profile:\n    choices: [gb10, hopper]\n'''\n")
    found = scan(tmp_path)
    kinds = {path: sorted({kind for kind, detail in items}) for path, items in found.items()}
    assert kinds == {
        "roles/x/vars/main.yml": ["capability", "profile-keyed table"],
        "roles/x/templates/x.env.j2": ["name branch"],
        "plugins/module_utils/gpu.py": ["capability", "profile name list", "profile-keyed table"],
    }
    assert len(found["roles/x/templates/x.env.j2"]) == 1
