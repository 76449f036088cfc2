# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Filters of the vllm role: which SMs a compiled vLLM extension carries.

    cuobjdump_output | blackwell.vllm.vllm_sm_list          -> ['sm_120', 'sm_121']
    '12.0f;12.1f' | blackwell.vllm.vllm_missing_sms(found)  -> SMs asked for but not built
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils.vllm_patch import missing_sms, sm_list_from_cuobjdump


def vllm_sm_list(text):
    """`cuobjdump --list-elf` output -> sorted SMs."""
    return sm_list_from_cuobjdump(text)


def vllm_missing_sms(required, found):
    """SMs in ``required`` (TORCH_CUDA_ARCH_LIST or a list) that ``found`` lacks."""
    try:
        return missing_sms(required, found or [])
    except ValueError as exc:
        raise AnsibleFilterError("vllm_missing_sms: %s" % exc)


class FilterModule(object):
    """blackwell.vllm vllm filters."""

    def filters(self):
        return {"vllm_sm_list": vllm_sm_list, "vllm_missing_sms": vllm_missing_sms}
