#!/usr/bin/env python3
# Copyright: (c) 2026, blackwell.vllm maintainers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Is a vLLM service answering? Standard library only; runs with the system python3.

    vllm_probe.py wait   --unit U --url URL [--slice 15] [--allow-restarts] [--journal 40]
    vllm_probe.py verify --url URL --served-name NAME [--env-file F | --key-file F] [--require-key]
                         [--insecure] [--max-tokens 8]
    vllm_probe.py drain  --unit-file F [--timeout 300]
    vllm_probe.py address --unit-file F

wait: polls URL/health for up to --slice seconds and prints one JSON line. Exit 0 healthy,
3 still loading (call again), 2 the unit failed or restarted (with the last journal lines).
verify: /v1/models must list NAME, a completion must return tokens, and with an API key set a
request without it must get 401. Exit 0 or 1.
wait and verify take --unit-file instead of --url (and of --served-name, from the unit's header).
address: prints the URL of vLLM's own listener read from the unit.
drain: reads where vLLM itself listens from the unit's ExecStart (--host/--port; behind the gateway
that is 127.0.0.1:backend_port) and polls its /metrics until no request runs or waits
(vllm:num_requests_running + vllm:num_requests_waiting == 0), or --timeout seconds. Prints one JSON
line; exit 0 drained (or the service is not up: nothing in flight), 3 timed out with requests left.
The API key is read from the unit's environment file (VLLM_API_KEY=..., a loopback-only service)
or from the gateway's nginx key file (--key-file, a line "Bearer <key>" 1;), so it never appears
on a command line or in Ansible's output. --insecure: TLS without checking the certificate (the
gateway probed on loopback, its certificate names the public host).
"""

import argparse
import json
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request


def api_key(env_file):
    if not env_file:
        return None
    try:
        with open(env_file) as f:
            for line in f:
                if line.startswith("VLLM_API_KEY="):
                    value = line.split("=", 1)[1].strip()
                    if len(value) >= 2 and value[0] == value[-1] == '"':
                        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                    return value or None
    except OSError:
        return None
    return None


def gateway_key(key_file):
    """The key of the nginx map line "Bearer <key>" 1; (quotes and backslashes escaped)."""
    try:
        with open(key_file) as f:
            for line in f:
                found = re.match(r'^\s*"Bearer ((?:[^"\\]|\\.)*)"\s+1;', line)
                if found:
                    return re.sub(r"\\(.)", r"\1", found.group(1)) or None
    except OSError:
        return None
    return None


CONTEXT = None


def request(url, key=None, body=None, timeout=10):
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    with urllib.request.urlopen(req, timeout=timeout, context=CONTEXT) as resp:
        raw = resp.read()
        return resp.status, raw


def unit_state(unit):
    out = subprocess.run(["systemctl", "show", unit, "-p", "ActiveState,SubState,NRestarts,MainPID,Result,ActiveEnterTimestampMonotonic"],
                         capture_output=True, text=True, check=False).stdout
    state = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    state["NRestarts"] = int(state.get("NRestarts") or 0)
    since = int(state.get("ActiveEnterTimestampMonotonic") or 0)
    # Both clocks are CLOCK_MONOTONIC: seconds since systemd (re)started the unit.
    state["since_start"] = round(time.monotonic() - since / 1e6, 1) if since else None
    return state


def journal(unit, lines):
    res = subprocess.run(["journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "short-iso"],
                         capture_output=True, text=True, check=False)
    return res.stdout.splitlines()


def cmd_wait(args):
    t0 = time.monotonic()
    last_error = None
    while True:
        try:
            status, dummy = request(args.url.rstrip("/") + "/health", timeout=5)
            if status == 200:
                st = unit_state(args.unit)
                print(json.dumps({"state": "healthy", "unit": args.unit, "active": st.get("ActiveState"),
                                  "restarts": st["NRestarts"], "main_pid": st.get("MainPID"),
                                  "seconds_since_start": st["since_start"]}))
                return 0
            last_error = "HTTP %s" % status
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(getattr(exc, "reason", exc))
        st = unit_state(args.unit)
        if args.allow_restarts:  # systemd is expected to bring it back: only a unit that gave up is broken
            broken = st.get("ActiveState") == "failed"
        else:  # a deploy: an exit, a restart or a stop means this start failed
            broken = (st.get("ActiveState") in ("failed", "inactive")
                      or st.get("SubState") == "auto-restart" or st["NRestarts"] > 0)
        if broken:
            print(json.dumps({"state": "failed", "unit": args.unit, "active": st.get("ActiveState"),
                              "sub": st.get("SubState"), "result": st.get("Result"), "restarts": st["NRestarts"],
                              "last_error": last_error, "journal": journal(args.unit, args.journal)}))
            return 2
        if time.monotonic() - t0 >= args.slice:
            print(json.dumps({"state": "loading", "unit": args.unit, "active": st.get("ActiveState"),
                              "sub": st.get("SubState"), "seconds_since_start": st["since_start"],
                              "last_error": last_error}))
            return 3
        time.sleep(2)


def cmd_verify(args):
    global CONTEXT
    if args.insecure:
        CONTEXT = ssl._create_unverified_context()  # noqa: S323 - loopback probe of our own gateway
    key = gateway_key(args.key_file) if args.key_file else api_key(args.env_file)
    if args.require_key and not key:
        print(json.dumps({"url": args.url, "error": "no API key in %s" % (args.key_file or args.env_file)}))
        return 1
    base = args.url.rstrip("/")
    out = {"url": base, "served_name": args.served_name, "auth": bool(key)}
    try:
        dummy, raw = request(base + "/v1/models", key)
        ids = [m.get("id") for m in json.loads(raw).get("data", [])]
        out["models"] = ids
        if args.served_name not in ids:
            out["error"] = "/v1/models does not list %r" % args.served_name
            print(json.dumps(out))
            return 1
        t = time.monotonic()
        dummy, raw = request(base + "/v1/completions", key, {
            "model": args.served_name, "prompt": args.prompt, "max_tokens": args.max_tokens,
            "temperature": 0, "ignore_eos": True}, timeout=120)
        out["completion_seconds"] = round(time.monotonic() - t, 3)
        res = json.loads(raw)
        out["completion_tokens"] = (res.get("usage") or {}).get("completion_tokens", 0)
        out["text"] = ((res.get("choices") or [{}])[0].get("text") or "")[:80]
        if not out["completion_tokens"]:
            out["error"] = "the completion returned no tokens"
            print(json.dumps(out))
            return 1
        if key:
            try:
                request(base + "/v1/models", None)
                out["error"] = "the API answers without the API key"
                print(json.dumps(out))
                return 1
            except urllib.error.HTTPError as exc:
                out["unauthenticated_status"] = exc.code
                if exc.code != 401:
                    out["error"] = "without the API key the API answers HTTP %s, not 401" % exc.code
                    print(json.dumps(out))
                    return 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


def unit_address(unit_file):
    """(host, port) of vLLM's own listener, from the unit's ExecStart arguments."""
    with open(unit_file) as f:
        text = f.read().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            words = [w.strip('"') for w in line.split()]
            for flag in ("--host", "--port"):
                if flag in words and words.index(flag) + 1 < len(words):
                    found[flag] = words[words.index(flag) + 1]
    host = found.get("--host") or "127.0.0.1"
    return ("127.0.0.1" if host in ("0.0.0.0", "::", "") else host), int(found.get("--port") or 8000)


def unit_served_name(unit_file):
    """The served name from the unit's header "# vLLM service <name>: <served> on <host>:<port> ..."."""
    with open(unit_file) as f:
        found = re.search(r"(?m)^# vLLM service \S+: (\S+) on ", f.read())
    return found.group(1) if found else None


