#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs the real clients and servers the
# tests run against (memcached tools, PHP with its session handlers, Redis, systemd-analyze;
# Node.js comes with the machine image), then checks formatting and lints, then runs every
# test. Servers are started by the tests themselves on free loopback ports and stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # memccapable and the reference memcached the client tests compare against.
  memcached libmemcached-tools
  # PHP's stock session handlers, and the SASL PLAIN plugin libmemcached logs in with; php-cli
  # with php-memcached is also the other side of the middleware's PHP session store
  # (crates/session/tests/it/php_sessions.rs).
  php-cli php-memcached php-redis libsasl2-modules
  # Real Redis for the middleware's store tests and redis-cli for RESP scripts; the benchmark
  # kit's smoke test also runs redis-benchmark (redis-tools) for its RESP cross-check.
  redis-server redis-tools
  # The TLS tests (crates/server/tests/it/tls.rs): `openssl s_client` as a long-lived raw TLS
  # client, and stunnel as the client-side TLS sidecar php-memcached needs.
  openssl stunnel4
  # The systemd unit's check (scripts/verify-systemd.sh): systemd-analyze (package systemd;
  # it only reads unit files, so no systemd needs to be running) and strace, which records the
  # system calls sessiond makes to check them against the unit's SystemCallFilter=.
  systemd strace
  # The font the benchmark kit's chart is drawn with (crates/loadgen, smoke test).
  fonts-dejavu-core
  # Headless Chromium and its WebDriver for the cross-domain login test
  # (crates/session-tokens/tests/browser), the admin page's test and the farm's journey
  # (examples/farm/tests/farm.rs).
  chromium chromium-driver
  # The session middleware's SQL store: its conformance suite starts its own PostgreSQL and
  # MariaDB servers (crates/session/tests/it/conformance.rs).
  postgresql mariadb-server
  # The farm (examples/farm): nginx as the load balancer and each PHP node's web server,
  # php-fpm for the PHP nodes (each its own master on its own port, never the packaged
  # service), and curl, the HTTP client its scenario test drives the farm with.
  nginx php-fpm curl
  # The farm benchmark's HTTP load generator (bench/farm.sh).
  wrk
  # The memcached clients of crates/server/tests/it: Dalli (ruby_dalli.rs, binary protocol),
  # spymemcached with a JDK to compile its check (java_spymemcached.rs), and Debian's
  # python3 with venv, into which py_meta_memcache.rs installs meta-memcache from PyPI
  # (pinned with hashes in crates/server/tests/python/requirements.txt).
  ruby-dalli libspymemcached-java default-jdk-headless python3 python3-venv
  # The stock Redis exporter, run against the RESP port to check that it still sees the
  # server up with its keys and clients (crates/server/tests/it/redis_exporter.rs).
  prometheus-redis-exporter
  # Rails' Redis session store as a real client (crates/server/tests/it/ruby_redis_store.rs):
  # Rack::Session::Redis, which ActionDispatch's RedisStore subclasses, on redis-store and
  # redis-rb; it pulls in ruby, ruby-rack, ruby-redis-store and ruby-redis.
  ruby-redis-rack
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}"
fi
# Debian starts the packaged daemons on their default ports (nginx on 80, php-fpm on its
# socket, where the machine runs services at all); the tests never use those instances, they
# start their own on free ports with their own configurations and pid files.

# Node.js >= 20 with npm, for the express-session/connect-redis client test (its packages are
# installed from crates/server/tests/node/package-lock.json with `npm ci` by the test itself).
# Not installed from Debian: bookworm's own nodejs is 18, too old for node-redis 6; the machine
# image ships Node 20 (NodeSource's nodejs package), so only its presence is checked.
if ! node_version=$(node --version 2>/dev/null) || ! command -v npm >/dev/null; then
  echo "scripts/test.sh: node and npm (Node.js >= 20) are required and not on PATH" >&2
  exit 1
fi
node_major=${node_version#v}
node_major=${node_major%%.*}
if [ "$node_major" -lt 20 ]; then
  echo "scripts/test.sh: Node.js $node_version is too old; the client tests need >= 20" >&2
  exit 1
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fred compatibility test (crates/compat-fred) and the session middleware's conformance
# suite (crates/session) run target/debug/sessiond but, being other packages, cannot make
# Cargo build it; build it first.
cargo build -p sessiond --locked
# The systemd unit in contrib/systemd: systemd-analyze verify with no warning, the security
# score, and the unit's command line run under strace against its system call filter.
scripts/verify-systemd.sh target/debug/sessiond
cargo test --workspace --locked
