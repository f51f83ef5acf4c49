#!/usr/bin/env bash
# Builds and caches Flux's own source-controller, the one ocisource runs beside (sharding by the
# `sharding.fluxcd.io/key` label): v1.7.3, the newest v1.7 patch the Go module proxy serves here
# (the Flux 2.7 line; v1.7.4 and later patches are not served). Same recipe as the consumers
# (build_with_api in lib.sh: a copy of the module with its published api module at ./api).
# Its CRDs for every kind it serves are copied from the same module into crds/ next to the
# binary (a VERSIONS file there names the module they were copied from); tests install the
# GitRepository, HelmRepository, HelmChart and Bucket ones and our OCIRepository CRD, and use
# upstream's OCIRepository CRD only to compare it with ours.
#
# Usage: testbed/install-source-controller.sh   (a cached build links instantly)
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

SOURCE_CONTROLLER_VERSION=1.7.3
CRDS=(
  source.toolkit.fluxcd.io_ocirepositories.yaml
  source.toolkit.fluxcd.io_gitrepositories.yaml
  source.toolkit.fluxcd.io_helmrepositories.yaml
  source.toolkit.fluxcd.io_helmcharts.yaml
  source.toolkit.fluxcd.io_buckets.yaml
)

name=source-controller
version=$SOURCE_CONTROLLER_VERSION
crds="$TESTBED_DIR/$name-$version/crds"
want="$name v$version"
if [ "$(cat "$crds/VERSIONS" 2>/dev/null)" != "$want" ]; then
  dir=$(mod_dir "github.com/fluxcd/$name@v$version")
  [ -n "$dir" ] || { log "$name CRDs: go mod download failed"; exit 1; }
  rm -rf "$crds"
  mkdir -p "$crds"
  for file in "${CRDS[@]}"; do
    cp "$dir/config/crd/bases/$file" "$crds/"
  done
  chmod u+w "$crds"/*.yaml
  printf '%s\n' "$want" >"$crds/VERSIONS"
  log "$name CRDs ($want): copied to $crds"
fi
build_with_api "$name" "$version"
