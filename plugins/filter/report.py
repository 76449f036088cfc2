# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The fleet report (playbooks/report.yml): node_report results into one document, and that into HTML.

Documentation of each filter lies beside this file in <filter name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.blackwell.vllm.plugins.module_utils import fleet_report as report


def _plain(value):
    """Ansible's lazy and tagged containers as plain dicts and lists (the renderer only reads them)."""
    if isinstance(value, dict) or (hasattr(value, "keys") and hasattr(value, "__getitem__")):
        return {str(k): _plain(value[k]) for k in value.keys()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def fleet_report(hosts, hostvars, var="__report_node", generated=None, inventory=None):
    """hosts (inventory names) + hostvars -> the report document (summary, one entry per node)."""
    if isinstance(hosts, str) or not hasattr(hosts, "__iter__"):
        raise AnsibleFilterError("fleet_report: the input must be a list of host names, got %r" % (hosts,))
    results, addresses = {}, {}
    for host in hosts:
        try:
            values = hostvars[host]
        except KeyError:
            raise AnsibleFilterError("fleet_report: %s is not in hostvars" % host)
        results[host] = _plain(values[var]) if var in values else None
        addresses[host] = values["ansible_host"] if "ansible_host" in values else None
    return report.assemble(results, generated=generated, inventory=inventory, addresses=addresses)


def fleet_report_html(document):
    """The report document as one self-contained HTML page (inline CSS, no script)."""
    if not isinstance(document, dict) or "summary" not in document or "nodes" not in document:
        raise AnsibleFilterError("fleet_report_html: the input must be the document fleet_report makes")
    return report.render_html(_plain(document))


class FilterModule(object):
    """blackwell.vllm fleet report filters."""

    def filters(self):
        return {
            "fleet_report": fleet_report,
            "fleet_report_html": fleet_report_html,
        }
