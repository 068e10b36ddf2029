#!/usr/bin/env bash
# Time of a one-shot context `vbuild run --rootfs DIR -- /bin/true` against
# `runc run` and `systemd-nspawn -D DIR /bin/true` on the same busybox rootfs,
# in one hyperfine run (alternating, warm-up, many runs). Target: vbuild at
# most 0.5 x runc's time and far under nspawn. Also the network cost: a
# guest's `vbuild start` with and without its network context (target:
# <= 20 ms added), and the same one-shot run with and without --net.
# Usage: bench/run-oneshot.sh [RUNS]   (root; installs runc, nspawn, hyperfine)
set -euo pipefail
runs="${1:-50}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
VBUILD_BENCH_DEPS=1 bash "$here/scripts/host-deps.sh"
cargo build --release --locked --manifest-path "$here/Cargo.toml" --bin vbuild --bin vbuild-supervisor -q
vb="$here/target/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-run.XXXXXX)"
had_bridge="$([ -e /sys/class/net/vbuild0 ] && echo yes || true)"
trap 'rm -rf "$work"' EXIT

# A busybox rootfs: /bin/true is busybox.
root="$work/bundle/rootfs"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,usr/bin,usr/sbin}
cp /bin/busybox "$root/bin/busybox"
for t in sh true false cat echo ls ps sleep; do ln -sf busybox "$root/bin/$t"; done
: > "$root/etc/os-release"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"\/bin\/true"/' config.json)

hyperfine --warmup 5 --runs "$runs" -N --export-json "$work/run.json" \
  -n vbuild "$vb --root $work/vb run --rootfs $root -- /bin/true" \
  -n vbuild-net "$vb --root $work/vb run --net --rootfs $root -- /bin/true" \
  -n runc "runc --root $work/runc run -b $work/bundle vbuild-bench" \
  -n nspawn "systemd-nspawn -q --register=no --keep-unit -D $root /bin/true"

# The network's cost on a guest's start (the issue's target): two guests on
# the same busybox tree (init = a shell that sleeps), one with --net-mode
# none, one on the default bridge; only `vbuild start` is timed, the stop
# runs in --prepare before each start.
groot="$work/groot"
cp -a "$root" "$groot"
printf '#!/bin/sh\ntrap "exit 0" TERM\nsleep 100000 & wait\n' > "$groot/sbin/init"; chmod 755 "$groot/sbin/init"
for g in nonet net; do
  mkdir -p "$work/vb/guests/$g"
  cp -a "$groot" "$work/vb/guests/$g/rootfs"
  printf 'name = "%s"\ndistro = "debian"\nrelease = "bookworm"\n[init]\npath = "/sbin/init"\nkind = "other"\n[net]\nmode = "none"\n' "$g" \
    > "$work/vb/guests/$g/guest.toml"
done
"$vb" --root "$work/vb" set net --net-mode bridge --ip auto >/dev/null
stop_all() { "$vb" --root "$work/vb" stop nonet >/dev/null 2>&1 || true; "$vb" --root "$work/vb" stop net >/dev/null 2>&1 || true; }
cleanup() {
  stop_all
  "$vb" --root "$work/vb" delete net >/dev/null 2>&1 || true
  # The default network's bridge, if this run made it.
  [ -n "$had_bridge" ] || "$vb" --root "$work/vb" net delete vbuild0 >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
hyperfine --warmup 3 --runs "$runs" -N --export-json "$work/start.json" \
  --prepare "sh -c '$vb --root $work/vb stop nonet >/dev/null 2>&1 || true'" -n start-nonet "$vb --root $work/vb start nonet" \
  --prepare "sh -c '$vb --root $work/vb stop net >/dev/null 2>&1 || true'" -n start-net "$vb --root $work/vb start net" 2>&1 | grep -v "^ *Warning: Command" || true
stop_all

python3 - "$work/run.json" "$work/start.json" <<'PY'
import json, sys
med = {}
for f in sys.argv[1:]:
    for x in json.load(open(f))["results"]:
        med[x["command"]] = x["median"] * 1000
for k, v in med.items():
    print(f"{k:12s} median {v:7.1f} ms")
print(f"vbuild/runc = {med['vbuild']/med['runc']:.2f} (target <= 0.5); vbuild/nspawn = {med['vbuild']/med['nspawn']:.2f}")
print(f"network on start adds {med['start-net']-med['start-nonet']:.1f} ms (target <= 20)")
print(f"network on a one-shot run (setup + teardown) adds {med['vbuild-net']-med['vbuild']:.1f} ms")
PY
