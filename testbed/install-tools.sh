#!/usr/bin/env bash
# Builds and caches the pinned artifact-producer tools of the test bed, each from its Go module:
#   flux      flux2 v2.6.4 (the Flux 2.6 CLI the spec targets)
#   helm      helm v3.22.0
#   cosign    cosign v2.6.5
#   crane     go-containerregistry v0.22.1
#   notation  a minimal signer in testbed/go/notation on notation-go v1.3.2 (the notation CLI
#             module is not served by the Go module proxy here; see that directory)
#   sigstore-testca  an offline private Sigstore in testbed/go/sigstore-testca on sigstore-go
#             v1.1.4 and cosign v2.6.5's packages: a Fulcio-like CA, Rekor and CT log keys, their
#             trusted_root.json, keyless signatures attached as cosign attaches them
#   openssl   Debian's package (key pairs of every type the cosign tests import)
#   actionlint  actionlint v1.7.12 (lints .github/workflows, their run: steps with shellcheck)
#   ShellCheck  Debian's shellcheck package (lints scripts/, testbed/, .ci/run)
#
# Usage: testbed/install-tools.sh [NAME...]   (default: all). A cached build links instantly.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

FLUX_VERSION=2.6.4
HELM_VERSION=3.22.0
COSIGN_VERSION=2.6.5
CRANE_VERSION=0.22.1
NOTATION_GO_VERSION=1.3.2
ACTIONLINT_VERSION=1.7.12
SIGSTORE_GO_VERSION=1.1.4

# flux2's cmd/flux embeds manifests/*.yaml, which its release process generates and which are
# not in the module zip, so neither `go install` nor a wrapper module can build it. Build inside a
# writable copy of the module instead (flux2's own go.mod/go.sum pin every dependency, checked
# against the checksum database on download) with a placeholder manifest: `flux install` and
# `flux bootstrap` are unusable in this build, every artifact/source command works.
install_flux() {
  cached flux "$FLUX_VERSION" && return 0
  local mod=github.com/fluxcd/flux2/v2@v$FLUX_VERSION
  local src="$TESTBED_DIR/src/flux2-v$FLUX_VERSION"
  local dir
  dir=$(cd "$TESTBED_SRC" && go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "flux: go mod download $mod failed"; return 1; }
  rm -rf "$src"
  mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  mkdir -p "$src/cmd/flux/manifests"
  printf '# placeholder: the release manifests are not part of the flux2 Go module\n' \
    >"$src/cmd/flux/manifests/placeholder.yaml"
  GOFLAGS=-buildvcs=false GO_LDFLAGS="-X=main.VERSION=$FLUX_VERSION" \
    go_build flux "$FLUX_VERSION" "$src" ./cmd/flux
  rm -rf "$src"
  rmdir "$TESTBED_DIR/src" 2>/dev/null || true
}

install_helm() {
  GOFLAGS=-buildvcs=false GO_LDFLAGS="-X=helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    go_install helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

install_cosign() {
  GOFLAGS=-buildvcs=false GO_LDFLAGS="-X=sigs.k8s.io/release-utils/version.gitVersion=v$COSIGN_VERSION" \
    go_install cosign "$COSIGN_VERSION" "github.com/sigstore/cosign/v2/cmd/cosign@v$COSIGN_VERSION"
}

install_crane() {
  GOFLAGS=-buildvcs=false GO_LDFLAGS="-X=github.com/google/go-containerregistry/cmd/crane/cmd.Version=v$CRANE_VERSION" \
    go_install crane "$CRANE_VERSION" "github.com/google/go-containerregistry/cmd/crane@v$CRANE_VERSION"
}

# The version key includes a hash of the signer's sources so an edit rebuilds it.
install_notation() {
  local moddir="$TESTBED_SRC/go/notation"
  local h
  h=$(cd "$moddir" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
  go_build notation "$NOTATION_GO_VERSION-$h" "$moddir" .
}

# Same scheme as notation: a hash of the sources in the version key.
install_sigstore_testca() {
  local moddir="$TESTBED_SRC/go/sigstore-testca"
  local h
  h=$(cd "$moddir" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)
  go_build sigstore-testca "$SIGSTORE_GO_VERSION-$h" "$moddir" .
}

# debian_tool NAME: links the command NAME of Debian's package NAME, installed when missing.
debian_tool() {
  if ! command -v "$1" >/dev/null; then
    log "$1: installing Debian's package"
    export DEBIAN_FRONTEND=noninteractive
    apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "$1" >/dev/null
  fi
  link_bin "$1" "$(command -v "$1")"
}

install_openssl() {
  debian_tool openssl
  log "openssl $(openssl version | cut -d' ' -f2): installed"
}

install_actionlint() {
  # `go install MODULE@VERSION` records the version in the build info, where actionlint reads it.
  GOFLAGS="-buildvcs=false" go_install actionlint "$ACTIONLINT_VERSION" "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
}

install_shellcheck() {
  debian_tool shellcheck
  log "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): installed"
}

all=(flux helm cosign crane notation sigstore-testca openssl actionlint shellcheck)
for name in "${@:-${all[@]}}"; do
  case $name in
  flux | helm | cosign | crane | notation | openssl | actionlint | shellcheck) "install_$name" ;;
  sigstore-testca) install_sigstore_testca ;;
  *)
    log "unknown tool $name (known: ${all[*]})"
    exit 2
    ;;
  esac
done
