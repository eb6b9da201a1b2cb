#!/usr/bin/env bash
# How late `expired` keyspace events arrive (not a test): SESSIONS keys whose deadlines are
# spread evenly over WINDOW_MS, starting LEAD_MS after the run starts, written with
# `SET key value PXAT deadline` while one connection is subscribed to
# `__keyevent@0__:expired`; the lateness of an event is the wall time it was received minus
# its key's deadline. sessiond against redis-server, alternated run by run for ROUNDS rounds,
# both driven by `sessiond-load expiry` (crates/loadgen/src/expiry.rs). Prints every run, a
# table of the medians and the sessiond / redis ratios.
#
#   bench/expiry-lateness.sh [ROUNDS]                  # 3 rounds of 200,000 keys over 2 s
#   SESSIONS=20000 bench/expiry-lateness.sh 1          # a quick look
#   RESP3=1 bench/expiry-lateness.sh                   # events as RESP3 pushes
#
# The target: p99 lateness at most 100 ms with 200,000 sessions expiring within 2 s.
# Both servers run for the whole script (throwaway directories, free loopback ports, stopped
# by pid); each run's keys carry a run id, so a run ignores events left over from another.
# sessiond runs with 2 worker threads and its journal at the default (everysec; expiries are
# not journaled), Redis without persistence. The generator shares the machine with them.
#
# Needs: redis-server (Debian package redis-server), python3 (to find a free port).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-${ROUNDS:-3}}
SESSIONS=${SESSIONS:-200000}
WINDOW_MS=${WINDOW_MS:-2000}
LEAD_MS=${LEAD_MS:-3000}
VALUE_SIZE=${VALUE_SIZE:-1024}
RESP3=${RESP3:-}

command -v redis-server >/dev/null || { echo "redis-server is missing (Debian package redis-server)" >&2; exit 1; }
cargo build --release -q -p sessiond -p sessiond-loadgen
SESSIOND=target/release/sessiond
LOAD=target/release/sessiond-load

. bench/lib.sh
bench_workdir

# sessiond binds port 0 itself and prints what it got; the memcache listener is not needed.
mkdir "$WORK/sessiond"
"$SESSIOND" --memcache-listen off --resp-listen 127.0.0.1:0 --threads 2 \
  --max-memory 4g --log warn --data-dir "$WORK/sessiond" \
  >"$WORK/sessiond.out" 2>"$WORK/sessiond.err" &
PIDS+=($!)
for _ in $(seq 200); do grep -q '^ready' "$WORK/sessiond.out" 2>/dev/null && break; sleep 0.05; done
grep -q '^ready' "$WORK/sessiond.out" || { cat "$WORK/sessiond.err" >&2; exit 1; }
sessiond_addr=$(awk '$1 == "listening" && $2 == "resp" {print $3}' "$WORK/sessiond.out")

redis_port=$(free_port)
mkdir "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
  --dir "$WORK/redis" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
wait_port "$redis_port"

declare -A ADDR=([sessiond]=$sessiond_addr [redis]=127.0.0.1:$redis_port)
ORDER=(sessiond redis)
extra=()
[ -n "$RESP3" ] && extra=(--resp3)

# One run: prints "p50 p90 p99 p99.9 max received missing margin" (milliseconds, counts;
# margin: from the last write's reply to the first deadline, negative if writing ran late).
measure() {
  "$LOAD" expiry --resp "$1" --sessions "$SESSIONS" --window-ms "$WINDOW_MS" \
    --lead-ms "$LEAD_MS" --value-size "$VALUE_SIZE" "${extra[@]}" |
    awk '$1 == "wrote" {margin=$(NF-5)}
         $1 == "received" {received=$2; missing=$4}
         $1 == "lateness" {for (i=3;i<NF;i+=2) v[$i]=$(i+1)}
         END {print v["p50"], v["p90"], v["p99"], v["p99.9"], v["max"], received, missing, margin}'
}

declare -A P50 P99 MAX
echo "| round | server | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | received | missing | write margin ms |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for round in $(seq "$ROUNDS"); do
  for name in "${ORDER[@]}"; do
    read -r p50 p90 p99 p999 max received missing margin < <(measure "${ADDR[$name]}")
    [ -n "$p99" ] || { echo "the $name run failed" >&2; exit 1; }
    echo "| $round | $name | $p50 | $p90 | $p99 | $p999 | $max | $received | $missing | $margin |"
    P50[$name]="${P50[$name]:-} $p50"
    P99[$name]="${P99[$name]:-} $p99"
    MAX[$name]="${MAX[$name]:-} $max"
  done
done

declare -A M
for name in "${ORDER[@]}"; do
  M[$name:p50]=$(echo "${P50[$name]}" | median)
  M[$name:p99]=$(echo "${P99[$name]}" | median)
  M[$name:max]=$(echo "${MAX[$name]}" | median)
done

echo
echo "expired-event lateness, $SESSIONS keys of $VALUE_SIZE B expiring over $WINDOW_MS ms" \
  "(first deadline $LEAD_MS ms after the start), median of $ROUNDS runs"
echo
echo "| | p50 ms | p99 ms | max ms |"
echo "| --- | ---: | ---: | ---: |"
for name in "${ORDER[@]}"; do
  echo "| $name | ${M[$name:p50]} | ${M[$name:p99]} | ${M[$name:max]} |"
done
echo "| sessiond / redis | $(ratio "${M[sessiond:p50]}" "${M[redis:p50]}" 4) |" \
  "$(ratio "${M[sessiond:p99]}" "${M[redis:p99]}" 4) | $(ratio "${M[sessiond:max]}" "${M[redis:max]}" 4) |"
verdict=$(awk -v p="${M[sessiond:p99]}" 'BEGIN {print (p <= 100) ? "met" : "MISSED"}')
echo
echo "target (sessiond p99 <= 100 ms): $verdict"
