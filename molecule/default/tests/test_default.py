"""Verify the default scenario's nodes: booted systemd hosts joined by the QSFP link."""

import pytest
import testinfra

QSFP_IF = "enp1s0f0np0"


def address(cidr):
    return cidr.split("/")[0]


@pytest.fixture
def peers(host, request):
    """QSFP addresses of the other nodes, read from the same inventory Ansible used."""
    inventory = request.config.option.ansible_inventory
    me = host.ansible.get_variables()
    others = [n for n in me["groups"]["blackwell_nodes"] if n != me["inventory_hostname"]]
    return {
        n: address(testinfra.get_host(f"ansible://{n}", ansible_inventory=inventory)
                   .ansible.get_variables()["blackwell_qsfp_address"])
        for n in others
    }


def test_systemd_is_running(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_qsfp_nic_is_up_with_its_address(host):
    iface = host.interface(QSFP_IF)
    assert iface.exists
    assert address(host.ansible.get_variables()["blackwell_qsfp_address"]) in iface.addresses
    assert host.file(f"/sys/class/net/{QSFP_IF}/operstate").content_string.strip() == "up"


def test_management_is_not_the_qsfp_network(host):
    assert address(host.ansible.get_variables()["blackwell_qsfp_address"]) not in host.interface("eth0").addresses


def test_every_peer_answers_over_the_qsfp_link(host, peers):
    assert peers, "a two-node lab has a peer"
    for name, ip in peers.items():
        cmd = host.run(f"ping -c 2 -W 2 -I {QSFP_IF} {ip}")
        assert cmd.rc == 0, f"{name} ({ip}): {cmd.stdout}{cmd.stderr}"
        route = host.run(f"ip -o route get {ip}").stdout
        assert f"dev {QSFP_IF}" in route, route
