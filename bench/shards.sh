#!/usr/bin/env bash
# One plan sent by one obsctl process, and the same plan sent by N shards (`--segment I/N`, one
# run id) merged with `obsctl report merge`, alternating, against the release backend: the
# merged run must count what the single process counts and measure the same latencies.
#
# Usage: bench/shards.sh [SHARDS] [RATE] [DURATION] [ROUNDS]     (defaults: 3 3000 10s 2)
set -euo pipefail
cd "$(dirname "$0")/.."

shards=${1:-3}
rate=${2:-3000}
duration=${3:-10s}
rounds=${4:-2}

cargo build --release --locked -q -p backend -p obsctl
# shellcheck source=bench/lib.sh
source bench/lib.sh

port=$(free_port)
HOST=127.0.0.1 PORT="$port" DATABASE_URL=:memory: OTEL_SDK_DISABLED=true LOG_LEVEL=off \
  ./target/release/backend >/dev/null 2>&1 &
pids+=($!)
wait_port "$port"
target="http://127.0.0.1:$port"
row() {
  field "$1" '"| %s | %d | %d | %.1f | %.3f | %.3f | %.3f | %s |" % ("'"$2"'", r["plan"]["planned_requests"], r["requests_sent"], r["overall"]["achieved_rate"], r["overall"]["latency_ms"]["p50"], r["overall"]["latency_ms"]["p99"], r["overall"]["latency_ms"]["max"], r["passed"])'
}

echo "| run | planned | sent | achieved req/s | p50 ms | p99 ms | max ms | passed |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  ./target/release/obsctl load scenarios/steady.toml --target "$target" --rps "$rate" \
    --duration "$duration" --quiet --report "$work/single.json" >/dev/null || true
  row "$work/single.json" "round $round: one process"
  run=$(python3 -c 'import secrets; print(secrets.token_hex(8))')
  shard_pids=()
  for i in $(seq "$shards"); do
    ./target/release/obsctl load scenarios/steady.toml --target "$target" --rps "$rate" \
      --duration "$duration" --quiet --segment "$i/$shards" --run-id "$run" \
      --report "$work/shard-$i.json" >/dev/null &
    shard_pids+=($!)
  done
  for pid in "${shard_pids[@]}"; do wait "$pid" || true; done
  ./target/release/obsctl report merge "$work"/shard-*.json --output "$work/merged.json" >/dev/null || true
  row "$work/merged.json" "round $round: $shards shards, merged"
done
echo
echo "$(nproc) cores; backend: release, OTEL_SDK_DISABLED=true LOG_LEVEL=off; scenario steady at $rate req/s for $duration"
