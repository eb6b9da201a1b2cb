# Helpers shared by the bench scripts (sourced, not run): a throwaway work directory and the
# servers started into it, stopped by pid on exit; free loopback ports; medians and ratios
# for the tables.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_workdir                 # sets WORK and PIDS; on exit, kills PIDS and removes WORK
#   some-server ... & PIDS+=($!)
#
# Ports are found by binding port 0 and releasing it, so no script hard-codes one; a server
# that can bind port 0 itself (sessiond prints `listening <name> <addr>`) should do that.

# WORK: a fresh directory; PIDS: the servers to stop (by pid) when the script exits.
bench_workdir() {
  WORK=$(mktemp -d)
  PIDS=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

# A loopback port that was free a moment ago.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (up to 10 s) until something accepts connections on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "nothing listens on 127.0.0.1:$1" >&2
  exit 1
}

# The median of the numbers on stdin (separated by spaces or newlines).
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# $1 / $2 to $3 decimals (default 2); `-` when $2 is 0.
ratio() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {if (b == 0) print "-"; else printf("%." d "f", a / b)}'; }
