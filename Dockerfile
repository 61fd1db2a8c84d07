# syntax=docker/dockerfile:1
# Build stage: the release binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p quern \
 && cp target/release/quern /usr/local/bin/quern

# Run stage: the binary alone, as a non-root user, data in /data.
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 quern \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin quern \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /usr/local/bin/quern /usr/local/bin/quern
USER 10001:10001
VOLUME /data
# RESP (what Redis clients connect to) and HTTP (/metrics, /health, /ready
# and the dashboard).
EXPOSE 6379 8379
ENV QUERN_BIND=0.0.0.0 QUERN_PORT=6379 QUERN_HTTP=0.0.0.0:8379 QUERN_DIR=/data
# The image has no HTTP client; bash's /dev/tcp asks /health, and the
# status line must say 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8379 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# Stop with SIGTERM: in-flight work finishes and is committed (exit 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/quern"]
