"""A Ray task cannot read the vLLM API server's secrets.

Whoever reaches Ray (a peer on the QSFP network, any local process that can talk to the raylet)
can run code in a Ray task. Such a task, pinned to each node (the `node:<QSFP address>` resource),
tries to read the vLLM API servers' /proc/<pid>/environ and /proc/<pid>/cmdline and every file
under /etc/vllm and /etc/nginx. The environment must be unreadable, and the inventory's API key
must appear nowhere in what the task could read, wherever the key lives (in the vLLM process or in
a gateway in front of it). When Ray and vLLM share an account, the task reads the environment.
"""

import json

import pytest
import testinfra

# Ray's token authentication: a driver presents the cluster's token, from the Ray unit's environment file.
RAY_AUTH = "env $(grep -h '^RAY_AUTH_' /etc/blackwell/ray.env)"
RAY_DEFAULTS = {"ray_cluster_gcs_port": 6379, "ray_cluster_venv": "/opt/vllm/current/venv"}
SECRET_DIRS = ("/etc/vllm", "/etc/nginx")

# Runs as the Ray account (the raylet's user), the driver on the head; args: JSON on argv[1].
DRIVER = r"""
import json, sys
import ray
args = json.loads(sys.argv[1])

def probe(paths):
    import os
    out = {"uid": os.getuid(), "paths": {}}
    for path in paths:
        try:
            with open(path, "rb") as f:
                out["paths"][path] = {"read": True, "data": f.read().decode("utf-8", "replace")}
        except OSError as exc:
            out["paths"][path] = {"read": False, "error": type(exc).__name__}
    return out

ray.init(address=args["address"], logging_level="ERROR", log_to_driver=False)
refs = {ip: ray.remote(num_cpus=0, resources={"node:" + ip: 0.001})(probe).remote(paths)
        for ip, paths in args["targets"].items()}
print("\n" + json.dumps({ip: ray.get(ref, timeout=120) for ip, ref in refs.items()}))
"""


def address(cidr):
    return cidr.split("/")[0]


@pytest.fixture
def me(host):
    return host.ansible.get_variables()


def node_targets(node):
    """The paths the task tries on one node: each vLLM API server's environ and cmdline, every file
    under the secret folders (listed as root, so the task does not have to be able to list them)."""
    pids = node.run("pgrep -f 'vllm.entrypoints.openai.api_server|vllm serve'").stdout.split()
    files = node.run("find %s -type f 2>/dev/null" % " ".join(SECRET_DIRS)).stdout.split()
    return pids, [p for pid in pids for p in ("/proc/%s/environ" % pid, "/proc/%s/cmdline" % pid)] + files


def test_ray_task_cannot_read_the_vllm_api_secrets(host, me, request):
    heads = me["groups"].get("ray_head", [])
    if me["inventory_hostname"] not in heads:
        pytest.skip("the Ray driver runs on the head")
    inventory = request.config.option.ansible_inventory
    members = heads + me["groups"].get("ray_workers", [])
    key = me.get("vllm_api_key") or ""
    targets, servers = {}, 0
    for name in members:
        node = testinfra.get_host("ansible://" + name, ansible_inventory=inventory, sudo=True)
        ip = address(node.ansible.get_variables()["blackwell_qsfp_address"])
        pids, targets[ip] = node_targets(node)
        servers += len(pids)
    assert servers, "no vLLM API server runs on the Ray nodes: nothing to test against"
    ray_user = host.run("ps -o user= -C raylet").stdout.split()
    assert ray_user, "no raylet runs on the head"
    settings = {k: me.get(k, v) for k, v in RAY_DEFAULTS.items()}
    gcs = "%s:%d" % (address(me["blackwell_qsfp_address"]), int(settings["ray_cluster_gcs_port"]))
    args = json.dumps({"address": gcs, "targets": targets})
    # host.run quotes each argument itself.
    cmd = host.run("cd / && runuser -u %s -- " + RAY_AUTH + " timeout 180 %s/bin/python -c %s %s",
                   ray_user[0], settings["ray_cluster_venv"], DRIVER, args)
    assert cmd.rc == 0, cmd.stderr[-2000:]
    found = json.loads(cmd.stdout.strip().splitlines()[-1])
    leaks = []
    for ip, result in sorted(found.items()):
        for path, got in sorted(result["paths"].items()):
            if path.endswith("/environ") and got["read"]:
                leaks.append("%s: a Ray task (uid %s) read %s" % (ip, result["uid"], path))
            elif got["read"] and key and key in got["data"]:
                leaks.append("%s: a Ray task (uid %s) read the API key in %s" % (ip, result["uid"], path))
    assert not leaks, "; ".join(leaks)
