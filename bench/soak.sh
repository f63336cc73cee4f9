#!/usr/bin/env bash
# Soak and collector faults, on the release binaries, loopback only.
#
#   soak:   scenarios/steady.toml at RATE req/s for DURATION against the backend exporting to a
#           local OTLP sink; backend RSS sampled every minute; then accounting: the counter, the
#           request log lines and the exported spans against obsctl's run report.
#   faults: the same mix at RATE for FAULT_DURATION each with the collector healthy, down
#           (closed port) and blackholed (accepts, never answers): p99 and throughput.
#
# Usage: bench/soak.sh [DURATION] [RATE] [FAULT_DURATION]     (defaults: 10m 2000 30s)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-10m}
rate=${2:-2000}
fault_duration=${3:-30s}

cargo build --release --locked -q -p backend -p obsctl --bins --example otlp_sink
# shellcheck source=bench/lib.sh
source bench/lib.sh
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1==m {print $2}'; }

sink_port=$(free_port)
./target/release/examples/otlp_sink "127.0.0.1:$sink_port" >"$work/sink.out" 2>&1 &
pids+=($!)
wait_port "$sink_port"

# start_backend ENDPOINT -> sets $port and $backend_pid; stdout to $work/backend.log
start_backend() {
  port=$(free_port)
  HOST=127.0.0.1 PORT="$port" DATABASE_URL="$work/users-$port.db" OTEL_EXPORTER_OTLP_ENDPOINT="$1" \
    ./target/release/backend >"$work/backend-$port.log" 2>&1 &
  backend_pid=$!
  pids+=("$backend_pid")
  wait_port "$port"
}

echo "## Soak: $rate req/s for $duration (scenarios/steady.toml mix)"
start_backend "http://127.0.0.1:$sink_port"
soak_port=$port soak_pid=$backend_pid
echo "backend RSS at start: $(rss_mib "$soak_pid") MiB"
./target/release/obsctl load scenarios/steady.toml --target "http://127.0.0.1:$soak_port" \
  --rps "$rate" --duration "$duration" --quiet --report "$work/soak.json" >"$work/soak.summary" &
load_pid=$!
minute=0
while kill -0 "$load_pid" 2>/dev/null; do
  sleep 60 || true
  minute=$((minute + 1))
  kill -0 "$load_pid" 2>/dev/null && echo "backend RSS at $minute min: $(rss_mib "$soak_pid") MiB"
done
wait "$load_pid" || true
cat "$work/soak.summary"
sleep 2   # one batch-export interval
echo
echo "spans: ended $(metric "$soak_port" otel_spans_ended_total), exported $(metric "$soak_port" otel_spans_exported_total), dropped $(metric "$soak_port" otel_spans_dropped_total)"
# Counters: obsctl's accounting against the run report (a fresh backend: totals are exact).
./target/release/obsctl check --target "http://127.0.0.1:$soak_port" --run-report "$work/soak.json" \
  --timeout 5s | grep -A1 -E '^(PASS|FAIL|ERROR) +accounting-metrics' || true
# Log lines: counted in the file (over a million lines is more than obsctl keeps in memory).
prefix=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trace_id_prefix"])' "$work/soak.json")
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests_sent"])' "$work/soak.json")
logged=$(grep -c "\"trace_id\":\"$prefix" "$work/backend-$soak_port.log" || true)
echo "request log lines of the run: $logged for $sent requests sent (missing: $((sent - logged)))"

echo
echo "## Collector faults: $rate req/s for $fault_duration each"
blackhole_port=$(free_port)
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$blackhole_port" &
pids+=($!)
wait_port "$blackhole_port"
closed_port=$(free_port)
echo "| collector | achieved req/s | p50 ms | p99 ms | p99.9 ms | errors |"
echo "|---|---|---|---|---|---|"
for case in healthy down blackholed; do
  case $case in
    healthy) endpoint="http://127.0.0.1:$sink_port" ;;
    down) endpoint="http://127.0.0.1:$closed_port" ;;
    blackholed) endpoint="http://127.0.0.1:$blackhole_port" ;;
  esac
  start_backend "$endpoint"
  ./target/release/obsctl load scenarios/steady.toml --target "http://127.0.0.1:$port" \
    --rps "$rate" --duration "$fault_duration" --quiet --report "$work/$case.json" >/dev/null || true
  python3 - "$work/$case.json" "$case" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
o = r["overall"]; l = o["latency_ms"]
print(f"| {sys.argv[2]} | {o['achieved_rate']:.0f} | {l['p50']:.2f} | {l['p99']:.2f} | {l['p99_9']:.2f} | {o['errors']} |")
PY
  kill -TERM "$backend_pid"; wait "$backend_pid" 2>/dev/null || true
done
