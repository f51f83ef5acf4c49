#!/usr/bin/env bash
# End-to-end check of ocisource beside Flux on a cluster: the one place of the e2e steps, run by
# the kind workflow (.github/workflows/e2e.yaml, `--install chart`) and by tests/e2e_script.rs
# against the test bed (`--install none`, the controllers already running as local processes).
#
#   scripts/e2e.sh --registry HOST:PORT [--cluster-registry HOST:PORT] [--install none|chart]
#                  [--image REPO:TAG] [--namespace NS] [--ocisource PATH] [--kubeconfig PATH]
#                  [--artifact-host HOST[:PORT]] [--timeout SECONDS]
#
# Every flag has an environment variable: E2E_REGISTRY, E2E_CLUSTER_REGISTRY, E2E_INSTALL,
# E2E_IMAGE, E2E_NAMESPACE, E2E_OCISOURCE, KUBECONFIG, E2E_ARTIFACT_HOST, E2E_TIMEOUT; the tools
# are $KUBECTL and $HELM (default: kubectl and helm on PATH).
#
#   --registry          a plain-HTTP, anonymous OCI registry as this machine reaches it (pushes)
#   --cluster-registry  the same registry as the controllers reach it (default: --registry); on
#                       kind they differ (localhost:5000 here, kind-registry:5000 in the cluster)
#   --install chart     helm installs deploy/charts/ocisource beside Flux (besideFlux.enabled,
#                       no CRD: Flux's serves it) into flux-system with --image, and checks that
#                       artifact URLs name its Service; Flux must be installed, source-controller
#                       patched with --watch-label-selector=!sharding.fluxcd.io/key (README,
#                       "Beside Flux")
#   --install none      (default) the caller runs ocisource with
#                       --watch-label-selector=sharding.fluxcd.io/key=ocisource, and Flux's
#                       source-, kustomize- and helm-controller, all watching --namespace
#   --artifact-host     the host[:port] ocisource advertises in artifact URLs (checked when set)
#   --timeout           seconds each wait may take (default 180)
#
# Steps: push manifests (a ConfigMap) with `ocisource push artifact` and a Helm chart with
# `helm push`, both at 1.0.0; apply an OCIRepository labelled for ocisource with a Kustomization,
# an OCIRepository labelled for ocisource selecting the chart layer with a HelmRelease
# (`chartRef`), and an unlabelled OCIRepository left to source-controller; wait for all Ready,
# check who reconciled each OCIRepository (managedFields: ocisource writes its status by
# server-side apply, source-controller by update) and that both ConfigMaps hold 1.0.0's data;
# then push 2.0.0 with changed content, move the manifests to tag 2.0.0 and let the chart's
# semver range pick 2.0.0, and wait until both consumers have applied it. Each run pushes to
# repositories of its own (e2e/<time>-<pid>/...) and first deletes what an earlier run left in
# the namespace. Exits non-zero with the reason and a dump of the objects and events (and, with
# the chart, the controllers' logs) on the first failure.
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"

registry="${E2E_REGISTRY:-}"
cluster_registry="${E2E_CLUSTER_REGISTRY:-}"
install="${E2E_INSTALL:-none}"
image="${E2E_IMAGE:-}"
ns="${E2E_NAMESPACE:-ocisource-e2e}"
ocisource="${E2E_OCISOURCE:-ocisource}"
artifact_host="${E2E_ARTIFACT_HOST:-}"
timeout="${E2E_TIMEOUT:-180}"
kubectl="${KUBECTL:-kubectl}"
helm="${HELM:-helm}"

usage() {
  sed -n '6,8p' "$0" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry="${2:?--registry needs HOST:PORT}"; shift 2 ;;
    --cluster-registry) cluster_registry="${2:?--cluster-registry needs HOST:PORT}"; shift 2 ;;
    --install) install="${2:?--install needs none or chart}"; shift 2 ;;
    --image) image="${2:?--image needs REPO:TAG}"; shift 2 ;;
    --namespace) ns="${2:?--namespace needs a name}"; shift 2 ;;
    --ocisource) ocisource="${2:?--ocisource needs a path}"; shift 2 ;;
    --kubeconfig) export KUBECONFIG="${2:?--kubeconfig needs a path}"; shift 2 ;;
    --artifact-host) artifact_host="${2:?--artifact-host needs HOST[:PORT]}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs seconds}"; shift 2 ;;
    -h | --help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "e2e: unknown argument $1" >&2; usage ;;
  esac
done

