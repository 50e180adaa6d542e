# Shared by the in-process cluster benchmark scripts: runs one Go benchmark
# of internal/clustertest (nodes on 127.0.0.x, digests compared directly) and
# prints its result lines. Sourced, not run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cluster_bench() {
  go test ./internal/clustertest -run '^$' -bench "$1" -benchtime 1x -timeout 20m | grep -E '^Benchmark'
}
metric() { awk -v m="$1" '{for (i=1;i<=NF;i++) if ($i==m) print $(i-1)}'; }
