#!/usr/bin/env bash
# Builds the ocisource container image without a container engine and pushes it to a registry.
#
#   scripts/image.sh [--binary PATH] [--insecure] REGISTRY/REPOSITORY[:TAG]
#
# Without --binary it builds the release binary as the Dockerfile does
# (`cargo build --release --locked --features aws,azure,gcp`, in $CARGO_TARGET_DIR); with
# --binary it packs that binary instead (tests/image.rs passes the debug binary its run already
# has: the release path is this same script without the flag). --insecure reaches a plain-HTTP
# registry. The tag defaults to the crate version. Needs bash, tar, gzip, ldd and crane
# ($CRANE, else `crane` on PATH, else the test bed's).
#
# Equivalence with the Dockerfile (keep both in step when either changes):
#   Dockerfile                                   | this script
#   build stage: cargo build --release --locked  | the same command and features, on this machine
#     --features aws,azure,gcp, OCISOURCE_COMMIT  |   (OCISOURCE_COMMIT from git, else "unknown")
#   distroless/cc-debian12:nonroot: glibc,       | layer 1: the shared libraries `ldd` names, at
#     libgcc_s, CA bundle, passwd/group with     |   the paths it names; the build machine's CA
#     nonroot 65532, /tmp 1777                   |   bundle; passwd/group with nonroot 65532; /tmp 1777
#   COPY the binary to /usr/local/bin/ocisource  | layer 2: the same file
#   USER 65532:65532, ENTRYPOINT, CMD controller | crane mutate --user, --entrypoint, --cmd
#   ENV PATH, SSL_CERT_FILE (from distroless),   | crane mutate --env, the same values
#     ENV MALLOC_ARENA_MAX                       |
#   LABEL org.opencontainers.image.*             | crane mutate --label, the same keys and values
#   linux/amd64 and linux/arm64 (buildx)         | the build machine's platform only (no index)
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
insecure=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --insecure) insecure=(--insecure); shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "image.sh: unknown flag $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: scripts/image.sh [--binary PATH] [--insecure] REGISTRY/REPOSITORY[:TAG]" >&2; exit 2; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
ref="$1"
# A tag is a ':' after the last '/' (a registry port is before it).
case "${ref##*/}" in *:*) ;; *) ref="$ref:$version" ;; esac

commit="${OCISOURCE_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
crane="${CRANE:-$(command -v crane || echo "${OCISOURCE_CACHE:-$HOME/.cache/ocisource}/testbed/bin/crane")}"
[ -x "$crane" ] || { echo "image.sh: crane not found (set CRANE)" >&2; exit 1; }

if [ -z "$binary" ]; then
  OCISOURCE_COMMIT="$commit" cargo build --release --locked --features aws,azure,gcp --bin ocisource
  binary="${CARGO_TARGET_DIR:-target}/release/ocisource"
fi
[ -x "$binary" ] || { echo "image.sh: no executable at $binary" >&2; exit 1; }

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "image.sh: unsupported build machine $(uname -m)" >&2; exit 1 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
base="$work/base"
app="$work/app"
mkdir -p "$base/etc/ssl/certs" "$base/tmp" "$app/usr/local/bin"
chmod 1777 "$base/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$base/etc/ssl/certs/ca-certificates.crt"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$base/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' > "$base/etc/group"
# Every absolute path ldd names (the libraries and the loader), copied as files to that path.
libs="$(ldd "$binary" | grep -o '/[^ ]*' || true)"
[ -n "$libs" ] || echo "image.sh: $binary is static: no libraries to ship" >&2
for lib in $libs; do
  mkdir -p "$base$(dirname "$lib")"
  cp -L "$lib" "$base$lib"
done
cp "$binary" "$app/usr/local/bin/ocisource"
chmod 0755 "$app/usr/local/bin/ocisource"

# Reproducible layers: sorted, root-owned, one fixed mtime, gzip without a timestamp.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
layer() {
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$1" -cf - . \
    | gzip -n > "$2"
}
layer "$base" "$work/base.tar.gz"
layer "$app" "$work/app.tar.gz"

"$crane" "${insecure[@]}" append --oci-empty-base \
  -f "$work/base.tar.gz" -f "$work/app.tar.gz" -t "$ref" >/dev/null
"$crane" "${insecure[@]}" mutate "$ref" -t "$ref" \
  --set-platform "linux/$arch" \
  --user 65532:65532 \
  --entrypoint /usr/local/bin/ocisource \
  --cmd controller \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --env MALLOC_ARENA_MAX=2 \
  --label org.opencontainers.image.source=https://github.com/ocisource/ocisource \
  --label "org.opencontainers.image.revision=$commit" \
  --label "org.opencontainers.image.version=$version" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label org.opencontainers.image.title=ocisource >/dev/null
"$crane" "${insecure[@]}" digest "$ref" | sed "s|^|$ref@|"
