#!/usr/bin/env bash
# Checks contrib/systemd/sessiond.service, the unit docs/operations.md walks through:
#
#  1. `systemd-analyze verify` accepts it without a single warning;
#  2. `systemd-analyze security --offline=yes` scores it (printed, never fatal);
#  3. the unit's own ExecStart command line, with contrib/systemd/sessiond.toml as its
#     --config, starts sessiond and serves both protocols, and every system call sessiond makes
#     doing so (start, journal replay and rewrite, logins, Lua, SIGHUP, SIGTERM) is one that the
#     unit's SystemCallFilter= allows: a call it refused would fail in production only.
#
# Needs no systemd as PID 1 (CI runs in a container): verify and security read unit files
# only, and the sandbox is checked by tracing the real binary with strace.
# Usage: scripts/verify-systemd.sh [SESSIOND_BINARY]   (default: target/debug/sessiond)
set -euo pipefail
cd "$(dirname "$0")/.."

unit=contrib/systemd/sessiond.service
example_config=contrib/systemd/sessiond.toml
installed_bin=/usr/local/bin/sessiond
bin=$(realpath "${1:-${SESSIOND_BIN:-target/debug/sessiond}}")
for tool in systemd-analyze strace redis-cli; do
  command -v "$tool" >/dev/null || { echo "verify-systemd: $tool is not installed" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "verify-systemd: $bin is not an executable; build it first" >&2; exit 1; }

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# verify checks that ExecStart's binary exists and is executable: point the copy at the one
# just built. Everything else in the copy is the unit as shipped.
grep -q "^ExecStart=$installed_bin " "$unit" || {
  echo "verify-systemd: $unit no longer starts $installed_bin" >&2; exit 1; }
sed "s#$installed_bin#$bin#g" "$unit" >"$work/sessiond.service"

echo "== systemd-analyze verify $unit"
if ! systemd-analyze verify "$work/sessiond.service" >"$work/verify.log" 2>&1; then
  cat "$work/verify.log" >&2
  echo "verify-systemd: systemd-analyze verify failed" >&2
  exit 1
fi
# verify exits 0 on warnings (an unknown key, a bad value it ignores): any output is a failure.
if [ -s "$work/verify.log" ]; then
  cat "$work/verify.log" >&2
  echo "verify-systemd: systemd-analyze verify printed warnings" >&2
  exit 1
fi
echo "ok: no errors, no warnings"

echo "== systemd-analyze security --offline=yes $unit"
# (grep reads whole texts, not pipes: with pipefail, `grep -q` closing a pipe early fails it.)
if grep -q -- '--offline' <<<"$(systemd-analyze security --help 2>&1 || true)"; then
  systemd-analyze security --no-pager --offline=yes "$work/sessiond.service" >"$work/security.log" 2>&1 || true
  grep '✗' "$work/security.log" || true
  grep -i 'overall exposure' "$work/security.log" || cat "$work/security.log"
else
  echo "(this systemd-analyze has no --offline; exposure not scored)"
fi

