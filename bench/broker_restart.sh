#!/bin/bash
# Measures how long a broker restart keeps the bridge's entities away (issue 8: goal ≤ 5 s).
# A private mosquitto without persistence (a restart loses every retained message, the worst
# case), the bridge in `run` mode with the host source; the broker is stopped for each of the
# outage lengths given, started again, and the time from "broker listening" to "bridge online
# and the host device's discovery and state retained again" is printed.
#   bench/broker_restart.sh [BINARY] [OUTAGE_SECONDS...]
set -euo pipefail
bin=${1:-target/release/bandwidth2mqtt}
shift || true
outages=${*:-1 3 10 30}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" > "$work/mosquitto.conf"
broker() { mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 & echo $! > "$work/broker.pid"; }
wait_port() { until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do sleep 0.02; done; }
cat > "$work/config.toml" <<TOML
[mqtt]
url = "mqtt://127.0.0.1:$port"
[bridge]
state_dir = "$work/state"
[host]
interval = "5s"
TOML
broker; wait_port
"$bin" -c "$work/config.toml" run > "$work/bridge.log" 2>&1 &
# Watches from the moment the broker listens: lines "unix-time topic" as the bridge republishes.
watch() { mosquitto_sub -h 127.0.0.1 -p "$port" -t 'bandwidth2mqtt/#' -t 'homeassistant/#' -F '%U %t %p' > "$1" 2>/dev/null & echo $! > "$work/sub.pid"; }
# Seconds from $2 until the bridge is online and the host device's discovery config and state are
# back (what HA needs to show the entities again); empty while not yet.
back_after() {
    awk -v t0="$2" '
        $2 == "bandwidth2mqtt/bridge/state" && $3 == "online" && !o {o = $1}
        $2 ~ /^homeassistant\/(device|sensor)\// && NF > 2 && !c {c = $1}
        $2 ~ /^bandwidth2mqtt\/[^\/]+$/ && $2 != "bandwidth2mqtt/bridge" && NF > 2 && !s {s = $1}
        END { if (o && c && s) { m = o; if (c > m) m = c; if (s > m) m = s; printf "%.2f", m - t0 } }' "$1"
}
watch "$work/first.log"
until [ -n "$(back_after "$work/first.log" 0)" ]; do sleep 0.1; done
kill "$(cat "$work/sub.pid")"
echo "bridge up; outage → entities back (s)"
for outage in $outages; do
    kill "$(cat "$work/broker.pid")"; wait "$(cat "$work/broker.pid")" 2>/dev/null || true
    sleep "$outage"
    broker; wait_port
    start=$(date +%s.%N)
    watch "$work/sub-$outage.log"
    until [ -n "$(back_after "$work/sub-$outage.log" "$start")" ]; do sleep 0.1; done
    printf '%5s s outage: back after %s s\n' "$outage" "$(back_after "$work/sub-$outage.log" "$start")"
    kill "$(cat "$work/sub.pid")"
    sleep 35   # a connection that lived 30 s counts as stable again (link_health::STABLE_AFTER)
done
