"""Verify the qsfp_network scenario's nodes after converge, idempotence and the fault test.

The QSFP link runs MTU 9000 with exactly the inventory's address, the largest don't-fragment
frame reaches every peer and one byte more is refused, the netplan file is 0600 with its
previous version kept, no rollback is pending, and the management link is untouched.
"""

import ipaddress
import json

import pytest
import testinfra

QSFP_IF = "enp1s0f0np0"
MTU = 9000
NETPLAN = "/etc/netplan/60-qsfp.yaml"
STATE = "/var/lib/blackwell/qsfp-network"


def address(cidr):
    return cidr.split("/")[0]


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


@pytest.fixture
def peers(me, request):
    """QSFP addresses of the other nodes, read from the same inventory Ansible used."""
    inventory = request.config.option.ansible_inventory
    others = [n for n in me["groups"]["blackwell_nodes"] if n != me["inventory_hostname"]]
    return {
        n: address(testinfra.get_host(f"ansible://{n}", ansible_inventory=inventory)
                   .ansible.get_variables()["blackwell_qsfp_address"])
        for n in others
    }


def ipv4(host, dev):
    link = json.loads(host.check_output(f"ip -j addr show dev {dev}"))[0]
    return sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]
                  if a["family"] == "inet" and a.get("scope") == "global")


def test_qsfp_mtu_is_9000(host):
    assert host.file(f"/sys/class/net/{QSFP_IF}/mtu").content_string.strip() == str(MTU)


def test_qsfp_link_is_up(host):
    assert host.file(f"/sys/class/net/{QSFP_IF}/operstate").content_string.strip() == "up"


def test_qsfp_has_exactly_the_inventory_address(host, me):
    assert ipv4(host, QSFP_IF) == [me["blackwell_qsfp_address"]]


def test_largest_dont_fragment_ping_reaches_every_peer(host, peers):
    assert peers, "a two-node lab has a peer"
    for name, ip in peers.items():
        cmd = host.run(f"ping -M do -s {MTU - 28} -c 3 -i 0.2 -W 2 -I {QSFP_IF} {ip}")
        assert cmd.rc == 0 and " 0% packet loss" in cmd.stdout, f"{name} ({ip}): {cmd.stdout}{cmd.stderr}"


def test_one_byte_more_is_refused_by_the_mtu(host, peers):
    for name, ip in peers.items():
        cmd = host.run(f"ping -M do -s {MTU - 27} -c 1 -W 1 -I {QSFP_IF} {ip}")
        assert cmd.rc != 0, f"{name} ({ip}): {MTU - 27} bytes passed with don't-fragment"
        assert f"mtu={MTU}" in cmd.stdout + cmd.stderr, cmd.stdout + cmd.stderr


def test_netplan_file_is_0600_and_rendered_by_networkd(host, me):
    f = host.file(NETPLAN)
    assert f.exists and f.user == "root" and f.mode == 0o600
    content = f.content_string
    assert "renderer: networkd" in content  # the lab runs no NetworkManager: detection picks networkd
    assert f"mtu: {MTU}" in content
    assert me["blackwell_qsfp_address"] in content
    assert "eth0" not in content


def test_netplan_accepts_the_configuration(host):
    assert host.run("netplan generate").rc == 0
    assert host.check_output(f"netplan get ethernets.{QSFP_IF}.mtu").strip() == str(MTU)


def test_previous_configuration_is_kept(host, me):
    # The role records the links before every change (links.json) and keeps the netplan file it
    # replaced. The last change the head made was the renumbering drill's way back (from the
    # inventory address + 10). The workers' last change was the fault test's, whose rollback
    # brought the converged file back, and the boot-unit drill reverted their renumbering, so the
    # way back found nothing to change: their previous file is the converged one.
    record = host.file(f"{STATE}/previous/links.json")
    assert record.exists and record.mode == 0o600
    before = json.loads(record.content_string)[QSFP_IF]
    backup = host.file(f"{STATE}/previous/60-qsfp.yaml")
    assert backup.exists and backup.mode == 0o600
    assert before["mtu"] == MTU
    if me["inventory_hostname"] in me["groups"]["ray_workers"]:
        assert backup.content_string == host.file(NETPLAN).content_string
        assert before["ipv4"] == [me["blackwell_qsfp_address"]]
    else:
        iface = ipaddress.ip_interface(me["blackwell_qsfp_address"])
        renumbered = "%s/%d" % (iface.ip + 10, iface.network.prefixlen)
        assert before["ipv4"] == [renumbered]
        assert renumbered in backup.content_string and renumbered not in host.file(NETPLAN).content_string


def test_no_rollback_is_pending(host):
    assert host.run("systemctl is-active blackwell-qsfp-rollback.timer").stdout.strip() != "active"
    assert not host.file(f"{STATE}/armed").exists


def test_a_reboot_during_a_change_reverts_it(host):
    # The transient timer dies with a reboot; this unit reverts at boot while the change is unconfirmed.
    unit = host.service("blackwell-qsfp-rollback-boot.service")
    assert unit.is_enabled
    content = host.file("/etc/systemd/system/blackwell-qsfp-rollback-boot.service").content_string
    assert f"ConditionPathExists={STATE}/armed" in content
    assert f"{STATE}/qsfp-rollback revert" in content


def test_networkd_owns_the_qsfp_link_only(host):
    svc = host.service("systemd-networkd")
    assert svc.is_running and svc.is_enabled
    links = host.check_output("networkctl list --no-legend")
    setup = {line.split()[1]: line.split()[-1] for line in links.splitlines()}
    assert setup[QSFP_IF] == "configured"
    assert setup["eth0"] == "unmanaged"


def test_management_link_is_untouched(host, me):
    assert host.file("/sys/class/net/eth0/mtu").content_string.strip() == "1500"
    assert ipv4(host, "eth0") == [f"{me['ansible_host']}/24"]
