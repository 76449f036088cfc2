"""Verify the gpu_info scenario's node: still no GPU of its own, and the nvidia-smi test double in place."""

import json

DOUBLE = "/usr/local/lib/nvidia-smi-test-double/bin/nvidia-smi"
FIXTURES = "/usr/local/share/nvidia-smi-test-double"
FIELDS = ("index,name,uuid,pci.bus_id,compute_cap,memory.total,persistence_mode,pcie.link.gen.max,"
          "pcie.link.width.max,pcie.link.gen.current,pcie.link.width.current,driver_version")


def test_node_has_no_nvidia_smi_on_its_path(host):
    assert host.run("command -v nvidia-smi").rc != 0


def test_gpu_info_on_the_node_reports_no_gpu(host):
    result = host.ansible("blackwell.vllm.gpu_info", check=False)
    facts = result["ansible_facts"]["blackwell_gpu"]
    assert result.get("changed") is False
    assert facts["gpu_count"] == 0 and facts["backend"] == "none"


def test_test_double_is_installed(host):
    double = host.file(DOUBLE)
    assert double.is_file and double.mode == 0o755 and double.user == "root"
    assert "TEST DOUBLE for nvidia-smi" in double.content_string


def test_test_double_replays_the_fixture(host):
    cmd = host.run(f"NVIDIA_SMI_TEST_DOUBLE_FIXTURE={FIXTURES}/rtx5090_pair {DOUBLE} "
                   f"--query-gpu={FIELDS} --format=csv,noheader,nounits")
    assert cmd.rc == 0, cmd.stderr
    assert [line.split(", ")[1] for line in cmd.stdout.splitlines()] == ["NVIDIA GeForce RTX 5090"] * 2
    topo = host.run(f"NVIDIA_SMI_TEST_DOUBLE_FIXTURE={FIXTURES}/rtx5090_pair {DOUBLE} topo -m")
    assert "NODE" in topo.stdout


def test_test_double_fails_like_nvidia_smi_without_a_gpu(host):
    cmd = host.run(f"NVIDIA_SMI_TEST_DOUBLE_FIXTURE=/nonexistent {DOUBLE} --query-gpu={FIELDS} "
                   "--format=csv,noheader,nounits")
    assert cmd.rc == 6 and "No devices were found" in cmd.stderr


def test_fixture_labels_travel_with_the_fixtures(host):
    for name in ("rtx5090_pair", "gb10"):
        meta = host.file(f"{FIXTURES}/{name}/meta.yml").content_string
        assert "provenance: reconstructed" in meta


def test_gpu_info_through_the_double(host):
    script = (f"import json, subprocess; print(json.dumps(subprocess.run(['{DOUBLE}', '--version'], "
              f"capture_output=True, text=True, env={{'NVIDIA_SMI_TEST_DOUBLE_FIXTURE': '{FIXTURES}/gb10'}}).stdout))")
    out = json.loads(host.check_output(f"python3 -c \"{script}\""))
    assert "CUDA Version        : 13.0" in out