[ -n "$registry" ] || { echo "e2e: --registry (E2E_REGISTRY) is required" >&2; usage; }
cluster_registry="${cluster_registry:-$registry}"
case "$timeout" in '' | *[!0-9]*) echo "e2e: --timeout must be whole seconds" >&2; usage ;; esac
release_ns=flux-system
case "$install" in
  none) ;;
  chart)
    [ -n "$image" ] || { echo "e2e: --install chart needs --image REPO:TAG" >&2; usage; }
    case "${image##*/}" in *:*) ;; *) echo "e2e: --image needs a tag: $image" >&2; usage ;; esac
    artifact_host="${artifact_host:-ocisource.$release_ns.svc.cluster.local.}"
    ;;
  *) echo "e2e: --install must be none or chart, not $install" >&2; usage ;;
esac
for tool in "$kubectl" "$helm" "$ocisource"; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool not found" >&2; exit 2; }
done

shard_key=sharding.fluxcd.io/key
chart_media_type=application/vnd.cncf.helm.chart.content.v1.tar+gzip
start=$SECONDS
# Each run pushes to repositories of its own: a semver range never sees an earlier run's tags.
run_id="$(date -u +%Y%m%d%H%M%S)-$$"
repo_prefix="e2e/$run_id"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

k() { "$kubectl" "$@"; }
kn() { "$kubectl" -n "$ns" "$@"; }
say() { printf '[e2e %3ss] %s\n' "$((SECONDS - start))" "$*"; }

# What a failure needs to be understood: the objects with their status, the namespace's events
# and, with the chart, the controllers' logs.
dump() {
  {
    echo "---- objects in $ns ----"
    kn get ocirepositories,kustomizations,helmreleases,configmaps -o wide || true
    echo "---- describe ----"
    kn describe ocirepositories,kustomizations,helmreleases || true
    echo "---- events in $ns ----"
    kn get events --sort-by=.lastTimestamp || true
    if [ "$install" = chart ]; then
      for d in ocisource source-controller kustomize-controller helm-controller; do
        echo "---- $release_ns/$d log (tail) ----"
        k -n "$release_ns" logs "deploy/$d" --tail=60 || true
      done
    fi
  } >&2 2>&1
}

fail() {
  echo "e2e: FAILED after $((SECONDS - start))s: $*" >&2
  dump
  exit 1
}

# wait_for WHAT CMD...: runs CMD every 2 s until it succeeds; fails after $timeout seconds.
wait_for() {
  local what=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${timeout}s waiting for $what"
    sleep 2
  done
  say "ok: $what"
}

# field KIND/NAME JSONPATH: the field's value ("" while the object or field is missing).
field() { kn get "$1" -o "jsonpath=$2" 2>/dev/null || true; }

# ready KIND/NAME: Ready=True for the object's current generation.
ready() {
  local status generation observed
  status="$(field "$1" '{.status.conditions[?(@.type=="Ready")].status}')"
  generation="$(field "$1" '{.metadata.generation}')"
  observed="$(field "$1" '{.status.observedGeneration}')"
  [ "$status" = True ] && [ -n "$generation" ] && [ "$generation" = "$observed" ]
}

# revision_is KIND/NAME VERSION: the OCIRepository is Ready with an artifact of tag VERSION.
revision_is() {
  ready "$1" && [[ "$(field "$1" '{.status.artifact.revision}')" == "$2@sha256:"* ]]
}

# applied KUSTOMIZATION REVISION: the Kustomization is Ready, having applied REVISION.
applied() {
  ready "kustomization/$1" && [ "$(field "kustomization/$1" '{.status.lastAppliedRevision}')" = "$2" ]
}

# released HELMRELEASE VERSION RELEASE_NUMBER: the HelmRelease is Ready with release
# RELEASE_NUMBER deployed from chart VERSION (helm-controller appends the artifact digest as
# build metadata: VERSION+<12 hex>).
released() {
  ready "helmrelease/$1" &&
    [[ "$(field "helmrelease/$1" '{.status.history[0].chartVersion}')" == "$2+"* ]] &&
    [ "$(field "helmrelease/$1" '{.status.history[0].status}')" = deployed ] &&
    [ "$(field "helmrelease/$1" '{.status.history[0].version}')" = "$3" ]
}

# config_is CONFIGMAP KEY VALUE
config_is() { [ "$(field "configmap/$1" "{.data.$2}")" = "$3" ]; }

# writers OCIREPOSITORY: one "manager operation subresource" line per managedFields entry.
writers() {
  field "ocirepository/$1" \
    '{range .metadata.managedFields[*]}{.manager} {.operation} {.subresource}{"\n"}{end}'
}

