# syntax=docker/dockerfile:1
# Multi-stage build: compile the server and the CLI in the Rust image (cold, about 17 minutes
# on 2 cores; the cache mounts keep the registry and the target directory between builds),
# then copy them into a slim Debian runtime as a non-root user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p lakeport-server -p lakeport-client --bins \
 && mkdir -p /out \
 && cp target/release/lakeport-server target/release/lakeport /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/lakeport --create-home lakeport
COPY --from=build /out/lakeport-server /out/lakeport /usr/local/bin/
USER lakeport
WORKDIR /var/lib/lakeport
# Listening beyond loopback needs credentials: pass LAKEPORT_ADMIN_TOKEN (or a config file
# with [auth] and [[tenants]]) or the server refuses to start.
ENV LAKEPORT_LISTEN=0.0.0.0:50051 \
    LAKEPORT_METRICS_LISTEN=0.0.0.0:9090 \
    LAKEPORT_LOG_FORMAT=json \
    LAKEPORT_LAKE=/var/lib/lakeport/lake
EXPOSE 50051 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
ENTRYPOINT ["lakeport-server"]
