#!/usr/bin/env bash
# Boot of a systemd guest to `running`: vbuild against
# `systemd-nspawn -b --register=no --keep-unit` on the same rootfs,
# alternating, RUNS boots each, comparing systemd's own "Startup finished
# in ... (userspace)" (medians). Also the wall time of `vbuild start --wait`
# and `vbuild stop`, and the supervisor's memory per running guest (VmRSS,
# target < 2 MB; nspawn's is printed beside it).
# The rootfs (minbase + systemd-sysv) is made once with mmdebstrap and kept
# in /var/tmp/vbuild-bench-start/RELEASE.
# Usage: bench/start.sh [RELEASE] [RUNS]   (root; bookworm, 7 runs by default)
set -euo pipefail
release="${1:-bookworm}"
runs="${2:-7}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in mmdebstrap systemd-nspawn nsenter python3; do
  command -v "$t" >/dev/null || { echo "bench/start.sh needs $t" >&2; exit 1; }
done
cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-runtime --bin vbuild-supervisor -q
target="${CARGO_TARGET_DIR:-$here/target}"
vb="$target/release/vbuild"
export VBUILD_SUPERVISOR="$target/release/vbuild-supervisor"

cache=/var/tmp/vbuild-bench-start
rootfs="$cache/$release"
if [ ! -x "$rootfs/sbin/init" ]; then
  mkdir -p "$cache"
  mmdebstrap --variant=minbase --include=systemd-sysv "$release" "$rootfs" http://deb.debian.org/debian >&2
fi
work="$(mktemp -d /var/tmp/vbuild-bench-start.XXXXXX)"
export VBUILD_ROOT="$work"
name=bench
cleanup() {
  "$vb" -q stop "$name" --timeout 5 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/guests/$name"
ln -s "$rootfs" "$work/guests/$name/rootfs"
cat > "$work/guests/$name/guest.toml" <<EOF
name = "$name"
distro = "debian"
release = "$release"
[init]
path = "/sbin/init"
kind = "systemd"
[net]
mode = "none"
EOF

userspace_ms() { sed -n 's/.*Startup finished in \(.*\) (userspace).*/\1/p' | python3 -c '
import sys, re
t = sys.stdin.read().strip()
ms = 0.0
for v, u in re.findall(r"([0-9.]+)(ms|s|min)", t):
    ms += float(v) * {"ms": 1, "s": 1000, "min": 60000}[u]
print(round(ms))'; }
now() { date +%s.%N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

results="$work/results"
for i in $(seq 1 "$runs"); do
  t0=$(now); "$vb" -q start "$name" --wait; t1=$(now)
  v=$("$vb" exec "$name" -- systemd-analyze | userspace_ms)
  sup=$(python3 -c "import json;print(json.load(open('$work/run/$name/state.json'))['supervisor_pid'])")
  vrss=$(rss_kb "$sup")
  t2=$(now); "$vb" -q stop "$name"; t3=$(now)

  systemd-nspawn -q -b --register=no --keep-unit --console=read-only -D "$rootfs" >/dev/null 2>&1 &
  np=$!
  leader=""
  for _ in $(seq 1 400); do
    sleep 0.05
    leader=$(pgrep -P "$np" | head -1 || true)
    [ -n "$leader" ] && nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)' && break
  done
  n=$(nsenter -t "$leader" -a systemd-analyze | userspace_ms)
  nrss=$(rss_kb "$np")
  kill "$np"; wait "$np" 2>/dev/null || true
  echo "$v $n $(python3 -c "print(round(($t1-$t0)*1000))") $(python3 -c "print(round(($t3-$t2)*1000))") $vrss $nrss" | tee -a "$results" >&2
done

python3 - "$results" "$release" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"{sys.argv[2]}: systemd userspace boot to running, median of {len(rows)}:")
print(f"  vbuild  {med(0):6.0f} ms   nspawn {med(1):6.0f} ms   (target: vbuild <= nspawn)")
print(f"  vbuild start --wait {med(2):.0f} ms wall, stop {med(3):.0f} ms wall")
print(f"  supervisor VmRSS {med(4):.0f} kB (target < 2048), systemd-nspawn {med(5):.0f} kB")
PY
