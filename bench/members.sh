#!/usr/bin/env bash
# Clusters of 4, 8, 16 and 32 real members on one machine (issue 14), all
# joining through one seed (127.0.3.1), on 127.0.3.1-32: contact port
# 29000, gossip 27946, HTTP 28080, memberlist's default (lan) profile,
# HeartBeats every second on every peer connection (the sync default).
#
# For every size, once all members see all members with both peer links up
# and hold equal digests, and REST seconds (default 30) of rest after it:
#   CPU per member  utime+stime from /proc/PID/stat over the rest window;
#   RSS per member  VmRSS at the end of it;
#   gossip          bytes memberlist sent per second (its go-metrics counters
#                   contact_memberlist_udp_sent + contact_memberlist_tcp_sent
#                   on /metrics: probes, gossip, push-pull);
#   peer links      bytes sent per second on the member's contact-protocol
#                   TCP connections to and from peers (tcp_info bytes_sent of
#                   every established socket with the member's address on
#                   either end and port 29000 on one, read with ss: at rest
#                   that is HeartBeats and their answers).
# Median and max over the members, as a table and as JSON lines for the plot.
#
# At the largest size it then writes one contact on every member into the
# book members-check and times until every member lists all of them; then,
# ROUNDS times (default 3): writes 800 contacts on survivors' books while 8
# members (every 4th: 8 of 32) are killed with SIGKILL at once, restarts the 8, and
# times from the last restart's exec until all members are ready with equal
# digests and all links up.
#
# Usage: bench/members.sh [SIZE...]   (default: 4 8 16 32)
#        REST=30 ROUNDS=3 PLOT_DIR=docs   (PLOT_DIR: also draw PLOT_DIR/members.png;
#        PLOT_CPU=false leaves its CPU panel out)
# The figures in docs/benchmarks.md: `flock -x /work/notes/bench.lock bench/members.sh`.
source "$(dirname "$0")/lib.sh"
SIZES=("${@:-4 8 16 32}"); SIZES=(${SIZES[@]})
REST=${REST:-30}; ROUNDS=${ROUNDS:-3}; PLOT_DIR=${PLOT_DIR:-}
HZ=$(getconf CLK_TCK)
declare -A MPID
build

ip() { echo "127.0.3.$1"; }
start_member() { # start_member I
  local i=$1 join=()
  [ "$i" != 1 ] && join=(--join "$(ip 1):27946")
  "$BIN/contact-server" --name "m-$i" --listen "$(ip "$i"):29000" --gossip "$(ip "$i"):27946" \
    --http "$(ip "$i"):28080" --data-dir "$TMP/m-$i" --log-level warn --max-conn-rate 0 "${join[@]}" \
    2>>"$TMP/m-$i.log" &
  MPID[$i]=$!; PIDS+=("${MPID[$i]}")
}
https() { local i out=(); for i in $(seq 1 "$1"); do out+=("$(ip "$i"):28080"); done; (IFS=,; echo "${out[*]}"); }
converge() { # converge N SINCE_NS: ms until all N members agree
  "$BIN/contactctl" bench converge --http "$(https "$1")" --members "$1" --since-ns "$2" --every "${3:-100ms}" \
    --wait 5m --json | json_field ms
}
stop_all() {
  local i
  for i in "${!MPID[@]}"; do kill -9 "${MPID[$i]}" 2>/dev/null || true; done
  for i in "${!MPID[@]}"; do wait "${MPID[$i]}" 2>/dev/null || true; done
  MPID=(); PIDS=(); rm -rf "$TMP"/m-*
}

# sample N FILE: one line per member: i ticks rss_kb gossip_bytes
sample() {
  local n=$1 i ticks rss g
  for i in $(seq 1 "$n"); do
    ticks=$(awk '{print $14 + $15}' "/proc/${MPID[$i]}/stat")
    rss=$(rss_kb "${MPID[$i]}")
    g=$(curl -s "http://$(ip "$i"):28080/metrics" | awk '/^contact_memberlist_(udp|tcp)_sent[ {]/ {s += $NF} END {printf "%.0f", s}')
    echo "$i $ticks $rss $g"
  done >"$2"
}
# socks FILE: "local peer bytes_sent" of every established loopback TCP socket
# on 127.0.3.x with port 29000 on one end.
socks() {
  ss -tinH state established '( sport = :29000 or dport = :29000 )' | awk '
    /^[0-9]/ {key = $3 " " $4; next}
    key != "" {b = 0; for (i = 1; i <= NF; i++) if ($i ~ /^bytes_sent:/) {split($i, a, ":"); b = a[2]}
               print key, b; key = ""}' | grep '^127\.0\.3\.' >"$1" || true
}

