# syntax=docker/dockerfile:1
# The ladder service image: the release binary on a distroless base, run as a
# non-root numeric user, with nothing to write (the root filesystem can be
# mounted read-only). No PostgreSQL inside: in Kubernetes the database is
# external, so run it with DATABASE_URL (and `ladder migrate` as a job).
#
#   docker build -t ladder .
#   docker run --read-only -e DATABASE_URL=postgres://... -e LADDER_JWT_JWKS=/keys/jwks.json \
#     -v "$PWD/keys:/keys:ro" -p 50051:50051 ladder serve --no-migrate

ARG RUST_VERSION=1.95
# Both stages are Debian 12, so the binary's glibc matches the runtime's.
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the release binary is built from (migrations and the built-in
# framework are compiled into it).
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY migrations migrations
COPY framework framework
COPY benches benches
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin ladder \
    && install -D -m 0555 target/release/ladder /out/ladder

# distroless/cc: glibc, libgcc, CA certificates and tzdata, no shell, no
# package manager. The `nonroot` variant's user is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ladder /usr/local/bin/ladder
USER 65532:65532
ENV LADDER_LISTEN=0.0.0.0:50051 \
    LADDER_LOG_FORMAT=json
# gRPC (and gRPC-Web) on 50051; the admin port (--admin-listen) serves
# /metrics, /livez and /readyz when it is configured, 9090 by convention.
EXPOSE 50051 9090
ENTRYPOINT ["/usr/local/bin/ladder"]
CMD ["serve"]
