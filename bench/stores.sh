#!/usr/bin/env bash
# Operations per second of every session store of the middleware (crates/session) under one
# session mix (75 % load, 15 % load + compare-and-set update, 8 % touch, 2 % logout + login;
# see crates/session/examples/store_bench.rs), one store after the other on this machine, in
# the same run, with the same concurrency. A benchmark, not a test: it asserts nothing and is
# not part of scripts/test.sh.
#
#   bench/stores.sh                          # 5 s per store, 16 concurrent workers
#   SECONDS_PER_STORE=20 CONCURRENCY=64 bench/stores.sh
#
# Servers (memcached, redis-server, sessiond, PostgreSQL, MariaDB) are started here on free
# loopback ports with throwaway data directories, durability relaxed the same way for all
# (no fsync), and stopped by pid at the end. The client runs on the same machine, so compare
# the ratios, not absolute numbers.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_STORE=${SECONDS_PER_STORE:-5}
CONCURRENCY=${CONCURRENCY:-16}
SESSIONS=${SESSIONS:-2000}

need() { command -v "$1" >/dev/null || [ -x "$1" ] || { echo "$1 not found: apt-get install $2" >&2; exit 1; }; }
need memcached memcached
need redis-server redis-server
need /usr/sbin/mariadbd mariadb-server
need mariadb mariadb-client
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pg_bin" ] || { echo "PostgreSQL not found: apt-get install postgresql" >&2; exit 1; }

cargo build --release --quiet -p sessiond
cargo build --release --quiet -p sessiond-session --example store_bench \
  --features redis,memcached,sql,files
BENCH=target/release/examples/store_bench

work=$(mktemp -d)
pids=()
cleanup() {
  if [ -f "$work/pg/postmaster.pid" ]; then kill -INT "$(head -1 "$work/pg/postmaster.pid")" 2>/dev/null || true; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}
as_root=$([ "$(id -u)" -eq 0 ] && echo yes || echo no)

mc_port=$(free_port)
memcached -l 127.0.0.1 -p "$mc_port" -U 0 -m 256 -t 2 $([ "$as_root" = yes ] && echo "-u root") &
pids+=($!)

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  >"$work/redis.log" 2>&1 &
pids+=($!)

sd_mc=$(free_port)
sd_resp=$(free_port)
mkdir "$work/sessiond"
target/release/sessiond --memcache-listen "127.0.0.1:$sd_mc" --resp-listen "127.0.0.1:$sd_resp" \
  --fsync no --data-dir "$work/sessiond" >"$work/sessiond.log" 2>&1 &
pids+=($!)

pg_port=$(free_port)
mkdir "$work/pg"
if [ "$as_root" = yes ]; then
  chown -R postgres:postgres "$work"
  chmod 755 "$work"
  as_pg=(runuser -u postgres --)
else
  as_pg=()
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
"${as_pg[@]}" "$pg_bin/postgres" -D "$work/pg" -p "$pg_port" -k "$work/pg" \
  -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
  -c full_page_writes=off >"$work/pg.log" 2>&1 &
pids+=($!)

my_port=$(free_port)
my_user=$([ "$as_root" = yes ] && echo root || id -un)
mariadb-install-db --no-defaults --datadir="$work/my" --user="$my_user" --skip-test-db \
  --auth-root-authentication-method=normal >/dev/null 2>&1
/usr/sbin/mariadbd --no-defaults --datadir="$work/my" --socket="$work/my.sock" \
  --pid-file="$work/my.pid" --user="$my_user" --port="$my_port" --bind-address=127.0.0.1 \
  --skip-grant-tables --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=128M \
  --innodb-flush-log-at-trx-commit=2 >"$work/mariadb.log" 2>&1 &
pids+=($!)

for port in "$mc_port" "$redis_port" "$sd_mc" "$sd_resp" "$pg_port" "$my_port"; do wait_port "$port"; done
mariadb -h 127.0.0.1 -P "$my_port" -u root -e "CREATE DATABASE bench"
mkdir "$work/files"

run() {
  "$BENCH" --label "$1" --store "$2" --seconds "$SECONDS_PER_STORE" \
    --concurrency "$CONCURRENCY" --sessions "$SESSIONS"
}

echo "Session mix, $CONCURRENCY workers, $SESSIONS sessions, ${SECONDS_PER_STORE} s per store, $(nproc) CPUs"
echo
echo "| store | ops/s | mean latency (µs) | errors |"
echo "|---|---:|---:|---:|"
run "memory (in process)" memory
run "memcached store → memcached" "memcached:127.0.0.1:$mc_port"
run "memcached store → sessiond" "memcached:127.0.0.1:$sd_mc"
run "RESP store → Redis" "redis:redis://127.0.0.1:$redis_port/"
run "RESP store → sessiond" "redis:redis://127.0.0.1:$sd_resp/"
run "SQL store → PostgreSQL" "sql:postgres://postgres@127.0.0.1:$pg_port/postgres"
run "SQL store → MariaDB" "sql:mysql://root@127.0.0.1:$my_port/bench"
run "SQL store → SQLite" "sql:sqlite:$work/sessions.db"
run "file store (2 levels)" "files:$work/files"
