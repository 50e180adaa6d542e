#!/usr/bin/env bash
# A member joins a 3-member cluster holding CONTACTS contacts (default
# 1,000,000): the time from its exec until all four members are ready with
# equal digests (the joiner serving with every contact; 100 ms resolution),
# the transfer rate, and the joiner's peak RSS (VmHWM) and the cluster
# members' peak RSS during the join (their VmHWM reset just before it).
# Real processes on 127.0.4.11-19 (contact 29000, gossip 27946, HTTP 28080,
# memberlist's local profile). Member 1 is filled alone (books of 100 to
# 10,000 contacts), members 2 and 3 join it (not timed); then RUNS (default
# 3) joiners, each a fresh member with its own name and address, each stopped
# (SIGTERM, it leaves) before the next.
# Usage: bench/join.sh [CONTACTS] [RUNS]
# The figures in docs/benchmarks.md: `flock -x /work/notes/bench.lock bench/join.sh 10000000`.
source "$(dirname "$0")/lib.sh"
CONTACTS=${1:-1000000}; RUNS=${2:-3}
build
ip() { echo "127.0.4.$((10 + $1))"; }
declare -A MPID
start_member() { # start_member I
  local i=$1 join=()
  [ "$i" != 1 ] && join=(--join "$(ip 1):27946")
  "$BIN/contact-server" --name "join-$i" --listen "$(ip "$i"):29000" --gossip "$(ip "$i"):27946" \
    --http "$(ip "$i"):28080" --gossip-profile local --data-dir "$TMP/join-$i" --log-level warn \
    --max-conn-rate 0 "${join[@]}" 2>>"$TMP/join-$i.log" &
  MPID[$i]=$!; PIDS+=("${MPID[$i]}")
}
https() { local i out=(); for i in "$@"; do out+=("$(ip "$i"):28080"); done; (IFS=,; echo "${out[*]}"); }
mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

start_member 1; wait_serving "$(ip 1):29000"
"$BIN/contactctl" --server "$(ip 1):29000" bench fill --total "$CONTACTS" --contacts 10000 --min-contacts 100 >&2
start_member 2; start_member 3
"$BIN/contactctl" bench converge --http "$(https 1 2 3)" --members 3 --live "$CONTACTS" --wait 20m --json >/dev/null
echo "3 members hold $CONTACTS contacts" >&2

echo "| contacts | run | join: exec to all 4 ready, equal digests | transfer rate | joiner's peak RSS | cluster members' peak RSS during the join |"
echo "|---|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  j=$((3 + run))
  for i in 1 2 3; do echo 5 >"/proc/${MPID[$i]}/clear_refs"; done # resets VmHWM
  t0=$(date +%s%N); start_member "$j"
  ms=$("$BIN/contactctl" bench converge --http "$(https 1 2 3 "$j")" --members 4 --live "$CONTACTS" \
    --since-ns "$t0" --wait 10m --json | json_field ms)
  hj=$(hwm_kb "${MPID[$j]}")
  hc=0; for i in 1 2 3; do h=$(hwm_kb "${MPID[$i]}"); [ "$h" -gt "$hc" ] && hc=$h; done
  awk -v n="$CONTACTS" -v r="$run" -v ms="$ms" -v hj="$(mb "$hj")" -v hc="$(mb "$hc")" \
    'BEGIN {printf "| %d | %d | %.2f s | %.0f contacts/s | %d MB | %d MB |\n", n, r, ms / 1000, n / (ms / 1000), hj, hc}'
  kill -TERM "${MPID[$j]}"; wait "${MPID[$j]}" 2>/dev/null || true
  "$BIN/contactctl" bench converge --http "$(https 1 2 3)" --members 3 --wait 2m >/dev/null
done
