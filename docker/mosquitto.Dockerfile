# CI's stand-in for eclipse-mosquitto:2 (no registry is reachable there): Debian's mosquitto on
# a base imported from `debootstrap --variant=minbase bookworm`. Same config path as upstream.
ARG BASE=bandwidth2mqtt-ci/bookworm-minbase:latest
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /mosquitto/config /mosquitto/data \
    && chown mosquitto:mosquitto /mosquitto/data
USER mosquitto
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
