#!/usr/bin/env bash
# The release backend under wrk on GET /api/users/1, in four configurations:
#   on      metrics + JSON logs (stdout to a file) + traces exported to a null OTLP sink on this host
#   down    metrics + logs + traces exported to a closed port (collector down)
#   off     metrics only: OTEL_SDK_DISABLED=true and LOG_LEVEL=off
#   fastapi the spec's FastAPI app (examples/fastapi/spec_fixed.py: Part 4 with its outright bugs
#           fixed), one uvicorn worker as the spec's Dockerfile runs it, traces to the same sink
# each measured with `wrk -t2 -c64` and `wrk -t1 -c32`. Cases alternate round by round (on, off,
# down, fastapi, on, ...) so that drift in machine load hits each alike; the ratio of medians is
# the figure. Then the backend's CPU per request at a fixed rate (obsctl load), and a burst of
# 1,000 simultaneous connects (how many take 900 ms or more: a dropped SYN is retried after 1 s),
# against the default backlog and against tokio's old 128. Loopback only; every run is bounded.
#
# Usage: bench/backend.sh [ROUNDS] [DURATION]     (defaults: 3 10s)
#   CPU_RATE=N   rate of the CPU-per-request runs (default 5000; 0 skips them)
#   FASTAPI=0    skips the FastAPI app (it needs python3 with venv; examples/setup-python.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
duration=${2:-10s}
cpu_rate=${CPU_RATE:-5000}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
# The burst opens 1,000 sockets at once; raise this shell's soft limit where the hard one allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --locked -q -p backend -p obsctl --bins --example otlp_sink
# shellcheck source=bench/lib.sh
source bench/lib.sh

cases=(on off down)
if [ "${FASTAPI:-1}" != 0 ]; then
  bash examples/setup-python.sh >&2
  cases+=(fastapi)
fi
shapes=("2 64" "1 32")

sink_port=$(free_port)
./target/release/examples/otlp_sink "127.0.0.1:$sink_port" >"$work/sink.out" 2>&1 &
pids+=($!)
sink_pid=$!
wait_port "$sink_port"
closed_port=$(free_port)

# start_server NAME PORT [BACKEND ARGS...]: configuration NAME on PORT in the background ($! is
# its pid), once it accepts connections.
start_server() {
  local name=$1 port=$2; shift 2
  local -a env=(HOST=127.0.0.1 PORT="$port" DATABASE_URL=:memory:)
  case $name in
    on) env+=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" LOG_LEVEL=info) ;;
    down) env+=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$closed_port" LOG_LEVEL=info) ;;
    off) env+=(OTEL_SDK_DISABLED=true LOG_LEVEL=off) ;;
  esac
  if [ "$name" = fastapi ]; then
    (cd examples/fastapi && exec env OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" \
      ../.venv/bin/uvicorn spec_fixed:app --host 127.0.0.1 --port "$port") >"$work/$name.log" 2>&1 &
  else
    env "${env[@]}" ./target/release/backend "$@" >"$work/$name.log" 2>&1 &
  fi
  wait_port "$port"
}

# wrk_case THREADS CONNECTIONS URL -> prints "requests_per_s p99_ms"
wrk_case() {
  wrk -t"$1" -c"$2" -d2s "$3" >/dev/null   # warm-up
  wrk -t"$1" -c"$2" -d"$duration" --latency "$3" >"$work/wrk.out"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$work/wrk.out")
  echo "$rps $p99"
}

