# -*- coding: utf-8 -*-
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The fleet report on the controller: every node's node_report result into one document
(``assemble``) and that document into a self-contained HTML page (``render_html``: inline CSS, no
script, no external resource). Pure functions; the filters in plugins/filter/report.py call them.
"""

from __future__ import annotations

import html

# Which part of a node a problem sentence is about (problems start with these words; a service's
# problems start with "vLLM <name>:" and show in its row instead).
SECTIONS = (("gpu", ("GPUs:", "GPU probe:", "profile:")), ("nccl", ("NCCL:",)), ("qsfp", ("QSFP:",)),
            ("ray", ("Ray:",)), ("vllm", ("vLLM:",)))


def _result_of(result):
    """(node, reason): the node's report, or why there is none."""
    if result is None:
        return None, "not read: the node failed or was unreachable earlier in this run"
    if not isinstance(result, dict):
        return None, "not read: unexpected result %r" % (result,)
    if result.get("unreachable"):
        return None, "unreachable: %s" % (result.get("msg") or "no answer over SSH").strip()
    if result.get("skipped"):
        return None, "not read: skipped (%s)" % (result.get("skip_reason") or "condition false")
    node = result.get("node")
    if result.get("failed") or not isinstance(node, dict):
        # The play registers the result with failed_when: false, so a failed module shows as a result
        # without a node report.
        return None, "node_report failed: %s" % (result.get("msg") or result.get("module_stderr") or "no message").strip()[:500]
    return node, None


def assemble(results, generated=None, inventory=None, addresses=None):
    """{host: registered node_report result or None} -> the report document."""
    nodes = []
    for host in sorted(results):
        node, reason = _result_of(results[host])
        if node is None:
            entry = {"host": host, "read": False, "problems": [reason], "services": []}
        else:
            entry = dict(node, host=host, read=True)
            entry["problems"] = list(node.get("problems") or [])
        entry["address"] = (addresses or {}).get(host)
        nodes.append(entry)
    services = [s for n in nodes for s in n.get("services") or []]
    summary = {
        "nodes": len(nodes),
        "nodes_read": sum(1 for n in nodes if n["read"]),
        "nodes_ok": sum(1 for n in nodes if n["read"] and not n["problems"]),
        "services": len(services),
        "services_healthy": sum(1 for s in services if s.get("healthy") is True),
        "problems": sum(len(n["problems"]) for n in nodes),
    }
    summary["line"] = summary_line({"summary": summary})
    return {"generated": generated, "inventory": inventory, "summary": summary, "nodes": nodes}


def summary_line(report):
    s = report["summary"]
    return "%d node%s, %d of %d service%s healthy, %d problem%s" % (
        s["nodes"], "" if s["nodes"] == 1 else "s", s["services_healthy"], s["services"],
        "" if s["services"] == 1 else "s", s["problems"], "" if s["problems"] == 1 else "s")


# --------------------------------------------------------------------------
# Each part of a node as a short text
# --------------------------------------------------------------------------

def _mib(value):
    if value is None:
        return "unified memory"
    return "%.0f GiB" % (value / 1024.0) if value >= 1024 else "%d MiB" % value


def gpu_text(node):
    gpu = node.get("gpu") or {}
    profile = (node.get("profile") or {}).get("name") or "?"
    if not gpu.get("count"):
        return "no GPU (profile %s)" % profile
    groups = {}
    for g in gpu.get("gpus") or []:
        key = (g.get("name"), g.get("memory_total_mib"), g.get("compute_capability"), g.get("sm"))
        groups[key] = groups.get(key, 0) + 1
    parts = ["%d x %s, %s, compute %s (%s)" % (n, name, _mib(mem), cc, sm) for (name, mem, cc, sm), n in groups.items()]
    return "; ".join(parts) + " (profile %s)" % profile


def driver_text(node):
    gpu = node.get("gpu") or {}
    bits = []
    bits.append("driver %s" % gpu["driver_version"] if gpu.get("driver_version") else "no NVIDIA driver")
    if gpu.get("cuda_driver_version"):
        bits.append("CUDA %s (driver)" % gpu["cuda_driver_version"])
    bits.append("CUDA toolkit %s" % gpu["cuda_toolkit"] if gpu.get("cuda_toolkit") else "no CUDA toolkit (nvcc)")
    return ", ".join(bits)


