#!/usr/bin/env bash
# One member holding many contacts (issue 14): memory during a fill, memory
# at rest, size on disk, restart to the first ListAll, ListAll of a
# 10,000-contact book. Books of 100 to 10,000 contacts (sizes spread evenly
# over the logarithm; book fill-user-0 holds 10,000), phones of 11 bytes.
# The member runs alone (--gossip "" --http "") on 127.0.4.1:29000 with its
# default memory settings (--cache-size 128 MiB, --memtable-size 32 MiB).
#
# Usage:
#   bench/scale.sh fill N DIR      fill a fresh member in DIR with N contacts;
#                                  prints the fill rate and the member's peak
#                                  RSS (VmHWM, the whole fill) and its RSS at
#                                  rest 10 s after; stops it (SIGTERM).
#   bench/scale.sh measure DIR [RUNS]
#                                  on-disk size; RUNS restarts (default 3:
#                                  SIGTERM then exec, and SIGKILL then exec),
#                                  each timed from exec to the first ListAll
#                                  of fill-user-0 that succeeds; ListAll of
#                                  fill-user-0 (median of 51 on one
#                                  connection); RSS at rest after them.
#   bench/scale.sh N               both, in a temporary directory.
# The figures in docs/benchmarks.md: fill under `flock -s
# /work/notes/bench.lock` (a fill is long; its figure is memory, not time),
# measure under `flock -x /work/notes/bench.lock`.
source "$(dirname "$0")/lib.sh"
ADDR=127.0.4.1:29000
BOOK=fill-user-0

serve() { # serve DIR: exec the member on DIR (no wait); sets SERVER_PID
  "$BIN/contact-server" --name scale --listen "$ADDR" --gossip "" --http "" --data-dir "$1" \
    --log-level warn --max-conn-rate 0 2>>"$1.log" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
}
stop() { # stop SIGNAL
  kill "-$1" "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}
mb() { awk -v k="$1" 'BEGIN {printf "%.0f", k / 1024}'; }

fill() { # fill N DIR
  local n=$1 dir=$2
  [ -e "$dir" ] && { echo "$dir exists: fill wants a fresh directory" >&2; exit 1; }
  mkdir -p "$(dirname "$dir")"
  serve "$dir"; wait_serving "$ADDR"
  local out
  out=$("$BIN/contactctl" --server "$ADDR" bench fill --total "$n" --contacts 10000 --min-contacts 100 \
    --workers 16 --json --progress)
  local hwm; hwm=$(hwm_kb "$SERVER_PID")
  sleep 10
  local rest; rest=$(rss_kb "$SERVER_PID")
  local hwm2; hwm2=$(hwm_kb "$SERVER_PID") # compactions after the fill count too
  stop TERM
  local books rate secs
  books=$(echo "$out" | json_field books); rate=$(echo "$out" | json_field contacts_per_sec); secs=$(echo "$out" | json_field seconds)
  echo "| contacts | books | fill time | fill rate | peak RSS during fill (VmHWM) | peak RSS to 10 s after | RSS at rest 10 s after |"
  echo "|---|---|---|---|---|---|---|"
  printf '| %d | %d | %.0f s | %.0f contacts/s | %s MB | %s MB | %s MB |\n' "$n" "$books" "$secs" "$rate" "$(mb "$hwm")" "$(mb "$hwm2")" "$(mb "$rest")"
}

measure() { # measure DIR RUNS
  local dir=$1 runs=$2 i sig t0 out ms=() disk
  disk=$(du -sm "$dir" | cut -f1)
  serve "$dir"; wait_serving "$ADDR"
  for i in $(seq 1 "$runs"); do
    sig=TERM; [ $((i % 2)) = 0 ] && sig=KILL
    stop "$sig"
    t0=$(date +%s%N); serve "$dir"
    out=$("$BIN/contactctl" --server "$ADDR" --user "$BOOK" bench first-list --since-ns "$t0" --json)
    ms+=("$(echo "$out" | json_field ms)")
    printf 'restart %d after SIG%s: %s ms to the first ListAll (%s contacts)\n' "$i" "$sig" "${ms[-1]}" "$(echo "$out" | json_field contacts)" >&2
  done
  local la; la=$("$BIN/contactctl" --server "$ADDR" --user "$BOOK" bench listall --runs 51 --json)
  sleep 5
  local rest hwm; rest=$(rss_kb "$SERVER_PID"); hwm=$(hwm_kb "$SERVER_PID")
  stop TERM
  local sorted; sorted=$(printf '%s\n' "${ms[@]}" | sort -g)
  echo "| on disk | restart to first ListAll (SIGTERM / SIGKILL, $runs runs) | ListAll of a $(echo "$la" | json_field contacts)-contact book (median of 51; min-max) | RSS at rest after restart (peak) |"
  echo "|---|---|---|---|"
  printf '| %s MB | %s ms (%s) | %.2f ms (%.2f-%.2f) | %s MB (%s MB) |\n' "$disk" \
    "$(echo "$sorted" | awk '{a[NR]=$1} END {printf "%.0f", a[int((NR+1)/2)]}')" \
    "$(printf '%.0f ' "${ms[@]}" | sed 's/ $//; s/ /, /g')" \
    "$(echo "$la" | json_field median_ms)" "$(echo "$la" | json_field min_ms)" "$(echo "$la" | json_field max_ms)" \
    "$(mb "$rest")" "$(mb "$hwm")"
}

case "${1:-}" in
  fill) [ $# -eq 3 ] || { echo "usage: $0 fill N DIR" >&2; exit 2; }; build; fill "$2" "$3" ;;
  measure) [ $# -ge 2 ] || { echo "usage: $0 measure DIR [RUNS]" >&2; exit 2; }; build; measure "$2" "${3:-3}" ;;
  [0-9]*) build; fill "$1" "$TMP/scale"; echo; measure "$TMP/scale" 3 ;;
  *) echo "usage: $0 fill N DIR | measure DIR [RUNS] | N" >&2; exit 2 ;;
esac
