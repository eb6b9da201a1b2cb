#!/usr/bin/env bash
# A/B benchmark (not a test): two sessiond binaries on the same workloads, alternated round by
# round in one run so that the machine's drift hits both alike, with `sessiond-load compare`
# doing each measurement. Prints every run and the median ops/s and p99 of each side, and the
# ratio B/A.
#
#   bench/ab.sh A_BIN B_BIN [ROUNDS] [DURATION] [WORKLOADS]
#
# e.g. bench/ab.sh /tmp/old/sessiond target/release/sessiond 3 8s session-mix,php-cycle
# The load generator is target/release/sessiond-load (build it with --release).
set -euo pipefail
cd "$(dirname "$0")/.."

a=${1:?the first sessiond binary}
b=${2:?the second sessiond binary}
rounds=${3:-3}
duration=${4:-8s}
workloads=${5:-session-mix,php-cycle}
load=target/release/sessiond-load
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for round in $(seq 1 "$rounds"); do
  for side in A B; do
    bin=$a
    [ "$side" = B ] && bin=$b
    dir="$out/$side-$round"
    "$load" compare --sessiond-bin "$bin" --servers sessiond --rounds 1 \
      --duration "$duration" --workloads "$workloads" --memory-sessions 0 \
      --redis-benchmark-requests 0 --out-dir "$dir" >/dev/null
    # workload,server,round,protocol,ops_per_sec,p50_ms,p99_ms,...
    tail -n +2 "$dir/runs.csv" | awk -F, -v side="$side" -v round="$round" \
      '{ print side "," round "," $1 "," $5 "," $7 }' >>"$out/all.csv"
  done
done

echo "side,round,workload,ops_per_sec,p99_ms"
cat "$out/all.csv"
echo
python3 - "$out/all.csv" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
by = {}
for side, _, workload, ops, p99 in rows:
    by.setdefault((workload, side), []).append((float(ops), float(p99)))
for workload in sorted({w for w, _ in by}):
    a = by[(workload, "A")]; b = by[(workload, "B")]
    a_ops = statistics.median(o for o, _ in a); b_ops = statistics.median(o for o, _ in b)
    a_p99 = statistics.median(p for _, p in a); b_p99 = statistics.median(p for _, p in b)
    print(f"{workload}: A {a_ops:,.0f} ops/s (p99 {a_p99:.2f} ms), B {b_ops:,.0f} ops/s "
          f"(p99 {b_p99:.2f} ms), B/A {b_ops / a_ops:.3f}")
PY
