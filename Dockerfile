# syntax=docker/dockerfile:1
# One image per service:  docker build --build-arg SERVICE=order-service -t order-service .
# (docker compose passes SERVICE for each of the four.)

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The dependency graph only: this layer changes when Cargo.toml or Cargo.lock do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
ARG SERVICE
RUN test -n "$SERVICE" || (echo "set --build-arg SERVICE=<order|inventory|payment|notification>-service" && false)
COPY --from=planner /src/recipe.json recipe.json
# Dependencies compiled in their own cached layer: a source change rebuilds only our crates.
RUN cargo chef cook --release --locked --recipe-path recipe.json --package "$SERVICE"
COPY . .
RUN cargo build --release --locked --package "$SERVICE" --bin "$SERVICE" \
 && cp "target/release/$SERVICE" /usr/local/bin/service

# distroless: libc and certificates, no shell; runs as uid 65532 ("nonroot").
FROM ${RUNTIME_IMAGE}
COPY --from=build /usr/local/bin/service /usr/local/bin/service
USER nonroot
ENV HOST=0.0.0.0
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/service", "--health-check"]
ENTRYPOINT ["/usr/local/bin/service"]
