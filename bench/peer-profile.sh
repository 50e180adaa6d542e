#!/usr/bin/env bash
# Where the CPU goes on the writer and on a peer during a 3-node replicated
# ingest (the load of bench/replicated-ingest-procs.sh: 1,000,000 Updates
# over 50 connections into member 1 of three on 127.0.2.71-73, until all
# digests match): perf samples both processes (499 Hz, call graphs) and
# prints each one's CPU seconds (/proc) and the cumulative share of the
# functions that matter (the client and peer read loops, the store's
# commit and its parts, the feeds, pebble's compactions and WAL, the GC).
# Needs perf (Debian: linux-perf). Profiles are kept in bench/results/.
# Usage: bench/peer-profile.sh   (PERF_HZ: sampling rate, default 499;
#   CONTACTS: distinct contacts per connection, cycled, default 1000:
#   20000 makes every Update a new contact)
# Measurements: flock -x /work/notes/bench.lock bench/peer-profile.sh
source "$(dirname "$0")/lib.sh"
command -v perf >/dev/null || { echo "perf is needed (Debian: apt-get install linux-perf)" >&2; exit 1; }
OUT=$ROOT/bench/results/profile-$(date -u +%Y%m%dT%H%M%S)
mkdir -p "$OUT"
build
status() { curl -s "http://$1/v1/status"; }
digest() { status "$1" | grep -o '"digest": *"[^"]*"' | head -1; }
start_cluster prof 127.0.2.7
perf record -F "${PERF_HZ:-499}" -g -p "${PIDS[0]}" -o "$OUT/writer.data" >/dev/null 2>&1 & pw=$!
perf record -F "${PERF_HZ:-499}" -g -p "${PIDS[1]}" -o "$OUT/peer.data" >/dev/null 2>&1 & pp=$!
sleep 0.5
c0=(); for i in 0 1 2; do c0+=("$(cpu_s "${PIDS[$i]}")"); done
t0=$(date +%s.%N)
"$BIN/contactctl" bench --servers 127.0.2.71:29000 ingest --conns 50 --users 50 --count 20000 --contacts "${CONTACTS:-1000}" 2>/dev/null
for _ in $(seq 1 6000); do
  d1=$(digest 127.0.2.71:28080); d2=$(digest 127.0.2.72:28080); d3=$(digest 127.0.2.73:28080)
  [ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d1" = "$d3" ] && break
  sleep 0.05
done
t1=$(date +%s.%N)
echo "replicated ingest of 1,000,000 Updates until all digests match: $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s"
for i in 0 1 2; do
  echo "member $((i + 1)) CPU: $(awk -v a="${c0[$i]}" -v b="$(cpu_s "${PIDS[$i]}")" 'BEGIN {printf "%.2f", b - a}') s"
done
kill -INT $pw $pp; wait $pw $pp 2>/dev/null || true
pat='serveClient$|peerConn\).readLoop$|\(\*Batch\)\.Commit$|shard\)\.(read|commit|rememberRound)$|owner\)\.feed$|ClientFrame$|ServerFrame$|runCompaction$|LogWriter\)\.flushLoop$|gcBgMarkWorker$|memTable\)\.apply$|syscall\.(read|write)$'
for who in writer peer; do
  echo; echo "$who (member $([ $who = writer ] && echo 1 || echo 2)): share of CPU samples, cumulative"
  perf report -i "$OUT/$who.data" --children --sort symbol --stdio -g none 2>/dev/null |
    awk -v pat="$pat" '$1 ~ /%$/ && $4 ~ pat {print "  " $1 "  " $4}' | head -20
done
