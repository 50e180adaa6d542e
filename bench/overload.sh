#!/usr/bin/env bash
# Replication under sustained load (issue 11), with real processes on
# 127.0.2.1-4: three members are filled with 1,000,000 contacts (50 books
# of 20,000, written by `bench ingest`) and brought to equal digests; then `contactctl bench
# overload` runs a client load as fast as the machine allows (20 pipelining
# connections rewriting the 20,000 contacts of 20 of those books, cycled) on
# member 1 for DURATION (RATE caps it: 0 is as fast as possible), while a 4th
# member joins 5 s in. Every 5 s a marker contact is written on member 1,
# confirmed by ListAll, and timed until every other member lists it (each
# polled by ListAll every 1 ms). After the load: the time until all four
# /v1/status digests are equal, and each member's transfer and feed
# counters from /metrics as they grew during the run, and each server
# process's CPU seconds over the run (/proc/PID/stat).
# Usage: bench/overload.sh [RUNS] [DURATION] [RATE]   (default 1 run of 60s at full speed)
#        SERVER_FLAGS='--memtable-size 67108864' adds flags to every member
# Measurements: flock -x /work/notes/bench.lock bench/overload.sh
source "$(dirname "$0")/lib.sh"
RUNS=${1:-1}
DURATION=${2:-60s}
RATE=${3:-0}
P=127.0.2.
build
digest() { curl -s "http://$1/v1/status" | grep -o '"digest": *"[^"]*"' | head -1; }
stop_all() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; } || true; done
  PIDS=()
}
echo "machine: $(nproc) cores, $(uname -r), $(go env GOVERSION)"
for run in $(seq 1 "$RUNS"); do
  echo; echo "## run $run ($(date -u +%H:%M:%S) UTC, load for $DURATION, rate $RATE)"
  start_cluster "ov-$run" "$P"
  "$BIN/contactctl" bench --servers "${P}1:29000" ingest --conns 50 --users 50 --contacts 20000 --count 20000 2>/dev/null
  for _ in $(seq 1 3000); do # equal digests before the load
    d1=$(digest "${P}1:28080"); d2=$(digest "${P}2:28080"); d3=$(digest "${P}3:28080")
    [ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d1" = "$d3" ] && break
    sleep 0.05
  done
  echo "three members filled and equal: $d1"
  cpu0=(); for i in 0 1 2; do cpu0+=("$(cpu_s "${PIDS[$i]}")"); done
  "$BIN/contactctl" bench --servers "${P}1:29000,${P}2:29000,${P}3:29000,${P}4:29000" overload \
    --http "${P}1:28080,${P}2:28080,${P}3:28080,${P}4:28080" --duration "$DURATION" --conns 20 --users 50 --contacts 20000 --rate "$RATE" \
    2>"$TMP/overload-$run.err" &
  tool=$!
  sleep 5
  "$BIN/contact-server" --name "ov-$run-4" --listen "${P}4:29000" --gossip "${P}4:27946" \
    --http "${P}4:28080" --gossip-profile local --data-dir "$TMP/ov-$run-4" --log-level warn \
    --max-conn-rate 0 --join "${P}1:27946" ${SERVER_FLAGS:-} 2>>"$TMP/ov-$run-4.log" &
  PIDS+=($!)
  rc=0; wait "$tool" || rc=$?
  cpu="CPU seconds during the run (/proc):"
  for i in 0 1 2; do cpu+=" ov-$run-$((i + 1)) $(awk -v a="${cpu0[$i]}" -v b="$(cpu_s "${PIDS[$i]}")" 'BEGIN {printf "%.1f", b - a}'),"; done
  echo "$cpu ov-$run-4 $(cpu_s "${PIDS[3]}") (since its start)"
  sed 's/^/    /' "$TMP/overload-$run.err"
  [ "$rc" = 0 ] || echo "bench overload exited $rc"
  for i in 1 2 3 4; do # warnings and errors the members logged
    n=$(grep -c -E '\[(WARN|ERROR)\]' "$TMP/ov-$run-$i.log" 2>/dev/null || true)
    [ "${n:-0}" -gt 0 ] && { echo "ov-$run-$i logged $n warnings/errors, first:"; grep -m3 -E '\[(WARN|ERROR)\]' "$TMP/ov-$run-$i.log"; }
  done
  stop_all
done
