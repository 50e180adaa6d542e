#!/usr/bin/env bash
# Write-to-visible latency on a 3-node cluster of real binaries on loopback
# (127.0.0.31-33): a writer on node 1 at fixed rates, a reader on each of
# nodes 2 and 3 polling ListAll every 200 us (the resolution).
# Usage: bench/replication.sh [RATE...]   (default: 1000 5000 20000)
source "$(dirname "$0")/lib.sh"
RATES=("${@:-1000 5000 20000}"); RATES=(${RATES[@]})
build
start_cluster repl 127.0.0.3
echo "| rate (changes/s) | changes | readers | p50 | p90 | p99 | max | missing |"
echo "|---|---|---|---|---|---|---|---|"
for rate in "${RATES[@]}"; do
  out=$("$BIN/contactctl" --server 127.0.0.31:29000,127.0.0.32:29000,127.0.0.33:29000 bench replication \
    --rate "$rate" --duration 10s --json)
  f() { echo "$out" | json_field "$1"; }
  printf '| %s | %s | 2 | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %s |\n' "$rate" "$(f sent)" "$(f p50_ms)" "$(f p90_ms)" "$(f p99_ms)" "$(f max_ms)" "$(f missing)"
done
