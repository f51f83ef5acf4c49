#!/usr/bin/env bash
# Builds and caches the Flux controllers that consume our artifacts:
#   kustomize-controller  v1.6.0 (the Flux 2.6 line), with the CRDs it needs in crds/ next to
#                         the binary: its Kustomization CRD, and the GitRepository and Bucket
#                         CRDs of source-controller v1.7.0 (it watches them too; v1.6.x is not
#                         served by the Go module proxy here). kustomize-controller v1.6.0 uses
#                         GitRepository v1 and Bucket v1, which those CRDs serve. OCIRepository is
#                         ours: tests install crds/ocirepository.yaml of this repository.
#
# Usage: testbed/install-consumers.sh [NAME...]   (default: all). A cached build links instantly.
source "$(dirname "$0")/lib.sh"

KUSTOMIZE_CONTROLLER_VERSION=1.6.0
SOURCE_CRDS_VERSION=1.7.0

# mod_dir MODULE@VERSION: the module's directory in the Go module cache (downloaded and checked
# against the checksum database when missing).
mod_dir() {
  (cd "$TESTBED_SRC" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}

# Its go.mod replaces github.com/fluxcd/kustomize-controller/api with ./api, a nested module that
# the module zip leaves out, so `go install` refuses it. Build inside a writable copy of the
# module instead, with the published api module of the same version copied to ./api (the
# go.mod/go.sum of the module pin every other dependency).
install_kustomize_controller() {
  local name=kustomize-controller version=$KUSTOMIZE_CONTROLLER_VERSION
  local out="$TESTBED_DIR/$name-$version"
  install_consumer_crds "$out/crds"
  cached "$name" "$version" && return 0
  local mod=github.com/fluxcd/kustomize-controller
  local dir api
  dir=$(mod_dir "$mod@v$version")
  api=$(mod_dir "$mod/api@v$version")
  [ -n "$dir" ] && [ -n "$api" ] || { log "$name: go mod download $mod@v$version failed"; return 1; }
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

# install_consumer_crds DIR: the CRDs kustomize-controller needs besides ours, copied from the
# module zips. Recopied whenever the versions recorded in DIR/VERSIONS differ.
install_consumer_crds() {
  local crds=$1
  local want="kustomize-controller v$KUSTOMIZE_CONTROLLER_VERSION, source-controller v$SOURCE_CRDS_VERSION"
  if [ "$(cat "$crds/VERSIONS" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local kc sc
  kc=$(mod_dir "github.com/fluxcd/kustomize-controller@v$KUSTOMIZE_CONTROLLER_VERSION")
  sc=$(mod_dir "github.com/fluxcd/source-controller@v$SOURCE_CRDS_VERSION")
  [ -n "$kc" ] && [ -n "$sc" ] || { log "consumer CRDs: go mod download failed"; return 1; }
  rm -rf "$crds"
  mkdir -p "$crds"
  cp "$kc/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" \
    "$sc/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml" \
    "$sc/config/crd/bases/source.toolkit.fluxcd.io_buckets.yaml" "$crds/"
  chmod u+w "$crds"/*.yaml
  printf '%s\n' "$want" >"$crds/VERSIONS"
  log "consumer CRDs ($want): copied to $crds"
}

all=(kustomize-controller)
for name in "${@:-${all[@]}}"; do
  case $name in
  kustomize-controller) install_kustomize_controller ;;
  *)
    log "unknown consumer $name (known: ${all[*]})"
    exit 2
    ;;
  esac
done
