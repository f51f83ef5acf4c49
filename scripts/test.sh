#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the test bed (cached outside the repo), then
# checks formatting, lints, the committed CRD, and runs every test against the real components.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
export OCISOURCE_CACHE="${OCISOURCE_CACHE:-$HOME/.cache/ocisource}"
# Build products live in the cache too, so that a fresh clone (as in CI) starts warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$OCISOURCE_CACHE/cargo-target}"
export CARGO_TERM_COLOR=never

step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }

step "test bed"
testbed/install.sh

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --all-targets --locked -- -D warnings

step "committed CRD is generated"
cargo run --quiet --locked -- crds | diff -u crds/ocirepository.yaml - \
  || { echo "crds/ocirepository.yaml is stale: cargo run -- crds > crds/ocirepository.yaml"; exit 1; }

step "the chart ships the committed CRD"
cmp crds/ocirepository.yaml deploy/charts/ocisource/crds/ocirepository.yaml \
  || { echo "the chart's CRD is stale: cp crds/ocirepository.yaml deploy/charts/ocisource/crds/"; exit 1; }

step "docs (README and doc comments, broken links refused)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet

step "tests"
cargo test --locked -- --test-threads="${OCISOURCE_TEST_THREADS:-4}"

step "cloud provider login, all features (clippy, unit tests against local fakes)"
cargo clippy --all-targets --all-features --locked -- -D warnings
cargo test --locked --all-features --lib cloud

step "done"
