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

# A run of the whole suite compiles each crate once (a fresh clone's path differs, so even a warm
# CI run rebuilds our crate from scratch): incremental caches cost time and disk and never pay off.
if [ -n "${CI:-}" ]; then
  export CARGO_INCREMENTAL=0
fi

# The test bed (Go builds from source when cold) and the Rust compiles below each leave one of the
# two cores idle part of the time, in links and at the tail of their dependency graphs: running
# them side by side saves minutes of a cold run. Its log is shown when it is waited for.
step "test bed (in the background until the tests need it)"
testbed_log=$(mktemp)
setsid -w testbed/install.sh >"$testbed_log" 2>&1 &
testbed_pid=$!
# If a step below fails, stop the test bed's builds too (setsid made it a process group).
trap 'kill -- "-$testbed_pid" 2>/dev/null || true; rm -f "$testbed_log"' EXIT

step "rustfmt"
cargo fmt --all -- --check

# Two feature sets are linted: the default one (what `cargo install` builds) and every feature (what
# the image ships). Everything else builds and runs once, with every feature: one dependency
# compile instead of two saves minutes of a cold run on 2 cores.
step "clippy (default features)"
cargo clippy --all-targets --locked -- -D warnings

step "clippy (all features: the cloud provider logins, as the image ships)"
cargo clippy --all-targets --all-features --locked -- -D warnings

step "committed CRD is generated"
cargo run --quiet --locked --all-features -- crds | diff -u crds/ocirepository.yaml - \
  || { echo "crds/ocirepository.yaml is stale: cargo run -- crds > crds/ocirepository.yaml"; exit 1; }

step "the chart ships the committed CRD"
cmp crds/ocirepository.yaml deploy/charts/ocisource/crds/ocirepository.yaml \
  || { echo "the chart's CRD is stale: cp crds/ocirepository.yaml deploy/charts/ocisource/crds/"; exit 1; }

step "docs (README and doc comments, broken links refused)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --all-features --quiet

step "test binaries (all features)"
cargo test --locked --all-features --no-run

step "test bed ready"
testbed_rc=0
wait "$testbed_pid" || testbed_rc=$?
cat "$testbed_log"
[ "$testbed_rc" = 0 ] || { echo "testbed/install.sh failed ($testbed_rc)"; exit "$testbed_rc"; }

step "tests (all features)"
# With the cloud logins compiled in, a test that names provider aws without credentials runs the
# SDK's real default chain: keep it off the instance metadata endpoint of whatever machine runs CI.
export AWS_EC2_METADATA_DISABLED=true
cargo test --locked --all-features -- --test-threads="${OCISOURCE_TEST_THREADS:-4}"

step "done"
