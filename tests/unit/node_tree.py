"""A fake node for the fleet report's tests (imported as ``node_tree``): the files a converged node
holds, under a tmp dir, and a stand-in vLLM server on loopback that the real vllm_probe.py asks.

- ``NodeTree(tmp).converged()`` writes an NCCL build with its marker and `current` link, a vLLM
  release with its marker, the sm_121 patch blocks, `current`/`previous` links, the probe script,
  a vLLM unit with the role's header, its 0600 environment file with an API key, a Ray head unit,
  the Ray environment with a token, rollout records, a bench result and a QSFP NIC in a fake sysfs.
- ``FakeVllm``: /health, /v1/models, /v1/completions (with the key), /nodes?view=summary (Ray's dashboard).
- ``Commands``: module.run_command for the tests: systemctl show and ip -j answered from the tree,
  python (vllm_probe.py) run for real.
"""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import shutil
import subprocess
import threading

REPO = pathlib.Path(__file__).resolve().parents[2]
PROBE = REPO / "roles" / "vllm" / "files" / "vllm_probe.py"
API_KEY = "sk-never-print-me-7d1e"
RAY_TOKEN = "ray-token-never-print-me-42"
RELEASE = "0.18.1-0a1b2c3d4e"
OLD_RELEASE = "0.17.1-9f8e7d6c5b"
NCCL = "2.28.9-1-sm_121"


