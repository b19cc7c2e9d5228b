#!/bin/bash
# A simulated day (issue 22): the emulated household with MAC churn (examples/day_churn), bridged
# by the release binary in `run` mode to its own mosquitto, once per Analyzer stamping and
# `random_macs` mode, the clock sped up with libfaketime for both the emulators and the bridge
# (the harness is started under faketime with FAKETIME_DONT_RESET=1 and the bridge is its child,
# so both share one faked clock; mosquitto runs in real time). Writes each run's hours.jsonl,
# summary.md and bridge.log under $OUT, and all summaries to $OUT/day.md.
#   bench/day.sh                                   # all 6 runs at once, ×40, 24 h, 10 MACs a minute (~37 min)
#   FACTOR=60 HOURS=3 CHURN=5 RUNS="end:group" PARALLEL=1 bench/day.sh
# Needs: faketime (apt-get install faketime libfaketime), mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."
factor=${FACTOR:-40}
hours=${HOURS:-24}
churn=${CHURN:-10}
parallel=${PARALLEL:-6}
runs=${RUNS:-"end:track end:group end:ignore start:track start:group start:ignore"}
# The simulated day starts a quarter of an hour before midnight (UTC), so "today" is one whole day.
start=${START:-"2026-12-07 23:45:00"}
target=${CARGO_TARGET_DIR:-target}
out=${OUT:-$target/day/$(date -u +%Y%m%d-%H%M%S)}
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --locked --release --bin bandwidth2mqtt --example day_churn
fi
bin=$(realpath "$target/release/bandwidth2mqtt")
harness=$(realpath "$target/release/examples/day_churn")
mkdir -p "$out"
out=$(realpath "$out")
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

one() {
    local stamping=$1 mode=$2 dir="$out/$1-$2" port
    mkdir -p "$dir"
    port=$(free_port)
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' "$port" > "$dir/mosquitto.conf"
    mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 &
    local broker=$!
    until python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; do sleep 0.05; done
    local t0 t1
    t0=$(date +%s.%N)
    FAKETIME_DONT_RESET=1 faketime -f "@$start x$factor" "$harness" --stamping "$stamping" --random-macs "$mode" \
        --bridge "$bin" --mqtt-port "$port" --dir "$dir" --hours "$hours" --churn "$churn" --factor "$factor" \
        > "$dir/harness.out" 2> "$dir/harness.err" || echo "run $stamping:$mode failed: see $dir/harness.err" >&2
    t1=$(date +%s.%N)
    kill "$broker" 2>/dev/null || true
    echo "$stamping:$mode done in $(python3 -c "print(round($t1-$t0))") real s (measured outside faketime)" | tee "$dir/wall.txt"
}

for run in $runs; do
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
    one "${run%%:*}" "${run##*:}" &
    pids+=($!)
done
wait
{
    echo "# Day runs: ×$factor, $hours h, $churn MACs a minute, commit $(git rev-parse --short HEAD), $(date -u +%F)"
    echo
    for run in $runs; do
        d="$out/${run%%:*}-${run##*:}"
        cat "$d/summary.md" 2>/dev/null || echo "(no summary for $run)"
        cat "$d/wall.txt" 2>/dev/null || true
        echo
    done
} > "$out/day.md"
echo "$out/day.md"
