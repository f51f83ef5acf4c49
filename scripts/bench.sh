#!/usr/bin/env bash
# The benchmark (not run in CI): installs the test bed (cached outside the repo), builds the
# release binary and the bench example, and prints one table of the performance budgets of
# docs/benchmarks.md measured on real components. Takes a few minutes on 2 cores.
#
# Environment (see examples/bench.rs): OCISOURCE_BENCH_1G=0 skips the ~1 GiB artifact,
# OCISOURCE_BENCH_OBJECTS (1000), OCISOURCE_BENCH_CONCURRENT (controller --concurrent, 16),
# OCISOURCE_BENCH_RUNS (back-to-back pipeline pairs, 5), OCISOURCE_BENCH_SECTIONS (abcdefghi),
# OCISOURCE_BENCH_HEALTHY (200) and OCISOURCE_BENCH_FAILING (4) for the failing-neighbours section,
# OCISOURCE_BENCH_VERIFIED (100) for the verification section, OCISOURCE_BENCH_POLLS (1000),
# OCISOURCE_BENCH_POLL_REPOS (10), OCISOURCE_BENCH_POLL_INTERVAL (60 s) and
# OCISOURCE_BENCH_POLL_ROUNDS (2) for the shared-polls section, OCISOURCE_BENCH_PRODUCER_MIB
# (200,1024) for the producer-against-flux section, OCISOURCE_BENCH_SIDE_OBJECTS (1000; a list,
# e.g. 1000,10000), OCISOURCE_BENCH_SIDE_REPOS (10,1000), OCISOURCE_BENCH_SIDE_CONCURRENT (2) and
# OCISOURCE_BENCH_SIDE_RESTART (1; 0 skips the restart) for the side-by-side section against
# Flux's source-controller, OCISOURCE_BENCH_PUSH_OBJECTS (10), OCISOURCE_BENCH_PUSH_ROUNDS (5)
# and OCISOURCE_BENCH_PUSH_BASELINE_INTERVAL (60 s) for push to Ready, OCISOURCE_BENCH_SOAK_OBJECTS
# (1000), OCISOURCE_BENCH_SOAK_INTERVAL (60 s), OCISOURCE_BENCH_SOAK_WARMUP (10 min) and
# OCISOURCE_BENCH_SOAK_MINUTES (60, after the warm-up) for the soak (section j, run only when named).
# The controller runs with the image's MALLOC_ARENA_MAX=2; OCISOURCE_BENCH_GLIBC_DEFAULT=1 runs it
# with glibc's default arenas instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export OCISOURCE_CACHE="${OCISOURCE_CACHE:-$HOME/.cache/ocisource}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$OCISOURCE_CACHE/cargo-target}"
export CARGO_TERM_COLOR=never

testbed/install.sh

# Peak RSS comes from GNU time; the plain-tools baseline needs gzip, tar and sha256sum.
missing=()
[ -x /usr/bin/time ] || missing+=(time)
for tool in gzip tar sha256sum; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  packages=()
  for tool in "${missing[@]}"; do
    case "$tool" in sha256sum) packages+=(coreutils) ;; *) packages+=("$tool") ;; esac
  done
  echo "[bench] installing ${packages[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${packages[@]}"
fi

cargo build --release --locked --example bench --bin ocisource
# The controller runs with the image's allocator setting (README, "The image"), unless
# MALLOC_ARENA_MAX is set already; the Go components do not allocate through glibc.
if [ "${OCISOURCE_BENCH_GLIBC_DEFAULT:-0}" = 1 ]; then
  unset MALLOC_ARENA_MAX
else
  export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
fi
export OCISOURCE_BIN="$CARGO_TARGET_DIR/release/ocisource"
exec "$CARGO_TARGET_DIR/release/examples/bench" "$@"
