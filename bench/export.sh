#!/usr/bin/env bash
# `vbuild export NAME --output X.tar.zst` against `tar -I 'zstd -T0' -cf`
# on the same tree, alternating, RUNS times each after a warm-up; prints
# the median and min wall time of each, the ratio vbuild/tar, and the
# 1-minute load average before each timed run (other work on the machine
# shows there).
# The tree: TREE when given (e.g. a copy of a bookworm minbase rootfs),
# else a bookworm minbase built with vbuild (needs the live Debian mirror).
# Usage: bench/export.sh [RUNS] [TREE]   (root; 5 runs by default)
set -euo pipefail
runs="${1:-5}"
tree="${2:-}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v zstd >/dev/null || { echo "bench/export.sh needs zstd (apt-get install zstd)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${VBUILD_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
fi
vb="$target/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-export.XXXXXX)"
chmod 755 "$work"
export VBUILD_ROOT="$work"
name="bexp$$"
trap 'rm -rf "$work"' EXIT
g="$work/guests/$name"
mkdir -p "$g"
if [ -n "$tree" ]; then
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
else
  "$vb" -q debian bookworm --name "$name" --variant minbase --no-init --net-mode none --copy
fi
r="$g/rootfs"
echo "tree: $(du -sh --apparent-size "$r" | cut -f1), $(find "$r" | wc -l) entries; $(nproc) cores"
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f\n", m, a[1]}'; }
ms() { local t0 t1; cut -d" " -f1 /proc/loadavg >> "$work/load.$1"; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
run_vbuild() { rm -f "$work/v.tar.zst"; "$vb" -q export "$name" --output "$work/v.tar.zst"; }
run_tar() { rm -f "$work/t.tar.zst"; tar -I 'zstd -T0' -cf "$work/t.tar.zst" -C "$r" .; }
run_vbuild; run_tar   # warm-up (page cache)
: > "$work/v.ms"; : > "$work/t.ms"
for _ in $(seq 1 "$runs"); do
  ms run_vbuild >> "$work/v.ms"
  ms run_tar >> "$work/t.ms"
done
read -r vm vmin < <(median < "$work/v.ms")
read -r tm tmin < <(median < "$work/t.ms")
echo "vbuild export       median ${vm} ms  min ${vmin} ms  $(stat -c %s "$work/v.tar.zst") bytes"
echo "tar -I 'zstd -T0'   median ${tm} ms  min ${tmin} ms  $(stat -c %s "$work/t.tar.zst") bytes"
echo "ratio vbuild/tar (median): $(echo "scale=2; $vm / $tm" | bc)"
echo "load average before each run: vbuild $(tr '\n' ' ' < "$work/load.run_vbuild")| tar $(tr '\n' ' ' < "$work/load.run_tar")"
