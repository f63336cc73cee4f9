# syntax=docker/dockerfile:1
#
# obsctl as a small, non-root container, for load shards and checks on Kubernetes
# (deploy/k8s/load-job.yaml, check-job.yaml). The scenarios are baked in under /scenarios.
#
# Build context is the REPOSITORY ROOT:
#     docker build -f deploy/obsctl.Dockerfile -t obsctl:0.1.0 .
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY backend/ backend/
COPY obsctl/ obsctl/
RUN cargo build --release --locked -p obsctl \
 && install -D -m 0755 target/release/obsctl /out/obsctl

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Mozilla's CA list for https sources; obsctl also honours SSL_CERT_FILE.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 obsctl \
 && useradd --system --uid 10001 --gid 10001 --home-dir /work --shell /usr/sbin/nologin obsctl \
 && mkdir -p /work \
 && chown 10001:10001 /work
COPY --from=builder /out/obsctl /usr/local/bin/obsctl
COPY scenarios/ /scenarios/
USER 10001:10001
WORKDIR /work
# SIGTERM (a Job's deadline, a pod eviction) ends a run with its partial report written (143).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/obsctl"]
