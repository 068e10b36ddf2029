#!/usr/bin/env bash
# `vbuild-runc create` + `start` against runc's on the same busybox bundle
# (/bin/true, runc's default config), alternating run by run after a
# warm-up; prints each side's median and the ratio. delete is not timed.
# Usage: bench/oci.sh [RUNS]   (root; installs runc)
set -euo pipefail
runs="${1:-30}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
VBUILD_BENCH_DEPS=1 bash "$here/scripts/host-deps.sh"
target="${CARGO_TARGET_DIR:-$here/target}"
cargo build --release --locked --manifest-path "$here/Cargo.toml" --bin vbuild-runc -q
vr="$target/release/vbuild-runc"
work="$(mktemp -d /var/tmp/vbuild-bench-oci.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/bundle/rootfs"
mkdir -p "$root"/{bin,proc,sys,dev}
cp /bin/busybox "$root/bin/busybox"
ln -sf busybox "$root/bin/true"
(cd "$work/bundle" && runc spec && sed -i 's/"terminal": true/"terminal": false/; s/"sh"/"\/bin\/true"/' config.json)

# One create+start, in nanoseconds; then waits for the exit and deletes.
one() { # RUNTIME ROOT ID
  local t0 t1
  t0=$(date +%s%N)
  "$1" --root "$2" create --bundle "$work/bundle" "$3" </dev/null >/dev/null 2>&1
  "$1" --root "$2" start "$3" >/dev/null
  t1=$(date +%s%N)
  for _ in $(seq 200); do
    "$1" --root "$2" state "$3" 2>/dev/null | grep -q '"stopped"' && break
    sleep 0.01
  done
  "$1" --root "$2" delete --force "$3" >/dev/null
  echo $(( (t1 - t0) / 1000 ))
}
for i in 1 2 3; do one "$vr" "$work/vr" w$i >/dev/null; one runc "$work/runc" w$i >/dev/null; done
: > "$work/vr.us"; : > "$work/runc.us"
for i in $(seq "$runs"); do
  one "$vr" "$work/vr" b$i >> "$work/vr.us"
  one runc "$work/runc" b$i >> "$work/runc.us"
done
python3 - "$work/vr.us" "$work/runc.us" <<'PY'
import statistics, sys
vr = [int(l) for l in open(sys.argv[1])]
rc = [int(l) for l in open(sys.argv[2])]
mv, mr = statistics.median(vr), statistics.median(rc)
print(f"create+start, {len(vr)} runs each, alternating")
print(f"  vbuild-runc median {mv/1000:.1f} ms")
print(f"  runc        median {mr/1000:.1f} ms")
print(f"  ratio vbuild-runc/runc {mv/mr:.2f}")
PY
