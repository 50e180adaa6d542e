#!/usr/bin/env bash
# kill (no leave) of one member of three: time until both survivors have
# dropped it, per memberlist profile with its own timings (wan: ~1 minute).
source "$(dirname "$0")/cluster-lib.sh"
out=$(cluster_bench 'FailureDetection')
echo "| gossip profile | kill to dead on both survivors |"
echo "|---|---|"
for p in local lan wan; do
  printf '| %s | %.1f s |\n' "$p" "$(echo "$out" | grep "/$p-" | metric "$p-dead-seconds")"
done
