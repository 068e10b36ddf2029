#!/usr/bin/env bash
# Guest creation from an existing template, side by side, alternating,
# RUNS times each (medians, and vbuild's ratio to each other tool):
#   vbuild   `vbuild debian RELEASE --name ... --offline --net-mode none`
#            (the template exists: only the guest's own layer is made)
#   cp -a    a full copy of the same template tree
#   lxc-copy `lxc-copy -s -B overlayfs` of an LXC container whose rootfs is
#            that tree (an overlay snapshot), when lxc is installed
# Time is wall time of the whole command; disk is the new blocks it
# allocated (du -sB1 of what it made, before page cache writeback matters).
# The template is built once (online) in a temporary --root.
# Usage: bench/template.sh [RELEASE] [RUNS]   (root; bookworm, 15 runs)
set -euo pipefail
release="${1:-bookworm}"
runs="${2:-15}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench/template.sh needs python3" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${VBUILD_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
fi
vb="$target/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-template.XXXXXX)"
chmod 755 "$work"
export VBUILD_ROOT="$work/root"
export VBUILD_IDRANGES="$work/id-ranges.toml"
lxcpath="$work/lxc"
have_lxc=0
command -v lxc-copy >/dev/null && have_lxc=1
cleanup() {
  for d in "$VBUILD_ROOT"/guests/*/; do
    [ -d "$d" ] && "$vb" -q delete "$(basename "$d")" >/dev/null 2>&1 || true
  done
  if [ "$have_lxc" = 1 ] && [ -d "$lxcpath" ]; then
    for c in "$lxcpath"/*/; do
      [ -d "$c" ] && lxc-destroy -P "$lxcpath" -n "$(basename "$c")" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "bench/template.sh: building the $release template once (online)" >&2
"$vb" -q debian "$release" --name tb-seed --net-mode none >/dev/null
id=$(sed -n 's/^template = "\(.*\)"/\1/p' "$VBUILD_ROOT/guests/tb-seed/guest.toml")
tpl="$VBUILD_ROOT/templates/$id/rootfs"
echo "template $id: $(du -sB1 "$tpl" | cut -f1) bytes, $(find "$tpl" | wc -l) entries" >&2

if [ "$have_lxc" = 1 ]; then
  # lxc-copy -s wants the container name inside the rootfs path: name the
  # base container after the template id.
  base="$id"
  mkdir -p "$lxcpath/$base"
  cat > "$lxcpath/$base/config" <<EOF
lxc.uts.name = tbase
lxc.rootfs.path = dir:$tpl
lxc.net.0.type = empty
EOF
fi

now() { date +%s%N; }
ms() { python3 -c "print(round(($2 - $1) / 1e6, 2))"; }
res="$work/results"
: > "$res"
sync
for i in $(seq 1 "$runs"); do
  # Alternate the order each run so neither tool always goes first.
  order="vbuild cp lxc"
  [ $((i % 2)) = 0 ] && order="lxc cp vbuild"
  for tool in $order; do
    case "$tool" in
      vbuild)
        n="tb$i"
        t0=$(now); "$vb" -q debian "$release" --name "$n" --offline --net-mode none >/dev/null; t1=$(now)
        echo "vbuild $(ms "$t0" "$t1") $(du -sB1 "$VBUILD_ROOT/guests/$n" | cut -f1)" >> "$res"
        "$vb" -q delete "$n"
        ;;
      cp)
        d="$work/cp$i"
        t0=$(now); cp -a "$tpl" "$d"; t1=$(now)
        echo "cp $(ms "$t0" "$t1") $(du -sB1 "$d" | cut -f1)" >> "$res"
        rm -rf "$d"
        ;;
      lxc)
        [ "$have_lxc" = 1 ] || continue
        c="c$i"
        t0=$(now)
        if ! lxc-copy -P "$lxcpath" -n "$base" -N "$c" -s -B overlayfs -o "$work/lxc.log" -l ERROR >/dev/null 2>&1; then
          echo "lxc-copy -s failed on this host; left out: $(tail -3 "$work/lxc.log" | tr '\n' ' ')" >&2
          have_lxc=0
          continue
        fi
        t1=$(now)
        echo "lxc-copy $(ms "$t0" "$t1") $(du -sB1 "$lxcpath/$c" | cut -f1)" >> "$res"
        lxc-destroy -P "$lxcpath" -n "$c" >/dev/null
        ;;
    esac
  done
done

python3 - "$res" "$runs" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    tool, ms, b = line.split()
    rows.setdefault(tool, []).append((float(ms), int(b)))
med = {t: (statistics.median(m for m, _ in v), statistics.median(b for _, b in v)) for t, v in rows.items()}
print(f"guest creation from an existing template, median of {sys.argv[2]} alternating runs")
print(f"{'tool':<10} {'ms':>9} {'new disk':>12}")
for t, (m, b) in med.items():
    print(f"{t:<10} {m:>9.2f} {int(b):>12}")
v = med["vbuild"]
for t, (m, b) in med.items():
    if t != "vbuild":
        print(f"vbuild/{t}: time {v[0] / m:.3f}x, disk {v[1] / b:.4f}x")
print(f"goal: vbuild under 50 ms and under 1 MB: {'met' if v[0] < 50 and v[1] < 1 << 20 else 'NOT met'}")
EOF
