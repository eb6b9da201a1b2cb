#!/usr/bin/env bash
# The farm benchmark (not a test): the PHP nodes of examples/farm behind nginx round-robin,
# driven by wrk, with the sessions in sessiond, then in memcached (same php-memcached
# settings), then in Redis through phpredis, alternated round by round in one run so that the
# machine's drift hits all three alike. Two workloads per store:
#   page views: GET /whoami by logged-in users (one cookie per wrk connection's request,
#     spread over USERS sessions), which reads the session under php's lock;
#   logins: POST /login, which creates a session, renews its id and writes it.
# Prints every run, the medians (requests/s, p50, p99) and the ratios sessiond ÷ memcached and
# sessiond ÷ Redis, which are what a PHP shop compares.
#
#   bench/farm.sh [ROUNDS] [DURATION] [CONNECTIONS] [USERS]
#
# e.g. bench/farm.sh 3 10s 16 200. Needs a release build:
#   cargo build --release -p sessiond -p sessiond-farm
# and wrk (Debian package `wrk`), nginx, php-fpm (scripts/test.sh installs them). FARM_BIN
# names another launcher (its sessiond is the one beside it), e.g. a debug build for a check
# that the script works: FARM_BIN=target/debug/sessiond-farm bench/farm.sh 1 2s 4 20.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

rounds=${1:-3}
duration=${2:-10s}
connections=${3:-16}
users=${4:-200}
farm_bin=${FARM_BIN:-target/release/sessiond-farm}
for need in "$farm_bin" "$(dirname "$farm_bin")/sessiond"; do
  [ -x "$need" ] || { echo "$need is missing: cargo build --release -p sessiond -p sessiond-farm" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

bench_workdir

# Starts the farm with sessions in $1, in the background; sets FARM_PID and URL.
start_farm() {
  local out="$WORK/farm-$1.out"
  "$farm_bin" --store "$1" --no-rust >"$out" 2>&1 &
  FARM_PID=$!
  PIDS+=("$FARM_PID")
  for _ in $(seq 600); do
    grep -q '^ready$' "$out" 2>/dev/null && break
    kill -0 "$FARM_PID" 2>/dev/null || { echo "the farm ($1) did not start:" >&2; cat "$out" >&2; exit 1; }
    sleep 0.05
  done
  grep -q '^ready$' "$out" || { echo "the farm ($1) is not ready after 30 s" >&2; exit 1; }
  URL=$(awk '$1 == "round-robin" { print $2 }' "$out")
  URL=${URL%/}
}

stop_farm() {
  kill -TERM "$FARM_PID" 2>/dev/null || true
  wait "$FARM_PID" 2>/dev/null || true
}

# Logs in $users users with curl and writes a wrk script that spreads GET /whoami over them.
make_page_view_script() {
  local script="$WORK/pages.lua"
  {
    echo 'local cookies = {'
    for i in $(seq "$users"); do
      local cookie
      cookie=$(curl -s -o /dev/null -D - -H 'Accept: application/json' -d "user=bench$i" "$URL/login" |
        tr -d '\r' | awk -F'[=;]' 'tolower($0) ~ /^set-cookie: phpsessid=/ { print $2 }' | tail -1)
      [ -n "$cookie" ] || { echo "login $i failed at $URL" >&2; exit 1; }
      echo "  \"$cookie\","
    done
    echo '}'
    cat <<'LUA'
local n = 0
request = function()
  n = n + 1
  local headers = { ["Accept"] = "application/json",
                    ["Cookie"] = "PHPSESSID=" .. cookies[(n % #cookies) + 1] }
  return wrk.format("GET", "/whoami", headers)
end
LUA
  } >"$script"
  echo "$script"
}

login_script() {
  local script="$WORK/logins.lua"
  cat >"$script" <<'LUA'
wrk.method = "POST"
wrk.body = "user=benchlogin"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
LUA
  echo "$script"
}

# wrk's latency figure (`1.23ms`, `850.00us`, `1.02s`) in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf("%.3f", v / 1000) }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf("%.3f", v) }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf("%.3f", v * 1000) }
    else print v }'
}

# Runs wrk with script $2 against $URL$3; appends "store,round,workload,rps,p50,p99,errors".
measure() {
  local store=$1 script=$2 path=$3 workload=$4 round=$5 out
  out=$(wrk -t2 -c"$connections" -d"$duration" --latency -s "$script" "$URL$path")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  errors=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' <<<"$out")
  echo "$store,$round,$workload,$rps,$p50,$p99,${errors:-0}" >>"$WORK/runs.csv"
  echo "$store,$round,$workload,$rps,$p50,$p99,${errors:-0}"
}

echo "store,round,workload,requests_per_sec,p50_ms,p99_ms,non_2xx"
logins=$(login_script)
for round in $(seq "$rounds"); do
  for store in sessiond memcached redis; do
    start_farm "$store"
    pages=$(make_page_view_script)
    measure "$store" "$pages" /whoami page-views "$round"
    measure "$store" "$logins" /login logins "$round"
    stop_farm
  done
done

echo
echo "workload,store,median_requests_per_sec,median_p50_ms,median_p99_ms"
for workload in page-views logins; do
  for store in sessiond memcached redis; do
    rows=$(awk -F, -v s="$store" -v w="$workload" '$1 == s && $3 == w' "$WORK/runs.csv")
    rps=$(cut -d, -f4 <<<"$rows" | median)
    p50=$(cut -d, -f5 <<<"$rows" | median)
    p99=$(cut -d, -f6 <<<"$rows" | median)
    echo "$workload,$store,$rps,$p50,$p99"
    eval "rps_${store}_${workload//-/_}=$rps"
  done
done
echo
for workload in page_views logins; do
  s=$(eval echo "\$rps_sessiond_$workload")
  m=$(eval echo "\$rps_memcached_$workload")
  r=$(eval echo "\$rps_redis_$workload")
  echo "$workload: sessiond ÷ memcached $(ratio "$s" "$m"), sessiond ÷ Redis $(ratio "$s" "$r")"
done
