#!/usr/bin/env bash
# The OCI runtime-tools validation suite (opencontainers/runtime-tools,
# validation/*/*.t) against runc (Debian's 1.1) and vbuild-runc in one run,
# program by program alternating, with the pass counts side by side: TAP
# `ok` / `not ok` lines summed over all programs, and how many programs
# pass fully (exit 0, no `not ok`).
#
#   sudo bench/oci-validation.sh            # after cargo build --release -p vbuild-oci
#
# RUNTIME_TOOLS  a runtime-tools source tree, or a git directory of one
#                (default /work/.mirror/opencontainers+runtime-tools/repo);
#                a git directory is exported (git archive HEAD) to WORK first
# WORK           where the suite is built and run (default /var/tmp/vbuild-oci-validation)
# GO             Go 1.21 (default /usr/lib/go-1.21/bin/go: bookworm-backports'
#                golang-1.21-go, which VBUILD_BENCH_DEPS=1 scripts/host-deps.sh installs)
# RUNC           the reference runtime (default /usr/sbin/runc)
# VBUILD_RUNC    the runtime under test (default target/release/vbuild-runc,
#                or $CARGO_TARGET_DIR/release/vbuild-runc)
# ONLY           a regular expression: only the programs whose path matches
# TIMEOUT        seconds one program may take (default 180)
#
# Logs of every program and runtime go to $WORK/logs/{runc,vbuild-runc}/NAME.log.
# Each program needs root (it creates containers). The run happens in a
# private mount namespace with its own TMPDIR (runc leaves the bundles of
# linux_ns_itype, which has no mount namespace, mounted where it ran), and
# the containers, bundles and cgroups the programs leave are removed after.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
RUNTIME_TOOLS="${RUNTIME_TOOLS:-/work/.mirror/opencontainers+runtime-tools/repo}"
WORK="${WORK:-/var/tmp/vbuild-oci-validation}"
GO="${GO:-/usr/lib/go-1.21/bin/go}"
RUNC="${RUNC:-/usr/sbin/runc}"
VBUILD_RUNC="${VBUILD_RUNC:-${CARGO_TARGET_DIR:-$here/target}/release/vbuild-runc}"
ONLY="${ONLY:-.}"
TIMEOUT="${TIMEOUT:-180}"

