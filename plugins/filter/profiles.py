# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The hardware profile table (module_utils/hardware_profiles.py) for roles and playbooks.

Documentation of each filter lies beside this file in <filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils import hardware_profiles


def hardware_profile(name, deployable=True):
    """One profile by name, with its name under 'name'."""
    try:
        return hardware_profiles.get(name, deployable_only=deployable)
    except hardware_profiles.UnknownProfile as exc:
        raise AnsibleFilterError("hardware_profile: %s" % exc)


def hardware_profiles_table(which="deployable"):
    """Every profile, name -> profile: 'deployable' (a node may carry it) or 'all'."""
    if which not in ("deployable", "all"):
        raise AnsibleFilterError("hardware_profiles: the input must be 'deployable' or 'all', got %r" % (which,))
    return {name: hardware_profiles.get(name, deployable_only=False)
            for name in hardware_profiles.names(deployable_only=(which == "deployable"))}


def cuda_stack_problems(profile, cuda_version, driver_branch=None, driver_source="nvidia_driver_branch"):
    """Sentences naming what is wrong with a CUDA toolkit and a driver branch for a profile's GPUs ([] when they fit)."""
    try:
        return hardware_profiles.cuda_stack_problems(profile, cuda_version, driver_branch, driver_source)
    except hardware_profiles.UnknownProfile as exc:
        raise AnsibleFilterError("cuda_stack_problems: %s" % exc)


def cuda_toolkit_drivers(_input=None):
    """CUDA toolkit version -> the first driver branch that runs it."""
    return dict(hardware_profiles.TOOLKIT_DRIVER)


class FilterModule(object):
    """blackwell.vllm hardware profile filters."""

    def filters(self):
        return {
            "hardware_profile": hardware_profile,
            "hardware_profiles": hardware_profiles_table,
            "cuda_stack_problems": cuda_stack_problems,
            "cuda_toolkit_drivers": cuda_toolkit_drivers,
        }
