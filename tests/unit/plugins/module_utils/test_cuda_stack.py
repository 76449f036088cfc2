"""cuda_stack_problems: the CUDA toolkit and the driver branch against the profile table."""

import pytest

from ansible_collections.blackwell.vllm.plugins.module_utils import hardware_profiles as hp


@pytest.mark.parametrize("profile,cuda,driver", [
    ("gb10", "13.0", "580"),
    ("rtx5090", "12.8", "570"),
    ("rtx5090", "13.0", "580"),
    ("rtx_pro_6000", "12.8", "580"),
    ("lab_cpu", "13.0", None),
    ("hopper", "13.0", "580.95.05"),
])
def test_fitting_stacks_have_no_problems(profile, cuda, driver):
    assert hp.cuda_stack_problems(profile, cuda, driver) == []


def test_every_profile_default_toolkit_fits_the_default_branch():
    for name in hp.names():
        prof = hp.get(name)
        assert hp.cuda_stack_problems(prof, prof["cuda"] or "13.0", "580") == [], name


def test_toolkit_too_old_for_sm_121():
    (msg,) = hp.cuda_stack_problems("gb10", "12.8", None)
    assert msg == "blackwell_cuda_version=12.8 is too old for the sm_121 GPUs of profile gb10: they need CUDA 13.0 or newer"


def test_branch_too_old_for_sm_121_names_both_rules():
    problems = hp.cuda_stack_problems("gb10", "13.0", "570")
    assert "nvidia_driver_branch=570 is too old for the sm_121 GPUs of profile gb10: they need driver 580 or newer" in problems
    assert any(p.startswith("blackwell_cuda_version=13.0 needs driver 580 or newer, but nvidia_driver_branch=570") for p in problems)


def test_toolkit_newer_than_driver_suggests_the_toolkits_it_runs():
    (msg,) = hp.cuda_stack_problems("rtx5090", "13.0", "570")
    assert msg == ("blackwell_cuda_version=13.0 needs driver 580 or newer, but nvidia_driver_branch=570; "
                   "use CUDA 12.8 or a newer driver")


def test_running_driver_named_as_its_source():
    (msg,) = hp.cuda_stack_problems("rtx5090", "13.0", "575.51.03", "the running driver (gpu_info)")
    assert "but the running driver (gpu_info)=575.51.03; use CUDA 12.8 or 12.9" in msg


def test_unknown_toolkit_lists_the_known_ones():
    assert hp.cuda_stack_problems("rtx5090", "12.5", "580") == [
        "blackwell_cuda_version=12.5 is not a CUDA toolkit this collection installs; use one of 12.8, 12.9, 13.0"]


def test_branch_that_is_no_number():
    assert hp.cuda_stack_problems("rtx5090", "12.8", "latest") == ["nvidia_driver_branch=latest is not a driver branch (a number such as 580)"]


def test_unknown_profile_raises():
    with pytest.raises(hp.UnknownProfile):
        hp.cuda_stack_problems("h100", "13.0", "580")
