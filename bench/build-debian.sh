#!/usr/bin/env bash
# Build time and peak memory of `vbuild debian RELEASE` (minbase) against
# mmdebstrap on the same machine, in one run, alternating the two tools so
# that the erratic disk of these VMs hits both alike. One warm-up each, then
# RUNS rounds; reports medians and the ratios the project targets:
#   warm vbuild <= 0.5 x mmdebstrap, cold vbuild <= 0.75 x, peak RSS < 200 MB.
# vbuild builds with --no-init: the same package set as mmdebstrap minbase.
# "cold" = empty package cache for both; "warm" = both keep their .debs
# (vbuild its own cache, mmdebstrap a synced apt archive dir).
# Usage: bench/build-debian.sh [RELEASE] [RUNS]   (root; installs mmdebstrap)
set -euo pipefail
release="${1:-bookworm}"
runs="${2:-3}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
VBUILD_BENCH_DEPS=1 bash "$here/scripts/host-deps.sh"
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }
cargo build --release --locked --manifest-path "$here/Cargo.toml" --bin vbuild --bin vbuild-supervisor -q
vb="$here/target/release/vbuild"
mirror="${MIRROR:-http://deb.debian.org/debian}"
work="$(mktemp -d /var/tmp/vbuild-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt-cache"

# Each timed run prints "seconds maxrss_kb" to the results file.
timed() { # label cmd...
  local label="$1"; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  echo "$label $(cat "$work/t")" | tee -a "$work/results"
}
vbuild_cold() { rm -rf "$work/vb"; timed vbuild-cold "$vb" --quiet --root "$work/vb" debian "$release" --name bench --no-init --net-mode none --mirror "$mirror"; }
vbuild_warm() { "$vb" --quiet --root "$work/vbw" delete bench >/dev/null 2>&1 || true
  timed vbuild-warm "$vb" --quiet --root "$work/vbw" debian "$release" --name bench --no-init --net-mode none --mirror "$mirror"; }
mm() { # label extra-args...
  local label="$1"; shift
  rm -rf "$work/mm"
  timed "$label" mmdebstrap --quiet --variant=minbase --mode=root "$@" "$release" "$work/mm" "$mirror"
  rm -rf "$work/mm"
}
mm_cold() { mm mmdebstrap-cold; }
mm_warm() { mm mmdebstrap-warm --skip=essential/unlink --skip=download/empty \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $work/apt-cache /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives $work/apt-cache"; }

echo "== warm-up (fills both caches)"
"$vb" --quiet --root "$work/vbw" debian "$release" --name bench --no-init --net-mode none --mirror "$mirror" >/dev/null
mm_warm >/dev/null; : > "$work/results"
for i in $(seq "$runs"); do
  echo "== round $i/$runs"
  vbuild_warm; mm_warm; vbuild_cold; mm_cold
done

python3 - "$work/results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for label, sec, rss in rows:
    by.setdefault(label, []).append((float(sec), int(rss)))
med = {k: (st.median(s for s, _ in v), max(r for _, r in v) / 1024) for k, v in by.items()}
for k in sorted(med):
    print(f"{k:16s} median {med[k][0]:6.2f} s   peak RSS {med[k][1]:6.1f} MB   runs {[s for s,_ in by[k]]}")
for mode, target in (("warm", 0.5), ("cold", 0.75)):
    r = med[f"vbuild-{mode}"][0] / med[f"mmdebstrap-{mode}"][0]
    print(f"{mode}: vbuild/mmdebstrap = {r:.2f} (target <= {target}) {'OK' if r <= target else 'MISSED'}")
rss = max(med["vbuild-warm"][1], med["vbuild-cold"][1])
print(f"vbuild peak RSS {rss:.1f} MB (target < 200) {'OK' if rss < 200 else 'MISSED'}")
PY
