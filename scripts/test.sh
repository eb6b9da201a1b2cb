#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs the real clients and servers the
# tests run against (memcached tools, PHP with its session handlers, Redis), then checks
# formatting and lints, then runs every test. Servers are started by the tests themselves on
# free loopback ports and stopped by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # memccapable and the reference memcached the client tests compare against.
  memcached libmemcached-tools
  # PHP's stock session handlers.
  php-cli php-memcached php-redis
  # Real Redis for the middleware's store tests and redis-cli for RESP scripts; the benchmark
  # kit's smoke test also runs redis-benchmark (redis-tools) for its RESP cross-check.
  redis-server redis-tools
  # The font the benchmark kit's chart is drawn with (crates/loadgen, smoke test).
  fonts-dejavu-core
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
# Debian starts the packaged daemons on their default ports; the tests never use those
# instances, they start their own.

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