# Both controllers call themselves source-controller; ocisource writes the status by server-side
# apply, source-controller merge-patches it (tests/beside_flux.rs).
check_reconciled_by_ocisource() {
  local name=$1 w url host
  w="$(writers "$name")"
  if grep -q '^source-controller Update' <<<"$w"; then
    fail "OCIRepository $name was reconciled by Flux's source-controller, not by ocisource alone:" \
      "is source-controller patched with --watch-label-selector=!$shard_key? writers:"$'\n'"$w"
  fi
  grep -qx 'source-controller Apply status' <<<"$w" ||
    fail "OCIRepository $name: no status written by ocisource (server-side apply); writers:"$'\n'"$w"
  url="$(field "ocirepository/$name" '{.status.artifact.url}')"
  host="${url#*://}"
  host="${host%%/*}"
  if [ -n "$artifact_host" ] && [ "$host" != "$artifact_host" ]; then
    fail "OCIRepository $name: artifact served from $host, not from ocisource's $artifact_host ($url)"
  fi
  say "ok: OCIRepository $name reconciled by ocisource, artifact at $url"
}

check_reconciled_by_source_controller() {
  local name=$1 w
  w="$(writers "$name")"
  if ! grep -q '^source-controller Update' <<<"$w" || grep -qx 'source-controller Apply status' <<<"$w"; then
    fail "OCIRepository $name (unlabelled) was not reconciled by source-controller alone; writers:"$'\n'"$w"
  fi
  say "ok: unlabelled OCIRepository $name reconciled by source-controller"
}

# write_manifests DIR VERSION: the Kustomization's content, one ConfigMap.
write_manifests() {
  mkdir -p "$1"
  cat >"$1/configmap.yaml" <<EOF
apiVersion: v1
kind: ConfigMap
metadata:
  name: e2e-greeting
data:
  message: hello from $2
EOF
}

# write_chart DIR VERSION: a chart whose ConfigMap holds the values' greeting and its version.
write_chart() {
  mkdir -p "$1/templates"
  cat >"$1/Chart.yaml" <<EOF
apiVersion: v2
name: e2e-greeter
description: ocisource e2e chart
type: application
version: $2
appVersion: "$2"
EOF
  echo 'greeting: hello' >"$1/values.yaml"
  cat >"$1/templates/configmap.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-greeting
data:
  greeting: {{ .Values.greeting | quote }}
  chart: {{ .Chart.Version | quote }}
EOF
}

# publish VERSION: pushes the manifests with ocisource and the chart with helm, both at VERSION.
publish() {
  local v=$1
  write_manifests "$work/manifests-$v" "$v"
  "$ocisource" push artifact "oci://$registry/$repo_prefix/manifests:$v" --path "$work/manifests-$v" \
    --source https://github.com/ocisource/ocisource --revision "$v" --insecure-registry >&2 ||
    fail "ocisource push artifact oci://$registry/$repo_prefix/manifests:$v failed"
  write_chart "$work/chart-$v/e2e-greeter" "$v"
  "$helm" package "$work/chart-$v/e2e-greeter" --destination "$work/chart-$v" >/dev/null ||
    fail "helm package of chart $v failed"
  "$helm" push "$work/chart-$v/e2e-greeter-$v.tgz" "oci://$registry/$repo_prefix/charts" --plain-http >&2 ||
    fail "helm push oci://$registry/$repo_prefix/charts (e2e-greeter $v) failed"
  say "pushed manifests and chart $v to $registry/$repo_prefix"
}

say "cluster $(k config current-context 2>/dev/null || echo '?'), namespace $ns, install $install," \
  "registry $registry (in the cluster: $cluster_registry)"
for crd in ocirepositories.source.toolkit.fluxcd.io kustomizations.kustomize.toolkit.fluxcd.io \
  helmreleases.helm.toolkit.fluxcd.io; do
  k get crd "$crd" >/dev/null || fail "CRD $crd is not installed: install Flux first"
done

if [ "$install" = chart ]; then
  repository="${image%:*}"
  tag="${image##*:}"
  "$helm" upgrade --install ocisource "$repo_root/deploy/charts/ocisource" -n "$release_ns" \
    --skip-crds --set besideFlux.enabled=true --set "image.repository=$repository" \
    --set "image.tag=$tag" --wait --timeout "${timeout}s" >&2 ||
    fail "helm install of deploy/charts/ocisource with $image failed"
  k -n "$release_ns" rollout status deploy/ocisource --timeout "${timeout}s" >&2 ||
    fail "deploy/ocisource did not roll out"
  say "ok: ocisource installed with the chart beside Flux ($image)"
fi