die() { echo "oci-validation: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (every validation program creates containers): run it with sudo"
[ -e "$RUNTIME_TOOLS" ] || die "RUNTIME_TOOLS=$RUNTIME_TOOLS is missing: point it at a checkout of https://github.com/opencontainers/runtime-tools (a source tree or its git directory)"
[ -x "$GO" ] || die "Go 1.21 is missing at $GO: run VBUILD_BENCH_DEPS=1 scripts/host-deps.sh (bookworm-backports' golang-1.21-go), or set GO="
[ -x "$RUNC" ] || die "runc is missing at $RUNC: apt-get install runc (scripts/host-deps.sh does), or set RUNC="
[ -x "$VBUILD_RUNC" ] || die "vbuild-runc is missing at $VBUILD_RUNC: cargo build --release -p vbuild-oci, or set VBUILD_RUNC="
VBUILD_RUNC="$(realpath "$VBUILD_RUNC")"
if [ -z "${VBUILD_OCI_VALIDATION_NS:-}" ]; then
  export VBUILD_OCI_VALIDATION_NS=1
  exec unshare --mount --propagation private "$0" "$@"
fi

# The source tree: used as it is, or exported from a git directory.
src="$WORK/src"
if [ -d "$RUNTIME_TOOLS/validation" ]; then
  mkdir -p "$WORK"
  rm -rf "$src" && cp -a "$RUNTIME_TOOLS" "$src"
elif git -C "$RUNTIME_TOOLS" rev-parse --git-dir >/dev/null 2>&1; then
  commit="$(git -C "$RUNTIME_TOOLS" rev-parse HEAD)"
  if [ "$(cat "$src/.commit" 2>/dev/null)" != "$commit" ]; then
    rm -rf "$src" && mkdir -p "$src"
    git -C "$RUNTIME_TOOLS" archive HEAD | tar -x -C "$src"
    echo "$commit" > "$src/.commit"
  fi
else
  die "RUNTIME_TOOLS=$RUNTIME_TOOLS is neither a runtime-tools source tree (no validation/) nor a git directory"
fi
[ -f "$src/rootfs-amd64.tar.gz" ] || die "$src has no rootfs-amd64.tar.gz (the suite's busybox rootfs): is RUNTIME_TOOLS a runtime-tools checkout?"

# Build the suite: runtimetest (static, it runs inside the containers) and
# one program per validation directory; vendored sources, no network.
export GOTOOLCHAIN=local GOPROXY=off GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath"
[ -d "$src/vendor" ] && export GOFLAGS=-mod=vendor
cd "$src"
if [ ! -x runtimetest ]; then
  echo "building runtimetest with $("$GO" version)" >&2
  "$GO" build -tags "netgo osusergo" -ldflags "-extldflags -static" -o runtimetest ./cmd/runtimetest
fi
programs=()
for d in validation/*/; do
  name="$(basename "$d")"
  [ "$name" = util ] && continue
  ls "$d"*.go >/dev/null 2>&1 || continue
  t="$d$name.t"
  [[ "$t" =~ $ONLY ]] || continue
  if [ ! -x "$t" ]; then
    echo "building $t" >&2
    "$GO" build -o "$t" "./$d"
  fi
  programs+=("$t")
done
[ ${#programs[@]} -gt 0 ] || die "no validation program matches ONLY=$ONLY"

# Runs one program against one runtime; prints "ok notok full" (full: 1
# when it exited 0 with no `not ok` line).
run_one() {
  local runtime="$1" t="$2" log="$3" rc=0
  RUNTIME="$runtime" timeout -k 10 "$TIMEOUT" "./$t" >"$log" 2>&1 </dev/null || rc=$?
  local ok notok
  ok="$(grep -cE '^ok( |$)' "$log" || true)"
  notok="$(grep -cE '^not ok( |$)' "$log" || true)"
  [ "$rc" = 124 ] && echo "# timed out after ${TIMEOUT}s" >>"$log"
  local full=0
  [ "$rc" = 0 ] && [ "$notok" = 0 ] && [ "$ok" -gt 0 ] && full=1
  echo "$ok $notok $full"
}

mkdir -p "$WORK/logs/runc" "$WORK/logs/vbuild-runc"
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
# What the programs leave: mounts and bundles below TMPDIR (after each),
# containers and cgroups (at the end, those that were not there before).
clean_tmp() {
  { findmnt -rn -o TARGET | grep "^$TMPDIR/" || true; } | sort -r | xargs -r -d '\n' umount -l
  rm -rf --one-file-system "${TMPDIR:?}"/*
}
leftover_groups() { ls -d /sys/fs/cgroup/{*/,}{testdir,testdir/cgrouptest,cgrouptest} 2>/dev/null || true; }
groups_before="$(leftover_groups)"
declare -A ids_before
for r in "$RUNC" "$VBUILD_RUNC"; do ids_before[$r]="$("$r" list -q 2>/dev/null || true)"; done
clean_after() {
  for r in "$RUNC" "$VBUILD_RUNC"; do
    for id in $("$r" list -q 2>/dev/null || true); do
      grep -qxF "$id" <<<"${ids_before[$r]}" || "$r" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  clean_tmp
  for g in $(leftover_groups | sort -r); do
    grep -qxF "$g" <<<"$groups_before" || rmdir "$g" 2>/dev/null || echo "oci-validation: could not remove cgroup $g" >&2
  done
}
trap clean_after EXIT
declare -A ok=( [runc]=0 [vbuild-runc]=0 ) total=( [runc]=0 [vbuild-runc]=0 ) full=( [runc]=0 [vbuild-runc]=0 )
printf '%-42s %14s %14s\n' program runc vbuild-runc
for t in "${programs[@]}"; do
  name="$(basename "$t" .t)"
  line="$(printf '%-42s' "$name")"
  for r in runc vbuild-runc; do
    bin="$RUNC"; [ "$r" = vbuild-runc ] && bin="$VBUILD_RUNC"
    read -r o n f < <(run_one "$bin" "$t" "$WORK/logs/$r/$name.log")
    clean_tmp
    ok[$r]=$((ok[$r] + o)); total[$r]=$((total[$r] + o + n)); full[$r]=$((full[$r] + f))
    mark=""; [ "$f" = 1 ] || mark="*"
    line+="$(printf ' %13s' "$o/$((o + n))$mark")"
  done
  echo "$line"
done
echo
echo "(* = the program did not pass fully)"
printf '%-42s %14s %14s\n' "TAP points passed" "${ok[runc]}/${total[runc]}" "${ok[vbuild-runc]}/${total[vbuild-runc]}"
printf '%-42s %14s %14s\n' "programs passing fully" "${full[runc]}/${#programs[@]}" "${full[vbuild-runc]}/${#programs[@]}"
echo "runc: $("$RUNC" --version | head -1); vbuild-runc: $("$VBUILD_RUNC" --version | head -1); logs: $WORK/logs"
