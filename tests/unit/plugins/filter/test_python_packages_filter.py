"""The filters the ray_cluster role uses to fail with a table of differences."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.filter.python_packages import FilterModule

FILTERS = FilterModule().filters()
HEAD = {"python": "3.11.2", "vllm": None, "ray": "2.60.0", "transformers": None}


def test_both_filters_are_registered():
    assert set(FILTERS) == {"python_package_differences", "python_package_table"}


def test_two_fact_sets_that_differ():
    worker = dict(HEAD, transformers="4.57.6")
    facts = {"spark-1": HEAD, "spark-2": worker}
    assert FILTERS["python_package_differences"](facts) == [
        {"name": "transformers", "versions": {"spark-1": None, "spark-2": "4.57.6"}}]
    table = FILTERS["python_package_table"](facts)
    assert "transformers  absent   4.57.6   <- differs" in table
    assert "ray           2.60.0   2.60.0" in table


def test_two_fact_sets_that_agree():
    assert FILTERS["python_package_differences"]({"spark-1": HEAD, "spark-2": dict(HEAD)}) == []
    assert "<- differs" not in FILTERS["python_package_table"]({"spark-1": HEAD, "spark-2": dict(HEAD)})


@pytest.mark.parametrize("name", ["python_package_differences", "python_package_table"])
def test_bad_input_is_a_filter_error(name):
    with pytest.raises(AnsibleFilterError, match=name):
        FILTERS[name]("not a mapping")
