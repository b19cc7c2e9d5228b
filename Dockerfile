# Minimal image; the deployment issue will refine it. The bridge talks to routers on the LAN,
# so run it with host networking (see docker-compose.yml).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates vnstat openssh-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/bandwidth2mqtt /usr/local/bin/bandwidth2mqtt
ENV BANDWIDTH2MQTT__BRIDGE__STATE_DIR=/data
VOLUME /data
ENTRYPOINT ["bandwidth2mqtt"]
CMD ["run", "-c", "/config/bandwidth2mqtt.toml"]
