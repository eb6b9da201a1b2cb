#!/usr/bin/env bash
# What the session layer costs (a benchmark, not a test): the same release build with the
# layer off (`--sessions off`) and on (the default), alternated round by round through
# bench/ab.sh on session-mix and php-cycle (every value written is a PHP session naming its
# connection's user, so each write is decoded), then the RSS per session of each after
# loading N sessions.
#
#   bench/sessions.sh [ROUNDS] [DURATION] [MEMORY_SESSIONS]
#
# Prints ab.sh's table (B = on, A = off; B/A is the throughput kept) and the memory rows.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

rounds=${1:-5}
duration=${2:-8s}
memory_sessions=${3:-500000}

cargo build --release -q -p sessiond -p sessiond-loadgen
bench_workdir
# One binary for both sides, so the comparison is the layer and nothing else.
cp target/release/sessiond "$WORK/sessiond-on"
printf '#!/bin/sh\nexec "%s" --sessions off "$@"\n' "$WORK/sessiond-on" >"$WORK/sessiond-off"
chmod +x "$WORK/sessiond-off"

bench/ab.sh "$WORK/sessiond-off" "$WORK/sessiond-on" "$rounds" "$duration" session-mix,php-cycle

echo
echo "RSS per session, $memory_sessions sessions of 1 KiB (20 loading connections: 20 users)"
for side in off on; do
  out="$WORK/memory-$side"
  target/release/sessiond-load compare --sessiond-bin "$WORK/sessiond-$side" --servers sessiond \
    --rounds 1 --duration 1s --workloads session-mix --memory-sessions "$memory_sessions" \
    --redis-benchmark-requests 0 --out-dir "$out" >/dev/null 2>&1
  row=$(grep '^| sessiond' "$out/results.md" | grep 'MiB' | tail -1)
  echo "sessions $side: $row"
done