class FakeVllm:
    """A loopback HTTP server answering like vLLM (and the Ray dashboard); .mode changes its answers."""

    def __init__(self, served="qwen3-next", key=API_KEY, token=RAY_TOKEN):
        self.served, self.key, self.token = served, key, token
        self.mode = "healthy"  # healthy | loading | wrong_name
        self.requests = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorized(self, secret):
                return not secret or self.headers.get("Authorization") == "Bearer " + secret

            def do_GET(self):
                owner.requests.append(("GET", self.path, self.headers.get("Authorization")))
                if self.path == "/health":
                    return self._send(503 if owner.mode == "loading" else 200, {})
                if self.path == "/v1/models":
                    if not self._authorized(owner.key):
                        return self._send(401, {"error": "Unauthorized"})
                    name = "other-model" if owner.mode == "wrong_name" else owner.served
                    return self._send(200, {"data": [{"id": name}]})
                if self.path.startswith("/nodes"):
                    if not self._authorized(owner.token):
                        return self._send(401, {"error": "missing token"})
                    return self._send(200, {"result": True, "data": {"summary": [
                        {"raylet": {"state": "ALIVE"}}, {"raylet": {"state": "ALIVE"}}, {"raylet": {"state": "DEAD"}}]}})
                return self._send(404, {})

            def do_POST(self):
                owner.requests.append(("POST", self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if not self._authorized(owner.key):
                    return self._send(401, {"error": "Unauthorized"})
                return self._send(200, {"choices": [{"text": " jumps"}], "usage": {"completion_tokens": 1}})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class NodeTree:
    """The paths of one fake node under `root`, and writers for what a converged node holds."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.nccl_root = self.root / "opt" / "nccl"
        self.vllm_base = self.root / "opt" / "vllm"
        self.config_dir = self.root / "etc" / "vllm"
        self.systemd_dir = self.root / "etc" / "systemd" / "system"
        self.rollout_dir = self.root / "var" / "lib" / "blackwell" / "rollouts"
        self.bench_dir = self.root / "var" / "lib" / "blackwell" / "bench"
        self.sys_net = self.root / "sys" / "class" / "net"
        self.ray_env = self.root / "etc" / "blackwell" / "ray.env"
        self.ray_token = self.root / "etc" / "blackwell" / "ray-auth-token"
        self.units = {}  # unit name -> systemctl show properties

    def params(self, **overrides):
        """The module's parameters for this tree."""
        params = {
            "hardware_profile": "gb10", "vllm_base_dir": str(self.vllm_base), "vllm_config_dir": str(self.config_dir),
            "nccl_install_root": str(self.nccl_root), "rollout_dir": str(self.rollout_dir),
            "bench_dir": str(self.bench_dir), "systemd_dir": str(self.systemd_dir),
            "qsfp_interface": "enp1s0f0np0", "qsfp_address": "192.168.100.10/24", "qsfp_mtu": 9000,
            "ray_role": "head", "ray_members": 2, "ray_nodes": True, "expected_services": ["qwen"],
            "probe_services": True, "probe_timeout": 5.0, "gpu_backend": "auto",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}  # None: left out, as omit does

    def write(self, rel, text, mode=0o644):
        path = self.root / rel if not os.path.isabs(str(rel)) else pathlib.Path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, mode)
        return path

    def nccl(self, name=NCCL, marker=True, library=True):
        build = self.nccl_root / name
        (build / "lib").mkdir(parents=True, exist_ok=True)
        if library:
            (build / "lib" / "libnccl.so.2").write_text("ELF")
        if marker:
            (build / ".blackwell-nccl.json").write_text(json.dumps({
                "version": "2.28.9-1", "gencode": "-gencode=arch=compute_121,code=sm_121", "cuda": "13.0",
                "sms": ["sm_121"], "source": "https://github.com/NVIDIA/nccl/archive/refs/tags/v2.28.9-1.tar.gz",
                "built_at": "2026-12-01T10:00:00+00:00"}))
        current = self.nccl_root / "current"
        if current.is_symlink():
            current.unlink()
        current.symlink_to(name)

    def release(self, rid=RELEASE, version="0.18.1", patched=True, current=True):
        rel = self.vllm_base / "releases" / rid
        site = rel / "venv" / "lib" / "python3.12" / "site-packages"
        (site / "vllm").mkdir(parents=True, exist_ok=True)
        (rel / ".blackwell-release.json").write_text(json.dumps({
            "id": rid, "version": version, "mode": "wheels", "packages": ["vllm==" + version],
            "installed_at": "2026-12-01T11:00:00Z", "seconds": 312}))
        w8a8 = site / "vllm/model_executor/layers/quantization/utils/w8a8_utils.py"
        fp8 = site / "vllm/model_executor/layers/fused_moe/oracle/fp8.py"
        for path in (w8a8, fp8):
            path.parent.mkdir(parents=True, exist_ok=True)
        blocks = "\n".join("# BEGIN blackwell.vllm %s\n# END blackwell.vllm %s" % (b, b)
                           for b in ("sm121-cutlass-fp8", "sm121-cutlass-block-fp8"))
        w8a8.write_text("from vllm.platforms import current_platform\n" + (blocks if patched else "") + "\n")
        fp8.write_text("def select_fp8_moe_backend(\n" + ("    # BEGIN blackwell.vllm sm121-fp8-moe-triton\n"
                                                          "    # END blackwell.vllm sm121-fp8-moe-triton\n" if patched else ""))
        if current:
            link = self.vllm_base / "current"
            if link.is_symlink():
                link.unlink()
            link.symlink_to(rel)

    def previous(self, rid=OLD_RELEASE):
        self.release(rid, version="0.17.1", current=False)
        (self.vllm_base / "previous").symlink_to(self.vllm_base / "releases" / rid)

    def probe_script(self):
        libexec = self.vllm_base / "libexec"
        libexec.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROBE, libexec / "vllm_probe.py")

    def vllm_unit(self, name="qwen", served="qwen3-next", port=8000, release=RELEASE, key=API_KEY,
                  active="active", sub="running", result="success", restarts=0):
        self.write(self.systemd_dir / ("vllm-%s.service" % name), (
            "# Ansible managed\n"
            "# vLLM service {n}: {s} on 127.0.0.1:8000 (profile native).\n"
            "# Release {r}. Options in the environment file /etc/vllm/{n}.env (0600).\n"
            "[Unit]\nDescription=vLLM {s}\n[Service]\n"
            "ExecStart=/opt/vllm/releases/{r}/venv/bin/python -m vllm.entrypoints.openai.api_server \\\n"
            "    \"--model\" \"/var/lib/vllm/models/{s}\" \"--served-model-name\" \"{s}\" \\\n"
            "    \"--host\" \"127.0.0.1\" \"--port\" \"{p}\"\n").format(n=name, s=served, p=port, r=release))
        self.write(self.config_dir / ("%s.env" % name), "# vLLM service %s\nVLLM_API_KEY=\"%s\"\n" % (name, key), 0o600)
        self.units["vllm-%s.service" % name] = {"LoadState": "loaded", "ActiveState": active, "SubState": sub,
                                                "Result": result, "NRestarts": str(restarts),
                                                "ActiveEnterTimestamp": "Mon 2026-12-07 08:40:01 UTC"}

    def ray_unit(self, role="head", dashboard_port=8265, active="active"):
        unit = "ray-%s.service" % role
        self.write(self.ray_env, "RAY_AUTH_MODE=token\nRAY_AUTH_TOKEN_PATH=%s\n" % self.ray_token)
        self.write(self.ray_token, RAY_TOKEN + "\n", 0o640)
        head = ("    --head --port=6379 \\\n    --include-dashboard=true \\\n"
                "    --dashboard-host=127.0.0.1 --dashboard-port=%d \\\n" % dashboard_port) if role == "head" else ""
        self.write(self.systemd_dir / unit, (
            "[Service]\nEnvironmentFile=%s\nEnvironmentFile=-/etc/blackwell/cuda.env\n"
            "ExecStart=/opt/vllm/current/venv/bin/ray start --block \\\n%s"
            "    --node-ip-address=192.168.100.10 \\\n    --min-worker-port=10002 --max-worker-port=19999\n") % (self.ray_env, head))
        self.units[unit] = {"LoadState": "loaded", "ActiveState": active, "SubState": "running" if active == "active" else "dead",
                            "Result": "success", "NRestarts": "0", "ActiveEnterTimestamp": "Mon 2026-12-07 08:30:00 UTC"}

    def nic(self, name="enp1s0f0np0", state="up", mtu=9000, carrier="1"):
        base = self.sys_net / name
        base.mkdir(parents=True, exist_ok=True)
        (base / "operstate").write_text(state + "\n")
        (base / "mtu").write_text("%d\n" % mtu)
        (base / "carrier").write_text(carrier + "\n")
        self.addresses = {name: ["192.168.100.10/24"]}

    def rollout(self, rid, finished, gate="passed", changed=("vllm.release",), kind="rollout", error=""):
        self.write(self.rollout_dir / ("%s.json" % rid), json.dumps({
            "id": rid, "kind": kind, "unit": "spark-1", "hosts": ["spark-1"], "gate": gate, "changed": list(changed),
            "started": finished.replace(":05Z", ":00Z"), "finished": finished, "seconds": 5.0, "error": error,
            "before": {"vllm": {"release": OLD_RELEASE}}, "after": {"vllm": {"release": RELEASE}},
            "backup": str(self.rollout_dir / rid / "files")}), 0o600)

    def bench(self, name="qwen", tps=812.4, ttft=143.0):
        self.write(self.bench_dir / ("%s.json" % name), json.dumps({
            "url": "http://127.0.0.1:8000", "model": "qwen3-next", "num_prompts": 32, "concurrency": 4,
            "completed": 32, "failed": 0, "errors": [], "duration_s": 2.5, "output_tokens_per_s": tps,
            "ttft_ms": {"mean": ttft + 10, "median": ttft, "p99": ttft * 2},
            "tpot_ms": {"mean": 4.1, "median": 4.0, "p99": 6.0}}))

    def converged(self, port=8000, dashboard_port=8265):
        self.nccl()
        self.previous()
        self.release()
        self.probe_script()
        self.vllm_unit(port=port)
        self.ray_unit(dashboard_port=dashboard_port)
        self.nic()
        self.rollout("20261205T100000Z", "2026-12-05T10:00:05Z", changed=["nccl.current"])
        self.rollout("20261207T080000Z", "2026-12-07T08:00:05Z")
        self.bench()
        return self