def in_flight(metrics_text):
    """Requests running plus waiting, summed over engines: the two gauges by their exact names
    (other series share the prefix, e.g. a per-reason breakdown of the waiting ones)."""
    total = 0.0
    for line in metrics_text.splitlines():
        name = re.split(r"[{\s]", line, maxsplit=1)[0]
        if name in ("vllm:num_requests_running", "vllm:num_requests_waiting"):
            try:
                total += float(line.rsplit(None, 1)[1])
            except (IndexError, ValueError):
                continue
    return int(total)


def cmd_drain(args):
    t0 = time.monotonic()
    host, port = unit_address(args.unit_file)
    url = "http://%s:%d/metrics" % (host, port)
    last = None
    while True:
        try:
            dummy, raw = request(url, timeout=5)
            last = in_flight(raw.decode("utf-8", "replace"))
        except (urllib.error.URLError, OSError) as exc:
            print(json.dumps({"state": "not_serving", "url": url, "in_flight": 0, "error": str(getattr(exc, "reason", exc)),
                              "seconds": round(time.monotonic() - t0, 1)}))
            return 0
        if last == 0:
            print(json.dumps({"state": "drained", "url": url, "in_flight": 0, "seconds": round(time.monotonic() - t0, 1)}))
            return 0
        if time.monotonic() - t0 >= args.timeout:
            print(json.dumps({"state": "timeout", "url": url, "in_flight": last, "seconds": round(time.monotonic() - t0, 1)}))
            return 3
        time.sleep(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--unit", required=True)
    w.add_argument("--url")
    w.add_argument("--unit-file", help="instead of --url: vLLM's own listener, read from the unit")
    w.add_argument("--slice", type=float, default=15)
    w.add_argument("--allow-restarts", action="store_true")
    w.add_argument("--journal", type=int, default=40)
    v = sub.add_parser("verify")
    v.add_argument("--url")
    v.add_argument("--served-name")
    v.add_argument("--unit-file", help="instead of --url and --served-name: vLLM's own listener and served name, read from the unit")
    v.add_argument("--env-file")
    v.add_argument("--key-file")
    v.add_argument("--require-key", action="store_true")
    v.add_argument("--insecure", action="store_true")
    v.add_argument("--max-tokens", type=int, default=8)
    v.add_argument("--prompt", default="The quick brown fox")
    a = sub.add_parser("address")
    a.add_argument("--unit-file", required=True)
    d = sub.add_parser("drain")
    d.add_argument("--unit-file", required=True)
    d.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    if args.cmd in ("wait", "verify") and not args.url:
        if not args.unit_file:
            ap.error("--url or --unit-file is needed")
        args.url = "http://%s:%d" % unit_address(args.unit_file)
    if args.cmd == "verify" and not args.served_name:
        args.served_name = unit_served_name(args.unit_file) if args.unit_file else None
        if not args.served_name:
            ap.error("--served-name or a --unit-file with the vLLM service header is needed")
    if args.cmd == "address":
        print("http://%s:%d" % unit_address(args.unit_file))
        return 0
    return {"wait": cmd_wait, "verify": cmd_verify, "drain": cmd_drain}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
