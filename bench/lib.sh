# Shared helpers for bench/*.sh: build the binaries, start and stop servers
# on loopback, read a process's memory. Sourced, not run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/bin
TMP=$(mktemp -d /tmp/contact-bench.XXXXXX)
PIDS=()
CTL_FLAGS=() # extra contactctl flags for probes (TLS)

cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && { kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; } || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

build() {
  (cd "$ROOT" && go build -o "$BIN/" ./cmd/contact-server ./cmd/contactctl)
}

# start_server NAME ADDR [extra flags...]: starts contact-server, waits until
# it serves a ListAll, and sets SERVER_PID.
start_server() {
  local name=$1 addr=$2; shift 2
  "$BIN/contact-server" --name "$name" --listen "$addr" --data-dir "$TMP/$name" \
    --log-level warn --max-conn-rate 0 "$@" 2>>"$TMP/$name.log" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_serving "$addr"
}

wait_serving() {
  for _ in $(seq 1 500); do
    "$BIN/contactctl" "${CTL_FLAGS[@]}" --server "$1" --user probe --timeout 1s list >/dev/null 2>&1 && return 0
    sleep 0.02
  done
  echo "server at $1 did not come up" >&2; exit 1
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

need_redis() {
  if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
    else
      echo "redis-server and redis-benchmark are needed (Debian: apt-get install redis-server redis-tools)" >&2; exit 1
    fi
  fi
}

json_field() { sed -n "s/.*\"$1\":\([0-9.e+]*\).*/\1/p"; }