echo "== the unit's ExecStart under strace, against its SystemCallFilter="
# ExecStart with its continuation lines joined, then the unit's paths mapped to scratch ones:
# %d (the credentials directory) holds the two passwords, the state directory is empty.
exec_start=$(awk '
  /^ExecStart=/ { line = substr($0, 11); cont = 1 }
  cont && !/^ExecStart=/ { line = line " " $0 }
  cont && !/\\$/ { cont = 0; print line }
' "$work/sessiond.service" | tr -d '\\')
mkdir -p "$work/credentials" "$work/etc"
printf 'app-%s\n' "$RANDOM$RANDOM" >"$work/credentials/app.pw"
admin_pw="admin-$RANDOM$RANDOM"
printf '%s\n' "$admin_pw" >"$work/credentials/admin.pw"
cp "$example_config" "$work/etc/sessiond.toml"
exec_start=${exec_start//%d/$work/credentials}
exec_start=${exec_start//\/var\/lib\/sessiond/$work/data}
exec_start=${exec_start//\/etc\/sessiond\/sessiond.toml/$work/etc/sessiond.toml}
read -r -a argv <<<"$exec_start"
# Free ports instead of the example's fixed ones (flags win over the config file).
argv+=(--memcache-listen 127.0.0.1:0 --resp-listen 127.0.0.1:0)
if grep -q -- '--http-listen' <<<"$("$bin" --help)"; then argv+=(--http-listen 127.0.0.1:0); fi
echo "${argv[*]}"

strace -f -qq -o "$work/trace" "${argv[@]}" >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
for _ in $(seq 200); do
  grep -qx ready "$work/stdout" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -qx ready "$work/stdout"; then
  cat "$work/stdout" "$work/stderr" >&2
  echo "verify-systemd: sessiond did not start with the unit's command line" >&2
  exit 1
fi
port() { awk -v p="$1" '$1 == "listening" && $2 == p { sub(/.*:/, "", $3); print $3 }' "$work/stdout"; }
resp_port=$(port resp)
mc_port=$(port memcache)

rcli() { REDISCLI_AUTH="$admin_pw" timeout 10 redis-cli --no-auth-warning --user admin -p "$resp_port" "$@"; }
expect() {
  local want=$1; shift
  local got
  got=$("$@")
  [ "$got" = "$want" ] || { echo "verify-systemd: $* answered '$got', expected '$want'" >&2; exit 1; }
}
expect OK rcli SET PHPREDIS_SESSION:abc 'user_id|i:42;'
expect 'user_id|i:42;' rcli GET PHPREDIS_SESSION:abc
expect 'user_id|i:42;' rcli EVAL "return redis.call('get', KEYS[1])" 1 PHPREDIS_SESSION:abc
expect 'Background append only file rewriting started' rcli BGREWRITEAOF
# memcached text protocol: log in with the auth `set`, store, read back.
mc_reply=$(
  exec 3<>"/dev/tcp/127.0.0.1/$mc_port"
  token="admin $admin_pw"
  printf 'set auth 0 0 %d\r\n%s\r\nset memc.sess.key.abc 0 60 5\r\nhello\r\nget memc.sess.key.abc\r\nquit\r\n' \
    "${#token}" "$token" >&3
  timeout 10 cat <&3 | tr -d '\r' | tr '\n' ' '
)
[ "$mc_reply" = "STORED STORED VALUE memc.sess.key.abc 0 5 hello END " ] || {
  echo "verify-systemd: memcached answered '$mc_reply'" >&2; exit 1; }
sleep 0.5 # let the rewrite finish
sessiond_pid=$(awk 'NR == 1 { print $1 }' "$work/trace")
kill -HUP "$sessiond_pid"   # what ExecReload= sends
sleep 0.3
kill -TERM "$sessiond_pid"  # what KillSignal= sends
status=0
wait "$server_pid" || status=$?
server_pid=""
if [ "$status" -ne 0 ]; then
  cat "$work/stderr" >&2
  echo "verify-systemd: sessiond exited with status $status after SIGTERM" >&2
  exit 1
fi
echo "ok: served RESP and memcached, reloaded on SIGHUP, stopped cleanly on SIGTERM"

# The system calls SystemCallFilter= allows: its groups expanded, less the ~ list.
filter_sets() {
  local allow deny
  allow=$(sed -n 's/^SystemCallFilter=\([^~].*\)/\1/p' "$unit")
  deny=$(sed -n 's/^SystemCallFilter=~\(.*\)/\1/p' "$unit")
  echo "$allow|$deny"
}
expand() {
  local name
  for name in "$@"; do
    case $name in
      @*)
        # shellcheck disable=SC2046
        expand $(systemd-analyze syscall-filter "$name" | awk 'NR > 1 && NF && $1 !~ /^#/ { print $1 }')
        ;;
      *) echo "$name" ;;
    esac
  done
}
IFS='|' read -r allow_sets deny_sets <<<"$(filter_sets)"
# shellcheck disable=SC2086
expand $allow_sets | sort -u >"$work/allowed"
# shellcheck disable=SC2086
expand $deny_sets | sort -u >"$work/denied"
comm -23 "$work/allowed" "$work/denied" >"$work/effective"
sed -nE 's/^[0-9]+ +([a-z_0-9]+)\(.*/\1/p' "$work/trace" | sort -u >"$work/used"
refused=$(comm -23 "$work/used" "$work/effective")
if [ -n "$refused" ]; then
  echo "verify-systemd: sessiond made system calls that SystemCallFilter= refuses:" $refused >&2
  exit 1
fi
echo "ok: all $(wc -l <"$work/used") system calls sessiond made are allowed"
echo "verify-systemd: passed"
