#!/usr/bin/env bash
# A 4th node joins a 3-node cluster holding 1,000,000 contacts: time until
# its digest equals the others' and it reports serving, and the transfer rate.
source "$(dirname "$0")/cluster-lib.sh"
out=$(cluster_bench 'Join1M$')
echo "| contacts | join time (same digest, serving) | transfer rate |"
echo "|---|---|---|"
printf '| 1000000 | %.2f s | %.0f contacts/s |\n' "$(echo "$out" | metric join-seconds)" "$(echo "$out" | metric contacts/s)"
