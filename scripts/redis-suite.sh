#!/usr/bin/env bash
# Runs units of Redis's own test suite (tag 7.0.15, external mode) against Redis 7.0.15
# (Debian's redis-server) and against sessiond, each started on a free loopback port with a
# throwaway directory and stopped by pid, and prints a table: unit, Redis's passes,
# sessiond's passes, the ratio, and whether the unit aborted on sessiond.
#
#   scripts/redis-suite.sh [REDIS_CHECKOUT] [UNIT...]
#
# REDIS_CHECKOUT is a checkout of github.com/redis/redis at 7.0.15 (its `tests/` and
# `runtest`); without it the script clones one into a temporary directory, never into this
# repository. With no UNIT, the eleven units below. The logs of every run are kept in the work
# directory the script prints. Needs tclsh (Debian `tcl`) and redis-server 7.0.15.
# SESSIOND_BIN picks the sessiond binary (default: target/release/sessiond if present, else
# target/debug/sessiond). REDIS_SUITE_ONLY=sessiond skips the Redis runs (the table then
# shows the counts measured on Redis 7.0.15 once, below).
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"

default_units=(unit/type/string unit/type/incr unit/expire unit/keyspace unit/type/hash
  unit/type/set unit/type/zset unit/type/list unit/scan unit/multi unit/type/stream)
# Redis 7.0.15's own passes on those units with the tags below, measured with this script.
declare -A redis_reference=([unit/type/string]=75 [unit/type/incr]=23 [unit/expire]=58
  [unit/keyspace]=42 [unit/type/hash]=72 [unit/type/set]=95 [unit/type/zset]=308
  [unit/type/list]=219 [unit/scan]=17 [unit/multi]=32 [unit/type/stream]=63
  [unit/type/stream-cgroups]=48)
tags="-needs:debug -needs:repl -needs:save -needs:config-maxmemory -needs:config-resetstat -needs:reset"

command -v tclsh >/dev/null || { echo "redis-suite: tclsh is missing (Debian package tcl)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-suite: redis-server is missing (Debian package redis-server)" >&2; exit 1; }

work="$(mktemp -d -t redis-suite.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

checkout="${1:-}"
[ $# -gt 0 ] && shift
if [ -z "$checkout" ]; then
  checkout="$work/redis"
  git clone --quiet --depth 1 --branch 7.0.15 https://github.com/redis/redis "$checkout"
fi
[ -x "$checkout/runtest" ] || { echo "redis-suite: $checkout has no runtest" >&2; exit 1; }
units=("$@")
[ ${#units[@]} -gt 0 ] || units=("${default_units[@]}")

bin="${SESSIOND_BIN:-}"
if [ -z "$bin" ]; then
  if [ -x "$repo_root/target/release/sessiond" ]; then bin="$repo_root/target/release/sessiond"
  else bin="$repo_root/target/debug/sessiond"; fi
fi
[ -x "$bin" ] || { echo "redis-suite: no sessiond binary at $bin (cargo build -p sessiond)" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "redis-suite: nothing listens on port $1" >&2
  return 1
}

# Starts a fresh server of kind $1 (redis|sessiond); sets $port and $server_pid.
start_server() {
  port="$(free_port)"
  local dir
  dir="$(mktemp -d "$work/$1-data.XXXXXX")"
  case "$1" in
    redis)
      redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
        --daemonize no >"$dir/server.log" 2>&1 &
      ;;
    sessiond)
      # 4 MB values in string/list units; a generous memory budget for the big-value tests.
      "$bin" --resp-listen "127.0.0.1:$port" --memcache-listen off --http-listen off \
        --data-dir "$dir" --fsync no --max-item-size 64m --max-memory 2g \
        --client-output-limit 256m --idle-timeout 0 --sessions off \
        >"$dir/server.log" 2>&1 &
      ;;
  esac
  server_pid=$!
  pids+=("$server_pid")
  wait_port "$port"
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

# Runs one unit against the server on $port; prints "passes aborted?" and keeps the log.
run_unit() {
  local kind="$1" unit="$2" log
  log="$work/$kind-${unit//\//_}.log"
  # The harness listens for its test client on a port near --baseport; a random base keeps
  # two runs of this script (or another runtest) from colliding.
  local baseport=$((20000 + RANDOM % 20000))
  (cd "$checkout" && timeout 1200 ./runtest --host 127.0.0.1 --port "$port" --singledb \
    --ignore-encoding --ignore-digest --tags "$tags" --single "$unit" --clients 1 \
    --baseport "$baseport") \
    2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$log" || true
  local passes aborted=no
  passes=$(grep -c '^\[ok\]:' "$log" || true)
  # A unit that ran to its end prints its summary ("All tests passed", or the list of
  # failed tests); an exception or a lost connection stops it before that.
  if ! grep -q 'All tests passed\|following tests failed' "$log" || grep -q '\[exception\]\|I/O error' "$log"; then
    aborted=yes
  fi
  echo "$passes $aborted"
}

printf '%-20s %8s %10s %7s %9s %7s\n' unit redis sessiond ratio aborted? failed
for unit in "${units[@]}"; do
  if [ "${REDIS_SUITE_ONLY:-}" = sessiond ]; then
    redis_passes="${redis_reference[$unit]:-?}"
  else
    start_server redis
    read -r redis_passes _ < <(run_unit redis "$unit")
    stop_server
  fi
  start_server sessiond
  read -r ours aborted < <(run_unit sessiond "$unit")
  stop_server
  failed=$(grep -c '^\[err\]:' "$work/sessiond-${unit//\//_}.log" || true)
  ratio="-"
  if [[ "$redis_passes" =~ ^[0-9]+$ ]] && [ "$redis_passes" -gt 0 ]; then
    ratio="$(( ours * 100 / redis_passes ))%"
  fi
  printf '%-20s %8s %10s %7s %9s %7s\n' "$unit" "$redis_passes" "$ours" "$ratio" "$aborted" "$failed"
done
echo "logs: $work"
