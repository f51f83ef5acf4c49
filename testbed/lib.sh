# shellcheck shell=bash
# Shared helpers for the test-bed install scripts. Source it; do not run it.
#
# Layout (all outside the repository):
#   $OCISOURCE_CACHE                default $HOME/.cache/ocisource
#   $OCISOURCE_CACHE/testbed/<name>-<version>/<name>   one pinned build per version
#   $OCISOURCE_CACHE/testbed/bin/<name>                symlink to the pinned build in use
# Tests find components through $OCISOURCE_TESTBED_BIN (default: the bin dir above).

set -euo pipefail

OCISOURCE_CACHE="${OCISOURCE_CACHE:-$HOME/.cache/ocisource}"
TESTBED_DIR="$OCISOURCE_CACHE/testbed"
TESTBED_BIN="${OCISOURCE_TESTBED_BIN:-$TESTBED_DIR/bin}"
TESTBED_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$TESTBED_BIN"

log() { printf '[testbed] %s\n' "$*" >&2; }

# link_bin NAME PATH: make PATH the component NAME seen by the tests.
link_bin() {
  ln -sfn "$2" "$TESTBED_BIN/$1"
}

# cached NAME VERSION: true (and links it) when that pinned build exists already.
cached() {
  local out="$TESTBED_DIR/$1-$2/$1"
  if [ -x "$out" ]; then
    link_bin "$1" "$out"
    log "$1 $2: cached"
    return 0
  fi
  return 1
}

# The flags of every Go build of the test bed. No DWARF is generated or linked (nobody debugs
# these binaries, and on 2 cores it saves minutes of a cold run); $GO_LDFLAGS adds linker flags
# such as -X=PACKAGE.VAR=VALUE (GOFLAGS cannot carry them: a command-line -ldflags replaces it).
go_flags() {
  printf '%s\n' -trimpath -gcflags=all=-dwarf=false "-ldflags=-s -w ${GO_LDFLAGS:-}"
}

# go_build NAME VERSION MODULE_DIR PACKAGE: build PACKAGE inside the pinning module
# MODULE_DIR (a directory of this repo holding go.mod/go.sum) into the cache.
go_build() {
  local name=$1 version=$2 moddir=$3 pkg=$4
  cached "$name" "$version" && return 0
  local out="$TESTBED_DIR/$name-$version/$name"
  local start=$SECONDS
  log "$name $version: building $pkg (cold builds take minutes)"
  mkdir -p "$(dirname "$out")"
  local flags
  mapfile -t flags < <(go_flags)
  (cd "$moddir" && CGO_ENABLED=0 go build "${flags[@]}" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  link_bin "$name" "$out"
  log "$name $version: built in $((SECONDS - start))s"
}

# go_install NAME VERSION PACKAGE@VERSION: for modules without local replace directives.
go_install() {
  local name=$1 version=$2 spec=$3
  cached "$name" "$version" && return 0
  local dir="$TESTBED_DIR/$name-$version"
  local start=$SECONDS
  log "$name $version: go install $spec (cold builds take minutes)"
  mkdir -p "$dir"
  local flags
  mapfile -t flags < <(go_flags)
  CGO_ENABLED=0 GOBIN="$dir" go install "${flags[@]}" "$spec"
  link_bin "$name" "$dir/$name"
  log "$name $version: built in $((SECONDS - start))s"
}

# mod_dir MODULE@VERSION: the module's directory in the Go module cache (downloaded and checked
# against the checksum database when missing).
mod_dir() {
  (cd "$TESTBED_SRC" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}

# build_with_api NAME VERSION: builds github.com/fluxcd/NAME@vVERSION. Its go.mod replaces
# github.com/fluxcd/NAME/api with ./api, a nested module that the module zip leaves out, so
# `go install` refuses it. Build inside a writable copy of the module instead, with the published
# api module of the same version copied to ./api (the go.mod/go.sum of the module pin every other
# dependency; its other replace directives name published modules and keep working).
build_with_api() {
  local name=$1 version=$2
  cached "$name" "$version" && return 0
  local mod=github.com/fluxcd/$name
  local dir api
  dir=$(mod_dir "$mod@v$version")
  api=$(mod_dir "$mod/api@v$version")
  if [ -z "$dir" ] || [ -z "$api" ]; then
    log "$name: go mod download $mod@v$version failed"
    return 1
  fi
  local src="$TESTBED_DIR/src/$name-v$version"
  rm -rf "$src"
  mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"
  cp -r "$api" "$src/api"
  chmod -R u+w "$src"
  GOFLAGS="-buildvcs=false" go_build "$name" "$version" "$src" .
  rm -rf "$src"
  rmdir "$TESTBED_DIR/src" 2>/dev/null || true
}
