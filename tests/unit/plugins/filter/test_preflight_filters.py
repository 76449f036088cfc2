"""The preflight filters, the management-interface filter, and the argument specs they read."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.blackwell.vllm.plugins.filter import network, preflight

ROOT = pathlib.Path(__file__).resolve().parents[4]
ROLES = ["preflight", "common", "nccl", "qsfp_network", "ray_cluster", "vllm"]


def validate(role, values):
    return [str(e) for e in ArgumentSpecValidator(preflight.role_argument_spec(role)).validate(values).errors]


def test_role_argument_spec_has_no_defaults_so_only_given_values_are_checked():
    spec = preflight.role_argument_spec("qsfp_network")
    assert "default" not in spec["qsfp_network_mtu"]  # "{{ blackwell_qsfp_mtu | default(9000) }}" is no int
    assert "default" not in spec["qsfp_network_interfaces"]["options"]["mtu"]
    assert validate("qsfp_network", {}) == []


def test_an_unknown_role_or_entry_point_is_named():
    with pytest.raises(Exception, match="no argument spec"):
        preflight.role_argument_spec("nosuchrole")
    with pytest.raises(Exception, match="no entry point 'nope'"):
        preflight.role_argument_spec("vllm", "nope")


@pytest.mark.parametrize("values, fragment", [
    ({"vllm_services": [{"name": "a", "model": "m", "tensor_paralel_size": 2}]}, "vllm_services.tensor_paralel_size"),
    ({"vllm_services": [{"name": "a", "model": "m", "environment": ["A=1"]}]}, "unable to convert to dict"),
    ({"vllm_services": {"name": "a", "model": "m"}}, "unable to convert to list"),
    ({"vllm_services": [{"model": "m"}]}, "missing required arguments: name"),
    ({"vllm_services": [{"name": "a", "model": "m", "model_source": "hub"}]}, "local, huggingface, controller, peer, generate_tiny"),
    ({"vllm_install_mode": "docker"}, "wheels, source, cpu"),
])
def test_the_vllm_spec_refuses(values, fragment):
    errors = " ".join(validate("vllm", values))
    assert fragment in errors


def test_a_good_service_passes():
    assert validate("vllm", {"vllm_services": [{"name": "a", "model": "m", "port": 8001, "dtype": None,
                                                "environment": {"A": "1"}}]}) == []


def test_spec_defaults_equal_the_role_defaults():
    """What `ansible-doc -t role` shows is what the role does, for every plain default."""
    for role in ROLES:
        defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
        for name, value in preflight.role_argument_defaults(role).items():
            if name in defaults and not (isinstance(defaults[name], str) and "{{" in defaults[name]):
                assert defaults[name] == value, "%s: %s spec default %r, defaults/main.yml %r" % (
                    role, name, value, defaults[name])


def test_vllm_service_sub_option_defaults_equal_vllm_service_defaults():
    defaults = yaml.safe_load((ROOT / "roles" / "vllm" / "defaults" / "main.yml").read_text())["vllm_service_defaults"]
    spec = yaml.safe_load((ROOT / "roles" / "vllm" / "meta" / "argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    subs = options["vllm_services"]["options"]
    assert options["vllm_service_defaults"]["default"] == defaults
    for key, value in defaults.items():
        assert key in subs, "vllm_service_defaults.%s has no sub-option in vllm_services" % key
        assert subs[key].get("default") == value, key


@pytest.mark.parametrize("role, values, fragment", [
    ("vllm", {"vllm_version": 0.3}, "vllm_version=0.3 is a number"),
    ("vllm", {"vllm_services": [{"name": "a", "extra_args": "--x 1"}]}, "vllm_services[0].extra_args='--x 1'"),
    ("vllm", {"vllm_services": [{"name": "a", "extra_args": ["--x", None]}]}, "vllm_services[0].extra_args[1] is null"),
    ("nccl", {"nccl_build_packages": "make g++"}, "must be a YAML list"),
    ("vllm", {"vllm_version": None}, "vllm_version is null"),
    ("common", {"blackwell_hardware_profile": None}, "blackwell_hardware_profile is null; the role requires it (str)"),
])
def test_strict_problems(role, values, fragment):
    assert fragment in " ".join(preflight.argument_spec_strict_problems(role, values, "n1"))


def test_strict_problems_pass_good_values_and_null_sub_options():
    values = {"vllm_version": "0.32.0", "vllm_services": [{"name": "a", "dtype": None, "extra_args": ["--x"]}],
              "ray_cluster_num_gpus": None}
    assert preflight.argument_spec_strict_problems("vllm", values) == []
    assert preflight.argument_spec_strict_problems("ray_cluster", values) == []


def test_argument_spec_given_names_the_values_and_hides_secrets():
    given = preflight.argument_spec_given({"vllm_services": {"x": 1}, "vllm_api_key": "s3cret", "vllm_version": "1"},
                                          "vllm", ["argument 'vllm_services' is of type dict", "vllm_api_key too"])
    assert given == {"vllm_services": {"x": 1}, "vllm_api_key": "********"}


def test_vllm_service_list_lets_null_take_the_default():
    merged = preflight.vllm_service_list([{"name": "a", "host": None, "port": 9}], {"host": "127.0.0.1", "port": 8000})
    assert merged == [{"name": "a", "host": "127.0.0.1", "port": 9}]


def test_listen_port_problems():
    hv = {"ray_cluster_dashboard_port": 6379}
    ray = preflight.ray_listeners(hv, "head")
    assert {"var": "ray_cluster_gcs_port", "port": 6379} in ray
    assert not any(p["var"] == "ray_cluster_gcs_port" for p in preflight.ray_listeners({}, "worker"))
    assert preflight.ray_listeners({}, "none") == []
    out = " ".join(preflight.listen_port_problems(
        ray + preflight.vllm_listeners([{"name": "t", "port": 12000}, {"name": "u", "port": "x"}]), "n1",
        preflight.ray_worker_range({})))
    assert "ray_cluster_gcs_port=6379 is already taken by ray_cluster_dashboard_port" in out or \
        "ray_cluster_dashboard_port=6379 is already taken by ray_cluster_gcs_port" in out
    assert "vllm_services[t].port=12000 lies in Ray's worker port range" in out and "10002-19999" in out
    assert "vllm_services[u].port='x' is not a port" in out
    assert preflight.listen_port_problems(preflight.ray_listeners({}, "head"), "n1", preflight.ray_worker_range({})) == []


def test_node_gpus():
    hv = {"a": {"blackwell_hardware_profile": "rtx5090_pair"}, "b": {"blackwell_hardware_profile": "lab_cpu"},
          "c": {"blackwell_hardware_profile": "gb10", "ray_cluster_num_gpus": 4}, "d": {"blackwell_hardware_profile": "x"}}
    assert preflight.node_gpus(hv, ["a", "b", "c", "d"]) == {"a": 2, "b": 0, "c": 4, "d": 0}


# `ip -j addr show` and `ip -j route show default` of a lab node: eth0 carries the management address.
IP_ADDR = [
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.233.21.10", "prefixlen": 24}]},
    {"ifname": "enp1s0f0np0", "addr_info": [{"family": "inet", "local": "10.234.21.10", "prefixlen": 24}]},
    {"ifname": "wlan9", "addr_info": []},
]
ROUTES = [{"dst": "default", "gateway": "10.233.21.1", "dev": "eth0"}]


def test_management_interfaces_come_from_the_address_and_the_default_route():
    assert network.qsfp_management_interfaces(IP_ADDR, "10.233.21.10", ROUTES) == ["eth0"]
    assert network.qsfp_management_interfaces(IP_ADDR, "10.233.21.10", []) == ["eth0"]
    assert network.qsfp_management_interfaces(IP_ADDR, "spark-1.example", ROUTES) == ["eth0"]
    # `ip route get` of a node's own address answers `dev lo`: the management NIC is never lo.
    assert network.qsfp_management_interfaces(IP_ADDR, "127.0.0.1", [{"dst": "default", "dev": "lo"}]) == []


def test_every_role_spec_and_default_parses():
    for role in ROLES:
        assert preflight.role_argument_spec(role), role


@pytest.mark.parametrize("version, services, refused", [
    ("0.17.1", [{"name": "a", "swap_space": 32}], False),
    ("0.18.0", [{"name": "a", "swap_space": 32}], True),
    ("0.18.1.post1", [{"name": "a", "swap_space": 32}, {"name": "b", "swap_space": None}], True),
    ("0.18.1", [{"name": "a", "swap_space": None}, {"name": "b"}], False),
])
def test_swap_space_only_before_vllm_0_18(version, services, refused):
    problems = preflight.swap_space_problems(services, version)
    assert bool(problems) is refused
    if refused:
        assert "vllm_services a set swap_space" in problems[0] and "vllm_version=%s" % version in problems[0]
        assert " b" not in problems[0].split(" set ")[0]
