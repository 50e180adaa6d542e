#!/usr/bin/env bash
# The PNG plots of docs/benchmarks.md, from runs made now:
#   docs/throughput.png: single-node ingest against the number of client
#     connections (2,000,000 pipelined Updates per point, confirmed by ListAll);
#   docs/latency.png: write-to-visible latency distribution on 3 nodes at
#     5,000 changes/s (as bench/replication.sh measures it).
# Usage: bench/plots.sh
source "$(dirname "$0")/lib.sh"
build
start_server plot 127.0.0.1:9392 --gossip "" --http ""
for c in 1 2 5 10 25 50 100 200; do
  "$BIN/contactctl" bench --servers 127.0.0.1:9392 ingest --conns "$c" --users "$c" --count $((2000000 / c)) --json \
    | tee -a "$TMP/throughput.jsonl" >&2
done
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

start_cluster plot 127.0.0.4
"$BIN/contactctl" bench --servers 127.0.0.41:29000,127.0.0.42:29000,127.0.0.43:29000 replication \
  --rate 5000 --duration 10s --json > "$TMP/latency.json"
(cd "$ROOT" && go run ./bench/plot -throughput "$TMP/throughput.jsonl" -latency "$TMP/latency.json" -out docs)
echo "wrote docs/throughput.png and docs/latency.png" >&2
sed 's/"cdf":.*$/.../' "$TMP/latency.json" >&2
