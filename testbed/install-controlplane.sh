#!/usr/bin/env bash
# Builds the pinned control plane of the test bed (kube-apiserver, kubectl and etcd) from the Go
# pinning modules in testbed/go/ into $OCISOURCE_CACHE. Reruns are instant once cached.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3

# The cache is keyed by these versions: they must be the ones the pinning modules require.
grep -q "k8s.io/kubernetes $KUBE_VERSION\$" "$TESTBED_SRC/go/kube-apiserver/go.mod" ||
  { log "testbed/go/kube-apiserver/go.mod does not require k8s.io/kubernetes $KUBE_VERSION"; exit 1; }
grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION\$" "$TESTBED_SRC/go/etcd/go.mod" ||
  { log "testbed/go/etcd/go.mod does not require go.etcd.io/etcd/server/v3 $ETCD_VERSION"; exit 1; }

# Without it, /version reports v0.0.0-master.
kube_ldflags="-X=k8s.io/component-base/version.gitVersion=$KUBE_VERSION"

GOFLAGS=-buildvcs=false GO_LDFLAGS="$kube_ldflags" go_build kube-apiserver "$KUBE_VERSION" \
  "$TESTBED_SRC/go/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
# kubectl of the same release, for `kubectl kustomize` / `apply -k` of deploy/ (its kustomize).
GOFLAGS=-buildvcs=false GO_LDFLAGS="$kube_ldflags" go_build kubectl "$KUBE_VERSION" \
  "$TESTBED_SRC/go/kube-apiserver" k8s.io/kubernetes/cmd/kubectl
go_build etcd "$ETCD_VERSION" "$TESTBED_SRC/go/etcd" go.etcd.io/etcd/server/v3
