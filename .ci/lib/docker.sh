# Shared by .ci/docker-e2e and .ci/addon-e2e (sourced, never run): the tools, a dockerd of our
# own (no systemd, no bridge network, no iptables; stopped by PID), the static binary, and a
# Debian base image made with debootstrap (no registry is reachable in CI). Only 127.0.0.1 is
# ever targeted. Expects `set -euo pipefail` and the repository as the working directory.

ci_repo=$(pwd)
ci="$ci_repo/target/docker-ci"
mkdir -p "$ci"
now() { date +%s.%N; }
# ci_measure LABEL START: prints and appends to $ci_timings (set by the caller).
ci_measure() {
  local secs
  secs=$(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  echo "$ci_name: $1: ${secs} s" | tee -a "$ci_timings"
}

# ci_tools PACKAGE_OR_COMMAND...: installs Debian's docker.io, debootstrap, mosquitto-clients
# and any extra `command=package` pairs given, if missing.
ci_tools() {
  local t missing=() pair
  t=$(now)
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%=*}" ] || missing+=("${pair#*=}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  ci_measure "tools install (${missing[*]:-already installed})" "$t"
}

# ci_dockerd_start: sets DOCKER_HOST and dockerd_pid; returns 1 (after a loud notice) when
# dockerd cannot start on this machine. The caller's EXIT trap must call ci_dockerd_stop.
dockerd_pid=""
ci_dockerd_start() {
  local t
  export DOCKER_HOST="unix://$ci/docker.sock"
  t=$(now)
  dockerd --host "$DOCKER_HOST" --data-root "$ci/docker-data" --exec-root "/run/b2m-ci-docker" \
    --pidfile "$ci/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
    >"$ci/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 100); do
    docker version >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.3
  done
  if ! docker version >/dev/null 2>&1; then
    echo "################################################################################"
    echo "$ci_name: SKIPPED: dockerd cannot start on this machine; nothing was tested."
    tail -n 20 "$ci/dockerd.log" | sed "s/^/$ci_name:   dockerd: /"
    echo "################################################################################"
    return 1
  fi
  ci_measure "dockerd start ($(docker info --format '{{.Driver}}') storage)" "$t"
}

ci_dockerd_stop() {
  [ -n "$dockerd_pid" ] || return 0
  kill "$dockerd_pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$dockerd_pid" 2>/dev/null
  dockerd_pid=""
}

# ci_static_binary: target/docker/rootfs/ with a static bandwidth2mqtt and the CA bundle, as
# the Dockerfile's `prebuilt` stage takes it; $ci_binary is the binary.
ci_static_binary() {
  local t rootfs="$ci_repo/target/docker/rootfs"
  t=$(now)
  # crt-static on the final link only: the dependencies compiled for the tests are reused, so
  # this costs one crate's compile and a link instead of a second full build (users' Dockerfile
  # builds with RUSTFLAGS and --release instead).
  cargo rustc --locked --bin bandwidth2mqtt -- -C target-feature=+crt-static -C strip=symbols
  rm -rf "$rootfs"
  mkdir -p "$rootfs/data" "$rootfs/etc/ssl/certs"
  cp target/debug/bandwidth2mqtt "$rootfs/bandwidth2mqtt"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  if ! ldd "$rootfs/bandwidth2mqtt" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    echo "$ci_name: the binary is not static" >&2
    return 1
  fi
  ci_binary="$rootfs/bandwidth2mqtt"
  ci_measure "static binary build" "$t"
}

# ci_base_tar: $ci/bookworm-minbase.tar, `debootstrap --variant=minbase bookworm`, made once.
ci_base_tar="$ci/bookworm-minbase.tar"
ci_base_tar() {
  local t
  [ -s "$ci_base_tar" ] && return 0
  t=$(now)
  rm -rf "$ci/bootstrap"
  debootstrap --variant=minbase bookworm "$ci/bootstrap" >"$ci/debootstrap.log" 2>&1 \
    || { tail -n 30 "$ci/debootstrap.log" >&2; return 1; }
  tar -C "$ci/bootstrap" -cf "$ci_base_tar.tmp" . && mv "$ci_base_tar.tmp" "$ci_base_tar"
  rm -rf "$ci/bootstrap"
  ci_measure "debootstrap" "$t"
}

# ci_base_image: the base tar imported as bandwidth2mqtt-ci/bookworm-minbase:latest.
ci_base_image() {
  ci_base_tar
  docker image inspect bandwidth2mqtt-ci/bookworm-minbase:latest >/dev/null 2>&1 \
    || docker import "$ci_base_tar" bandwidth2mqtt-ci/bookworm-minbase:latest >/dev/null
}

# ci_free_port: a free TCP port on 127.0.0.1.
ci_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
