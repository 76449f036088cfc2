#!/usr/bin/env bash
# Runs a small CUDA program (vector add) under a hand-built copy of the sandbox that the vLLM
# systemd unit (roles/vllm/templates/vllm.service.j2, GPU profiles) puts around vLLM, on a machine
# where systemd is not PID 1. Run it as root on a GPU host: sudo tests/gpu/sandboxed_cuda.sh
#
# What it reproduces of the unit:
#   User=vllm              -> setpriv --reuid/--regid to a system user "vllm" (created if missing)
#   NoNewPrivileges=yes    -> setpriv --no-new-privs
#   CapabilityBoundingSet= and AmbientCapabilities= -> setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all
#   DevicePolicy=closed + DeviceAllow=  -> a cgroup v2 device program (BPF_PROG_TYPE_CGROUP_DEVICE, the
#       same mechanism systemd uses) that allows the standard pseudo devices (null zero full random
#       urandom tty ptmx rwm, char-pts rw) plus the unit's DeviceAllow= list, resolved the way systemd
#       does it: paths by their major:minor, char-NAME groups by matching NAME against /proc/devices
#   PrivateDevices=no      -> the host /dev stays visible (cases host-*)
#   ProtectSystem=strict + ReadWritePaths=/var/lib/vllm -> every mount read-only in a private mount
#       namespace, except /dev, /proc, /sys, /tmp and the state directory
#   PrivateTmp=yes, ProtectHome=yes -> fresh tmpfs on /tmp and /var/tmp; /home, /root, /run/user hidden
#   ProtectKernelTunables/ProtectKernelLogs/ProtectControlGroups -> /sys, /proc/sys and friends read-only,
#       /proc/kmsg and /dev/kmsg hidden
#   SystemCallArchitectures=native, RestrictAddressFamilies=, RestrictNamespaces=, ProtectClock=,
#   ProtectHostname=, ProtectKernelModules=, ProtectKernelLogs= -> a small seccomp filter with the
#       same effect for the system calls those settings block (not systemd's full lists)
#   LimitNOFILE=65536, LimitMEMLOCK=infinity, UMask=0027, HOME/XDG_CACHE_HOME/WorkingDirectory
# A second pair of cases (private-*) replaces /dev with a tmpfs that holds only the pseudo devices
# and the NVIDIA nodes that the DeviceAllow= list names, as a check that does not rely on cgroup BPF.
# Each pair has a negative case: the same sandbox without the NVIDIA entries, which must fail.
#
# What it cannot reproduce: the unit's own start by systemd (no systemd here), RestrictSUIDSGID=,
# RestrictRealtime=, LockPersonality=, RemoveIPC=, OOMPolicy=, Restart=/StartLimit*, and the exact
# system call lists systemd uses; ProtectHostname= only by seccomp, not by a UTS namespace.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/$(basename "$0")"
SBX=/opt/cudasbx
STATE=/var/lib/vllm
PY=$(command -v python3)
export PATH="$PATH:/usr/local/cuda/bin"

