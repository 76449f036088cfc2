"""systemd-analyze security on a node converged by the whole site.yml: every unit the collection
installs and starts scores at most its limit (the "Overall exposure level"; 10 is no sandbox).

Limits: the vLLM API servers 3.1, Ray 5.0, the root oneshots (Ray's, the QSFP link's and the
vLLM gateway's firewalls, the QSFP rollback at boot) 5.0. A unit the node should run but does not
have fails the test too: the check cannot pass by skipping.
"""

import pytest

VLLM_LIMIT = 3.1
RAY_LIMIT = 5.0
ONESHOT_LIMIT = 5.0


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


def expected_units(me):
    name = me["inventory_hostname"]
    groups = me["groups"]
    units = {}
    if name in groups.get("ray_head", []):
        units["ray-head.service"] = RAY_LIMIT
    if name in groups.get("ray_workers", []):
        units["ray-worker.service"] = RAY_LIMIT
    if name in groups.get("ray_head", []) + groups.get("ray_workers", []):
        units["blackwell-ray-firewall.service"] = ONESHOT_LIMIT
    if me.get("blackwell_qsfp_interface") and me.get("blackwell_qsfp_address"):
        units["blackwell-qsfp-firewall.service"] = ONESHOT_LIMIT
        units["blackwell-qsfp-rollback-boot.service"] = ONESHOT_LIMIT
    if name in groups.get("vllm_servers", []):
        services = me.get("vllm_services", [])
        for svc in services:
            units["vllm-%s.service" % svc["name"]] = VLLM_LIMIT
        if any(svc.get("host", "0.0.0.0") not in ("127.0.0.1", "::1", "localhost") for svc in services):
            units["blackwell-vllm-firewall.service"] = ONESHOT_LIMIT
    return units


def exposure(host, unit):
    out = host.run("systemd-analyze security --no-pager %s", unit)
    line = [x for x in out.stdout.splitlines() if "Overall exposure level for %s:" % unit in x]
    assert out.rc == 0 and line, "%s: %s" % (unit, (out.stdout + out.stderr)[-400:])
    return float(line[0].split("Overall exposure level for %s:" % unit)[1].split()[0])


def test_every_unit_is_within_its_exposure_limit(host, me):
    units = expected_units(me)
    assert units, "nothing to check on %s" % me["inventory_hostname"]
    missing = [u for u in units if not host.file("/etc/systemd/system/" + u).exists]
    assert not missing, "units the inventory asks for are not installed: %s" % ", ".join(missing)
    over = {}
    for unit, limit in sorted(units.items()):
        score = exposure(host, unit)
        if score > limit:
            over[unit] = "%.1f > %.1f" % (score, limit)
    assert not over, "exposure over the limit: %s" % over
