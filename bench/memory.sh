#!/usr/bin/env bash
# 1,000,000 contacts over 10,000 users: resident memory, and the time a
# restart takes from exec to serving a ListAll.
# Usage: bench/memory.sh [USERS] [CONTACTS_PER_USER]
source "$(dirname "$0")/lib.sh"
USERS=${1:-10000}; PER=${2:-100}
build
start_server mem 127.0.0.1:9391
fill=$("$BIN/contactctl" --server 127.0.0.1:9391 bench fill --users "$USERS" --contacts "$PER")
echo "$fill" >&2
rss_fill=$(rss_kb "$SERVER_PID"); hwm_fill=$(hwm_kb "$SERVER_PID")
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

t0=$(date +%s%N)
"$BIN/contact-server" --name mem --listen 127.0.0.1:9391 --data-dir "$TMP/mem" --log-level info 2>"$TMP/restart.log" &
SERVER_PID=$!; PIDS+=("$SERVER_PID")
wait_serving 127.0.0.1:9391
t1=$(date +%s%N)
got=$("$BIN/contactctl" --server 127.0.0.1:9391 --user fill-user-$((USERS-1)) list | wc -l)
rss_restart=$(rss_kb "$SERVER_PID")
load=$(sed -n 's/.*store opened.*took=\([^ ]*\).*/\1/p' "$TMP/restart.log")
echo
echo "| contacts | users | RSS after fill (peak) | RSS after restart | restart: exec to serving | index load | last book after restart |"
echo "|---|---|---|---|---|---|---|"
printf '| %d | %d | %d MB (%d MB) | %d MB | %d ms | %s | %d contacts |\n' $((USERS*PER)) "$USERS" \
  $((rss_fill/1024)) $((hwm_fill/1024)) $((rss_restart/1024)) $(((t1-t0)/1000000)) "$load" "$got"
