# syntax=docker/dockerfile:1
# Turtlemen: one image for every role (`serve`, `gateway`, `auth`, `api`, `worker`, `migrate`).
#
#   docker build -t turtlemen .
#   docker run --read-only --tmpfs /tmp -v turtlemen-data:/var/lib/turtlemen -p 8080:8080 turtlemen
#
# The build stage compiles the release binary with the front-end bundles pinned by
# web/package-lock.json (embedded into the binary at build time); the runtime image holds the
# binary, ffmpeg (transcodes and live packaging) and CA certificates, runs as an unprivileged
# user and needs nothing writable but its data dir and /tmp (run it with a read-only root).

FROM rust:1.95-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Front-end packages first, so a code change does not fetch them again.
COPY web/package.json web/package-lock.json web/
RUN npm ci --prefix web --omit=dev --ignore-scripts --no-audit --no-fund
COPY . .
RUN cargo build --release --locked \
 && install -D -m 0755 target/release/turtlemen /out/turtlemen

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 turtlemen \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/turtlemen --no-create-home turtlemen \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/turtlemen
COPY --from=build /out/turtlemen /usr/local/bin/turtlemen
USER 10001:10001
WORKDIR /var/lib/turtlemen
ENV TURTLEMEN_DATA_DIR=/var/lib/turtlemen \
    TURTLEMEN_LISTEN=0.0.0.0:8080 \
    TURTLEMEN_LOG_FORMAT=json
EXPOSE 8080 1935
# Kubernetes probes /healthz and /readyz (deploy/kubernetes); the image has no shell tools to
# probe itself with, and needs none.
# checkov:skip=CKV_DOCKER_2: health is probed by the orchestrator on /healthz and /readyz
HEALTHCHECK NONE
ENTRYPOINT ["turtlemen"]
CMD ["serve"]
