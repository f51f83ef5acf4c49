#!/usr/bin/env bash
# Installs the whole test bed into $OCISOURCE_CACHE (default ~/.cache/ocisource): the control
# plane (kube-apiserver, etcd), the registries (Debian's docker-registry, ocitestbed), the
# producer tools (flux, helm, cosign, crane, notation), the consumers (kustomize-controller,
# helm-controller and the CRDs they need) and Flux's own source-controller (run beside ours).
# Pinned versions live in each script.
# Cold: tens of minutes on 2 cores (Go builds); cached: a few seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
start=$SECONDS
command -v go >/dev/null || { echo "testbed: Go is required to build the test bed" >&2; exit 1; }
"$here/install-controlplane.sh"
"$here/install-registries.sh"
"$here/install-tools.sh"
# source-controller before the consumers: helm-controller reuses most of its Go build cache.
"$here/install-source-controller.sh"
"$here/install-consumers.sh"
echo "[testbed] ready in $((SECONDS - start))s: ${OCISOURCE_TESTBED_BIN:-${OCISOURCE_CACHE:-$HOME/.cache/ocisource}/testbed/bin}" >&2
