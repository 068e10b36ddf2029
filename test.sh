#!/usr/bin/env bash
# The test command: unit and integration tests (hermetic: generated signed
# repositories on loopback), then the end-to-end build and boot of Debian
# bookworm from the real mirror. Needs root (namespaces, cgroups, mounts).
# VBUILD_E2E=0 skips the end-to-end part for a quick run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ "$(id -u)" = 0 ]; then bash scripts/host-deps.sh; else echo "test.sh: run as root (namespaces, cgroups, mounts)" >&2; exit 1; fi
export VBUILD_E2E="${VBUILD_E2E:-1}"
cargo test --release --locked --workspace -- --test-threads=2 2>&1
