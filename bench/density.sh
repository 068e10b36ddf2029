#!/usr/bin/env bash
# Density: N bookworm systemd guests made from one template and started at
# once (all creations, then all starts, in parallel batches of JOBS), each
# checked with `systemctl is-system-running` (= running) and a ping from
# the host. Reports the time to create and boot all of them, host memory
# per guest (MemAvailable before minus after, over N, with the guests
# idle) and, when a guest fails, the first error and the host limits it
# points at. The template is built once (online) in a temporary --root;
# the guests sit on their own network t10d (10.210.0.0/22). The sysctls
# `vbuild check` lists under "density" are raised for the run (RAISE=0
# keeps the host's) and restored on exit; PREFIX and NET rename the
# guests (dnNNN) and the network.
# Usage: N=20 bench/density.sh   (root; N=200 by default, JOBS=16)
set -euo pipefail
n="${N:-200}"
jobs="${JOBS:-16}"
release="${RELEASE:-bookworm}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
command -v ping >/dev/null || { echo "ping is missing: run scripts/host-deps.sh (iputils-ping)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-$here/target}"
if [ -z "${VBUILD_BENCH_NO_BUILD:-}" ]; then
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-builder --bin vbuild -q
  cargo build --release --locked --manifest-path "$here/Cargo.toml" -p vbuild-runtime --bin vbuild-supervisor -q
fi
vb="$target/release/vbuild"
export VBUILD_SUPERVISOR="$target/release/vbuild-supervisor"
work="$(mktemp -d /var/tmp/vbuild-bench-density.XXXXXX)"
chmod 755 "$work"
export VBUILD_ROOT="$work/root"
prefix="${PREFIX:-dn}"
net="${NET:-t10d}"
names=()
for i in $(seq 1 "$n"); do names+=("$(printf '%s%03d' "$prefix" "$i")"); done
# Host settings that cap density (see `vbuild check`, area "density"):
# raised for the run only, each restored on exit. RAISE=0 keeps the host's.
raised=()
raise() {
  local key=$1 want=$2 have
  have=$(sysctl -n "$key")
  if [ "$have" -lt "$want" ]; then
    raised+=("$key=$have")
    sysctl -qw "$key=$want"
  fi
}
restore() {
  local kv
  for kv in "${raised[@]}"; do sysctl -qw "$kv" || true; done
}
cleanup() {
  printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} "$vb" -q stop {} --timeout 5 >/dev/null 2>&1 || true
  printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} "$vb" -q delete {} >/dev/null 2>&1 || true
  "$vb" -q delete "$prefix-seed" >/dev/null 2>&1 || true
  "$vb" -q net delete "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
  restore
}
trap cleanup EXIT
if [ "${RAISE:-1}" = 1 ]; then
  raise fs.inotify.max_user_instances $((n * 16 + 256))
  raise fs.inotify.max_user_watches $((n * 2048 + 65536))
  raise kernel.keys.maxkeys $((n * 4 + 200))
  raise kernel.keys.maxbytes $((n * 400 + 20000))
  raise net.ipv4.neigh.default.gc_thresh3 $((n * 2 + 1024))
  raise kernel.pid_max $((n * 64 + 32768))
  echo "bench/density.sh: raised for this run: ${raised[*]:-nothing}" >&2
