#!/usr/bin/env bash
# `vbuild pull` + guest creation from a local `vbuild catalog serve` catalog
# (goal: under 2 s), first (the image's template pruned before each run)
# and again (the template there: an overlay guest, nothing downloaded),
# beside `vbuild import` of the very image file the catalog holds and `lxc-create -t download` from the same served catalog
# (LXC's download template: wget + tar of the same rootfs.tar.xz; each run
# with an empty LXC cache, so it downloads too). Alternating, RUNS times
# each after a warm-up; prints median and min wall time of each, the
# ratios, and the load average beside each number (other work on the
# machine shows there).
# The tree: TREE when given (e.g. a bookworm minbase written by
# `vbuild build debian bookworm --variant minbase --output DIR/`), else such
# a tree built now (needs the live Debian mirror).
# Usage: bench/pull.sh [RUNS] [TREE]   (root; 5 runs by default)
set -euo pipefail
runs="${1:-5}"
tree="${2:-}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in gpg python3; do
  command -v "$t" >/dev/null || { echo "bench/pull.sh needs $t" >&2; exit 1; }
done
have_lxc=0
[ -x /usr/share/lxc/templates/lxc-download ] && command -v lxc-create >/dev/null && have_lxc=1
# VBUILD_BENCH_LXC=0 leaves lxc-create out.
[ "${VBUILD_BENCH_LXC:-1}" = 0 ] && have_lxc=0
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${VBUILD_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
fi
vb="$target/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-pull.XXXXXX)"
chmod 755 "$work"
export VBUILD_ROOT="$work/root"
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  for g in "$work"/root/guests/*/; do
    [ -d "$g" ] && "$vb" -q delete "$(basename "$g")" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$tree" ]; then
  "$vb" -q --root "$work/build" build debian bookworm --variant minbase --output "$work/built/"
  tree="$work/built"
fi
# The image file: vbuild's export of a guest holding the tree.
name="bpul$$"
g="$VBUILD_ROOT/guests/$name"
mkdir -p "$g"
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
img="$work/bookworm.tar.zst"
"$vb" -q export "$name" --output "$img"
"$vb" -q delete "$name" >/dev/null
# A signing key of its own (no passphrase), as ci/README.md makes one.
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg -q --batch --passphrase '' --quick-gen-key 'bench <bench@vbuild.invalid>' ed25519 sign never 2>/dev/null
gpg -q --batch --armor --export-secret-keys bench@vbuild.invalid > "$work/key.secret.asc"
gpg -q --batch --armor --export bench@vbuild.invalid > "$work/key.asc"
cat="$work/catalog"
"$vb" -q catalog add "$cat" "$img" --sign "$work/key.secret.asc" >/dev/null
"$vb" --json catalog serve "$cat" --listen 127.0.0.1:0 > "$work/serve.json" 2> "$work/serve.err" &
server_pid=$!
for _ in $(seq 1 100); do grep -q '^}' "$work/serve.json" 2>/dev/null && break; sleep 0.1; done
addr="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["address"])' "$work/serve.json")"
cert="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cert"])' "$work/serve.json")"
url="https://$addr"
xz_bytes="$(find "$cat/images" -name rootfs.tar.xz -printf '%s')"
echo "tree: $(du -sh --apparent-size "$tree" | cut -f1), $(find "$tree" | wc -l) entries; image $(stat -c %s "$img") bytes (.tar.zst), catalog rootfs.tar.xz $xz_bytes bytes; $(nproc) cores; catalog at $url"

printf 'ca_certificate = %s\n' "$cert" > "$work/wgetrc"
printf 'lxc.net.0.type = empty\n' > "$work/netless.conf"
mkdir -p "$work/lxc"
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f\n", m, a[1]}'; }
# ms CMD...: wall milliseconds of CMD, and the 1-minute load average just
# before it, appended to the files given by $out.
ms() {
  local t0 t1 load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  t0=$(date +%s%N); "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }; t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 )) >> "$out.ms"
  echo "$load" >> "$out.load"
}
n=0
run_pull() { "$vb" -q pull "$url" debian/bookworm --name "p$n" --key "$work/key.asc" --net-mode none; }
# The same image again: its template is there, so nothing is downloaded.
run_repull() { "$vb" -q pull "$url" debian/bookworm --name "q$n" --key "$work/key.asc" --net-mode none; }
run_import() { "$vb" -q import "$img" --name "i$n" --net-mode none; }
run_lxc() {
  rm -rf "$work/lxc-cache"
  WGETRC="$work/wgetrc" LXC_CACHE_PATH="$work/lxc-cache" lxc-create -P "$work/lxc" -n "l$n" \
    -f "$work/netless.conf" -t download -- --server "$addr" --dist debian --release bookworm \
    --arch "$(dpkg --print-architecture)"
}
tidy() {
  "$vb" -q delete "p$n" >/dev/null 2>&1 || true
  "$vb" -q delete "q$n" >/dev/null 2>&1 || true
  # The next first pull starts without the image's template.
  "$vb" -q template prune >/dev/null
  "$vb" -q delete "i$n" >/dev/null 2>&1 || true
  if [ "$have_lxc" = 1 ]; then lxc-destroy -P "$work/lxc" -n "l$n" >/dev/null 2>&1 || rm -rf "${work:?}/lxc/l$n"; fi
}
# Warm-up (page cache, the server's first TLS handshake).
out="$work/warm"; ms run_pull; ms run_repull; ms run_import
[ "$have_lxc" = 1 ] && ms run_lxc
tidy
for f in p q i l; do : > "$work/$f.ms"; : > "$work/$f.load"; done
for k in $(seq 1 "$runs"); do
  n=$k
  out="$work/p"; ms run_pull
  out="$work/q"; ms run_repull
  out="$work/i"; ms run_import
  if [ "$have_lxc" = 1 ]; then out="$work/l"; ms run_lxc; fi
  tidy
done
loads() { tr '\n' ' ' < "$1" | sed 's/ $//'; }
read -r pm pmin < <(median < "$work/p.ms")
read -r qm qmin < <(median < "$work/q.ms")
read -r im imin < <(median < "$work/i.ms")
echo "vbuild pull (+guest), first  median ${pm} ms  min ${pmin} ms  load $(loads "$work/p.load")"
echo "vbuild pull (+guest), again  median ${qm} ms  min ${qmin} ms  load $(loads "$work/q.load")"
echo "vbuild import (same file)    median ${im} ms  min ${imin} ms  load $(loads "$work/i.load")"
if [ "$have_lxc" = 1 ]; then
  read -r lm lmin < <(median < "$work/l.ms")
  echo "lxc-create -t download       median ${lm} ms  min ${lmin} ms  load $(loads "$work/l.load")"
  echo "ratio pull/lxc-create (median): $(echo "scale=2; $pm / $lm" | bc)"
else
  echo "lxc-create: not installed (scripts/host-deps.sh) or VBUILD_BENCH_LXC=0, not compared"
fi
echo "ratio pull/import (median): $(echo "scale=2; $pm / $im" | bc)"
echo "goal: pull + guest creation under 2000 ms: first pull $([ "$pm" -lt 2000 ] && echo met || echo NOT met), a pull of an image pulled before $([ "$qm" -lt 2000 ] && echo met || echo NOT met)"
