"""The QSFP firewall on the qsfp_network scenario's nodes: the same checks as the default
scenario's test_cluster_firewall.py (loaded from there, one copy), without Ray.

A host on the management LAN that routes the node's QSFP address through its management address
is dropped, on a temporary listener's port and every other; the QSFP peers reach the listener.
"""

import importlib.util
import pathlib

_SPEC = importlib.util.spec_from_file_location(
    "cluster_firewall", pathlib.Path(__file__).resolve().parents[2] / "default" / "tests" / "test_cluster_firewall.py")
_CF = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_CF)

me = _CF.me
qsfp = _CF.qsfp
listener = _CF.listener
route_via_management = _CF.route_via_management
test_management_lan_cannot_reach_a_port_on_the_qsfp_address = _CF.test_management_lan_cannot_reach_a_port_on_the_qsfp_address
test_every_qsfp_peer_reaches_the_listener = _CF.test_every_qsfp_peer_reaches_the_listener
test_qsfp_table_drops_everything_else_to_the_qsfp_address = _CF.test_qsfp_table_drops_everything_else_to_the_qsfp_address


def test_firewall_unit_is_enabled(host):
    assert host.service("blackwell-qsfp-firewall.service").is_enabled
