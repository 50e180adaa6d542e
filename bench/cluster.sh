#!/usr/bin/env bash
# Cluster benchmarks on the in-process harness (nodes on 127.0.0.x, digests
# compared directly): replicated ingest until all three digests match, a
# 4th node joining 1,000,000 contacts, and kill-to-dead per gossip profile.
# Usage: bench/cluster.sh [BENCH_REGEX]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./internal/cluster -run '^$' -bench "${1:-ReplicatedIngest|Join1M|FailureDetection}" -benchtime 1x -timeout 20m \
  | grep -E '^Benchmark|^ok'
