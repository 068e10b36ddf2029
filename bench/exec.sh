#!/usr/bin/env bash
# Wall time of `vbuild exec NAME -- true` on a busybox guest (the host's
# static busybox with a shell-script init), with and without the guest's
# own user namespace: RUNS runs each after a warm-up, median and min in ms.
# Usage: bench/exec.sh [RUNS]   (root; 20 runs by default)
set -euo pipefail
runs="${1:-20}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "bench/exec.sh needs busybox-static at /bin/busybox" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${VBUILD_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-runtime --bin vbuild-supervisor -q
fi
vb="$target/release/vbuild"
export VBUILD_SUPERVISOR="$target/release/vbuild-supervisor"
work="$(mktemp -d /var/tmp/vbuild-bench-exec.XXXXXX)"
chmod 755 "$work"
export VBUILD_ROOT="$work"
name="bx$$"
cleanup() {
  "$vb" -q stop "$name" --timeout 2 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
r="$work/guests/$name/rootfs"
mkdir -p "$r"/{bin,sbin,etc,root,tmp,proc,sys,dev,run}
cp /bin/busybox "$r/bin/busybox"
for t in sh sleep true cat; do ln -s busybox "$r/bin/$t"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
printf '#!/bin/sh\ntrap "exit 0" TERM\nwhile :; do sleep 1 & wait $!; done\n' > "$r/sbin/init"
chmod 755 "$r/sbin/init"
cat > "$work/guests/$name/guest.toml" <<TOML
name = "$name"
distro = "busybox"
release = "bench"
[init]
path = "/sbin/init"
kind = "other"
[net]
mode = "none"
TOML
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "median %.1f ms  min %.1f ms  (n=%d)\n", m, a[1], NR}'; }
# One mode per argument set: "" (default) and "--userns" / "--privileged",
# whichever this build knows.
modes=("")
if "$vb" start --help | grep -q -- '--userns'; then modes+=("--userns"); fi
if "$vb" start --help | grep -q -- '--privileged'; then modes+=("--privileged"); fi
for m in "${modes[@]}"; do
  # shellcheck disable=SC2086
  "$vb" -q start "$name" $m
  for _ in 1 2 3; do "$vb" exec "$name" -- true; done
  for _ in $(seq 1 "$runs"); do
    t0=$(date +%s%N); "$vb" exec "$name" -- true </dev/null; t1=$(date +%s%N)
    echo "scale=3; ($t1-$t0)/1000000" | bc
  done | { printf 'exec -- true %-13s ' "${m:-(default)}"; median; }
  "$vb" -q stop "$name" --timeout 2
done
