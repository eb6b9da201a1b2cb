#!/usr/bin/env bash
# Requests per second of an axum handler that reads and writes one session value, behind
# sessiond-session and behind tower-sessions, first over each one's memory store, then over
# Redis, measured in the same run with the same wrk settings. A benchmark, not a test: it
# asserts nothing and is not part of scripts/test.sh.
#
#   bench/middleware.sh                 # 10 s per case, 2 wrk threads, 32 connections
#   DURATION=30s CONNECTIONS=64 bench/middleware.sh
#
# Needs wrk and redis-server (Debian packages `wrk` and `redis-server`). The Redis server is
# started here on a free loopback port, without persistence, and stopped by pid at the end.
# The load is spread over 64 sessions per wrk thread (bench/middleware/sessions.lua).
# Every case runs on this machine next to wrk, so compare the ratios, not absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}

for tool in wrk redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install $tool" >&2; exit 1; }
done

cargo build --release --quiet --manifest-path bench/middleware/Cargo.toml
BIN=bench/middleware/target/release/sessiond-middleware-bench

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$("$BIN" free-port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
redis_url="redis://127.0.0.1:$redis_port/"

declare -A rps
run_case() {
  local impl=$1
  "$BIN" "$impl" "$redis_url" >"$work/$impl.port" 2>"$work/$impl.log" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    [ -s "$work/$impl.port" ] && break
    sleep 0.05
  done
  local port
  port=$(head -1 "$work/$impl.port")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s bench/middleware/sessions.lua \
    "http://127.0.0.1:$port/" >"$work/$impl.wrk"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  rps[$impl]=$(awk '/^Requests\/sec/ {print $2}' "$work/$impl.wrk")
  local errors
  errors=$(awk '/Non-2xx/ {print $5}' "$work/$impl.wrk")
  local latency
  latency=$(awk '/^ +Latency/ {print $2}' "$work/$impl.wrk")
  printf '%-16s %12s req/s   avg latency %-9s non-2xx %s\n' \
    "$impl" "${rps[$impl]}" "$latency" "${errors:-0}"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) cores"
for impl in sessiond-memory tower-memory sessiond-redis tower-redis; do
  run_case "$impl"
done
awk -v a="${rps[sessiond-memory]}" -v b="${rps[tower-memory]}" \
  'BEGIN { printf "memory store: sessiond-session / tower-sessions = %.2f\n", a / b }'
awk -v a="${rps[sessiond-redis]}" -v b="${rps[tower-redis]}" \
  'BEGIN { printf "redis store:  sessiond-session / tower-sessions = %.2f\n", a / b }'
