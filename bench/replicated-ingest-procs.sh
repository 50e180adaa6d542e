#!/usr/bin/env bash
# 3-node replicated ingest against single-node ingest and against Redis with
# two replicas, in the same run, with real processes on loopback:
#   contact-server: 50 connections pipeline 1,000,000 Updates into one
#     server (127.0.2.50), or into member 1 of three (127.0.2.51-53). The
#     single-node clock stops when every connection's final ListAll has come
#     back; the 3-node clock stops when all three servers report the same
#     state digest in /v1/status (every change applied everywhere).
#   redis: redis-server (appendonly yes, appendfsync everysec) with two
#     replicas (replicaof) on 127.0.2.60:26379-26381; redis-benchmark -t set
#     -d 276 -c 50 -P 16 -n REDIS_N -r 1000000 (random keys, so that the
#     replicas' key counts say how complete they are) against the primary;
#     the key counts (dbsize) and replication offsets of all three are read
#     the moment the benchmark ends.
#   CPU: user+system seconds of every contact-server process from
#     /proc/PID/stat, before the 3-node ingest and once the digests match:
#     seconds per million Updates ingested (member 1), and for members 2
#     and 3 per million changes applied (their /v1/status changes_applied
#     + changes_ignored) and per million Updates ingested on member 1 (what
#     replicating the load cost them: a commit logs a key once, however
#     often a client rewrote it in that commit, so a peer may apply fewer
#     changes than member 1 took in).
# Fresh data directories every run. bench/replicated-ingest.sh is the
# in-process variant (three nodes in one Go process, digests read directly).
# Usage: bench/replicated-ingest-procs.sh [RUNS]   (default 3)
# Measurements: flock -x /work/notes/bench.lock bench/replicated-ingest-procs.sh
source "$(dirname "$0")/lib.sh"
RUNS=${1:-3}
UPDATES=1000000
REDIS_N=${REDIS_N:-2000000}
RH=127.0.2.60
need_redis
build
now() { date +%s.%N; }
ingest() { "$BIN/contactctl" bench --servers "$1" ingest --conns 50 --users 50 --count $((UPDATES / 50)) >/dev/null 2>&1; }
# curl is lighter than a contactctl process per poll, which would compete for the cores.
status() { curl -s "http://$1/v1/status"; }
digest() { status "$1" | grep -o '"digest": *"[^"]*"' | head -1; }
handled() { status "$1" | awk -F'[:,]' '/"changes_applied"|"changes_ignored"/ {s += $2} END {print s + 0}'; }
stop_all() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; } || true; done
  PIDS=()
}
redis_info() { redis-cli -h $RH -p "$1" info replication | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }

# redis_run: primary and two replicas, the benchmark, then key counts.
redis_run() {
  local port
  for port in 26379 26380 26381; do
    local extra=(); [ "$port" != 26379 ] && extra=(--replicaof $RH 26379)
    mkdir -p "$TMP/redis-$port"
    redis-server --port "$port" --bind $RH --dir "$TMP/redis-$port" --appendonly yes --appendfsync everysec \
      --save "" --daemonize no --logfile "$TMP/redis-$port.log" "${extra[@]}" &
    PIDS+=($!)
    for _ in $(seq 1 100); do redis-cli -h $RH -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
  done
  for _ in $(seq 1 200); do # both replicas linked
    [ "$(redis_info 26379 connected_slaves)" = 2 ] && [ "$(redis_info 26380 master_link_status)" = up ] &&
      [ "$(redis_info 26381 master_link_status)" = up ] && break
    sleep 0.05
  done
  REDIS_SET=$(redis-benchmark -h $RH -p 26379 -t set -d 276 -c 50 -P 16 -n "$REDIS_N" -r 1000000 --csv | awk -F'"' '/SET/ {print $4}')
  REDIS_KEYS="$(redis-cli -h $RH -p 26379 dbsize)/$(redis-cli -h $RH -p 26380 dbsize)/$(redis-cli -h $RH -p 26381 dbsize)"
  local off=$(redis_info 26379 master_repl_offset) o1=$(redis_info 26380 slave_repl_offset) o2=$(redis_info 26381 slave_repl_offset)
  REDIS_LAG="$((off - o1))/$((off - o2))"
  stop_all
  rm -rf "$TMP"/redis-*
}

