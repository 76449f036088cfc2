#!/bin/bash
# TEST DOUBLE of NVIDIA's CUDA apt repository (debian12/x86_64), for the molecule scenario
# nvidia_driver: NVIDIA's repository cannot be reached from the lab. The packages carry NVIDIA's
# package names, versions and dependencies, built with equivs; they hold no driver. The
# nvidia-smi they install is a script that reports one GB10 running the package's driver version
# (what blackwell.vllm.gpu_info reads after the install), nvidia-persistenced a unit that sleeps, and
# the kernel module package no module and no DKMS (the lab has no loadable modules).
#
#   test-double-nvidia-repo.sh DIR            two driver branches (570.195.03, 580.95.05), two toolkits
#   test-double-nvidia-repo.sh DIR --update   the same plus a newer build of branch 580 (580.105.08)
#
# The .debs are built once into DIR/pool (a cache, never in git); each call re-indexes DIR/repo/debian12/x86_64
# (a flat repository, as NVIDIA's: deb [signed-by=...] URL/ /) and signs it with a key of its own in DIR/gnupg,
# published as the repository's 3bf863cc.pub like NVIDIA's.
set -euo pipefail
dir=$(realpath -m "$1"); update=${2:-}
pool=$dir/pool repo=$dir/repo/debian12/x86_64
mkdir -p "$pool" "$repo"
command -v equivs-build >/dev/null && command -v apt-ftparchive >/dev/null || {
  echo "needs equivs and apt-utils on the controller: apt-get install equivs dpkg-dev apt-utils" >&2; exit 1; }

DRIVERS=(570.195.03 580.95.05 580.105.08)
TOOLKITS=("12-8 12.8.93" "13-0 13.0.88")

control() {  # name version depends recommends description [files...]
  local name=$1 ver=$2 dep=$3 rec=$4 desc=$5; shift 5
  printf 'Section: misc\nPriority: optional\nStandards-Version: 3.9.2\nPackage: %s\nVersion: %s\nMaintainer: blackwell.vllm test double <test-double@invalid>\nArchitecture: amd64\n' "$name" "$ver"
  [ -n "$dep" ] && printf 'Depends: %s\n' "$dep"
  [ -n "$rec" ] && printf 'Recommends: %s\n' "$rec"
  [ $# -gt 0 ] && printf 'Files: %s\n' "$(printf ' %s\n' "$@" | sed '1s/^ //')"
  printf 'Description: TEST DOUBLE of NVIDIA %s\n blackwell.vllm test double: no driver inside.\n' "$desc"
}


for v in "${DRIVERS[@]}"; do
  V=$v-1 files=$(mktemp -d)
  cat > "$files/nvidia-smi" <<SMI
#!/bin/sh
# TEST DOUBLE of nvidia-smi (blackwell.vllm): one GB10 on driver $v.
case "\$*" in
  *--query-gpu=*) echo "0, NVIDIA GB10, GPU-5e1f0a3c-7b2d-4c9e-9a41-0d6b8f2e7c11, 0000000F:01:00.0, 12.1, [N/A], Enabled, [N/A], [N/A], [N/A], [N/A], $v" ;;
  *) printf 'NVIDIA-SMI version  : %s\nNVML version        : %s\nDRIVER version      : %s\nCUDA Version        : 13.0\n' $v ${v%.*} $v ;;
esac
SMI
  printf '#!/bin/sh\n# TEST DOUBLE of nvidia-persistenced (blackwell.vllm)\nexec sleep infinity\n' > "$files/nvidia-persistenced"
  printf '[Unit]\nDescription=NVIDIA Persistence Daemon (blackwell.vllm TEST DOUBLE)\n[Service]\nExecStart=/usr/bin/nvidia-persistenced\n[Install]\nWantedBy=multi-user.target\n' > "$files/nvidia-persistenced.service"
  printf 'TEST DOUBLE of the NVIDIA open kernel module %s source (blackwell.vllm): no module inside.\n' "$v" > "$files/README.test-double"
  chmod 755 "$files/nvidia-smi" "$files/nvidia-persistenced"
  mk() { local name=$1; shift; local w; w=$(mktemp -d); cp -a "$files/." "$w/"; control "$name" "$V" "$@" > "$w/ctl"
         [ -e "$pool/${name}_${V}_amd64.deb" ] || { (cd "$w" && equivs-build ctl >build.log 2>&1 || { cat build.log >&2; exit 1; }) && mv "$w/${name}_${V}_amd64.deb" "$pool/"; }
         rm -rf "$w"; }
  mk nvidia-kernel-open-dkms "" "" "open kernel module source $v (DKMS)" "README.test-double /usr/src/nvidia-$v"
  mk libnvidia-ml1 "" "" "Management Library (NVML) $v"
  mk libcuda1 "" "nvidia-kernel-open-dkms (= $V) | nvidia-kernel-dkms (= $V)" "CUDA driver library $v"
  mk nvidia-smi "libnvidia-ml1 (= $V)" "" "System Management Interface $v" "nvidia-smi /usr/bin"
  mk nvidia-persistenced "libnvidia-ml1 (= $V)" "" "persistence daemon $v" "nvidia-persistenced /usr/bin" \
     "nvidia-persistenced.service /lib/systemd/system"
  mk nvidia-driver-cuda "nvidia-smi (= $V), libcuda1 (= $V), nvidia-persistenced (= $V), nvidia-kernel-open-dkms (= $V) | nvidia-kernel-dkms (= $V)" \
     "" "driver CUDA support $v"
  rm -rf "$files"
done
for t in "${TOOLKITS[@]}"; do
  set -- $t; w=$(mktemp -d); control "cuda-toolkit-$1" "$2-1" "" "" "CUDA Toolkit $2 meta-package (the lab mounts the real toolkit)" > "$w/ctl"
  [ -e "$pool/cuda-toolkit-$1_$2-1_amd64.deb" ] || { (cd "$w" && equivs-build ctl >build.log 2>&1 || { cat build.log >&2; exit 1; }) && mv "$w/cuda-toolkit-$1_$2-1_amd64.deb" "$pool/"; }
  rm -rf "$w"
done

# The index: every package, the newer 580 build only with --update.
rm -f "$repo"/*.deb
for deb in "$pool"/*.deb; do
  [[ $deb == *580.105.08* && $update != --update ]] && continue
  ln "$deb" "$repo/"
done
export GNUPGHOME=$dir/gnupg
if [ ! -d "$GNUPGHOME" ]; then
  mkdir -m 700 "$GNUPGHOME"
  gpg --batch --quiet --passphrase '' --quick-gen-key "blackwell.vllm test double of NVIDIA's CUDA repository" ed25519 sign never
fi
gpg --batch --armor --export > "$repo/3bf863cc.pub"
cd "$repo"
apt-ftparchive packages . > Packages
gzip -9nkf Packages
apt-ftparchive -o APT::FTPArchive::Release::Origin="blackwell.vllm test double" release . > Release
rm -f InRelease Release.gpg
gpg --batch --yes --clearsign -o InRelease Release
echo "test double repository: $repo ($(ls *.deb | wc -l) packages${update:+, with the 580 update})"
