# syntax=docker/dockerfile:1
# The ladder service image: the release binary on a distroless base, run as a
# non-root numeric user, with nothing to write (the root filesystem can be
# mounted read-only). No PostgreSQL inside: in Kubernetes the database is
# external, so run it with DATABASE_URL (and `ladder migrate` as a job).
#
#   docker build -t ladder .
#   docker run --read-only -e DATABASE_URL=postgres://... -e LADDER_JWT_JWKS=/keys/jwks.json \
#     -v "$PWD/keys:/keys:ro" -p 50051:50051 ladder serve --no-migrate

#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t ladder .
#
# The base images are named by tag only: pin them by digest
# (`rust:1.95-bookworm@sha256:...`, `gcr.io/distroless/cc-debian12:nonroot@sha256:...`)
# where you build, from the registry you pull them from.

ARG RUST_VERSION=1.95
# Both stages are Debian 12, so the binary's glibc matches the runtime's.
FROM rust:${RUST_VERSION}-bookworm AS build
# The source revision, also reported by ladder_build_info on /metrics.
ARG REVISION=unknown
WORKDIR /src
# Only what the release binary is built from (migrations and the built-in
# framework are compiled into it).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY migrations migrations
COPY framework framework
COPY benches benches
COPY src src
# Stripped (no symbol table or debug info) for the image only; the release
# profile itself keeps symbols for profiling (docs/benchmarks.md).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    LADDER_REVISION="$REVISION" CARGO_PROFILE_RELEASE_STRIP=true \
    cargo build --release --locked --bin ladder \
    && install -D -m 0555 target/release/ladder /out/ladder

# distroless/cc: glibc, libgcc, CA certificates and tzdata, no shell, no
# package manager. The `nonroot` variant's user is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="ladder" \
      org.opencontainers.image.description="Scores competency evidence against role rubrics and recommends career moves beyond Senior Engineer" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=build /out/ladder /usr/local/bin/ladder
USER 65532:65532
ENV LADDER_LISTEN=0.0.0.0:50051 \
    LADDER_LOG_FORMAT=json
# gRPC (and gRPC-Web) on 50051; the admin port (--admin-listen) serves
# /metrics, /livez and /readyz when it is configured, 9090 by convention.
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/ladder"]
CMD ["serve"]