echo "machine: $(nproc) cores, $(uname -r), $(go env GOVERSION), $(redis-server --version | awk '{print $3}')"
echo
echo "| run | single-node ingest | 3-node replicated ingest (until all digests match) | ratio | redis SET/s, 2 replicas | keys at end (primary/replica/replica) | replica offset lag, bytes | 3-node / redis | CPU s per M: single node | writer (member 1) | peers (2, 3) per M applied | peer / writer | peers (2, 3) per M ingested | peer / writer |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  redis_run

  start_server "single-$run" 127.0.2.50:29000 --gossip "" --http ""
  sp=$SERVER_PID; c0=$(cpu_s "$sp")
  t0=$(now); ingest 127.0.2.50:29000; t1=$(now)
  single_cpu=$(awk -v a="$c0" -v b="$(cpu_s "$sp")" -v n=$UPDATES 'BEGIN {printf "%.2f", (b - a) / n * 1e6}')
  single=$(awk -v n=$UPDATES -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
  stop_all

  start_cluster "ri-$run" 127.0.2.5
  h2=$(handled 127.0.2.52:28080); h3=$(handled 127.0.2.53:28080)
  cpu0=(); for i in 0 1 2; do cpu0+=("$(cpu_s "${PIDS[$i]}")"); done
  t0=$(now); ingest 127.0.2.51:29000
  for _ in $(seq 1 6000); do # 50 ms resolution, at most 5 minutes
    d1=$(digest 127.0.2.51:28080); d2=$(digest 127.0.2.52:28080); d3=$(digest 127.0.2.53:28080)
    [ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d1" = "$d3" ] && break
    sleep 0.05
  done
  t1=$(now)
  cpu1=(); for i in 0 1 2; do cpu1+=("$(cpu_s "${PIDS[$i]}")"); done
  h2=$(( $(handled 127.0.2.52:28080) - h2 )); h3=$(( $(handled 127.0.2.53:28080) - h3 ))
  repl=$(awk -v n=$UPDATES -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
  stop_all
  w=$(awk -v a="${cpu0[0]}" -v b="${cpu1[0]}" -v n=$UPDATES 'BEGIN {printf "%.2f", (b - a) / n * 1e6}')
  p2=$(awk -v a="${cpu0[1]}" -v b="${cpu1[1]}" -v n="$h2" 'BEGIN {printf "%.2f", (b - a) / n * 1e6}')
  p3=$(awk -v a="${cpu0[2]}" -v b="${cpu1[2]}" -v n="$h3" 'BEGIN {printf "%.2f", (b - a) / n * 1e6}')
  i2=$(awk -v a="${cpu0[1]}" -v b="${cpu1[1]}" -v n=$UPDATES 'BEGIN {printf "%.2f", (b - a) / n * 1e6}')
  i3=$(awk -v a="${cpu0[2]}" -v b="${cpu1[2]}" -v n=$UPDATES 'BEGIN {printf "%.2f", (b - a) / n * 1e6}')
  awk -v r="$run" -v s="$single" -v p="$repl" -v rs="$REDIS_SET" -v k="$REDIS_KEYS" -v l="$REDIS_LAG" \
    -v sc="$single_cpu" -v w="$w" -v p2="$p2" -v p3="$p3" -v h2="$h2" -v h3="$h3" -v i2="$i2" -v i3="$i3" \
    'BEGIN {printf "| %s | %d updates/s | %d updates/s | %.2fx | %.0f | %s | %s | %.2fx | %.2f | %.2f | %.2f, %.2f (%d, %d applied) | %.2fx | %.2f, %.2f | %.2fx |\n",
      r, s, p, p / s, rs, k, l, p / rs, sc, w, p2, p3, h2, h3, (p2 > p3 ? p2 : p3) / w, i2, i3, (i2 > i3 ? i2 : i3) / w}'
done