# ---------------------------------------------------------------------------------------------
# Inside the private mount namespace, still root: build the file system view, then drop to vllm.
inner() {
  local devmode=$1   # host | private | private-nonv
  mount --bind "$STATE" "$STATE"                                   # ReadWritePaths=
  mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp              # PrivateTmp=yes
  [ -d /var/tmp ] && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
  mkdir -p /tmp/.sbx && : > /tmp/.sbx/inaccessible && chmod 000 /tmp/.sbx/inaccessible
  if [ "$devmode" != host ]; then                                  # private /dev
    local nodes="/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/ptmx"
    [ "$devmode" = private ] && nodes="$nodes $(cat "$SBX/nvidia-nodes")"
    local n
    mkdir -p /tmp/.sbx/hostdev && mount --bind /dev /tmp/.sbx/hostdev
    mount -t tmpfs -o mode=755,nosuid tmpfs /dev
    for n in $nodes; do                                            # bind the host nodes (no mknod needed)
      [ -c "/tmp/.sbx/hostdev${n#/dev}" ] || continue
      mkdir -p "$(dirname "$n")" && : > "$n" && mount --bind "/tmp/.sbx/hostdev${n#/dev}" "$n"
    done
    umount -l /tmp/.sbx/hostdev
    mkdir -p /dev/shm /dev/pts && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
    ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
  fi
  # ProtectHome=yes
  local d; for d in /home /root /run/user; do [ -d $d ] && mount -t tmpfs -o ro,mode=000 tmpfs $d; done
  # ProtectKernelLogs=yes
  for d in /proc/kmsg /dev/kmsg; do [ -e $d ] && mount --bind /tmp/.sbx/inaccessible $d; done
  # ProtectKernelTunables=yes
  for d in /proc/sys /proc/sysrq-trigger /proc/acpi /proc/fs /proc/irq /proc/bus /proc/latency_stats; do
    [ -e $d ] && mount --bind $d $d && mount -o remount,bind,ro $d
  done
  # ProtectSystem=strict, and /sys (ProtectKernelTunables, ProtectControlGroups): every other mount read-only
  local ro=0 fail=0 mp
  while read -r mp; do
    case $mp in
      /dev|/dev/*|/proc|/proc/*|/tmp|/tmp/*|/var/tmp|$STATE|/home|/root|/run/user) continue ;;
    esac
    if mount -o remount,bind,ro "$mp" 2>/dev/null; then ro=$((ro+1)); else fail=$((fail+1)); fi
  done < <(awk '{print $5}' /proc/self/mountinfo | sort -u)
  echo "  mounts made read-only: $ro (failed: $fail); /dev: $devmode"
  # LimitNOFILE=65536 (capped at this machine's hard limit if that is lower), LimitMEMLOCK=infinity
  ulimit -n 65536 2>/dev/null || { echo "  LimitNOFILE: hard limit is $(ulimit -Hn), using that"; ulimit -n "$(ulimit -Hn)"; }
  ulimit -l unlimited
  local amb=""; setpriv --help 2>&1 | grep -q -- --ambient-caps && amb=--ambient-caps=-all
  exec setpriv --reuid=vllm --regid=vllm --init-groups --no-new-privs --inh-caps=-all $amb --bounding-set=-all -- \
    env -i HOME=$STATE XDG_CACHE_HOME=$STATE/.cache PYTHONUNBUFFERED=1 PATH="$PATH" \
        ${LD_LIBRARY_PATH:+LD_LIBRARY_PATH=$LD_LIBRARY_PATH} \
    "$PY" "$SBX/sbx_exec.py" "$SELF" as-vllm
}

# As vllm, after the seccomp filter (sbx_exec.py) is in place.
as_vllm() {
  umask 027; cd "$STATE" || exit 9
  echo "  id: $(id)"
  grep -E '^(NoNewPrivs|Seccomp|CapInh|CapPrm|CapEff|CapBnd|CapAmb)' /proc/self/status | tr '\n' ' '; echo
  echo "  ulimit -n $(ulimit -n), -l $(ulimit -l), umask $(umask)"
  touch /usr/.sbx-probe 2>&1 | sed 's/^/  write \/usr: /'
  touch "$STATE/.sbx-probe" && echo "  write $STATE: ok" && rm -f "$STATE/.sbx-probe"
  ls /root 2>&1 | head -1 | sed 's/^/  ls \/root: /'
  echo "  /dev holds $(ls -A /dev | wc -l) entries; nvidia: $(ls -d /dev/nvidia* 2>/dev/null | tr '\n' ' ')"
  "$PY" - <<'EOF'
import os, errno
for p in ["/dev/null", "/dev/urandom", "/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia-uvm",
          "/dev/fuse", "/dev/net/tun", "/dev/loop-control", "/dev/rtc0", "/dev/vhost-net", "/dev/mem"]:
    if not os.path.exists(p):
        print(f"  open {p}: absent"); continue
    try:
        os.close(os.open(p, os.O_RDWR)); print(f"  open {p}: ok")
    except OSError as e:
        print(f"  open {p}: {errno.errorcode[e.errno]} ({e.strerror})")
EOF
  command -v nvidia-smi >/dev/null && { nvidia-smi -L 2>&1 | sed 's/^/  nvidia-smi -L: /'; }
  exec "$SBX/vecadd"
}

# ---------------------------------------------------------------------------------------------
# The helper programs, written to $SBX by write_helpers.
write_helpers() {
cat > $SBX/vecadd.cu <<'EOF'
// Vector add: prints the device, its compute capability and whether the sum is right.
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <cuda_runtime.h>
__global__ void add(const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { \
  printf("  CUDA FAILED: %s -> %d %s: %s\n", #x, (int)e, cudaGetErrorName(e), cudaGetErrorString(e)); \
  return 2; } } while (0)
int main() {
  void *h = dlopen("libcuda.so.1", RTLD_NOW);
  if (!h) { printf("  dlopen libcuda.so.1: %s\n", dlerror()); return 3; }
  int (*cuInit)(unsigned) = (int (*)(unsigned))dlsym(h, "cuInit");
  int (*cuErr)(int, const char **) = (int (*)(int, const char **))dlsym(h, "cuGetErrorName");
  int r = cuInit(0); const char *rn = "?"; cuErr(r, &rn);
  printf("  cuInit(0) -> %d %s\n", r, rn);
  int drv = 0, rt = 0; cudaDriverGetVersion(&drv); cudaRuntimeGetVersion(&rt);
  printf("  driver API %d, runtime %d\n", drv, rt);
  int n = 0; CK(cudaGetDeviceCount(&n)); printf("  device count %d\n", n);
  cudaDeviceProp p; CK(cudaGetDeviceProperties(&p, 0));
  printf("  device 0: %s, compute capability %d.%d, %.1f GiB, %d SMs\n", p.name, p.major, p.minor,
         p.totalGlobalMem / 1073741824.0, p.multiProcessorCount);
  const int N = 1 << 24; size_t bytes = N * sizeof(float);
  float *ha = (float *)malloc(bytes), *hb = (float *)malloc(bytes), *hc = (float *)malloc(bytes);
  for (int i = 0; i < N; i++) { ha[i] = (float)(i % 1000); hb[i] = 2.0f * (i % 777); hc[i] = -1; }
  float *da, *db, *dc;
  CK(cudaMalloc(&da, bytes)); CK(cudaMalloc(&db, bytes)); CK(cudaMalloc(&dc, bytes));
  CK(cudaMemcpy(da, ha, bytes, cudaMemcpyHostToDevice)); CK(cudaMemcpy(db, hb, bytes, cudaMemcpyHostToDevice));
  add<<<(N + 255) / 256, 256>>>(da, db, dc, N);
  CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
  CK(cudaMemcpy(hc, dc, bytes, cudaMemcpyDeviceToHost));
  long bad = 0; for (int i = 0; i < N; i++) if (hc[i] != ha[i] + hb[i]) bad++;
  printf("  vector add of %d floats on the GPU: %s (%ld wrong)\n", N, bad ? "WRONG" : "verified", bad);
  cudaFree(da); cudaFree(db); cudaFree(dc);
  return bad ? 1 : 0;
}
EOF
cat > $SBX/devbpf.py <<'EOF'
# The unit's device policy as systemd builds it: a BPF_PROG_TYPE_CGROUP_DEVICE program on a cgroup.
#   devbpf.py show                     print the rules and the /dev nodes they allow
#   devbpf.py attach CGROUP nvidia     DevicePolicy=closed plus the unit's DeviceAllow= list
#   devbpf.py attach CGROUP closed     DevicePolicy=closed alone (no NVIDIA entries)
import ctypes, fnmatch, os, stat, struct, sys
CLOSED = [("/dev/null", "rwm"), ("/dev/zero", "rwm"), ("/dev/full", "rwm"), ("/dev/random", "rwm"),
          ("/dev/urandom", "rwm"), ("/dev/tty", "rwm"), ("/dev/ptmx", "rwm"), ("char-pts", "rw")]
UNIT = [("/dev/nvidiactl", "rw"), ("/dev/nvidia-uvm", "rw"), ("/dev/nvidia-uvm-tools", "rw"),
        ("/dev/nvidia-modeset", "rw"), ("char-nvidia-frontend", "rw"), ("char-nvidia", "rw"),
        ("char-nvidia-uvm", "rw"), ("char-nvidia-caps", "rw"), ("char-nvidia-caps-imex-channels", "rw")]

def char_groups():
    out, sect = [], None
    for line in open("/proc/devices"):
        line = line.strip()
        if line.endswith(":"): sect = line; continue
        if sect == "Character devices:" and line:
            maj, name = line.split(None, 1); out.append((int(maj), name))
    return out

def resolve(entries):
    rules = []
    for spec, acc in entries:
        if spec.startswith("/dev/"):
            try: st = os.stat(spec)
            except OSError as e: print(f"rule {spec} {acc}: {e.strerror}, skipped"); continue
            if not stat.S_ISCHR(st.st_mode): print(f"rule {spec}: not a char device, skipped"); continue
            r = (os.major(st.st_rdev), os.minor(st.st_rdev), acc)
            print(f"rule {spec} {acc}: c {r[0]}:{r[1]}"); rules.append(r)
        else:
            pat = spec[len("char-"):]
            majs = [m for m, n in char_groups() if fnmatch.fnmatchcase(n, pat)]
            print(f"rule {spec} {acc}: majors {majs if majs else 'none (no such group in /proc/devices)'}")
            rules += [(m, None, acc) for m in majs]
    return rules

def allows(rules, maj, mnr, want="rw"):
    return any(m == maj and (n is None or n == mnr) and all(c in a for c in want) for m, n, a in rules)

def program(rules):
    prog, labels = [], {}
    def emit(code, dst=0, src=0, off=0, imm=0, to=None): prog.append([code, dst, src, off, imm, to])
    emit(0x61, 2, 1, 0)            # r2 = ctx->access_type (access << 16 | type)
    emit(0x61, 4, 1, 4)            # r4 = ctx->major
    emit(0x61, 5, 1, 8)            # r5 = ctx->minor
    emit(0xbf, 3, 2)               # r3 = r2
    emit(0x57, 3, imm=0xffff)      # r3 &= 0xffff (type)
    emit(0x55, 3, imm=2, to="deny")  # not a char device: deny
    for i, (maj, mnr, acc) in enumerate(rules):
        nxt = f"n{i}"
        emit(0x55, 4, imm=maj, to=nxt)
        if mnr is not None: emit(0x55, 5, imm=mnr, to=nxt)
        bad = (0 if "m" in acc else 1) | (0 if "r" in acc else 2) | (0 if "w" in acc else 4)
        if bad: emit(0x45, 2, imm=bad << 16, to=nxt)   # an access the rule does not grant
        emit(0x05, to="allow")
        labels[nxt] = len(prog)
    labels["deny"] = len(prog); emit(0xb7, 0, imm=0); emit(0x95)
    labels["allow"] = len(prog); emit(0xb7, 0, imm=1); emit(0x95)
    code = b""
    for pc, (c, d, s, off, imm, to) in enumerate(prog):
        if to: off = labels[to] - (pc + 1)
        code += struct.pack("<BBhi", c, (s << 4) | d, off, imm)
    return code, len(prog)

def attach(cg, rules):
    libc = ctypes.CDLL(None, use_errno=True); libc.syscall.restype = ctypes.c_long
    def bpf(cmd, attr):
        buf = ctypes.create_string_buffer(attr, len(attr))
        r = libc.syscall(321, cmd, buf, len(attr))
        if r < 0: e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
        return r
    code, n = program(rules)
    insns = ctypes.create_string_buffer(code, len(code)); lic = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(65536)
    attr = struct.pack("<IIQQIIQII16sII", 15, n, ctypes.addressof(insns), ctypes.addressof(lic), 1,
                       len(log), ctypes.addressof(log), 0, 0, b"vllm_devpolicy", 0, 6)
    try: pfd = bpf(5, attr)                        # BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE
    except OSError as e:
        print(f"BPF_PROG_LOAD failed: {e}; verifier log: {log.value.decode(errors='replace')[-800:]}"); return 1
    cfd = os.open(cg, os.O_RDONLY | os.O_DIRECTORY)
    try: bpf(8, struct.pack("<IIII", cfd, pfd, 6, 0))   # BPF_PROG_ATTACH, BPF_CGROUP_DEVICE
    except OSError as e: print(f"BPF_PROG_ATTACH failed: {e}"); return 1
    print(f"  device program of {n} instructions, {len(rules)} rules, attached to {cg}")
    return 0

def walk():
    for root, dirs, files in os.walk("/dev"):
        for f in files:
            p = os.path.join(root, f)
            try: st = os.lstat(p)
            except OSError: continue
            if stat.S_ISCHR(st.st_mode): yield p, os.major(st.st_rdev), os.minor(st.st_rdev)

if sys.argv[1] == "show":
    print("--- DevicePolicy=closed entries"); closed = resolve(CLOSED)
    print("--- the unit's DeviceAllow= entries"); unit = resolve(UNIT)
    denied = []
    for p, ma, mi in sorted(walk()):
        if allows(unit, ma, mi): print(f"allowed node {p} c {ma}:{mi} (by the unit's DeviceAllow=)")
        elif allows(closed, ma, mi): print(f"allowed node {p} c {ma}:{mi} (by DevicePolicy=closed)")
        else: denied.append(f"{p}({ma}:{mi})")
    print(f"denied char nodes in /dev: {len(denied)}: {' '.join(denied[:40])}{' ...' if len(denied) > 40 else ''}")
elif sys.argv[1] == "attach":
    rules = resolve(CLOSED) + (resolve(UNIT) if sys.argv[3] == "nvidia" else [])
    sys.exit(attach(sys.argv[2], rules))
EOF
cat > $SBX/sbx_exec.py <<'EOF'
# A seccomp filter with the effect of the unit's SystemCallArchitectures=native, RestrictAddressFamilies=,
# RestrictNamespaces=, ProtectClock=, ProtectHostname=, ProtectKernelModules= and ProtectKernelLogs=
# for the system calls named below, then exec of argv[1:]. Needs no_new_privs (setpriv sets it).
import ctypes, errno, os, socket, struct, sys
LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
ALLOW, KILL, ERRNO = 0x7fff0000, 0x80000000, 0x00050000
prog, labels = [], {}
def S(code, k): prog.append([code, None, None, k])
def J(code, k, jt=None, jf=None): prog.append([code, jt, jf, k])
def L(name): labels[name] = len(prog)
S(LD, 4); J(JEQ, 0xC000003E, None, "kill")          # arch must be x86-64
S(LD, 0); J(JGE, 0x40000000, "kill")                # no x32 system calls
for nr in (272, 308): J(JEQ, nr, "eperm")           # unshare, setns
J(JEQ, 435, "enosys")                               # clone3 (flags unreadable): ENOSYS, as systemd does
J(JEQ, 56, "clone")
for nr in (227, 164, 159, 305): J(JEQ, nr, "eperm") # clock_settime settimeofday adjtimex clock_adjtime
for nr in (170, 171): J(JEQ, nr, "eperm")           # sethostname setdomainname
for nr in (175, 313, 176): J(JEQ, nr, "eperm")      # init_module finit_module delete_module
J(JEQ, 103, "eperm")                                # syslog
J(JEQ, 41, "sock")
S(RET, ALLOW)
L("sock"); S(LD, 16)
for fam in (1, 2, 10, 16): J(JEQ, fam, "allow")     # AF_UNIX AF_INET AF_INET6 AF_NETLINK
S(RET, ERRNO | errno.EAFNOSUPPORT)
L("clone"); S(LD, 16); J(JSET, 0x7E020080, "eperm", "allow")   # any CLONE_NEW* flag
L("allow"); S(RET, ALLOW)
L("eperm"); S(RET, ERRNO | errno.EPERM)
L("enosys"); S(RET, ERRNO | errno.ENOSYS)
L("kill"); S(RET, KILL)
raw = b""
for pc, (code, jt, jf, k) in enumerate(prog):
    t = labels[jt] - pc - 1 if jt else 0
    f = labels[jf] - pc - 1 if jf else 0
    raw += struct.pack("<HBBI", code, t, f, k)
class Fprog(ctypes.Structure): _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
buf = ctypes.create_string_buffer(raw, len(raw))
fp = Fprog(len(prog), ctypes.addressof(buf))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(22, 2, ctypes.byref(fp), 0, 0) != 0:   # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    print(f"  seccomp: {os.strerror(ctypes.get_errno())}; running without it")
else:
    res = []
    try: socket.socket(17, socket.SOCK_RAW).close(); res.append("AF_PACKET socket: allowed")
    except OSError as e: res.append(f"AF_PACKET socket: {errno.errorcode[e.errno]}")
    try: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(); res.append("AF_INET socket: ok")
    except OSError as e: res.append(f"AF_INET socket: {errno.errorcode[e.errno]}")
    if libc.unshare(0x10000000) == 0: res.append("unshare(CLONE_NEWUSER): allowed")
    else: res.append(f"unshare(CLONE_NEWUSER): {errno.errorcode[ctypes.get_errno()]}")
    print(f"  seccomp filter of {len(prog)} instructions in place; " + "; ".join(res))
sys.stdout.flush()
os.execv("/bin/bash", ["bash"] + sys.argv[1:])
EOF
}

# ---------------------------------------------------------------------------------------------
run_case() {  # name devmode bpfmode(nvidia|closed|none) expect(pass|fail)
  local name=$1 devmode=$2 bpf=$3 expect=$4 cg="" rc
  echo; echo "=== case $name: /dev=$devmode, device cgroup=$bpf, expected: $expect"
  if [ "$bpf" != none ]; then
    cg=/sys/fs/cgroup/vllm-sbx-$name
    mkdir "$cg" || { echo "  cannot create $cg"; return; }
    "$PY" "$SBX/devbpf.py" attach "$cg" "$bpf" || { echo "  BPF attach failed: case skipped"; rmdir "$cg"; return; }
  fi
  timeout 120 sh -c '[ -n "$1" ] && echo $$ > "$1/cgroup.procs"; shift; exec "$@"' _ "$cg" \
    unshare --mount --propagation private "$SELF" inner "$devmode"
  rc=$?
  [ -n "$cg" ] && rmdir "$cg"
  local got=fail; [ $rc -eq 0 ] && got=pass
  echo "=== case $name: exit $rc -> $got (expected $expect): $([ $got = $expect ] && echo MATCH || echo MISMATCH)"
  RESULTS="$RESULTS
$name: exit $rc, $got, expected $expect"
}

main() {
  [ "$(id -u)" = 0 ] || { echo "run as root"; exit 1; }
  echo "=== host"
  date -u; uname -r; echo "PID 1: $(cat /proc/1/comm)"
  cat /proc/driver/nvidia/version 2>/dev/null | head -1
  nvidia-smi -L 2>&1
  echo "--- /dev/nvidia*"; ls -l /dev/nvidia* 2>&1
  echo "--- /proc/devices (nvidia, pts, misc)"; grep -n -E 'Character|Block|nvidia|pts|misc' /proc/devices
  echo "--- cgroup: $(stat -fc %T /sys/fs/cgroup); controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>&1)"
  echo "--- tools"; for t in systemd-run unshare setpriv mknod nvcc python3; do echo "$t: $(command -v $t)"; done
  setpriv --version; unshare --version; nvcc --version | tail -2
  echo "--- systemd-run"
  timeout 20 systemd-run --wait --pipe -p DevicePolicy=closed -p DeviceAllow='char-nvidia-frontend rw' \
    -p User=nobody nvidia-smi -L 2>&1 || echo "systemd-run exit $?"

  echo "=== setup"
  id vllm >/dev/null 2>&1 || useradd --system --no-create-home --home-dir $STATE --shell /usr/sbin/nologin vllm \
    || { echo "vllm:x:990:990::$STATE:/usr/sbin/nologin" >> /etc/passwd; echo "vllm:x:990:" >> /etc/group; }
  id vllm
  mkdir -p $STATE $SBX && chown vllm:vllm $STATE && chmod 0750 $STATE
  write_helpers
  install -m 0755 "$SELF" $SBX/sandboxed_cuda.sh; SELF=$SBX/sandboxed_cuda.sh   # /root is hidden later
  nvcc -O2 -arch=sm_90 -o $SBX/vecadd $SBX/vecadd.cu -ldl && chmod 755 $SBX/vecadd || exit 1
  "$PY" $SBX/devbpf.py show | tee $SBX/devbpf-show.txt
  awk '/^allowed node/ && $3 ~ /^\/dev\/nvidia/ {print $3}' $SBX/devbpf-show.txt > $SBX/nvidia-nodes
  echo "private /dev NVIDIA nodes: $(tr '\n' ' ' < $SBX/nvidia-nodes)"

  echo; echo "=== case baseline: root, no sandbox"; $SBX/vecadd; echo "baseline exit $?"
  RESULTS=""
  run_case host-gpu      host         nvidia pass
  run_case host-nogpu    host         closed fail
  run_case private-gpu   private      none   pass
  run_case private-nogpu private-nonv none   fail
  run_case private-gpu-bpf private    nvidia pass
  echo; echo "=== summary$RESULTS"
}

case "${1:-main}" in
  inner) inner "$2" ;;
  as-vllm) as_vllm ;;
  main) main ;;
  *) echo "usage: $0 [main]"; exit 2 ;;
esac