# cpu_case NAME RATE -> backend CPU microseconds per request at a fixed open-model rate
# (obsctl load): the backend's own cost, without the load generator's or the collector's.
cpu_case() {
  local name=$1 rate=$2 port; port=$(free_port)
  start_server "$name" "$port"
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

# burst PORT -> how many of 1,000 simultaneous connects took 900 ms or more, and the slowest (ms).
# Non-blocking connects all started at once, completions read from epoll: each connect's own time.
burst() {
  python3 - "$1" <<'EOF'
import errno, select, socket, sys, time
port, n = int(sys.argv[1]), 1000
poll, started, took, socks = select.epoll(), {}, [], []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    socks.append(s)
for s in socks:
    started[s.fileno()] = time.monotonic()
    if s.connect_ex(("127.0.0.1", port)) not in (0, errno.EINPROGRESS):
        raise SystemExit("connect failed")
    poll.register(s.fileno(), select.EPOLLOUT)
deadline = time.monotonic() + 10
while len(took) < n and time.monotonic() < deadline:
    for fd, _ in poll.poll(0.5):
        took.append(time.monotonic() - started[fd])
        poll.unregister(fd)
slow = sum(t >= 0.9 for t in took) + (n - len(took))
print(slow, round(max(took) * 1000))
EOF
}

declare -A rps p99 cpu
for round in $(seq "$rounds"); do
  for name in "${cases[@]}"; do
    port=$(free_port)
    start_server "$name" "$port"
    pid=$!
    for shape in "${shapes[@]}"; do
      read -r t c <<<"$shape"
      read -r r p < <(wrk_case "$t" "$c" "http://127.0.0.1:$port/api/users/1")
      rps[$name,$shape]+="$r "; p99[$name,$shape]+="$p "
      echo "round $round $name wrk -t$t -c$c: $r req/s, p99 $p ms" >&2
    done
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  done
done

if [ "$cpu_rate" != 0 ]; then
  for round in $(seq "$rounds"); do
    for name in on off down; do
      c=$(cpu_case "$name" "$cpu_rate")
      cpu[$name]+="$c "
      echo "round $round $name: $c CPU us per request at $cpu_rate req/s" >&2
    done
  done
fi

declare -A slow slowest
for round in $(seq "$rounds"); do
  for backlog in default 128; do
    port=$(free_port)
    if [ "$backlog" = default ]; then start_server off "$port"; else start_server off "$port" --backlog 128; fi
    pid=$!
    read -r s m < <(burst "$port")
    slow[$backlog]+="$s "; slowest[$backlog]+="$m "
    echo "round $round burst, backlog $backlog: $s of 1000 connects took >= 900 ms (slowest $m ms)" >&2
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  done
done

label() {
  case $1 in
    on) echo "on: metrics + logs + traces to a local OTLP sink" ;;
    down) echo "down: same, collector down" ;;
    off) echo "off: metrics only (OTEL_SDK_DISABLED, LOG_LEVEL=off)" ;;
    fastapi) echo "the spec's FastAPI app, one uvicorn worker, traces to the sink" ;;
  esac
}
for shape in "${shapes[@]}"; do
  read -r t c <<<"$shape"
  base=$(echo "${rps[off,$shape]}" | median)
  echo
  echo "wrk -t$t -c$c, GET /api/users/1, medians of $rounds rounds of $duration:"
  echo
  echo "| case | median req/s | median p99 (ms) | throughput vs off |"
  echo "|---|---|---|---|"
  for name in "${cases[@]}"; do
    r=$(echo "${rps[$name,$shape]}" | median); p=$(echo "${p99[$name,$shape]}" | median)
    awk -v n="$(label "$name")" -v r="$r" -v p="$p" -v b="$base" 'BEGIN {printf "| %s | %.0f | %.2f | %.3f |\n", n, r, p, r/b}'
  done
  if [ "${FASTAPI:-1}" != 0 ]; then
    awk -v on="$(echo "${rps[on,$shape]}" | median)" -v f="$(echo "${rps[fastapi,$shape]}" | median)" \
      'BEGIN {printf "\nbackend on vs the spec'\''s FastAPI app: %.1fx\n", on/f}'
  fi
done

if [ "$cpu_rate" != 0 ]; then
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
fi

echo
echo "1,000 simultaneous connects (median of $rounds bursts):"
echo
echo "| backlog | connects taking >= 900 ms | slowest (ms) |"
echo "|---|---|---|"
for backlog in default 128; do
  echo "| $backlog | $(echo "${slow[$backlog]}" | median) | $(echo "${slowest[$backlog]}" | median) |"
done
echo "(default: net.core.somaxconn = $(cat /proc/sys/net/core/somaxconn), at most 4096)"

# The sink competes for the same cores during the "on" and "fastapi" runs: say how much it took.
sink_cpu=$(awk '{printf "%.1f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$sink_pid/stat")
echo
echo "rounds=$rounds duration=$duration, $(nproc) cores; the OTLP sink used ${sink_cpu} CPU-seconds in all"
kill -TERM "$sink_pid"; sleep 0.5
echo "sink: $(tail -1 "$work/sink.out")"
