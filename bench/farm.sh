#!/usr/bin/env bash
# The farm benchmark (not a test): the app of examples/farm behind its nginx load balancer,
# driven by wrk, in five columns, alternated round by round in one run so that the machine's
# drift hits all of them alike:
#   sessiond       the three PHP nodes (round-robin door), php-memcached → sessiond
#   memcached      the same, php-memcached → memcached 1.6 (same settings)
#   redis          the same PHP nodes, phpredis → Redis 7.0 (locking on)
#   sessiond-resp  the same, phpredis → sessiond's RESP port (the Redis column's settings)
#   rust           the Rust node alone (rust-only door: axum + PhpSessionStore) → sessiond
# Two workloads per column:
#   page views: GET /whoami by logged-in users (one cookie per wrk connection's request,
#     spread over USERS sessions), which reads the session under the session lock;
#   logins: POST /login, which creates a session, renews its id and writes it.
# Prints every run, the medians (requests/s, p50, p99), the failed requests over all rounds
# (non-2xx answers, socket errors, and page-view users found logged out after the run), and
# the ratios measured in this run: sessiond ÷
# memcached and sessiond-resp ÷ Redis (like for like: one PHP extension, only the server
# changes), sessiond ÷ Redis (two whole PHP paths), and rust ÷ sessiond (the Rust middleware
# against PHP on the same store).
#
#   bench/farm.sh [ROUNDS] [DURATION] [CONNECTIONS] [USERS]
#
# e.g. bench/farm.sh 3 10s 16 200. FARM_COLUMNS="sessiond rust" runs only those columns (the
# ratios that need a missing one print `-`). Needs a release build:
#   cargo build --release -p sessiond -p sessiond-farm
# (the launcher, the Rust node sessiond-farm-node and sessiond, side by side) and wrk (Debian
# package `wrk`), nginx, php-fpm, php-memcached, php-redis (scripts/test.sh installs them).
# FARM_BIN names another launcher (its sessiond and Rust node are the ones beside it), e.g. a
# debug build for a check that the script works:
#   FARM_BIN=target/debug/sessiond-farm bench/farm.sh 1 2s 4 20
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

rounds=${1:-3}
duration=${2:-10s}
connections=${3:-16}
users=${4:-200}
farm_bin=${FARM_BIN:-target/release/sessiond-farm}
columns=${FARM_COLUMNS:-sessiond memcached redis sessiond-resp rust}
for column in $columns; do
  case $column in
    sessiond | memcached | redis | sessiond-resp | rust) ;;
    *) echo "FARM_COLUMNS: unknown column $column" >&2; exit 2 ;;
  esac
