#!/usr/bin/env bash
# The cost of TLS (not a test): the session mix (90 % GET / 10 % SET of VALUE_SIZE-byte
# values over KEYS preloaded keys) through plain TCP and through TLS, on sessiond and on the
# reference servers with their own TLS, driven by the same generator in the same run and
# alternated run by run: sessiond's memcache port against memcached `-Z`, sessiond's RESP
# port against `redis-server --tls-port`. It reports ops/s (median of ROUNDS) and p99, the
# TLS/plain ratio of each server, and sessiond's ratio to the reference with and without TLS.
#
#   bench/tls.sh                              # 3 rounds of 10 s per cell
#   ROUNDS=1 DURATION=3s bench/tls.sh         # a quick look
#
# The generator (`sessiond-load run --tls-ca`) is a rustls client on the ring provider that
# verifies the server's certificate (an ECDSA P-256 chain made here with `openssl`), so no
# TLS terminator sits between it and the server. Connections are opened before the
# measured window: this measures the record layer (encryption of requests and replies),
# not handshakes. Servers get 2 worker threads (redis-server: its one thread), no
# persistence, throwaway directories, free loopback ports, and are stopped by pid. The
# generator shares the machine, so compare ratios, not absolute numbers.
#
# Needs: openssl, memcached, redis-server (Debian packages of those names).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
KEYS=${KEYS:-100000}
VALUE_SIZE=${VALUE_SIZE:-2048}

for program in openssl memcached redis-server; do
  command -v "$program" >/dev/null || { echo "$program is missing (Debian package $program)" >&2; exit 1; }
done
cargo build --release -q -p sessiond -p sessiond-loadgen
SESSIOND=target/release/sessiond
LOAD=target/release/sessiond-load

. bench/lib.sh
bench_workdir

# A throwaway CA and a server certificate for 127.0.0.1 it signed.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=bench CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$WORK/ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/ext" -out "$WORK/server.pem" 2>/dev/null

# sessiond: every listener, plain and TLS, in one process.
mkdir "$WORK/sessiond"
"$SESSIOND" --memcache-listen 127.0.0.1:0 --resp-listen 127.0.0.1:0 \
  --memcache-tls-listen 127.0.0.1:0 --resp-tls-listen 127.0.0.1:0 \
  --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" \
  --threads 2 --fsync no --max-memory 4g --data-dir "$WORK/sessiond" \
  >"$WORK/sessiond.out" 2>"$WORK/sessiond.err" &
PIDS+=($!)
for _ in $(seq 200); do grep -q '^ready' "$WORK/sessiond.out" 2>/dev/null && break; sleep 0.05; done
grep -q '^ready' "$WORK/sessiond.out" || { cat "$WORK/sessiond.err" >&2; exit 1; }
listener() { awk -v p="$1" '$1 == "listening" && $2 == p {print $3}' "$WORK/sessiond.out"; }

# memcached: one plain and one TLS instance (with -Z every listener of a process is TLS).
as_root=()
[ "$(id -u)" -eq 0 ] && as_root=(-u root)
mc_port=$(free_port)
memcached "${as_root[@]}" -l 127.0.0.1 -p "$mc_port" -U 0 -t 2 -m 4096 -c 4096 &
PIDS+=($!)
mc_tls_port=$(free_port)
memcached "${as_root[@]}" -l 127.0.0.1 -p "$mc_tls_port" -U 0 -t 2 -m 4096 -c 4096 -Z \
  -o "ssl_chain_cert=$WORK/server.pem,ssl_key=$WORK/server.key" &
PIDS+=($!)

# redis-server: plain and TLS ports on one server.
redis_port=$(free_port)
redis_tls_port=$(free_port)
mkdir "$WORK/redis"
redis-server --bind 127.0.0.1 --port "$redis_port" --tls-port "$redis_tls_port" \
  --tls-cert-file "$WORK/server.pem" --tls-key-file "$WORK/server.key" \
  --tls-ca-cert-file "$WORK/ca.pem" --tls-auth-clients no \
  --save "" --appendonly no --dir "$WORK/redis" --daemonize no >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for port in "$mc_port" "$mc_tls_port" "$redis_port" "$redis_tls_port"; do wait_port "$port"; done