def nccl_text(node):
    nccl = node.get("nccl") or {}
    profile = node.get("profile") or {}
    if not nccl.get("current"):
        text = "no NCCL build in use"
        if nccl.get("builds"):
            text += " (%d installed: %s)" % (len(nccl["builds"]), ", ".join(nccl["builds"]))
        elif profile.get("name") and not profile.get("capability"):
            text += " (profile %s builds none)" % profile["name"]
        return text
    bits = [nccl.get("version") or "version unknown"]
    if nccl.get("cuda"):
        bits.append("CUDA " + nccl["cuda"])
    if nccl.get("sms"):
        bits.append(", ".join(nccl["sms"]))
    return "%s (%s)" % (nccl["current"], "; ".join(bits))


def qsfp_text(node):
    link = node.get("qsfp")
    if not link:
        return "no QSFP link"
    if not link.get("exists"):
        return "%s missing" % link.get("interface")
    return "%s %s, %s, MTU %s" % (link["interface"], ", ".join(link.get("addresses") or []) or "no address",
                                  link.get("state") or "?", link.get("mtu"))


def ray_text(node):
    ray = node.get("ray") or {}
    if not ray.get("role"):
        return "not in a Ray cluster" if not ray.get("expected_role") else "no Ray unit"
    text = "%s, %s %s" % (ray["role"], ray.get("unit"), ray.get("state") or "not loaded")
    if ray.get("nodes_alive") is not None:
        text += ", %d node%s alive" % (ray["nodes_alive"], "" if ray["nodes_alive"] == 1 else "s")
    elif ray.get("nodes_note"):
        text += " (node count: %s)" % ray["nodes_note"]
    return text


def vllm_text(node):
    vllm = node.get("vllm") or {}
    if not vllm.get("current"):
        return "no vLLM release"
    text = "%s (vLLM %s%s)" % (vllm["current"], vllm.get("version") or "?", ", " + vllm["mode"] if vllm.get("mode") else "")
    return text


def patches_text(node):
    vllm = node.get("vllm") or {}
    if not vllm.get("current"):
        return "-"
    applied = vllm.get("patches_applied") or []
    others = ["%s %s" % (k, v) for k, v in sorted((vllm.get("patches") or {}).items()) if v == "partial"]
    return ", ".join(applied + others) or "none"


def rollout_text(node):
    r = node.get("rollout")
    if not r:
        return "no rollout record"
    if r.get("gate") == "in_progress" and not r.get("finished"):
        return "%s (%s) in progress, started %s" % (r.get("id"), r.get("kind"), r.get("started") or "?")
    changed = ", ".join(r.get("changed") or []) or "nothing changed"
    when = r.get("finished") or ("started %s" % r["started"] if r.get("started") else "?")
    return "%s (%s) %s: %s; %s" % (r.get("id"), r.get("kind"), r.get("gate"), changed, when)


def _num(value, fmt):
    return fmt % value if isinstance(value, (int, float)) else "-"