done
for need in "$farm_bin" "$(dirname "$farm_bin")/sessiond" "$(dirname "$farm_bin")/sessiond-farm-node"; do
  [ -x "$need" ] || { echo "$need is missing: cargo build --release -p sessiond -p sessiond-farm" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

bench_workdir

# Starts the farm for column $1 in the background; sets FARM_PID and URL (the door wrk
# drives). The PHP columns run without the Rust node, so round-robin reaches PHP only; the
# Rust column runs the whole farm on sessiond and drives the door to the Rust node alone.
start_farm() {
  local out="$WORK/farm-$1.out" store=$1 door=round-robin rust=--no-rust
  if [ "$1" = rust ]; then
    store=sessiond door=rust-only rust=
  fi
  # shellcheck disable=SC2086 # $rust is one flag or none
  "$farm_bin" --store "$store" $rust >"$out" 2>&1 &
  FARM_PID=$!
  PIDS+=("$FARM_PID")
  for _ in $(seq 600); do
    grep -q '^ready$' "$out" 2>/dev/null && break
    kill -0 "$FARM_PID" 2>/dev/null || { echo "the farm ($1) did not start:" >&2; cat "$out" >&2; exit 1; }
    sleep 0.05
  done
  grep -q '^ready$' "$out" || { echo "the farm ($1) is not ready after 30 s" >&2; exit 1; }
  URL=$(awk -v door="$door" '$1 == door { print $2 }' "$out")
  [ -n "$URL" ] || { echo "the farm ($1) printed no $door door:" >&2; cat "$out" >&2; exit 1; }
  URL=${URL%/}
}

stop_farm() {
  kill -TERM "$FARM_PID" 2>/dev/null || true
  wait "$FARM_PID" 2>/dev/null || true
}

# Logs in $users users with curl and writes a wrk script that spreads GET /whoami over them;
# the cookies, one a line (user i on line i), go to $WORK/cookies for check_sessions.
make_page_view_script() {
  local script="$WORK/pages.lua"
  : >"$WORK/cookies"
  {
    echo 'local cookies = {'
    for i in $(seq "$users"); do
      local cookie
      cookie=$(curl -s -o /dev/null -D - -H 'Accept: application/json' -d "user=bench$i" "$URL/login" |
        tr -d '\r' | awk -F'[=;]' 'tolower($0) ~ /^set-cookie: phpsessid=/ { print $2 }' | tail -1)
      [ -n "$cookie" ] || { echo "login $i failed at $URL" >&2; exit 1; }
      echo "$cookie" >>"$WORK/cookies"
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

# How many of the page views' users are no longer logged in: after the run, each cookie's
# GET /whoami must still answer its user. A page view that answers 200 with nobody (a lost
# or unreadable session) is no failure to wrk, so this is what catches it.
check_sessions() {
  local i=0 lost=0 cookie
  while read -r cookie; do
    i=$((i + 1))
    curl -s -H 'Accept: application/json' -H "Cookie: PHPSESSID=$cookie" "$URL/whoami" |
      grep -q "\"user\":\"bench$i\"" || lost=$((lost + 1))
  done <"$WORK/cookies"
  echo "$lost"
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

# Runs wrk with script $2 against $URL$3; appends
# "column,round,workload,rps,p50,p99,non_2xx,socket_errors,logged_out". A failed request is
# a non-2xx answer (wrk counts them; 3xx too, which this JSON app never sends) or a socket
# error (connect, read, write or timeout), both counted, never dropped; logged_out is
# check_sessions' count after the page views (0 for logins, which start from no session).
measure() {
  local column=$1 script=$2 path=$3 workload=$4 round=$5 out logged_out=0
  out=$(wrk -t2 -c"$connections" -d"$duration" --latency -s "$script" "$URL$path")
  local rps p50 p99 non_2xx socket
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  [ -n "$rps" ] || { echo "wrk gave no figures for $column $workload:" >&2; echo "$out" >&2; exit 1; }
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  non_2xx=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' <<<"$out")
  # "Socket errors: connect 0, read 0, write 0, timeout 0": the sum of the four.
  socket=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out")
  if [ "$workload" = page-views ]; then
    logged_out=$(check_sessions)
  fi
  local row="$column,$round,$workload,$rps,$p50,$p99,${non_2xx:-0},${socket:-0},$logged_out"
  echo "$row" >>"$WORK/runs.csv"
  echo "$row"
}

echo "column,round,workload,requests_per_sec,p50_ms,p99_ms,non_2xx,socket_errors,logged_out"
logins=$(login_script)
for round in $(seq "$rounds"); do
  for column in $columns; do
    start_farm "$column"
    pages=$(make_page_view_script)
    measure "$column" "$pages" /whoami page-views "$round"
    measure "$column" "$logins" /login logins "$round"
    stop_farm
  done
done

echo
echo "workload,column,median_requests_per_sec,median_p50_ms,median_p99_ms,failed_requests"
failed_total=0
for workload in page-views logins; do
  for column in sessiond memcached redis sessiond-resp rust; do
    var="${column//-/_}_${workload//-/_}"
    rows=$(awk -F, -v c="$column" -v w="$workload" '$1 == c && $3 == w' "$WORK/runs.csv")
    if [ -z "$rows" ]; then
      eval "rps_$var=0"
      continue
    fi
    rps=$(cut -d, -f4 <<<"$rows" | median)
    p50=$(cut -d, -f5 <<<"$rows" | median)
    p99=$(cut -d, -f6 <<<"$rows" | median)
    failed=$(awk -F, '{ n += $7 + $8 + $9 } END { print n + 0 }' <<<"$rows")
    failed_total=$((failed_total + failed))
    echo "$workload,$column,$rps,$p50,$p99,$failed"
    eval "rps_$var=$rps"
  done
done
# $1 ÷ $2, or `-` when either column was not run.
column_ratio() { if [ "$1" = 0 ]; then echo -; else ratio "$1" "$2"; fi; }
echo
for workload in page_views logins; do
  s=$(eval echo "\$rps_sessiond_$workload")
  m=$(eval echo "\$rps_memcached_$workload")
  r=$(eval echo "\$rps_redis_$workload")
  sr=$(eval echo "\$rps_sessiond_resp_$workload")
  rust=$(eval echo "\$rps_rust_$workload")
  echo "$workload: sessiond ÷ memcached $(column_ratio "$s" "$m")," \
    "sessiond-resp ÷ Redis $(column_ratio "$sr" "$r")," \
    "sessiond ÷ Redis $(column_ratio "$s" "$r")," \
    "rust ÷ sessiond $(column_ratio "$rust" "$s")"
done
if [ "$failed_total" -gt 0 ]; then
  echo
  echo "$failed_total requests failed or sessions were lost (failed_requests above; the runs' non_2xx, socket_errors and logged_out): the figures of those runs are not comparable." >&2
fi
