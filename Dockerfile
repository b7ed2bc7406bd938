# syntax=docker/dockerfile:1.7
#
# One image, four binaries in /usr/local/bin:
#   gift-api     ECS api service     (command ["gift-api"])
#   gift-worker  ECS worker service  (command ["gift-worker"]; health check ["gift-worker", "healthcheck"])
#   gift-admin   operator tool       (one-off tasks: ["gift-admin", "migrate"], DLQ redrive, retry)
#   gift-local   local all-in-one development binary
# The runtime stage has no shell and no package manager; everything the
# binaries need (glibc, libgcc, CA certificates, tzdata) is in distroless/cc.
#
#   docker build -t gift:dev .
#   docker run --rm -p 8080:8080 --env-file .env gift:dev gift-api

# The toolchain rust-toolchain.toml pins (scripts/check-build holds the two together).
ARG RUST_VERSION=1.95.0

# --- chef: the toolchain plus cargo-chef ---------------------------------------
# bookworm matches the runtime's glibc (distroless cc-debian12).
FROM rust:${RUST_VERSION}-slim-bookworm AS chef
ARG RUST_VERSION
# The image's own toolchain, not a download of rust-toolchain.toml's components
# (rustfmt and clippy are for development, not for the build).
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never
RUN cargo install --locked cargo-chef@0.1.78
WORKDIR /src

# --- planner: the dependency recipe (manifests and lock file only) --------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- builder ------------------------------------------------------------------
# The `production` profile (Cargo.toml): release with whole-program optimisation.
FROM chef AS builder

# The build never talks to a database: no sqlx macro is compiled (the migrations
# are listed in runtime/src/sql.rs).

# Dependencies first, in their own layer: it is rebuilt only when a manifest or
# Cargo.lock changes, so a change to the service compiles only the workspace's
# own crates on the next deploy.
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo chef cook --profile production --locked -p gift-bins -p gift-local --recipe-path recipe.json

# The commit goes into `--version` and each binary's first log line. Declared after the
# dependency layer, so a new commit does not invalidate it.
ARG GIT_SHA=unknown
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    GIT_SHA="${GIT_SHA}" cargo build --profile production --locked -p gift-bins -p gift-local \
    && mkdir -p /out \
    && cp target/production/gift-api target/production/gift-worker target/production/gift-admin target/production/gift-local /out/

# --- runtime ------------------------------------------------------------------
# :nonroot runs as uid/gid 65532 by default.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

COPY --from=builder --chown=root:root --chmod=0755 /out/ /usr/local/bin/

USER 65532:65532

# mimalloc (the binaries' allocator) without transparent huge pages, which make the first
# touch of each 2 MiB of its arena resident, and returning freed pages at once: gift-api's
# peak at 256 connections is some 30 MB instead of 50 (docs/benchmarks.md, "gift-api's memory").
ENV MIMALLOC_ALLOW_THP=0 \
    MIMALLOC_PURGE_DELAY=0

# gift-api listens on PORT (default 8080); the worker listens on nothing.
EXPOSE 8080

# ECS overrides this with the task definition's `command`.
CMD ["gift-api"]
