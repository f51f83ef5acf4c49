# syntax=docker/dockerfile:1
# The ocisource image, for linux/amd64 and linux/arm64:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg REVISION="$(git rev-parse HEAD)" -t ghcr.io/ocisource/ocisource:0.1.0 .
# scripts/image.sh builds the same image without a container engine; its header maps each step
# of this file to the script's. Change both together.

# The build stage runs on the build machine's platform and cross-compiles for the target's.
FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
WORKDIR /src
# A cross C toolchain (aws-lc-sys compiles C) only when the target differs from the build machine;
# Debian's native gcc answers to the same triplet-prefixed name. arm64 kernels use 4, 16 or 64 KiB
# pages, and jemalloc (the binary's allocator) refuses to start on pages larger than it was built
# for: it is built for 64 KiB there.
RUN case "$TARGETPLATFORM" in \
      linux/amd64) echo x86_64-unknown-linux-gnu > /rust-target; pkgs="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;; \
      linux/arm64) echo aarch64-unknown-linux-gnu > /rust-target; pkgs="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;; \
      *) echo "unsupported platform $TARGETPLATFORM" >&2; exit 1 ;; \
    esac \
    && if [ "$TARGETPLATFORM" != "$BUILDPLATFORM" ]; then \
         apt-get update && apt-get install -y --no-install-recommends $pkgs \
         && rm -rf /var/lib/apt/lists/*; \
       fi \
    && rustup target add "$(cat /rust-target)"
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    AARCH64_UNKNOWN_LINUX_GNU_JEMALLOC_SYS_WITH_LG_PAGE=16

# Dependency cache: this layer only changes with Cargo.toml or Cargo.lock.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --features aws,azure,gcp --target "$(cat /rust-target)" \
    && rm -rf src

# The crate itself. COPY keeps the context's mtimes, older than the placeholder's build: touch.
COPY build.rs ./
COPY src ./src
ARG REVISION=unknown
RUN touch src/main.rs src/lib.rs \
    && OCISOURCE_COMMIT="$REVISION" \
       cargo build --release --locked --features aws,azure,gcp --target "$(cat /rust-target)" --bin ocisource \
    && cp "target/$(cat /rust-target)/release/ocisource" /ocisource

# glibc and libgcc_s are needed by aws-lc-rs; distroless/cc has them, the CA bundle, the nonroot
# user (65532), /tmp, and no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG REVISION=unknown
# Cargo.toml's version (tests/image.rs checks that they agree).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="https://github.com/ocisource/ocisource" \
      org.opencontainers.image.revision="$REVISION" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.title="ocisource"
COPY --from=build /ocisource /usr/local/bin/ocisource
# glibc gives threads that allocate at the same time arenas of their own, up to 8 per core, each
# keeping its own free memory: two use less (README, "The image").
ENV MALLOC_ARENA_MAX=2
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ocisource"]
CMD ["controller"]