measure_rest() { # measure_rest N: prints a table row and appends JSON to $TMP/growth.jsonl
  local n=$1
  sample "$n" "$TMP/s1"; socks "$TMP/k1"; local t1; t1=$(date +%s.%N)
  sleep "$REST"
  sample "$n" "$TMP/s2"; socks "$TMP/k2"; local t2; t2=$(date +%s.%N)
  # peer bytes per member: sum of deltas of sockets present in both samples,
  # counted for the member whose address is the socket's local end
  awk 'NR == FNR {b[$1 " " $2] = $3; next} ($1 " " $2) in b {split($1, a, ":"); d[a[1]] += $3 - b[$1 " " $2]}
       END {for (k in d) print k, d[k]}' "$TMP/k1" "$TMP/k2" >"$TMP/peer"
  awk -v n="$n" -v hz="$HZ" -v t1="$t1" -v t2="$t2" '
    FILENAME == ARGV[1] {tk[$1] = $2; g[$1] = $4; next}
    FILENAME == ARGV[2] {cpu[$1] = ($2 - tk[$1]) / hz / (t2 - t1) * 100; rss[$1] = $3 / 1024; gs[$1] = ($4 - g[$1]) / (t2 - t1); next}
    {split($1, a, "."); pb[a[4]] = $2 / (t2 - t1)}
    function med(arr,   k, m, v, i, j, t) {m = 0; for (k in arr) v[++m] = arr[k]
      for (i = 2; i <= m; i++) {t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t}
      return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2}
    function mx(arr,   k, x) {x = 0; for (k in arr) if (arr[k] > x) x = arr[k]; return x}
    END {
      for (i = 1; i <= n; i++) if (!(i in pb)) pb[i] = 0
      printf "| %d | %.2f %% (max %.2f) | %.0f MB (max %.0f) | %.0f B/s (max %.0f) | %.0f B/s (max %.0f) | %.0f B/s |\n",
        n, med(cpu), mx(cpu), med(rss), mx(rss), med(gs), mx(gs), med(pb), mx(pb), med(pb) / (2 * (n - 1))
      printf "{\"members\":%d,\"cpu_pct\":%.3f,\"cpu_pct_max\":%.3f,\"rss_mb\":%.1f,\"rss_mb_max\":%.1f,\"gossip_bps\":%.0f,\"gossip_bps_max\":%.0f,\"peer_bps\":%.0f,\"peer_bps_max\":%.0f}\n",
        n, med(cpu), mx(cpu), med(rss), mx(rss), med(gs), mx(gs), med(pb), mx(pb) >> "'"$TMP/growth.jsonl"'"
    }' "$TMP/s1" "$TMP/s2" "$TMP/peer"
}

changes_everywhere() { # changes_everywhere N: one contact written on each member (one after another),
  # ms from the last write's return until every member lists all of them
  local n=$1 i t0 ms=()
  for i in $(seq 1 "$n"); do
    "$BIN/contactctl" --server "$(ip "$i"):29000" --user members-check put "from-m-$i" "5550$i" >/dev/null
  done
  t0=$(date +%s%N)
  for i in $(seq 1 "$n"); do
    "$BIN/contactctl" --server "$(ip "$i"):29000" --user members-check bench first-list --min "$n" \
      --since-ns "$t0" --every 20ms --wait 2m --json >"$TMP/fl-$i" &
  done
  wait # the subshell's children: the readers
  for i in $(seq 1 "$n"); do
    [ "$(json_field contacts <"$TMP/fl-$i")" -ge "$n" ] || { echo "m-$i does not list all $n changes" >&2; exit 1; }
    ms+=("$(json_field ms <"$TMP/fl-$i")")
  done
  printf '%s\n' "${ms[@]}" | sort -g | tail -1
}

kill_restart() { # kill_restart N ROUND: sets RESULT, ms from the last restart until all agree
  local n=$1 r=$2 i victims=() t0
  for i in $(seq 4 4 "$n"); do victims+=("$i"); done
  for i in "${victims[@]}"; do kill -9 "${MPID[$i]}"; done
  for i in "${victims[@]}"; do wait "${MPID[$i]}" 2>/dev/null || true; done
  "$BIN/contactctl" --servers "$(ip 2):29000,$(ip 3):29000" bench fill --users 8 --contacts 100 \
    --user-prefix "round-$r-" --workers 8 >/dev/null
  for i in "${victims[@]}"; do start_member "$i"; done
  t0=$(date +%s%N)
  RESULT=$(converge "$n" "$t0")
  echo "round $r: killed ${#victims[@]} (m-${victims[*]}) with SIGKILL, 800 changes written meanwhile, restarted; all agree after $RESULT ms" >&2
}

: >"$TMP/growth.jsonl"
echo "| members | CPU per member at rest (median) | RSS per member | gossip sent per member (memberlist) | peer-link bytes sent per member | per peer link |"
echo "|---|---|---|---|---|---|"
last=${SIZES[-1]}
for n in "${SIZES[@]}"; do
  t0=$(date +%s%N)
  for i in $(seq 1 "$n"); do start_member "$i"; done
  up=$(converge "$n" "$t0" 200ms)
  echo "$n members: all up, linked and in sync $up ms after the first exec" >&2
  measure_rest "$n"
  if [ "$n" = "$last" ]; then
    everywhere=$(changes_everywhere "$n")
    rounds=()
    for r in $(seq 1 "$ROUNDS"); do kill_restart "$n" "$r"; rounds+=("$RESULT"); done
    stop_all
    echo
    echo "| members | a change written on every member: from the last write's return until every member lists all | $((n / 4)) of them SIGKILLed at once and restarted: last restart to equal digests, all links up ($ROUNDS rounds) |"
    echo "|---|---|---|"
    printf '| %d | %.0f ms | %s ms |\n' "$n" "$everywhere" "$(printf '%.0f ' "${rounds[@]}" | sed 's/ $//; s/ /, /g')"
  else
    stop_all
  fi
done
echo >&2; cat "$TMP/growth.jsonl" >&2
if [ -n "$PLOT_DIR" ]; then
  (cd "$ROOT" && mkdir -p "$PLOT_DIR" && go run ./bench/plot -members "$TMP/growth.jsonl" -members-cpu="${PLOT_CPU:-true}" -out "$PLOT_DIR")
  echo "wrote $PLOT_DIR/members.png" >&2
fi
