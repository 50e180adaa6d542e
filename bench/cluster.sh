#!/usr/bin/env bash
# Cluster benchmarks on the in-process harness (nodes on 127.0.0.x; digests
# compared directly), plus the single-node ingest baseline in the same run:
#   - single-node ingest: 50 pipelining connections into one server;
#   - replicated ingest: the same into node 0 of 3, timed until all three
#     digests match;
#   - a 4th node joining a cluster holding 1,000,000 contacts, timed until
#     its digest matches and it reports serving;
#   - kill (no leave) to both survivors dropping the member, per gossip
#     profile with memberlist's own timings (wan takes about a minute).
# Usage: bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
single=$(go test ./internal/server -run '^$' -bench IngestPipelined -benchtime 3x | awk '/^Benchmark/ {for (i=1;i<=NF;i++) if ($i=="updates/s") print $(i-1)}')
out=$(go test ./internal/cluster -run '^$' -bench 'ReplicatedIngest|Join1M|FailureDetection' -benchtime 1x -timeout 20m)
echo "$out" | grep -E '^Benchmark'
repl=$(echo "$out" | awk '/^BenchmarkReplicatedIngest/ {for (i=1;i<=NF;i++) if ($i=="replicated-updates/s") print $(i-1)}')
echo
echo "| single-node ingest | 3-node replicated ingest (until all digests match) | ratio |"
echo "|---|---|---|"
awk -v s="$single" -v r="$repl" 'BEGIN {printf "| %.0f updates/s | %.0f updates/s | %.2fx |\n", s, r, r/s}'
