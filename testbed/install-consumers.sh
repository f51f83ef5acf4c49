#!/usr/bin/env bash
# Builds and caches the Flux controllers that consume our artifacts, each with the CRDs it needs
# in crds/ next to its binary (a VERSIONS file there names the modules they were copied from):
#   kustomize-controller  v1.6.0 (the Flux 2.6 line): its Kustomization CRD, and the GitRepository
#                         and Bucket CRDs of source-controller v1.7.0 (it watches them too;
#                         v1.6.x is not served by the Go module proxy here). kustomize-controller
#                         v1.6.0 uses GitRepository v1 and Bucket v1, which those CRDs serve.
#                         Also source-controller v1.7.0's OCIRepository CRD, never installed: the
#                         reference tests/api_crd.rs compares ours with.
#   helm-controller       v1.4.3 (the Flux 2.7 line; v1.3.x is not served by the Go module proxy
#                         here; v1.4.3 pins the same Kubernetes, controller-runtime and Helm
#                         modules as source-controller v1.7.3, so a cold build reuses most of the
#                         Go build cache that one filled): its HelmRelease CRD, and the HelmChart CRD of source-controller
#                         v1.7.0, the source API version it is built against (it watches HelmChart
#                         besides OCIRepository; ExternalArtifact only behind a feature gate that
#                         is off by default).
# OCIRepository is ours: tests install crds/ocirepository.yaml of this repository.
#
# Usage: testbed/install-consumers.sh [NAME...]   (default: all). A cached build links instantly.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

KUSTOMIZE_CONTROLLER_VERSION=1.6.0
HELM_CONTROLLER_VERSION=1.4.3
SOURCE_CRDS_VERSION=1.7.0

# install_crds DIR NAME VERSION OWN_CRD SOURCE_CRD...: copies OWN_CRD from the module zip of
# github.com/fluxcd/NAME@vVERSION and each SOURCE_CRD from source-controller's into DIR.
# Recopied whenever the versions or files recorded in DIR/VERSIONS differ.
install_crds() {
  local crds=$1 name=$2 version=$3 own=$4
  shift 4
  local want="$name v$version, source-controller v$SOURCE_CRDS_VERSION: $own $*"
  if [ "$(cat "$crds/VERSIONS" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local mine sc
  mine=$(mod_dir "github.com/fluxcd/$name@v$version")
  sc=$(mod_dir "github.com/fluxcd/source-controller@v$SOURCE_CRDS_VERSION")
  if [ -z "$mine" ] || [ -z "$sc" ]; then
    log "$name CRDs: go mod download failed"
    return 1
  fi
  rm -rf "$crds"
  mkdir -p "$crds"
  cp "$mine/config/crd/bases/$own" "$crds/"
  local file
  for file in "$@"; do
    cp "$sc/config/crd/bases/$file" "$crds/"
  done
  chmod u+w "$crds"/*.yaml
  printf '%s\n' "$want" >"$crds/VERSIONS"
  log "$name CRDs ($want): copied to $crds"
}

install_kustomize_controller() {
  local name=kustomize-controller version=$KUSTOMIZE_CONTROLLER_VERSION
  install_crds "$TESTBED_DIR/$name-$version/crds" "$name" "$version" \
    kustomize.toolkit.fluxcd.io_kustomizations.yaml \
    source.toolkit.fluxcd.io_gitrepositories.yaml source.toolkit.fluxcd.io_buckets.yaml \
    source.toolkit.fluxcd.io_ocirepositories.yaml
  build_with_api "$name" "$version"
}

install_helm_controller() {
  local name=helm-controller version=$HELM_CONTROLLER_VERSION
  install_crds "$TESTBED_DIR/$name-$version/crds" "$name" "$version" \
    helm.toolkit.fluxcd.io_helmreleases.yaml source.toolkit.fluxcd.io_helmcharts.yaml
  build_with_api "$name" "$version"
}

all=(kustomize-controller helm-controller)
for name in "${@:-${all[@]}}"; do
  case $name in
  kustomize-controller) install_kustomize_controller ;;
  helm-controller) install_helm_controller ;;
  *)
    log "unknown consumer $name (known: ${all[*]})"
    exit 2
    ;;
  esac
done
