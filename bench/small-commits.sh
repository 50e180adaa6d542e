#!/usr/bin/env bash
# CPU of one contact-server taking one-change commits, as interactive
# clients make them: 50 connections writing one book (one store shard),
# each sending one Update at a time, RATE Updates/s in all (default 5,000)
# for DURATION (default 40s), 1,000 contacts per connection cycled. Prints
# the server's CPU seconds over the load (/proc/PID/stat). Long enough that
# the shard's in-memory change-log tail (4 MiB) and its trimmed log fill:
# what a member that has run a while does per commit.
# Usage: bench/small-commits.sh [RATE] [DURATION]
# Measurements: flock -x /work/notes/bench.lock bench/small-commits.sh
source "$(dirname "$0")/lib.sh"
RATE=${1:-5000}
DURATION=${2:-40s}
build
start_server small 127.0.2.90:29000 --gossip "" --http ""
sp=$SERVER_PID; c0=$(cpu_s "$sp")
"$BIN/contactctl" bench --servers 127.0.2.90:29000 ingest --conns 50 --users 1 --contacts 1000 \
  --rate "$RATE" --duration "$DURATION" 2>/dev/null | tail -1
echo "server CPU over $DURATION of $RATE one-change commits/s into one book: $(awk -v a="$c0" -v b="$(cpu_s "$sp")" 'BEGIN {printf "%.2f", b - a}') s"
