#!/usr/bin/env bash
# 3-node replicated ingest against single-node ingest, in the same run, with
# real processes on loopback: 50 connections pipeline 1,000,000 Updates into
# one server, or into node 1 of three (127.0.0.51-53). The single-node clock
# stops when every connection's final ListAll has come back; the 3-node clock
# stops when all three servers report the same state digest in /v1/status
# (every change applied everywhere). Fresh data directories every run.
# bench/replicated-ingest.sh is the in-process variant (three nodes in one
# Go process, digests read directly).
# Usage: bench/replicated-ingest-procs.sh [RUNS]   (default 3)
source "$(dirname "$0")/lib.sh"
RUNS=${1:-3}
UPDATES=1000000
build
now() { date +%s.%N; }
ingest() { "$BIN/contactctl" bench --servers "$1" ingest --conns 50 --users 50 --count $((UPDATES / 50)) >/dev/null 2>&1; }
# The server's own (live) digest is the first "digest" in /v1/status; curl is
# lighter than a contactctl process per poll, which would compete for the cores.
if command -v curl >/dev/null; then
  digest() { curl -s "http://$1/v1/status" | grep -o '"digest": *"[^"]*"' | head -1; }
else
  digest() { "$BIN/contactctl" status --http "$1" --json 2>/dev/null | grep -o '"digest": *"[^"]*"' | head -1; }
fi
stop_all() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; } || true; done
  PIDS=()
}

echo "| run | single-node ingest | 3-node replicated ingest (until all digests match) | ratio |"
echo "|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  start_server "single-$run" 127.0.0.50:29000 --gossip "" --http ""
  t0=$(now); ingest 127.0.0.50:29000; t1=$(now)
  single=$(awk -v n=$UPDATES -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
  stop_all

  start_cluster "ri-$run" 127.0.0.5
  t0=$(now); ingest 127.0.0.51:29000
  for _ in $(seq 1 6000); do # 50 ms resolution, at most 5 minutes
    d1=$(digest 127.0.0.51:28080); d2=$(digest 127.0.0.52:28080); d3=$(digest 127.0.0.53:28080)
    [ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d1" = "$d3" ] && break
    sleep 0.05
  done
  t1=$(now)
  repl=$(awk -v n=$UPDATES -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
  stop_all
  awk -v r="$run" -v s="$single" -v p="$repl" 'BEGIN {printf "| %s | %d updates/s | %d updates/s | %.2fx |\n", r, s, p, p / s}'
done
