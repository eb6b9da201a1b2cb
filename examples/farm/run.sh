#!/usr/bin/env bash
# The farm in one command: builds sessiond and the farm (launcher and Rust node), then starts
# everything on free loopback ports and prints the URLs; Ctrl-C stops it all by pid.
#   examples/farm/run.sh [--store sessiond|memcached|redis|sessiond-resp] [--sessiond-nodes 1|2] [--no-rust]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p sessiond -p sessiond-farm
exec target/debug/sessiond-farm "$@"
