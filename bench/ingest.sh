#!/usr/bin/env bash
# Single-node ingest against Redis, in the same run on the same machine.
#   contact-server: 50 connections pipelining Updates (default fsync=batch),
#                   each confirmed by a ListAll (applied and durable).
#   redis:          redis-benchmark -t set -d 276 -c 50 -P 16,
#                   redis-server --appendonly yes --appendfsync everysec.
#   contact-server with TLS on the contact port (same load, --tls-ca on the client).
# Usage: bench/ingest.sh [RUNS]   (default 3; the table shows every run and the median)
source "$(dirname "$0")/lib.sh"
RUNS=${1:-3}
need_redis
build
"$BIN/contactctl" certs --dir "$TMP/certs" --servers ingest-tls --hosts 127.0.0.1 >/dev/null
TLS_SERVER=(--tls-cert "$TMP/certs/ingest-tls.pem" --tls-key "$TMP/certs/ingest-tls-key.pem" --tls-ca "$TMP/certs/ca.pem")
TLS_CLIENT=(--tls-ca "$TMP/certs/ca.pem" --tls-server-name ingest-tls)

redis_rps=(); cs_rps=(); tls_rps=()
for run in $(seq 1 "$RUNS"); do
  mkdir -p "$TMP/redis"
  redis-server --port 6390 --bind 127.0.0.1 --dir "$TMP/redis" --appendonly yes --appendfsync everysec \
    --save "" --daemonize no --logfile "$TMP/redis.log" &
  RPID=$!; PIDS+=("$RPID")
  for _ in $(seq 1 100); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.05; done
  r=$(redis-benchmark -p 6390 -t set -d 276 -c 50 -P 16 -n 2000000 --csv | awk -F'"' '/SET/ {print $4}')
  kill "$RPID"; wait "$RPID" 2>/dev/null || true; rm -rf "$TMP/redis"
  redis_rps+=("$r")

  start_server ingest 127.0.0.1:9390
  c=$("$BIN/contactctl" --server 127.0.0.1:9390 bench ingest --conns 50 --count 40000 --json | json_field updates_per_sec)
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$TMP/ingest"
  cs_rps+=("$c")

  CTL_FLAGS=("${TLS_CLIENT[@]}")
  start_server ingest-tls 127.0.0.1:9395 "${TLS_SERVER[@]}"
  x=$("$BIN/contactctl" "${TLS_CLIENT[@]}" --server 127.0.0.1:9395 bench ingest --conns 50 --count 40000 --json | json_field updates_per_sec)
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$TMP/ingest-tls"
  CTL_FLAGS=()
  tls_rps+=("$x")
  printf 'run %d: redis SET %.0f/s, contact-server Update %.0f/s, with TLS %.0f/s\n' "$run" "$r" "$c" "$x" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rm=$(median "${redis_rps[@]}"); cm=$(median "${cs_rps[@]}"); xm=$(median "${tls_rps[@]}")
echo
echo "| run | redis SET/s (-d 276 -c 50 -P 16, AOF everysec) | contact-server Updates/s (50 conns, fsync=batch) | ratio | with TLS | TLS / plain |"
echo "|---|---|---|---|---|---|"
for i in "${!cs_rps[@]}"; do
  awk -v i=$((i+1)) -v r="${redis_rps[$i]}" -v c="${cs_rps[$i]}" -v x="${tls_rps[$i]}" 'BEGIN {printf "| %d | %.0f | %.0f | %.2fx | %.0f | %.2f |\n", i, r, c, c/r, x, x/c}'
done
awk -v r="$rm" -v c="$cm" -v x="$xm" 'BEGIN {printf "| median | %.0f | %.0f | %.2fx | %.0f | %.2f |\n", r, c, c/r, x, x/c}'
