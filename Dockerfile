# syntax=docker/dockerfile:1
# Build stage: the release binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p quern \
 && cp target/release/quern /usr/local/bin/quern

# Run stage: the binary alone, as a non-root user, data in /data.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin quern \
 && mkdir -p /data && chown quern:quern /data
COPY --from=build /usr/local/bin/quern /usr/local/bin/quern
USER quern
VOLUME /data
EXPOSE 6379
ENV QUERN_BIND=0.0.0.0 QUERN_PORT=6379 QUERN_DIR=/data
ENTRYPOINT ["/usr/local/bin/quern"]