class Commands:
    """module.run_command for a NodeTree: systemctl show and ip -j from the tree, python for real."""

    def __init__(self, tree):
        self.tree = tree
        self.calls = []

    has_timeout = True

    def __call__(self, argv, **kwargs):
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        if argv[0] == "timeout":
            argv = argv[4:]
        tool = os.path.basename(argv[0])
        if tool == "systemctl":
            blocks = []
            for unit in argv[argv.index("--") + 1:]:
                props = dict(self.tree.units.get(unit) or {"LoadState": "not-found", "ActiveState": "inactive",
                                                            "SubState": "dead", "Result": "success", "NRestarts": "0"})
                blocks.append("\n".join(["Id=%s" % unit] + ["%s=%s" % kv for kv in props.items()]))
            return 0, "\n\n".join(blocks) + "\n", ""
        if tool == "ip":
            name = argv[-1]
            addrs = getattr(self.tree, "addresses", {}).get(name, [])
            return 0, json.dumps([{"ifname": name, "addr_info": [
                {"family": "inet", "local": a.split("/")[0], "prefixlen": int(a.split("/")[1])} for a in addrs]}]), ""
        if tool.startswith("python") or argv[0].endswith("python3"):
            res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            return res.returncode, res.stdout, res.stderr
        raise AssertionError("unexpected command %r" % (argv,))
