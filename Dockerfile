# First version of the container image; the shipping issue completes it (multi-arch, SBOM,
# signatures). Build: docker build -t ocisource .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crds ./crds
COPY README.md ./
RUN cargo build --release --locked --bin ocisource

# glibc is needed by aws-lc-rs; distroless keeps the image small and shell-less.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ocisource /usr/local/bin/ocisource
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/ocisource"]
CMD ["controller"]
