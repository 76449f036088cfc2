"""filter/vllm: SMs of a built _C*.so against TORCH_CUDA_ARCH_LIST (the source-build check)."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.filter.capability import torch_cuda_arch_list
from ansible_collections.blackwell.vllm.plugins.filter.vllm import FilterModule, vllm_missing_sms, vllm_sm_list


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"vllm_sm_list", "vllm_missing_sms"}


def test_arch_list_of_the_gb10_build_is_carried():
    arch = torch_cuda_arch_list("sm_121", family=True)  # what the role derives for gb10
    found = vllm_sm_list("ELF file 1: _C.abi3.1.sm_121f.cubin\nELF file 2: _C.abi3.2.sm_121.cubin\n")
    assert vllm_missing_sms(arch, found) == []


def test_build_without_the_sm_is_caught():
    arch = torch_cuda_arch_list("sm_120")
    found = vllm_sm_list("ELF file 1: _C.abi3.1.sm_90.cubin\nELF file 2: _C.abi3.2.sm_100.cubin\n")
    assert vllm_missing_sms(arch, found) == ["sm_120"]


def test_bad_arch_list_is_a_filter_error():
    with pytest.raises(AnsibleFilterError):
        vllm_missing_sms("twelve", [])
