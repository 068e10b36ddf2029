#!/usr/bin/env bash
# `vbuild template dedupe` across the templates of several releases
# (bookworm, trixie and sid by default): builds one --no-init minbase guest
# per release (online), so one template each, in a temporary --root; then
# reports the store's disk use (du, which counts a hard-linked inode once)
# before and after, the bytes dedupe says it saved, and checks that every
# template file's content is unchanged (sha256 of every regular file before
# and after). VARIANT=minbase by default; INIT=1 builds systemd guests;
# BUILD_ARGS are added to every build (e.g. --allow-expired for a stale
# mirror whose sid InRelease is past its Valid-Until).
# Usage: bench/dedupe.sh [RELEASE...]   (root)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
releases=("$@")
[ ${#releases[@]} -gt 0 ] || releases=(bookworm trixie sid)
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${VBUILD_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
fi
vb="$target/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-dedupe.XXXXXX)"
chmod 755 "$work"
export VBUILD_ROOT="$work/root"
trap 'for r in "${releases[@]}"; do "$vb" -q delete "dd-$r" >/dev/null 2>&1 || true; done; rm -rf "$work"' EXIT
init=(--no-init)
[ "${INIT:-0}" = 1 ] && init=()
for r in "${releases[@]}"; do
  echo "bench/dedupe.sh: building $r (${VARIANT:-minbase}${init:+, no init})" >&2
  "$vb" -q debian "$r" --name "dd-$r" --variant "${VARIANT:-minbase}" "${init[@]}" ${BUILD_ARGS:-} >/dev/null
done
store="$VBUILD_ROOT/templates"
sums() { (cd "$store" && find . -path ./.resolved -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); }
sums > "$work/before.sha"
before=$(du -sb "$store" | cut -f1)
"$vb" template dedupe --json > "$work/dedupe.json"
after=$(du -sb "$store" | cut -f1)
sums > "$work/after.sha"
if cmp -s "$work/before.sha" "$work/after.sha"; then same=yes; else same=NO; fi
"$vb" template list
python3 - "$before" "$after" "$work/dedupe.json" "$same" "${releases[*]}" <<'PY'
import json, sys
before, after = int(sys.argv[1]), int(sys.argv[2])
report = json.load(open(sys.argv[3]))
print(f"templates: {sys.argv[5]}")
print(f"store on disk: {before/2**20:.1f} MiB before, {after/2**20:.1f} MiB after "
      f"({(before-after)/2**20:.1f} MiB, {100*(before-after)/before:.1f}% saved by du)")
print(f"dedupe's report: {json.dumps(report)}")
print(f"every template file's content unchanged: {sys.argv[4]}")
PY
