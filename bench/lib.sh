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

# cpu_s PID: user+system CPU seconds the process has used (/proc/PID/stat).
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / t}' "/proc/$1/stat"; }

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

# start_cluster NAME PREFIX: starts three contact-servers (SERVER_FLAGS, if
# set, are added to each one's flags: settings to compare) NAME-1..3 on
# PREFIX1..PREFIX3 (127.0.0.3 -> 127.0.0.31-33): contact port 29000, gossip
# 27946, HTTP 28080, memberlist's local profile, each joining the first; it
# returns once all three serve and the first has both links (the one it
# dialed and the one each peer dialed, which carries its pushes) to both.
start_cluster() {
  local name=$1 prefix=$2 i up
  for i in 1 2 3; do
    local join=(); [ "$i" != 1 ] && join=(--join "${prefix}1:27946")
    "$BIN/contact-server" --name "$name-$i" --listen "$prefix$i:29000" --gossip "$prefix$i:27946" \
      --http "$prefix$i:28080" --gossip-profile local --data-dir "$TMP/$name-$i" --log-level warn \
      --max-conn-rate 0 "${join[@]}" ${SERVER_FLAGS:-} 2>>"$TMP/$name-$i.log" &
    PIDS+=($!)
  done
  for i in 1 2 3; do wait_serving "$prefix$i:29000"; done
  for _ in $(seq 1 500); do
    up=$("$BIN/contactctl" members --http "${prefix}1:28080" --json 2>/dev/null | grep -Eo '"(outbound|inbound)_up": *true' | wc -l)
    [ "$up" -ge 4 ] && return 0
    sleep 0.02
  done
  echo "cluster $name: peer links did not come up" >&2; exit 1
}
