#!/usr/bin/env bash
# Install time of `vbuild fedora` against `dnf --installroot` for the same
# package set from the same local repository, warm caches, in one run,
# alternating the two tools. The repository is made here by rpmbuild,
# rpmsign and createrepo_c: PKGS packages of FILES files each, chained by
# Requires (plus a rich dependency each), and a meta package needing them
# all. Both tools install `meta` without weak dependencies; vbuild with
# --variant custom --no-init --copy (a plain tree, as dnf makes), its
# template removed before each round so every run really installs.
# Neither side runs scriptlets (the set has none and no rpm inside: vbuild
# unpacks and verifies signatures, dnf verifies nothing: --nogpgcheck).
# Reports medians and the ratio the project targets: vbuild <= 0.3 x dnf.
# Usage: bench/fedora.sh [RUNS] [PKGS] [FILES]   (root; installs rpm, createrepo-c, gnupg, dnf)
set -euo pipefail
runs="${1:-5}"
pkgs="${2:-150}"
files="${3:-20}"
here="$(cd "$(dirname "$0")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
bash "$here/scripts/host-deps.sh"
cargo build --release --locked --manifest-path "$here/Cargo.toml" --bin vbuild --bin vbuild-supervisor -q
vb="${CARGO_TARGET_DIR:-$here/target}/release/vbuild"
work="$(mktemp -d /var/tmp/vbuild-bench-fedora.XXXXXX)"
cleanup() {
  "$vb" --quiet --root "$work/vb" delete f11bench >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== making the repository ($pkgs packages x $files files)"
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key "vbuild bench <bench@vbuild.invalid>" rsa2048 sign never 2>/dev/null
gpg --batch --armor --export bench@vbuild.invalid >"$work/key.asc"
mkdir -p "$work/specs" "$work/repo"
spec() { # name deps
  cat >"$work/specs/$1.spec" <<EOF
Name: $1
Version: 1.0
Release: 1
Summary: vbuild bench
License: MIT
BuildArch: noarch
$2
%description
bench
%install
mkdir -p %{buildroot}/usr/share/$1
for i in \$(seq $files); do head -c 8192 /dev/urandom > %{buildroot}/usr/share/$1/f\$i; done
%files
/usr/share/$1
EOF
}
meta_deps=""
for i in $(seq "$pkgs"); do
  deps=""
  if [ "$i" -gt 1 ]; then deps="Requires: p$((i - 1))
Requires: (p$((i - 1)) or nothing-else)"; fi
  spec "p$i" "$deps"
  meta_deps="$meta_deps
Requires: p$i"
done
spec meta "$meta_deps"
for s in "$work"/specs/*.spec; do
  rpmbuild --quiet -bb --define "_topdir $work/rpmbuild" "$s" >/dev/null
done
rpmsign --addsign --define "_gpg_name bench@vbuild.invalid" --define "__gpg /usr/bin/gpg" \
  "$work"/rpmbuild/RPMS/noarch/*.rpm >/dev/null
cp "$work"/rpmbuild/RPMS/noarch/*.rpm "$work/repo/"
createrepo_c --quiet "$work/repo"

timed() { # label cmd...
  local label="$1"; shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$label $(python3 -c "print(round($t1 - $t0, 3))")" | tee -a "$work/results"
}
vbuild_run() {
  "$vb" --quiet --root "$work/vb" delete f11bench >/dev/null 2>&1 || true
  "$vb" --quiet --root "$work/vb" template prune >/dev/null 2>&1 || true
  timed vbuild "$vb" --quiet --root "$work/vb" fedora 44 --name f11bench \
    --mirror "file://$work/repo" --keyring "$work/key.asc" \
    --variant custom --include meta --no-init --copy --net-mode none
}
dnf_run() {
  rm -rf "$work/dnfroot"
  timed dnf dnf -y -q --installroot "$work/dnfroot" --repofrompath="local,file://$work/repo" \
    --repo=local --nogpgcheck --releasever=44 --setopt=install_weak_deps=False \
    --setopt=reposdir=/dev/null --setopt=cachedir="$work/dnf-cache" --setopt=keepcache=True install meta
}

echo "== warm-up (fills both caches)"
vbuild_run >/dev/null
dnf_run >/dev/null
installed_dnf=$(rpm --root "$work/dnfroot" -qa | wc -l)
installed_vb=$(find "$work/vb/guests/f11bench/rootfs/usr/share" -mindepth 1 -maxdepth 1 -name 'p*' | wc -l)
echo "installed: dnf $installed_dnf packages, vbuild $installed_vb p* packages (+ meta, which ships no files)"
: >"$work/results"
for i in $(seq "$runs"); do
  echo "== round $i/$runs"
  vbuild_run
  dnf_run
done

python3 - "$work/results" <<'PY'
import sys, statistics as st
by = {}
for line in open(sys.argv[1]):
    if line.strip():
        label, sec = line.split()
        by.setdefault(label, []).append(float(sec))
med = {k: st.median(v) for k, v in by.items()}
for k in sorted(med):
    print(f"{k:8s} median {med[k]:6.2f} s   runs {by[k]}")
r = med["vbuild"] / med["dnf"]
print(f"warm: vbuild/dnf = {r:.2f} (target <= 0.3) {'OK' if r <= 0.3 else 'MISSED'}")
PY
