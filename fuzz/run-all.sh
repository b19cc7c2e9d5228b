#!/bin/sh
# Runs every fuzz target once, one after the other, each until RUNS executions or SECONDS
# seconds, whichever comes first, at the lowest CPU priority. Logs go to fuzz/runs/<target>.log;
# the last `#N DONE`/`stat::number_of_executed_units` line of each is its execution count.
#   fuzz/run-all.sh [RUNS] [SECONDS] [TARGET...]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
runs=${1:-10000000}
seconds=${2:-3600}
[ $# -ge 2 ] && shift 2 || shift $#
targets=${*:-$(cd "$here/fuzz_targets" && ls | sed 's/\.rs$//')}
bin=$here/target/x86_64-unknown-linux-gnu/release
mkdir -p "$here/runs" "$here/artifacts"
[ -d "$here/corpus" ] || "$here/seed.sh"
for t in $targets; do
    mkdir -p "$here/corpus/$t" "$here/artifacts/$t"
    start=$(date +%s)
    nice -n "${FUZZ_NICE:-19}" "$bin/$t" "$here/corpus/$t" \
        -runs="$runs" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$here/artifacts/$t/" -print_final_stats=1 \
        > "$here/runs/$t.log" 2>&1 || echo "$t: exit $? (see runs/$t.log and artifacts/$t/)"
    end=$(date +%s)
    execs=$(grep -a 'stat::number_of_executed_units' "$here/runs/$t.log" | awk '{print $2}')
    echo "$t: ${execs:-?} executions in $((end - start)) s"
done
