"""Verify the nvidia_driver scenario's node: the pinned, held driver from the test double of NVIDIA's
CUDA repository (580.105.08 after the side effects), and the CUDA 13.0 environment for login shells and
units, with the real nvcc 13.0 the lab mounts compiling a kernel for sm_121."""

import pytest

VERSION = "580.105.08-1"
PACKAGES = ["nvidia-kernel-open-dkms", "libcuda1", "libnvidia-ml1", "nvidia-smi", "nvidia-driver-cuda", "nvidia-persistenced"]
CUDA_HOME = "/usr/local/cuda-13.0"
KERNEL = "__global__ void fill(int *x) { x[threadIdx.x] = threadIdx.x; }\n"


@pytest.mark.parametrize("name", PACKAGES)
def test_driver_package_installed_at_the_pinned_version_and_held(host, name):
    pkg = host.package(name)
    assert pkg.is_installed
    assert pkg.version == VERSION
    assert name in host.check_output("apt-mark showhold").split()


def test_pin_holds_the_version_at_priority_1001(host):
    pref = host.file("/etc/apt/preferences.d/blackwell-nvidia-driver.pref")
    assert pref.contains(f"^Pin: version {VERSION}$")
    assert pref.contains("^Pin-Priority: 1001$")
    policy = host.check_output("apt-cache policy nvidia-smi")
    assert f"Candidate: {VERSION}" in policy


def test_apt_get_upgrade_moves_nothing(host):
    out = host.check_output("apt-get -s dist-upgrade")
    assert not [line for line in out.splitlines() if line.startswith("Inst ")], out


def test_repository_is_signed_and_named(host):
    src = host.file("/etc/apt/sources.list.d/blackwell-nvidia-cuda.list")
    assert src.contains(r"^deb \[signed-by=/etc/apt/keyrings/blackwell-nvidia-cuda.asc\] http://.*/debian12/x86_64/ /$")
    assert host.file("/etc/apt/keyrings/blackwell-nvidia-cuda.asc").contains("BEGIN PGP PUBLIC KEY BLOCK")


def test_nouveau_is_blacklisted(host):
    conf = host.file("/etc/modprobe.d/blacklist-nouveau.conf")
    assert conf.contains("^blacklist nouveau$")
    assert conf.contains("^options nouveau modeset=0$")


def test_persistenced_enabled_and_running(host):
    svc = host.service("nvidia-persistenced")
    assert svc.is_enabled
    assert svc.is_running


def test_nvidia_smi_reports_the_pinned_driver(host):
    assert "DRIVER version      : 580.105.08" in host.check_output("nvidia-smi --version")


def test_cuda_env_file_for_units(host):
    env = dict(line.split("=", 1) for line in host.file("/etc/blackwell/cuda.env").content_string.splitlines()
               if line and not line.startswith("#"))
    assert env["CUDA_HOME"] == CUDA_HOME
    assert env["PATH"].split(":")[0] == f"{CUDA_HOME}/bin"
    assert env["LD_LIBRARY_PATH"] == f"{CUDA_HOME}/lib64"


def test_login_shell_finds_nvcc_and_compiles_for_sm_121(host):
    host.check_output("printf %s > /tmp/login-fill.cu && chmod 0644 /tmp/login-fill.cu", KERNEL)
    cmd = host.run("su - ops -c 'command -v nvcc && echo CUDA_HOME=$CUDA_HOME && "
                   "nvcc -arch=sm_121 -cubin -o /tmp/login-fill.cubin /tmp/login-fill.cu && echo built'")
    assert cmd.rc == 0, cmd.stderr
    lines = cmd.stdout.split()
    assert lines[0] == f"{CUDA_HOME}/bin/nvcc"
    assert f"CUDA_HOME={CUDA_HOME}" in lines
    assert "built" in lines
    assert host.file("/tmp/login-fill.cubin").size > 0


def test_systemd_unit_loading_the_env_file_compiles_for_sm_121(host):
    host.check_output("printf %s > /tmp/unit-fill.cu", KERNEL)
    host.run("rm -f /tmp/unit-fill.cubin /tmp/unit-fill.nvcc")
    cmd = host.run("systemd-run --wait --collect --quiet -p EnvironmentFile=/etc/blackwell/cuda.env -p WorkingDirectory=/tmp "
                   "/bin/sh -c 'command -v nvcc > /tmp/unit-fill.nvcc && nvcc -arch=sm_121 -cubin -o /tmp/unit-fill.cubin unit-fill.cu'")
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    assert host.file("/tmp/unit-fill.nvcc").content_string.strip() == f"{CUDA_HOME}/bin/nvcc"
    assert host.file("/tmp/unit-fill.cubin").size > 0


def test_cuda_toolkit_package_of_the_profile(host):
    assert host.package("cuda-toolkit-13-0").is_installed
    assert not host.package("cuda-toolkit-12-8").is_installed
