# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Compare package versions across nodes (the results of blackwell.vllm.python_packages).

    {{ {'spark-1': {...}, 'spark-2': {...}} | blackwell.vllm.python_package_differences }}
    {{ {'spark-1': {...}, 'spark-2': {...}} | blackwell.vllm.python_package_table }}
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils import python_packages as _pp


def python_package_differences(fact_sets, names=None):
    """[{'name': 'transformers', 'versions': {'spark-1': '4.57.6', 'spark-2': None}}, ...] for what differs."""
    try:
        return _pp.differences(fact_sets, names)
    except ValueError as exc:
        raise AnsibleFilterError("python_package_differences: %s" % exc)


def python_package_table(fact_sets, names=None, only_differences=False):
    """A text table of versions, one column per node, with differing rows marked '<- differs'."""
    try:
        return _pp.table(fact_sets, names, only_differences)
    except ValueError as exc:
        raise AnsibleFilterError("python_package_table: %s" % exc)


class FilterModule(object):
    """blackwell.vllm package version filters."""

    def filters(self):
        return {
            "python_package_differences": python_package_differences,
            "python_package_table": python_package_table,
        }
