# Multi-stage build: compile against Debian's RocksDB, ship a slim image running as a non-root user.
FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb-dev libclang-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY src src
COPY config config
COPY openapi openapi
RUN cargo build --release --locked && strip target/release/vecdb

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librocksdb7.8 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data vecdb \
 && mkdir -p /data && chown vecdb /data
COPY --from=build /src/target/release/vecdb /usr/local/bin/vecdb
ENV VECDB__SERVICE__HOST=0.0.0.0 \
    VECDB__STORAGE__DATA_DIR=/data
VOLUME /data
EXPOSE 6333 6334
USER vecdb
ENTRYPOINT ["/usr/local/bin/vecdb"]
CMD ["serve"]
