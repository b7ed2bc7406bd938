# syntax=docker/dockerfile:1.7
#
# One image, three binaries in /usr/local/bin:
#   gift-api     ECS api service     (command ["gift-api"])
#   gift-worker  ECS worker service  (command ["gift-worker"]; health check ["gift-worker", "healthcheck"])
#   gift-local   local all-in-one development binary
# The runtime stage has no shell and no package manager; everything the
# binaries need (glibc, libgcc, CA certificates, tzdata) is in distroless/cc.
#
#   docker build -t gift:dev .
#   docker run --rm -p 8080:8080 --env-file .env gift:dev gift-api

ARG RUST_VERSION=1.95

# --- build --------------------------------------------------------------------
# bookworm matches the runtime's glibc (distroless cc-debian12).
FROM rust:${RUST_VERSION}-slim-bookworm AS builder

WORKDIR /src

# The build never talks to a database: sqlx's query! macros (none today) would
# have to use committed .sqlx/ metadata (`cargo sqlx prepare`).
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

COPY . .

# The cache mounts keep the registry and target dir between local builds; the
# binaries are copied out in the same step because the mount is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gift-bins \
    && mkdir -p /out \
    && cp target/release/gift-api target/release/gift-worker target/release/gift-local /out/

# --- runtime ------------------------------------------------------------------
# :nonroot runs as uid/gid 65532 by default.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

COPY --from=builder --chown=root:root --chmod=0755 /out/ /usr/local/bin/

USER 65532:65532

# gift-api listens on PORT (default 8080); the worker listens on nothing.
EXPOSE 8080

# ECS overrides this with the task definition's `command`.
CMD ["gift-api"]