# name -> "protocol plain-address tls-address"
declare -A TARGETS=(
  [sessiond-memcache]="text $(listener memcache) $(listener memcache-tls)"
  [memcached]="text 127.0.0.1:$mc_port 127.0.0.1:$mc_tls_port"
  [sessiond-resp]="resp $(listener resp) $(listener resp-tls)"
  [redis]="resp 127.0.0.1:$redis_port 127.0.0.1:$redis_tls_port"
)
ORDER=(sessiond-memcache memcached sessiond-resp redis)

# Preload every server once (plain; the keyspace is the same either way).
for name in "${ORDER[@]}"; do
  read -r proto plain _ <<<"${TARGETS[$name]}"
  "$LOAD" run --server "$plain" --protocol "$proto" --workload load --keys "$KEYS" \
    --value-size "$VALUE_SIZE" --conns "$CONNS" --depth 8 --ttl 86400 >/dev/null
done

# One measured run: prints "ops/s p99_ms".
measure() {
  local proto=$1 addr=$2 tls=$3
  local extra=()
  [ "$tls" = tls ] && extra=(--tls-ca "$WORK/ca.pem")
  "$LOAD" run --server "$addr" --protocol "$proto" --workload session-mix --keys "$KEYS" \
    --value-size "$VALUE_SIZE" --conns "$CONNS" --duration "$DURATION" --warmup 1s "${extra[@]}" |
    awk '/ ops\/s over / {ops=$1} /^latency ms:/ {for (i=1;i<=NF;i++) if ($i=="p99") p99=$(i+1)}
         / errors$/ && $(NF-1) != 0 {print "errors in the run: " $0 > "/dev/stderr"; exit 1}
         END {print ops, p99}'
}

declare -A OPS P99
for round in $(seq "$ROUNDS"); do
  for name in "${ORDER[@]}"; do
    read -r proto plain tls <<<"${TARGETS[$name]}"
    for mode in plain tls; do
      addr=$plain
      [ "$mode" = tls ] && addr=$tls
      read -r ops p99 < <(measure "$proto" "$addr" "$mode")
      echo "round $round $name $mode: $ops ops/s, p99 $p99 ms" >&2
      OPS[$name:$mode]="${OPS[$name:$mode]:-} $ops"
      P99[$name:$mode]="${P99[$name:$mode]:-} $p99"
    done
  done
done

declare -A M
for key in "${!OPS[@]}"; do M[$key]=$(echo "${OPS[$key]}" | median); done

echo
echo "session mix (90 % GET / 10 % SET, ${VALUE_SIZE}-byte values, $KEYS keys, $CONNS connections, depth 1), median of $ROUNDS x $DURATION"
echo
echo "| server | plain ops/s | TLS ops/s | TLS / plain | plain p99 ms | TLS p99 ms |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for name in "${ORDER[@]}"; do
  echo "| $name | ${M[$name:plain]} | ${M[$name:tls]} | $(ratio "${M[$name:tls]}" "${M[$name:plain]}") |" \
    "$(echo "${P99[$name:plain]}" | median) | $(echo "${P99[$name:tls]}" | median) |"
done
echo
echo "| ratio | plain | TLS |"
echo "| --- | ---: | ---: |"
echo "| sessiond memcache / memcached | $(ratio "${M[sessiond-memcache:plain]}" "${M[memcached:plain]}") | $(ratio "${M[sessiond-memcache:tls]}" "${M[memcached:tls]}") |"
echo "| sessiond RESP / redis-server | $(ratio "${M[sessiond-resp:plain]}" "${M[redis:plain]}") | $(ratio "${M[sessiond-resp:tls]}" "${M[redis:tls]}") |"
