#!/usr/bin/env bash
# Cost of the instrumentation: the release backend under wrk on GET /api/users/1 with
#   on   metrics + JSON logs (stdout to a file) + traces exported to an OTLP sink on this host
#   down metrics + logs + traces exported to a closed port (collector down)
#   off  metrics only: OTEL_SDK_DISABLED=true and LOG_LEVEL=off
# Cases alternate (on, off, down, on, off, down, ...) so that drift in machine load hits each
# alike; the ratio of medians is the figure. Loopback only; every run is bounded by -d.
#
# Usage: bench/backend.sh [ROUNDS] [DURATION] [CONNECTIONS]     (defaults: 3 10s 32)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
duration=${2:-10s}
connections=${3:-32}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }

cargo build --release --locked -q -p backend -p obsctl --bins --example otlp_sink
# shellcheck source=bench/lib.sh
source bench/lib.sh

sink_port=$(free_port)
./target/release/examples/otlp_sink "127.0.0.1:$sink_port" >"$work/sink.out" 2>&1 &
pids+=($!)
wait_port "$sink_port"
closed_port=$(free_port)

# start_backend NAME PORT: the release backend in configuration NAME (on, down, off) on PORT, in
# the background ($! is its pid), once it accepts connections.
start_backend() {
  local -a env=(HOST=127.0.0.1 PORT="$2" DATABASE_URL=:memory:)
  case $1 in
    on) env+=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" LOG_LEVEL=info) ;;
    down) env+=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$closed_port" LOG_LEVEL=info) ;;
    off) env+=(OTEL_SDK_DISABLED=true LOG_LEVEL=off) ;;
  esac
  env "${env[@]}" ./target/release/backend >"$work/$1.log" 2>&1 &
  wait_port "$2"
}

# run_case NAME -> prints "requests_per_s p99_ms"
run_case() {
  local name=$1 port; port=$(free_port)
  start_backend "$name" "$port"
  local pid=$!
  wrk -t1 -c"$connections" -d2s "http://127.0.0.1:$port/api/users/1" >/dev/null   # warm-up
  wrk -t1 -c"$connections" -d"$duration" --latency "http://127.0.0.1:$port/api/users/1" >"$work/wrk.out"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$work/wrk.out")
  echo "$rps $p99"
}

# cpu_case NAME RATE -> backend CPU microseconds per request at a fixed open-model rate
# (obsctl load): the backend's own cost, without the load generator's or the collector's.
cpu_case() {
  local name=$1 rate=$2 port; port=$(free_port)
  start_backend "$name" "$port"
  local pid=$!
  printf 'name = "cpu"\n[[stages]]\nduration = "%s"\nrate = %s\n[[requests]]\nname = "get_user"\npath = "/api/users/1"\nexpect = [200]\n' \
    "$duration" "$rate" >"$work/cpu.toml"
  local before after
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  ./target/release/obsctl load "$work/cpu.toml" --target "http://127.0.0.1:$port" --quiet --report "$work/cpu.json" >/dev/null
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print((int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4])*1e6/r["requests_sent"])' \
    "$work/cpu.json" "$before" "$after" "$(getconf CLK_TCK)"
}

declare -A cpu
cpu_rate=${CPU_RATE:-5000}
for round in $(seq "$rounds"); do
  for name in on off down; do
    c=$(cpu_case "$name" "$cpu_rate")
    cpu[$name]+="$c "
    echo "round $round $name: $c CPU us per request at $cpu_rate req/s" >&2
  done
done

declare -A rps p99
for round in $(seq "$rounds"); do
  for name in on off down; do
    read -r r p < <(run_case "$name")
    rps[$name]+="$r "; p99[$name]+="$p "
    echo "round $round $name: $r req/s, p99 $p ms" >&2
  done
done

m_on=$(echo "${rps[on]}" | median); m_off=$(echo "${rps[off]}" | median); m_down=$(echo "${rps[down]}" | median)
p_on=$(echo "${p99[on]}" | median); p_off=$(echo "${p99[off]}" | median); p_down=$(echo "${p99[down]}" | median)

echo
echo "| case | median req/s | median p99 (ms) | throughput vs off |"
echo "|---|---|---|---|"
awk -v n="on: metrics + logs + traces to a local OTLP sink" -v r="$m_on" -v p="$p_on" -v b="$m_off" 'BEGIN {printf "| %s | %.0f | %.2f | %.3f |\n", n, r, p, r/b}'
awk -v n="down: same, collector down" -v r="$m_down" -v p="$p_down" -v b="$m_off" 'BEGIN {printf "| %s | %.0f | %.2f | %.3f |\n", n, r, p, r/b}'
awk -v n="off: metrics only (OTEL_SDK_DISABLED, LOG_LEVEL=off)" -v r="$m_off" -v p="$p_off" 'BEGIN {printf "| %s | %.0f | %.2f | 1.000 |\n", n, r, p}'
c_off=$(echo "${cpu[off]}" | median)
echo
echo "Backend CPU per request at a fixed $cpu_rate req/s (obsctl load, open model):"
echo
echo "| case | median CPU us / request | vs off |"
echo "|---|---|---|"
for name in on down off; do
  c=$(echo "${cpu[$name]}" | median)
  awk -v n="$name" -v c="$c" -v b="$c_off" 'BEGIN {printf "| %s | %.1f | %.3f |\n", n, c, c/b}'
done
# The sink competes for the same cores during the "on" runs only: say how much it took.
sink_cpu=$(awk '{printf "%.1f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/${pids[0]}/stat")
on_seconds=$(( rounds * (${duration%s} + 2) ))
echo
echo "rounds=$rounds duration=$duration connections=$connections, wrk -t1, $(nproc) cores"
echo "the OTLP sink used ${sink_cpu} CPU-seconds over ${on_seconds} s of \"on\" runs (warm-ups included)"
kill -TERM "${pids[0]}"; sleep 0.5
echo "sink: $(tail -1 "$work/sink.out")"
