#!/usr/bin/env bash
# 3-node replicated ingest against single-node ingest, in the same run:
# 50 connections pipeline 1,000,000 Updates into one server, or into node 0
# of three (timed until all three digests match).
source "$(dirname "$0")/cluster-lib.sh"
single=$(go test ./internal/server -run '^$' -bench IngestPipelined -benchtime 3x | grep '^Benchmark' | metric updates/s)
repl=$(cluster_bench 'ReplicatedIngest$' | metric replicated-updates/s)
echo "| single-node ingest | 3-node replicated ingest (until all digests match) | ratio |"
echo "|---|---|---|"
awk -v s="$single" -v r="$repl" 'BEGIN {printf "| %.0f updates/s | %.0f updates/s | %.2fx |\n", s, r, r/s}'