fi
inotify_in_use() { { find /proc/*/fd -lname 'anon_inode:inotify' 2>/dev/null || true; } | wc -l; }

"$vb" -q net create "$net" --subnet 10.210.0.0/22 >/dev/null
echo "bench/density.sh: building the $release template once (online)" >&2
"$vb" -q debian "$release" --name "$prefix-seed" --net "$net" >/dev/null
sync; echo 3 > /proc/sys/vm/drop_caches; sleep 2
avail() { awk '/^MemAvailable/ {print $2}' /proc/meminfo; }
before_kb=$(avail)
inotify_before=$(inotify_in_use)
tasks_before=$(ls /proc | grep -c '^[0-9]')
threads_before=$(ls -d /proc/[0-9]*/task/* 2>/dev/null | wc -l)
now() { date +%s.%N; }
log="$work/log"; mkdir -p "$log"

t0=$(now)
printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} sh -c \
  "'$vb' -q debian $release --name {} --net $net --offline >'$log/{}.create' 2>&1 || echo {} >> '$log/failed-create'"
t1=$(now)
printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} sh -c \
  "[ -e '$VBUILD_ROOT/guests/{}/guest.toml' ] && '$vb' -q start {} --wait >'$log/{}.start' 2>&1 || echo {} >> '$log/failed-start'"
t2=$(now)
# Booted = systemd says running (waits for the boot to finish).
printf '%s\n' "${names[@]}" | xargs -P "$jobs" -I{} sh -c \
  "s=\$('$vb' exec {} -- systemctl is-system-running --wait 2>/dev/null); echo {} \$s >> '$log/state'"
t3=$(now)

running=$(awk '$2 == "running"' "$log/state" | wc -l)
pinged=0
for g in "${names[@]}"; do
  ip=$(sed -n 's/^addresses = \["\([0-9.]*\)\/.*/\1/p' "$VBUILD_ROOT/guests/$g/guest.toml" 2>/dev/null | head -1)
  [ -n "$ip" ] && ping -c1 -W2 "$ip" >/dev/null 2>&1 && pinged=$((pinged + 1))
done
sleep 10
after_kb=$(avail)
inotify_after=$(inotify_in_use)
tasks_after=$(ls /proc | grep -c '^[0-9]')
threads_after=$(ls -d /proc/[0-9]*/task/* 2>/dev/null | wc -l)
echo "per guest: $(( (inotify_after - inotify_before) / n )) inotify instances," \
  "$(( (tasks_after - tasks_before) / n )) processes, $(( (threads_after - threads_before) / n )) threads (host-wide deltas / N)"

python3 - "$n" "$before_kb" "$after_kb" "$t0" "$t1" "$t2" "$t3" "$running" "$pinged" <<'EOF'
import sys
n, before, after = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t0, t1, t2, t3 = map(float, sys.argv[4:8])
running, pinged = int(sys.argv[8]), int(sys.argv[9])
print(f"{n} guests: {running} running, {pinged} answering ping")
print(f"create {t1 - t0:.1f} s, start --wait {t2 - t1:.1f} s, until all report running {t3 - t2:.1f} s; total {t3 - t0:.1f} s (goal for 200: under 90 s)")
print(f"host memory per guest (MemAvailable delta / N): {(before - after) / n / 1024:.1f} MiB (goal: at most 12 MB)")
EOF
for f in failed-create failed-start; do
  if [ -s "$log/$f" ]; then
    first=$(head -1 "$log/$f")
    echo "$f: $(wc -l < "$log/$f") guests; first: $first:"
    cat "$log/$first".* 2>/dev/null | tail -3
  fi
done
awk '$2 != "running" {print "not running:", $0}' "$log/state" | head -5
# Why the first one is not: its failed units (the guests are still up).
first_bad=$(awk '$2 != "running" {print $1; exit}' "$log/state")
if [ -n "$first_bad" ]; then
  echo "failed units in $first_bad: $("$vb" exec "$first_bad" -- systemctl --failed --no-legend --plain 2>&1 | awk '{print $1}' | tr '\n' ' ')"
fi
echo "host limits: fs.inotify.max_user_instances=$(sysctl -n fs.inotify.max_user_instances)" \
  "kernel.pid_max=$(sysctl -n kernel.pid_max) kernel.threads-max=$(sysctl -n kernel.threads-max)" \
  "net.ipv4.neigh.default.gc_thresh3=$(sysctl -n net.ipv4.neigh.default.gc_thresh3)" \
  "inotify instances in use: $(inotify_in_use)"
