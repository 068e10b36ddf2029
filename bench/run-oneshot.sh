#!/usr/bin/env bash
# Time of a one-shot context `vbuild run --rootfs DIR -- /bin/true` against
# `runc run` and `systemd-nspawn -D DIR /bin/true` on the same busybox rootfs,
# in one hyperfine run (alternating, warm-up, many runs). Target: vbuild at
# most 0.5 x runc's time and far under nspawn. Also the network cost: the
# same with and without a network context (target: <= 20 ms added).
# Usage: bench/run-oneshot.sh [RUNS]   (root; installs runc, nspawn, hyperfine)
set -euo pipefail
runs="${1:-50}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
VBUILD_BENCH_DEPS=1 bash "$here/scripts/host-deps.sh"
cargo build --release --locked --manifest-path "$here/Cargo.toml" --bin vbuild --bin vbuild-supervisor -q
vb="$here/target/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-run.XXXXXX)"
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

python3 - "$work/run.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
for k, v in med.items():
    print(f"{k:10s} median {v:7.1f} ms")
print(f"vbuild/runc = {med['vbuild']/med['runc']:.2f} (target <= 0.5); vbuild/nspawn = {med['vbuild']/med['nspawn']:.2f}")
print(f"network context adds {med['vbuild-net']-med['vbuild']:.1f} ms (target <= 20)")
PY
