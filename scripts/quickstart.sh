#!/usr/bin/env bash
# Quickstart on a fresh machine: builds the pinned local control plane (cached outside the repo),
# starts it, installs the OCIRepository CRD and applies every example manifest.
# Extra arguments go to the example, e.g. `scripts/quickstart.sh --hold`.
set -euo pipefail
cd "$(dirname "$0")/.."
export OCISOURCE_CACHE="${OCISOURCE_CACHE:-$HOME/.cache/ocisource}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$OCISOURCE_CACHE/cargo-target}"
testbed/install-controlplane.sh
cargo run --quiet --locked --example quickstart -- "$@"
