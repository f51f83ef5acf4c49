#!/usr/bin/env bash
# Quickstart on a fresh machine: installs the pinned local control plane and registry (cached
# outside the repo), then publishes examples/content with `ocisource push artifact`, reconciles it
# with `ocisource controller` and fetches the artifact back from the artifact server.
# Extra arguments go to the example, e.g. `scripts/quickstart.sh --hold`.
set -euo pipefail
cd "$(dirname "$0")/.."
export OCISOURCE_CACHE="${OCISOURCE_CACHE:-$HOME/.cache/ocisource}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$OCISOURCE_CACHE/cargo-target}"
testbed/install-controlplane.sh
testbed/install-registries.sh
cargo build --quiet --locked --bin ocisource --example quickstart
OCISOURCE_BIN="$CARGO_TARGET_DIR/debug/ocisource" "$CARGO_TARGET_DIR/debug/examples/quickstart" "$@"
