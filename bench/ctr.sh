#!/usr/bin/env bash
# `ctr run --rm` of a busybox `/bin/true` through containerd 1.7: runc
# (containerd's default, its Go runc shim), vbuild-runc under the same shim
# (`--runc-binary`) and vbuild's own shim containerd-shim-vbuild-v2
# (`--runtime PATH`, no runtime exec'd), alternating run by run after a
# warm-up; prints each side's median and its ratio to runc's. The containerd is the bench's own (config, root,
# state, sockets and namespace in a temporary directory), stopped and
# removed at the end. Most of a run is ctr, containerd and the shim: timed
# one by one here (2026-12-02), the runtime's own calls (create, start,
# delete twice) took about 60 ms of a 210 ms run with vbuild-runc and 90 ms
# of 225 ms with runc, so the ratio stays well above the runtime's own.
# Usage: bench/ctr.sh [RUNS]   (root; installs containerd 1.7 from trixie
# into /opt/vbuild-test/containerd and runc, see scripts/host-deps.sh)
set -euo pipefail
runs="${1:-30}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
VBUILD_BENCH_DEPS=1 bash "$here/scripts/host-deps.sh"
target="${CARGO_TARGET_DIR:-$here/target}"
cargo build --release --locked --manifest-path "$here/Cargo.toml" --bin vbuild-runc --bin containerd-shim-vbuild-v2 -q
vr="$target/release/vbuild-runc"
vs="$target/release/containerd-shim-vbuild-v2"
bin=/opt/vbuild-test/containerd/bin
export PATH="$bin:$PATH"
work="$(mktemp -d /var/tmp/vbuild-bench-ctr.XXXXXX)"
ns="vbuild-bench-$$"
had_run=0; [ -e /run/containerd ] && had_run=1
pid=
cleanup() {
  set +e
  if [ -n "$pid" ]; then
    c task ls -q 2>/dev/null | while read -r t; do c task kill -s SIGKILL "$t" || true; c task rm -f "$t" || true; done
    c container ls -q 2>/dev/null | while read -r t; do c container rm "$t" || true; done
    c image rm --sync localhost/vb-busybox:latest >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  fi
  { grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done; } 2>/dev/null
  # The absolute cgroupsPath /$ns/ID lands at each hierarchy root; runc
  # leaves the /$ns parent (vbuild-runc removes it when it made it).
  for g in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do [ -d "$g" ] && rmdir "$g"; done 2>/dev/null
  [ "$had_run" = 1 ] || rm -rf /run/containerd
  rm -rf "$work"
}
trap cleanup EXIT
c() { ctr --address "$work/c.sock" --namespace "$ns" "$@"; }

cat > "$work/config.toml" <<CONF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/c.sock"
[ttrpc]
  address = "$work/c.sock.ttrpc"
[debug]
  address = "$work/d.sock"
CONF
containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do c version >/dev/null 2>&1 && break; sleep 0.1; done

# The image: static busybox in one layer, as an OCI archive.
mkdir -p "$work/rootfs"/{bin,proc,sys,dev,etc,tmp} "$work/oci/blobs/sha256"
cp /bin/busybox "$work/rootfs/bin/busybox"
ln -s busybox "$work/rootfs/bin/true"
tar -C "$work/rootfs" -cf "$work/layer.tar" .
blob() { local h; h=$(sha256sum "$1" | cut -d' ' -f1); cp "$1" "$work/oci/blobs/sha256/$h"; echo "sha256:$h $(stat -c %s "$1")"; }
read -r ld ls < <(blob "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$ld" > "$work/config.json"
read -r cd cs < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' "$cd" "$cs" "$ld" "$ls" > "$work/manifest.json"
read -r md ms < <(blob "$work/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' "$md" "$ms" > "$work/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci/oci-layout"
tar -C "$work/oci" -cf "$work/busybox-oci.tar" .
c image import --base-name localhost/vb-busybox "$work/busybox-oci.tar" >/dev/null

# One `ctr run --rm` of /bin/true, in microseconds. SIDE is runc
# (containerd's default), vr (vbuild-runc in the runc shim) or vs (the
# vbuild shim).
one() { # SIDE ID
  local t0 t1 opt=()
  case "$1" in
    runc) opt=(--runc-root "$work/runc-runc") ;;
    vr) opt=(--runc-binary "$vr" --runc-root "$work/runc-vr") ;;
    vs) opt=(--runtime "$vs") ;;
  esac
  t0=$(date +%s%N)
  c run --rm "${opt[@]}" --fifo-dir "$work/fifo" \
    localhost/vb-busybox:latest "$2" /bin/true </dev/null >/dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
}
for i in 1 2 3; do for s in vr runc vs; do one "$s" w$s$i >/dev/null; done; done
: > "$work/vr.us"; : > "$work/runc.us"; : > "$work/vs.us"
for i in $(seq "$runs"); do
  for s in vr runc vs; do one "$s" b$s$i >> "$work/$s.us"; done
done
python3 - "$work/vr.us" "$work/runc.us" "$work/vs.us" <<'PY'
import statistics, sys
vr, rc, vs = ([int(l) for l in open(f)] for f in sys.argv[1:4])
mv, mr, ms = statistics.median(vr), statistics.median(rc), statistics.median(vs)
print(f"ctr run --rm busybox /bin/true (containerd 1.7), {len(vr)} runs each, alternating")
print(f"  runc (runc shim)              median {mr/1000:.1f} ms")
print(f"  vbuild-runc (runc shim)       median {mv/1000:.1f} ms  ratio {mv/mr:.2f}")
print(f"  containerd-shim-vbuild-v2     median {ms/1000:.1f} ms  ratio {ms/mr:.2f}")
PY
