#!/usr/bin/env bash
# The cost of the user namespace: `vbuild start --wait` and
# `vbuild exec -- true` for a default (unprivileged: own user namespace,
# id range, id-mapped root) guest against the same guest `--privileged`,
# and against `systemd-nspawn -U` (its own user namespace, id-mapped root:
# --private-users-ownership=map) on the same rootfs: boot to running, and
# a one-shot `/bin/true`. Alternating, RUNS rounds, medians.
# Targets (issue 9): at most 10 ms added to start, exec at most 60 ms.
# The rootfs (minbase + systemd-sysv) is made once with mmdebstrap and kept
# in /var/tmp/vbuild-bench-start/RELEASE (shared with bench/start.sh); it
# stays owned by host root (never chowned).
# Needs: root, mmdebstrap, systemd-container (VBUILD_BENCH_DEPS=1 scripts/host-deps.sh).
# Usage: bench/userns.sh [RELEASE] [RUNS]   (bookworm, 9 runs by default)
set -euo pipefail
release="${1:-bookworm}"
runs="${2:-9}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in mmdebstrap systemd-nspawn nsenter python3; do
  command -v "$t" >/dev/null || { echo "bench/userns.sh needs $t (VBUILD_BENCH_DEPS=1 scripts/host-deps.sh)" >&2; exit 1; }
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
work="$(mktemp -d /var/tmp/vbuild-bench-userns.XXXXXX)"
# The guest's host uid must be able to reach its rootfs (mktemp makes 0700).
chmod 755 "$work"
export VBUILD_ROOT="$work"
name=benchu
cleanup() {
  "$vb" -q stop "$name" --timeout 5 >/dev/null 2>&1 || true
  umount "$work/guests/$name/rootfs" 2>/dev/null || true
  "$vb" -q delete "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/guests/$name"
# A bind mount, not a symlink: the id-mapped root is attached onto the
# guest's rootfs path itself, which must be a directory.
mkdir -p "$work/guests/$name/rootfs"
mount --bind "$rootfs" "$work/guests/$name/rootfs"
cat > "$work/guests/$name/guest.toml" <<TOML
name = "$name"
distro = "debian"
release = "$release"
[init]
path = "/sbin/init"
kind = "systemd"
[net]
mode = "none"
TOML

ms() { python3 -c "import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000, 1))" "$1" "$2"; }
now() { date +%s.%N; }

# One round of vbuild: start --wait, five execs of `true` (the median is kept), stop.
vbuild_round() {
  local t0 t1 e=()
  t0=$(now); "$vb" -q start "$name" --wait "$@"; t1=$(now)
  for _ in 1 2 3 4 5; do
    local a b; a=$(now); "$vb" exec "$name" -- true; b=$(now); e+=("$(ms "$a" "$b")")
  done
  "$vb" -q stop "$name" >/dev/null
  echo "$(ms "$t0" "$t1") $(printf '%s\n' "${e[@]}" | sort -n | sed -n 3p)"
}

# One round of nspawn -U: boot to running (polled as in bench/start.sh), and a one-shot true.
nspawn_round() {
  local t0 t1 a b np leader=""
  t0=$(now)
  systemd-nspawn -q -U --private-users-ownership=map -b --register=no --keep-unit \
    --console=read-only -D "$rootfs" >/dev/null 2>&1 &
  np=$!
  for _ in $(seq 1 2000); do
    leader=$(pgrep -P "$np" | head -1 || true)
    [ -n "$leader" ] && nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null | grep -qE '^(running|degraded)' && break
    sleep 0.01
  done
  t1=$(now)
  a=$(now); nsenter -t "$leader" -a true; b=$(now)
  kill "$np"; wait "$np" 2>/dev/null || true
  local c d
  c=$(now)
  systemd-nspawn -q -U --private-users-ownership=map --register=no --keep-unit -D "$rootfs" /bin/true >/dev/null 2>&1
  d=$(now)
  echo "$(ms "$t0" "$t1") $(ms "$a" "$b") $(ms "$c" "$d")"
}

vbuild_round >/dev/null   # warm-up (page cache, id range allocation)
results="$work/results"
for i in $(seq 1 "$runs"); do
  u=$(vbuild_round)
  p=$(vbuild_round --privileged)
  n=$(nspawn_round)
  echo "$u $p $n" | tee -a "$results" >&2
done

python3 - "$results" "$release" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
med = lambda i: statistics.median(r[i] for r in rows)
print(f"{sys.argv[2]}, median of {len(rows)} alternating rounds:")
print(f"  start --wait  unprivileged {med(0):7.1f} ms   privileged {med(2):7.1f} ms   added {med(0)-med(2):+6.1f} ms (target <= 10)")
print(f"  exec -- true  unprivileged {med(1):7.1f} ms   privileged {med(3):7.1f} ms   (target <= 60)")
print(f"  systemd-nspawn -U: boot to running {med(4):7.1f} ms (polled), nsenter true {med(5):.1f} ms, one-shot /bin/true {med(6):.1f} ms")
PY
