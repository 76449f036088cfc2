# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters of playbooks/rollout.yml and rollback.yml (logic in module_utils/rollout.py).

    hosts | blackwell.vllm.rollout_plan(groups, hostvars, canary=1, batch_size='25%')
    before | blackwell.vllm.rollout_changes(after)       -> ['vllm.release', 'vllm.units']
    fingerprint | blackwell.vllm.rollout_summary         -> 'vllm 0.32.0-1a2b3c4d5e, units 0f1e2d3c'
    tps_before | blackwell.vllm.rollout_slower(tps_after, 10) -> services more than 10 % slower
    rows | blackwell.vllm.rollout_table                  -> aligned lines
    ansible_failed_result | blackwell.vllm.rollout_failure(ansible_failed_task.name) -> 'task: why'
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils import rollout


def rollout_plan(hosts, groups, hostvars, canary=1, batch_size="100%", canary_unit=None):
    """Serving units of ``hosts`` and the batches a rollout walks them in."""
    groups = groups or {}
    services = {h: (hostvars.get(h) or {}).get("vllm_services") or [] for h in hosts or []}
    units = rollout.serving_units(hosts, groups.get("ray_head"), groups.get("ray_workers"), services)
    try:
        plan = rollout.batches(units, canary, batch_size, canary_unit or None)
    except ValueError as exc:
        raise AnsibleFilterError("rollout_plan: %s" % exc)
    return {
        "units": units,
        "batches": plan,
        "serial": rollout.serial_list(plan),
        "order": rollout.flatten(plan),
        "unit_of": {h: rollout.unit_of(plan, h) for h in rollout.flatten(plan)},
        # "1. spark-1", "2. spark-2, spark-3" (a Ray cluster's hosts joined with +): the plan as printed.
        "described": ["%d. %s" % (i + 1, ", ".join("+".join(u["hosts"]) for u in batch)) for i, batch in enumerate(plan)],
    }


def rollout_changes(before, after):
    return rollout.changes(before, after)


def rollout_summary(fingerprint):
    return rollout.summary(fingerprint)


def rollout_slower(before, after, tolerance):
    return rollout.slower(before, after, tolerance)


def rollout_failure(result, task_name):
    return rollout.failure(task_name, result)


def rollout_table(rows):
    return rollout.table(rows or [])


class FilterModule(object):
    """blackwell.vllm rollout filters."""

    def filters(self):
        return {
            "rollout_plan": rollout_plan,
            "rollout_changes": rollout_changes,
            "rollout_summary": rollout_summary,
            "rollout_slower": rollout_slower,
            "rollout_table": rollout_table,
            "rollout_failure": rollout_failure,
        }