k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null
# A clean slate: what an earlier run left is deleted (pruned and uninstalled by its consumers).
kn delete kustomization/e2e-manifests helmrelease/e2e-greeter ocirepository/e2e-manifests \
  ocirepository/e2e-chart ocirepository/e2e-flux --ignore-not-found --wait \
  --timeout "${timeout}s" >&2 || fail "objects of an earlier run could not be deleted"

publish 1.0.0

# manifests_source NAME LABELS: an OCIRepository following the manifests at 1.0.0.
manifests_source() {
  cat <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: $1
  labels: $2
spec:
  url: oci://$cluster_registry/$repo_prefix/manifests
  ref:
    tag: "1.0.0"
  insecure: true
  interval: 10m
EOF
}

{
  manifests_source e2e-manifests "{$shard_key: ocisource}"
  cat <<EOF
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: e2e-manifests
spec:
  sourceRef:
    kind: OCIRepository
    name: e2e-manifests
  path: ./
  prune: true
  targetNamespace: $ns
  interval: 10m
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: e2e-chart
  labels:
    $shard_key: ocisource
spec:
  url: oci://$cluster_registry/$repo_prefix/charts/e2e-greeter
  ref:
    semver: ">=1.0.0"
  layerSelector:
    mediaType: $chart_media_type
    operation: copy
  insecure: true
  interval: 10m
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: e2e-greeter
spec:
  chartRef:
    kind: OCIRepository
    name: e2e-chart
  values:
    greeting: hello from values
  interval: 10m
---
EOF
  manifests_source e2e-flux "{}"
} | kn apply -f - >/dev/null || fail "kubectl apply of the e2e objects failed"
say "applied OCIRepositories e2e-manifests, e2e-chart (labelled $shard_key=ocisource) and e2e-flux," \
  "Kustomization e2e-manifests, HelmRelease e2e-greeter"

kn wait --for=condition=Ready --timeout "${timeout}s" ocirepository/e2e-manifests ocirepository/e2e-chart >&2 ||
  fail "the labelled OCIRepositories did not become Ready: is ocisource running for $shard_key=ocisource?"
wait_for "OCIRepository e2e-manifests at 1.0.0" revision_is ocirepository/e2e-manifests 1.0.0
wait_for "OCIRepository e2e-chart at 1.0.0" revision_is ocirepository/e2e-chart 1.0.0
check_reconciled_by_ocisource e2e-manifests
check_reconciled_by_ocisource e2e-chart
kn wait --for=condition=Ready --timeout "${timeout}s" ocirepository/e2e-flux >&2 ||
  fail "the unlabelled OCIRepository e2e-flux did not become Ready: is source-controller running?"
check_reconciled_by_source_controller e2e-flux

rev1="$(field ocirepository/e2e-manifests '{.status.artifact.revision}')"
wait_for "Kustomization e2e-manifests applied $rev1" applied e2e-manifests "$rev1"
wait_for "ConfigMap e2e-greeting from 1.0.0" config_is e2e-greeting message "hello from 1.0.0"
wait_for "HelmRelease e2e-greeter released chart 1.0.0" released e2e-greeter 1.0.0 1
wait_for "ConfigMap e2e-greeter-greeting from chart 1.0.0" config_is e2e-greeter-greeting greeting "hello from values"

# The upgrade: a new tag for the manifests, a newer version in the chart's semver range.
publish 2.0.0
kn patch ocirepository/e2e-manifests --type merge -p '{"spec":{"ref":{"tag":"2.0.0"}}}' >/dev/null
kn annotate --overwrite ocirepository/e2e-chart "reconcile.fluxcd.io/requestedAt=$(date +%s%N)" >/dev/null
wait_for "OCIRepository e2e-manifests at 2.0.0" revision_is ocirepository/e2e-manifests 2.0.0
wait_for "OCIRepository e2e-chart at 2.0.0" revision_is ocirepository/e2e-chart 2.0.0
check_reconciled_by_ocisource e2e-manifests
check_reconciled_by_ocisource e2e-chart
rev2="$(field ocirepository/e2e-manifests '{.status.artifact.revision}')"
wait_for "Kustomization e2e-manifests applied $rev2" applied e2e-manifests "$rev2"
wait_for "ConfigMap e2e-greeting from 2.0.0" config_is e2e-greeting message "hello from 2.0.0"
wait_for "HelmRelease e2e-greeter upgraded to chart 2.0.0" released e2e-greeter 2.0.0 2
chart_version="$(field helmrelease/e2e-greeter '{.status.history[0].chartVersion}')"
wait_for "ConfigMap e2e-greeter-greeting from chart $chart_version" config_is e2e-greeter-greeting chart "$chart_version"

say "PASSED: $rev1 then $rev2 applied by the Kustomization, chart 1.0.0 then $chart_version released"
