# bandwidth2mqtt in a scratch image: one static binary, a CA bundle, nothing else; non-root.
#
#   docker build -t bandwidth2mqtt .                      # builds the binary in the Rust image
#   docker build --target prebuilt -t bandwidth2mqtt .    # takes target/docker/rootfs/ instead
#
# `prebuilt` is for a binary built outside Docker (what CI does, where nothing can be pulled):
#   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu
#   mkdir -p target/docker/rootfs/data target/docker/rootfs/etc/ssl/certs
#   cp target/x86_64-unknown-linux-gnu/release/bandwidth2mqtt target/docker/rootfs/
#   cp /etc/ssl/certs/ca-certificates.crt target/docker/rootfs/etc/ssl/certs/
# It is the first stage so that even the legacy builder, which builds every stage before the
# target, builds nothing else for it. The bridge talks to routers on the LAN: run it with host
# networking (docker-compose.yml).

FROM scratch AS prebuilt
COPY target/docker/rootfs/bandwidth2mqtt /bandwidth2mqtt
COPY target/docker/rootfs/etc/ /etc/
COPY --chown=65532:65532 target/docker/rootfs/data/ /data/
USER 65532:65532
ENV BANDWIDTH2MQTT__BRIDGE__STATE_DIR=/data BANDWIDTH2MQTT_CONFIG=/config/bandwidth2mqtt.toml
VOLUME /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/bandwidth2mqtt", "health"]
ENTRYPOINT ["/bandwidth2mqtt"]
CMD ["run"]

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target x86_64-unknown-linux-gnu \
    && mkdir -p /rootfs/data /rootfs/etc/ssl/certs \
    && cp target/x86_64-unknown-linux-gnu/release/bandwidth2mqtt /rootfs/bandwidth2mqtt \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

FROM scratch AS runtime
COPY --from=builder /rootfs/bandwidth2mqtt /bandwidth2mqtt
COPY --from=builder /rootfs/etc/ /etc/
COPY --from=builder --chown=65532:65532 /rootfs/data/ /data/
USER 65532:65532
ENV BANDWIDTH2MQTT__BRIDGE__STATE_DIR=/data BANDWIDTH2MQTT_CONFIG=/config/bandwidth2mqtt.toml
VOLUME /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/bandwidth2mqtt", "health"]
ENTRYPOINT ["/bandwidth2mqtt"]
CMD ["run"]
