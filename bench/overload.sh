#!/usr/bin/env bash
# Scrapes, probes and new clients of the release backend while it is attacked from loopback:
#   saturated  --max-concurrency 8 and 1 s requests: 64 clients keep every slot busy (wrk);
#   slow       1,100 connections each sending a POST body one byte every 5 s;
#   idle       1,124 connections that send nothing, the backend started under a soft
#              open-file limit of 1,024 (hard limit left as it is).
# For each: 20 scrapes of /metrics and 20 probes of /health (slowest time and statuses), and
# 100 requests to the API on fresh connections (statuses). Loopback only; bounded in time.
#
# Usage: bench/overload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed: apt-get install curl" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --locked -q -p backend
# shellcheck source=bench/lib.sh
source bench/lib.sh

# attack MODE PORT N SECONDS: holds N connections (idle, or trickling a POST body) in the
# background for SECONDS; prints when they are all open.
attack() {
  python3 - "$@" <<'EOF' &
import socket, sys, time
mode, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if mode == "slow":
        s.sendall(b"POST /api/users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{")
    socks.append(s)
print(f"{len(socks)} {mode} connections open", file=sys.stderr, flush=True)
end = time.monotonic() + seconds
while time.monotonic() < end:
    time.sleep(5)
    if mode == "slow":
        for s in socks:
            try:
                s.send(b" ")
            except OSError:
                pass
EOF
  pids+=($!)
}

# probe PORT -> "slowest_scrape_ms scrape_statuses slowest_probe_ms probe_statuses api_statuses"
probe() {
  local url="http://127.0.0.1:$1" scrape=0 health=0 s h a
  s=$(for _ in $(seq 20); do curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' "$url/metrics"; done)
  h=$(for _ in $(seq 20); do curl -s -o /dev/null -m 10 -w '%{http_code} %{time_total}\n' "$url/health"; done)
  a=$(for _ in $(seq 100); do curl -s -o /dev/null -m 10 -w '%{http_code}\n' "$url/api/users/1"; done)
  scrape=$(echo "$s" | awk '{if ($2 > m) m = $2} END {printf "%.0f", m * 1000}')
  health=$(echo "$h" | awk '{if ($2 > m) m = $2} END {printf "%.0f", m * 1000}')
  counts() { sort | uniq -c | awk '{printf "%s%d x %s", (NR > 1 ? ", " : ""), $1, $2}'; }
  echo "$scrape|$(echo "$s" | cut -d' ' -f1 | counts)|$health|$(echo "$h" | cut -d' ' -f1 | counts)|$(echo "$a" | counts)"
}

# start ARGS...: the backend (logs off, spans off) in the background; $! is its pid.
start() {
  local port=$1; shift
  env HOST=127.0.0.1 PORT="$port" DATABASE_URL=:memory: OTEL_SDK_DISABLED=true LOG_LEVEL=warning \
    "$@" >"$work/backend.log" 2>&1 &
  wait_port "$port"
}

echo "| attack | slowest of 20 scrapes (ms) | scrapes | slowest of 20 probes (ms) | probes | 100 API requests |"
echo "|---|---|---|---|---|---|"

port=$(free_port)
start "$port" ./target/release/backend --max-concurrency 8 --fault-latency-ms 1000
pid=$!
wrk -t1 -c64 -d40s "http://127.0.0.1:$port/api/users/1" >/dev/null &
wrk_pid=$!
sleep 2
IFS='|' read -r sm ss hm hs as < <(probe "$port")
echo "| saturated API (max-concurrency 8, 64 clients, 1 s requests) | $sm | $ss | $hm | $hs | $as |"
kill "$wrk_pid" "$pid" 2>/dev/null || true; wait "$wrk_pid" "$pid" 2>/dev/null || true

port=$(free_port)
start "$port" ./target/release/backend
pid=$!
attack slow "$port" 1100 60
sleep 8   # every connection open, and a first byte of body trickled after it
IFS='|' read -r sm ss hm hs as < <(probe "$port")
echo "| 1,100 slow bodies (one byte every 5 s) | $sm | $ss | $hm | $hs | $as |"
kill "${pids[-1]}" "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true

port=$(free_port)
start "$port" sh -c 'ulimit -Sn 1024 && exec ./target/release/backend'
pid=$!
attack idle "$port" 1124 60
sleep 3
IFS='|' read -r sm ss hm hs as < <(probe "$port")
fds=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^process_open_fds / {print $2}')
echo "| 1,124 idle connections, soft nofile 1,024 | $sm | $ss | $hm | $hs | $as |"
kill "${pids[-1]}" "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
echo
echo "process_open_fds during the idle attack: ${fds:-absent}; open-file limit $(ulimit -Hn) (hard); $(nproc) cores"
