#!/usr/bin/env bash
# Installs what vbuild and its tests need on a fresh Debian/Ubuntu host, once.
# vbuild itself needs no host package tools; the tests and benchmarks use
# busybox-static (tiny guest rootfs), e2fsprogs/btrfs-progs (disk-limit
# fixtures), iproute2 (to observe links from outside), mmdebstrap and
# systemd-container (side-by-side benchmarks and the minbase comparison),
# openssh-client (ssh-keygen reads the per-guest host keys vbuild writes);
# rpm, createrepo-c and gnupg (a Fedora-style repository made by the real
# rpmbuild/rpmsign/createrepo_c for builder/tests/fedora_real_tools.rs);
# skopeo (validates the OCI layouts `--format oci` writes).
set -euo pipefail
need=(busybox-static e2fsprogs btrfs-progs iproute2 procps kmod xz-utils ca-certificates util-linux mmdebstrap openssh-client rpm createrepo-c gnupg skopeo)
# dnf: fedora_real_tools.rs compares vbuild's installed set with
# `dnf --installroot`, and bench/fedora.sh times the two side by side.
need+=(dnf)
if [ "${VBUILD_BENCH_DEPS:-0}" = 1 ]; then need+=(systemd-container runc hyperfine time); fi
# oci/tests/podman.rs: podman (with conmon) drives vbuild-runc for real;
# runc is the reference its behaviour is checked against.
# builder/tests/image.rs: podman (bookworm's 4.3) loads and runs the OCI
# layout `--format oci` writes, with runc (crun 1.8 refuses this host's
# cgroup v1 hybrid layout).
need+=(podman runc)
# builder/tests/catalog.rs: curl (HTTPS probes of `catalog serve`), lxc and
# wget (a real `lxc-create -t download` from a served catalog).
need+=(curl lxc wget)
# .squashfs images: tar2sqfs writes them; unsquashfs (test) and mksquashfs
# (bench/squashfs.sh) read and compare.
need+=(squashfs-tools-ng squashfs-tools)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# builder/tests/catalog.rs: incus 6.0 (Debian bookworm-backports; incusd is
# started by hand by the test) as the real Incus client of a served catalog.
if [ "$(. /etc/os-release; echo "${VERSION_CODENAME:-}")" = bookworm ] && ! dpkg-query -W -f='${Status}' incus 2>/dev/null | grep -q "ok installed"; then
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/bookworm-backports.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports incus >/dev/null
fi

# bench/oci-validation.sh: Go 1.21 (bookworm-backports' golang-1.21-go, as
# /usr/lib/go-1.21/bin/go) builds the opencontainers runtime-tools validation
# suite from its vendored sources.
if [ "${VBUILD_BENCH_DEPS:-0}" = 1 ] && [ "$(. /etc/os-release; echo "${VERSION_CODENAME:-}")" = bookworm ] && ! [ -x /usr/lib/go-1.21/bin/go ]; then
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/bookworm-backports.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports golang-1.21-go >/dev/null
fi

# bench/density.sh: ping from the host to every guest (iputils-ping).
if ! command -v ping >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iputils-ping >/dev/null
fi

# oci/tests/containerd.rs and bench/ctr.sh: containerd 1.7 and ctr (bookworm
# has only 1.6). Trixie's .deb is fetched with a private apt configuration
# (its own sources list, lists and cache: the host's apt sources, pins and
# packages are left as they are) and only its binaries are unpacked into
# /opt/vbuild-test/containerd/bin; the test starts containerd by hand from
# there. Its only dependencies are libc6 (>= 2.34) and runc, both bookworm's.
ctrd=/opt/vbuild-test/containerd
if ! "$ctrd/bin/ctr" --version 2>/dev/null | grep -q ' v\?1\.7\.'; then
  echo "installing: containerd 1.7 (trixie) into $ctrd" >&2
  apt_dir="$(mktemp -d /var/tmp/vbuild-containerd-apt.XXXXXX)"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' > "$apt_dir/sources.list"
  apt_private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
  apt-get "${apt_private[@]}" update -qq
  (cd "$apt_dir" && apt-get "${apt_private[@]}" download -qq containerd)
  dpkg-deb -x "$apt_dir"/containerd_*.deb "$apt_dir/x"
  rm -rf "$ctrd.new" && mkdir -p "$ctrd.new/bin"
  cp "$apt_dir"/x/usr/bin/{containerd,containerd-shim-runc-v2,ctr} "$ctrd.new/bin/"
  rm -rf "$ctrd" && mv "$ctrd.new" "$ctrd"
  rm -rf "$apt_dir"
  "$ctrd/bin/ctr" --version >&2
fi
