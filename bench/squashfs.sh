#!/usr/bin/env bash
# `vbuild export NAME --output X.squashfs` (vbuild's tar stream into
# tar2sqfs, zstd) against `mksquashfs TREE X -comp zstd` on the same tree,
# alternating, RUNS times each after a warm-up; prints the median and min
# wall time of each, the ratio vbuild/mksquashfs, and the 1-minute load
# average before each timed run (other work on the machine shows there).
# The tree: TREE when given (e.g. a bookworm minbase written by
# `vbuild build debian bookworm --variant minbase --output DIR/`), else such
# a tree built now (needs the live Debian mirror).
# Usage: bench/squashfs.sh [RUNS] [TREE]   (root; 5 runs by default)
set -euo pipefail
runs="${1:-5}"
tree="${2:-}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in mksquashfs tar2sqfs; do
  command -v "$t" >/dev/null || { echo "bench/squashfs.sh needs $t (scripts/host-deps.sh)" >&2; exit 1; }
done
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${VBUILD_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
fi
vb="$target/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-squashfs.XXXXXX)"
chmod 755 "$work"
export VBUILD_ROOT="$work"
name="bsqf$$"
trap 'rm -rf "$work"' EXIT
g="$work/guests/$name"
mkdir -p "$g"
if [ -z "$tree" ]; then
  "$vb" -q --root "$work/build" build debian bookworm --variant minbase --output "$work/built/"
  tree="$work/built"
fi
cp -a "$tree" "$g/rootfs"
cat > "$g/guest.toml" <<TOML
name = "$name"
distro = "debian"
release = "bookworm"
[init]
path = "/sbin/init"
kind = "other"
[net]
mode = "none"
TOML
r="$g/rootfs"
echo "tree: $(du -sh --apparent-size "$r" | cut -f1), $(find "$r" | wc -l) entries; $(nproc) cores"
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f\n", m, a[1]}'; }
ms() { local t0 t1; cut -d" " -f1 /proc/loadavg >> "$work/load.$1"; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
run_vbuild() { rm -f "$work/v.squashfs"; "$vb" -q export "$name" --output "$work/v.squashfs"; }
run_mksquashfs() { rm -f "$work/m.squashfs"; mksquashfs "$r" "$work/m.squashfs" -comp zstd -quiet -no-progress; }
run_vbuild; run_mksquashfs   # warm-up (page cache)
: > "$work/v.ms"; : > "$work/m.ms"
for _ in $(seq 1 "$runs"); do
  ms run_vbuild >> "$work/v.ms"
  ms run_mksquashfs >> "$work/m.ms"
done
read -r vm vmin < <(median < "$work/v.ms")
read -r mm mmin < <(median < "$work/m.ms")
echo "vbuild export .squashfs   median ${vm} ms  min ${vmin} ms  $(stat -c %s "$work/v.squashfs") bytes"
echo "mksquashfs -comp zstd     median ${mm} ms  min ${mmin} ms  $(stat -c %s "$work/m.squashfs") bytes"
echo "ratio vbuild/mksquashfs (median): $(echo "scale=2; $vm / $mm" | bc)"
echo "load average before each run: vbuild $(tr '\n' ' ' < "$work/load.run_vbuild")| mksquashfs $(tr '\n' ' ' < "$work/load.run_mksquashfs")"
