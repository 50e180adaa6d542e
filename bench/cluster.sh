#!/usr/bin/env bash
# All in-process cluster benchmarks: replicated ingest, join, failure detection.
set -euo pipefail
d=$(dirname "$0")
"$d/replicated-ingest.sh"; echo; "$d/join.sh"; echo; "$d/failure-detection.sh"
