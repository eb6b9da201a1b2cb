#!/usr/bin/env bash
# Journal benchmarks (not a test): write throughput of sessiond under `--fsync always` and
# `--fsync everysec` against Redis with `appendfsync always` and `everysec`, driven by the
# same generator in the same run and alternated round by round; then the recovery time of
# sessiond for SESSIONS sessions of VALUE_SIZE bytes.
#
#   bench/journal.sh                      # 3 rounds of 10 s, then 1,000,000 x 2 KiB recovery
#   ROUNDS=1 DURATION=3s SESSIONS=20000 bench/journal.sh   # a quick look
#   ROUNDS=0 COLD=1 bench/journal.sh      # recovery only, from a dropped page cache (root)
#
# Needs: redis-server (Debian redis-server). Prints a markdown table; figures depend on the
# disk's fsync latency and on what else the machine is doing (watch the `foreign` column of
# /proc/stat, or run on an idle machine).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
SESSIONS=${SESSIONS:-1000000}
VALUE_SIZE=${VALUE_SIZE:-2048}
CONNS=${CONNS:-50}

cargo build --release -q -p sessiond -p sessiond-loadgen
SESSIOND=target/release/sessiond
LOAD=target/release/sessiond-load
command -v redis-server >/dev/null || { echo "redis-server is missing (Debian package redis-server)" >&2; exit 1; }

. bench/lib.sh
bench_workdir

# Starts sessiond with the given fsync policy and a fresh data dir; sets ADDR, PID and DIR.
# The server's own output goes next to (not into) the data directory, so that `du` of the
# directory measures the journal alone.
start_sessiond() {
  DIR="$WORK/sessiond-$1-$RANDOM"
  mkdir -p "$DIR"
  "$SESSIOND" --memcache-listen 127.0.0.1:0 --resp-listen off --data-dir "$DIR" --fsync "$1" \
    --max-memory 16g >"$DIR.out" 2>"$DIR.err" &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 200); do grep -q '^ready' "$DIR.out" 2>/dev/null && break; sleep 0.05; done
  ADDR=$(awk '/^listening memcache/ {print $3}' "$DIR.out")
}

start_redis() {
  local dir="$WORK/redis-$1-$RANDOM" port
  mkdir -p "$dir"
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync "$1" \
    --dir "$dir" --daemonize no >"$dir/log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  ADDR="127.0.0.1:$port"
}

# One measured run: prints "ops/s p99_ms".
measure() {
  local protocol=$1
  "$LOAD" run --server "$ADDR" --protocol "$protocol" --workload login-storm --conns "$CONNS" \
    --value-size "$VALUE_SIZE" --duration "$DURATION" --warmup 1s |
    awk '/ ops\/s over / {ops=$1} /^latency ms:/ {for (i=1;i<=NF;i++) if ($i=="p99") p99=$(i+1)} END {print ops, p99}'
}

declare -A RESULTS
# ROUNDS=0 skips the write benchmark and measures only the recovery.
for round in $(seq "$ROUNDS"); do
  for target in sessiond:always redis:always sessiond:everysec redis:everysec; do
    server=${target%%:*}
    policy=${target##*:}
    if [ "$server" = sessiond ]; then start_sessiond "$policy"; proto=text; else start_redis "$policy"; proto=resp; fi
    result=$(measure "$proto")
    kill "$PID"; wait "$PID" 2>/dev/null || true
    echo "round $round $target: $result" >&2
    RESULTS[$target]="${RESULTS[$target]:-} ${result%% *}"
  done
done

if [ "$ROUNDS" -gt 0 ]; then
echo
echo "| login storm (100% SET of new ${VALUE_SIZE}-byte values, $CONNS connections), median of $ROUNDS | always ops/s | everysec ops/s |"
echo "| --- | ---: | ---: |"
for server in sessiond redis; do
  echo "| $server | $(echo "${RESULTS[$server:always]}" | median) | $(echo "${RESULTS[$server:everysec]}" | median) |"
done
sa=$(echo "${RESULTS[sessiond:always]}" | median); ra=$(echo "${RESULTS[redis:always]}" | median)
se=$(echo "${RESULTS[sessiond:everysec]}" | median); re=$(echo "${RESULTS[redis:everysec]}" | median)
echo "| sessiond / redis | $(awk -v a="$sa" -v b="$ra" 'BEGIN {printf "%.2f", a/b}') | $(awk -v a="$se" -v b="$re" 'BEGIN {printf "%.2f", a/b}') |"
fi

# Recovery: load SESSIONS sessions, stop, and time the restart until `ready`.
echo
start_sessiond everysec
"$LOAD" run --server "$ADDR" --protocol text --workload load --keys "$SESSIONS" --value-size "$VALUE_SIZE" \
  --conns "$CONNS" --depth 8 --ttl 86400 >/dev/null
kill -9 "$PID"; wait "$PID" 2>/dev/null || true
journal_mb=$(du -sm "$DIR" | cut -f1)
# Recovery reads the journal from the page cache unless it is dropped: COLD=1 drops it (root),
# so the figure includes reading the disk.
cache=warm
if [ "${COLD:-0}" = 1 ]; then sync; echo 1 >/proc/sys/vm/drop_caches; cache=cold; fi
start=$(date +%s.%N)
"$SESSIOND" --memcache-listen 127.0.0.1:0 --resp-listen off --data-dir "$DIR" --max-memory 16g >"$DIR.out2" 2>"$DIR.err2" &
PID=$!
PIDS+=("$PID")
until grep -q '^ready' "$DIR.out2" 2>/dev/null; do
  kill -0 "$PID" 2>/dev/null || { echo "sessiond died during recovery:" >&2; tail "$DIR.err2" >&2; exit 1; }
  sleep 0.01
done
end=$(date +%s.%N)
rss_mb=$(awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$PID/status")
items=$(sed -n 's/.*recovered from.* items[^0-9]*\([0-9]*\).*/\1/p' "$DIR.err2" | head -1)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f", b-a}')
echo "| recovery after kill -9 ($cache page cache) | sessions | items recovered | journal on disk | time to ready | MB/s | RSS after |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
echo "| sessiond --fsync everysec | $SESSIONS x $VALUE_SIZE B | ${items:-?} | ${journal_mb} MB | ${secs} s | $(awk -v m="$journal_mb" -v s="$secs" 'BEGIN {printf "%.0f", m/s}') | ${rss_mb} MB |"