# --------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px}
header .meta{color:#b8c0cc;font-size:13px}
.summary{display:inline-block;margin-top:10px;padding:6px 14px;border-radius:6px;font-weight:600;font-size:17px}
.summary.ok{background:#1f7a3d}.summary.bad{background:#b3261e}
main{padding:18px 28px}
table{border-collapse:collapse;width:100%;background:#fff;margin-bottom:22px}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #e1e4e8;vertical-align:top}
th{background:#e9ecf1;font-size:13px;text-transform:uppercase;letter-spacing:.03em;color:#4a5262}
td.bad,span.bad{color:#b3261e;font-weight:600}
td.ok,span.ok{color:#1f7a3d;font-weight:600}
.muted{color:#6b7280;font-weight:400}
.card{background:#fff;border:1px solid #d8dce2;border-left:6px solid #1f7a3d;border-radius:6px;padding:14px 18px;margin-bottom:18px}
.card.bad{border-left-color:#b3261e}
.card h2{margin:0 0 8px;font-size:18px}
.badge{display:inline-block;font-size:12px;padding:2px 8px;border-radius:10px;color:#fff;vertical-align:middle;margin-left:8px}
span.badge.ok{background:#1f7a3d;color:#fff}span.badge.bad{background:#b3261e;color:#fff}
td.node{white-space:nowrap;font-weight:600}
ul.problems{margin:6px 0 12px;padding:8px 12px 8px 30px;background:#fdecea;border-radius:4px;color:#b3261e;font-weight:600}
dl{display:grid;grid-template-columns:170px 1fr;gap:4px 14px;margin:0 0 12px}
dt{color:#4a5262;font-weight:600}dd{margin:0}
dd.bad{color:#b3261e;font-weight:600}
dd.note{color:#8a5a00;font-weight:600}
.card table{margin:6px 0 0}
footer{padding:0 28px 24px;color:#6b7280;font-size:13px}
"""

LEGEND = (
    "GPUs: name, memory, compute capability (gpu_info). NCCL: the build <code>current</code> names, its version, CUDA "
    "and SMs. QSFP: interface, address, link state, MTU. Ray: the node's role and unit state (the head counts alive "
    "nodes). vLLM: the release <code>current</code> names and the sm_121 patches in it. Services: systemd state, "
    "/health and /v1/models on the node, output tokens/s and time to first token from the last bench. "
    "Problems are red, each with its reason. docs/report.md explains every column."
)


def _e(value):
    return html.escape("" if value is None else str(value))


def _section_bad(node, section):
    prefixes = dict(SECTIONS)[section]
    return any(p.startswith(prefixes) for p in node.get("problems") or [])


def _own_listener(service):
    """Where vLLM itself listens, when the unit's public address is another (the gateway)."""
    own = (service.get("url") or "").replace("http://", "")
    return "<br><span class=muted>vLLM on %s</span>" % _e(own) if own and own != service.get("listen") else ""


def _service_rows(node):
    rows = []
    for s in node.get("services") or []:
        state = s.get("state") or {}
        bench = s.get("bench") or {}
        if s.get("healthy") is True:
            health = '<td class="ok">healthy</td>'
        elif s.get("healthy") is None:
            health = "<td>not probed</td>"
        else:
            health = '<td class="bad">unhealthy: %s</td>' % _e(s.get("reason"))
        unit_state = "%s/%s" % (state.get("active") or "?", state.get("sub") or "?")
        if state.get("restarts"):
            unit_state += ", %d restarts" % state["restarts"]
        rows.append("<tr><td>%s<br><span class=muted>%s</span></td><td>%s</td><td>%s%s</td>"
                    "<td%s>%s</td>%s"
                    "<td>%s</td><td>%s</td><td>%s</td></tr>" % (
                        _e(s.get("name")), _e(s.get("unit")), _e(s.get("served_name")), _e(s.get("listen")),
                        _own_listener(s),
                        "" if state.get("active") == "active" else ' class="bad"', _e(unit_state), health,
                        _e(_num(bench.get("output_tokens_per_s"), "%.1f")),
                        _e(_num(bench.get("ttft_ms_median"), "%.0f ms")),
                        _e(bench.get("when") or "no bench result")))
    return rows


def _overview_row(node):
    host = node["host"]
    problems = node.get("problems") or []
    status = ('<td class="ok">OK</td>' if not problems
              else '<td class="bad">%d problem%s</td>' % (len(problems), "" if len(problems) == 1 else "s"))
    if not node.get("read"):
        return ('<tr><td class="node"><a href="#node-%s">%s</a></td>%s<td class="bad" colspan="6">%s</td></tr>'
                % (_e(host), _e(host), status, _e(problems[0])))
    services = node.get("services") or []
    healthy = sum(1 for s in services if s.get("healthy") is True)
    cells = []
    for section, text in (("gpu", gpu_text(node)), ("nccl", nccl_text(node)), ("qsfp", qsfp_text(node)),
                          ("ray", ray_text(node)), ("vllm", vllm_text(node))):
        cells.append('<td%s>%s</td>' % (' class="bad"' if _section_bad(node, section) else "", _e(text)))
    svc_class = "ok" if services and healthy == len(services) else "bad" if healthy < len(services) else ""
    cells.append('<td class="%s">%d of %d healthy</td>' % (svc_class, healthy, len(services)))
    return '<tr><td class="node"><a href="#node-%s">%s</a></td>%s%s</tr>' % (_e(host), _e(host), status, "".join(cells))


def _card(node):
    host = node["host"]
    problems = node.get("problems") or []
    bad = bool(problems)
    badge = ('<span class="badge bad">%d problem%s</span>' % (len(problems), "" if len(problems) == 1 else "s")
             if bad else '<span class="badge ok">OK</span>')
    profile = (node.get("profile") or {}).get("name")
    sub = " &middot; ".join(_e(x) for x in (node.get("address"), "profile " + profile if profile else None) if x)
    out = ['<section class="card%s" id="node-%s">' % (" bad" if bad else "", _e(host)),
           '<h2>%s %s <span class="muted">%s</span></h2>' % (_e(host), badge, sub)]
    if problems:
        out.append('<ul class="problems">%s</ul>' % "".join("<li>%s</li>" % _e(p) for p in problems))
    if not node.get("read"):
        out.append("</section>")
        return "\n".join(out)
    facts = (("GPUs", "gpu", gpu_text(node)), ("Driver / CUDA", "gpu", driver_text(node)),
             ("NCCL in use", "nccl", nccl_text(node)), ("QSFP link", "qsfp", qsfp_text(node)),
             ("Ray", "ray", ray_text(node)), ("vLLM release", "vllm", vllm_text(node)),
             ("Patches applied", None, patches_text(node)), ("Last rollout", None, rollout_text(node)))
    out.append("<dl>")
    for label, section, text in facts:
        cls = ' class="bad"' if section and _section_bad(node, section) else ""
        if label == "Last rollout" and (node.get("rollout") or {}).get("gate") == "rolled_back":
            # A past event, put right by the rollback: amber, not a problem of the node now.
            cls = ' class="note"'
            text += " (error: %s)" % (node["rollout"].get("error") or "none recorded")
        out.append("<div style=display:contents><dt>%s</dt><dd%s>%s</dd></div>" % (_e(label), cls, _e(text)))
    out.append("</dl>")
    rows = _service_rows(node)
    if rows:
        out.append("<table><thead><tr><th>Service</th><th>Served name</th><th>Listens on</th><th>systemd</th>"
                   "<th>Health</th><th>Output tok/s</th><th>TTFT (median)</th><th>Bench taken</th></tr></thead>"
                   "<tbody>%s</tbody></table>" % "".join(rows))
    else:
        out.append('<p class="muted">No vLLM service on this node.</p>')
    out.append("</section>")
    return "\n".join(out)


def render_html(report):
    """The report document as one self-contained HTML page."""
    line = summary_line(report)
    bad = report["summary"]["problems"] > 0
    title = "Fleet report: %s" % line
    meta = []
    if report.get("generated"):
        meta.append("generated " + _e(report["generated"]))
    if report.get("inventory"):
        meta.append("inventory " + _e(report["inventory"]))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title>" % _e(title),
        "<style>%s</style></head><body>" % CSS,
        "<header><h1>Fleet report</h1><div class=meta>%s</div>" % " &middot; ".join(meta),
        '<div class="summary %s">%s</div></header><main>' % ("bad" if bad else "ok", _e(line)),
        "<table><thead><tr><th>Node</th><th>Status</th><th>GPUs</th><th>NCCL</th><th>QSFP</th><th>Ray</th>"
        "<th>vLLM</th><th>Services</th></tr></thead><tbody>",
    ]
    parts += [_overview_row(n) for n in report["nodes"]]
    parts.append("</tbody></table>")
    parts += [_card(n) for n in report["nodes"]]
    parts.append("</main><footer>%s</footer></body></html>" % LEGEND)
    return "\n".join(parts) + "\n"
