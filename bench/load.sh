#!/usr/bin/env bash
# obsctl load on the release binaries, loopback only, every run bounded by its duration:
#   1. maximum rate: `obsctl load --rps max` vs `wrk` against the release backend's /health,
#      same connection count, alternating rounds, ratio of medians;
#   2. rate accuracy: achieved vs planned rate at 1k, 5k and 10k req/s;
#   3. peak memory (max RSS) of obsctl for a 10 s and a 60 s run at the same rate;
#   4. run report size and peak memory for 10 s and 40 s at 2,000 req/s over random ids
#      (one concrete path per request: the report counts per template, so neither grows).
# The backend runs with tracing and logs off so that it, not the generator, has the spare CPU.
#
# Usage: bench/load.sh [ROUNDS] [DURATION] [CONNECTIONS]     (defaults: 3 10s 64)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
duration=${2:-10s}
connections=${3:-64}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 2; }

cargo build --release --locked -q -p backend -p obsctl
# shellcheck source=bench/lib.sh
source bench/lib.sh

port=$(free_port)
HOST=127.0.0.1 PORT="$port" DATABASE_URL=:memory: OTEL_SDK_DISABLED=true LOG_LEVEL=off \
  ./target/release/backend >/dev/null 2>&1 &
pids+=($!)
wait_port "$port"
target="http://127.0.0.1:$port"
cat >"$work/health.toml" <<EOF
name = "health"
[[stages]]
duration = "10s"
rate = 1000
[[requests]]
name = "health"
path = "/health"
expect = [200]
EOF

echo "## Maximum rate: GET /health, $connections connections, $duration, $rounds rounds" >&2
wrk_rates="" obsctl_rates="" wrk_cpu="" obsctl_cpu=""
wrk -t2 -c"$connections" -d2s "$target/health" >/dev/null   # warm-up
for round in $(seq "$rounds"); do
  # CPU time per request (user + system, GNU time): what each tool takes from a machine it
  # shares with the target; less sensitive to other load than the rate.
  /usr/bin/time -f '%U %S' -o "$work/cpu" wrk -t2 -c"$connections" -d"$duration" "$target/health" >"$work/wrk.out"
  w=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.out")
  wn=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  wc=$(awk -v n="$wn" '{printf "%.2f", ($1 + $2) * 1e6 / n}' "$work/cpu")
  /usr/bin/time -f '%U %S' -o "$work/cpu" ./target/release/obsctl load "$work/health.toml" --target "$target" --rps max \
    --max-in-flight "$connections" --duration "$duration" --quiet --report "$work/max.json" >/dev/null
  o=$(field "$work/max.json" 'r["overall"]["achieved_rate"]')
  on=$(field "$work/max.json" 'r["requests_sent"]')
  oc=$(awk -v n="$on" '{printf "%.2f", ($1 + $2) * 1e6 / n}' "$work/cpu")
  echo "round $round: wrk $w req/s ($wc us CPU/req), obsctl $o req/s ($oc us CPU/req)" >&2
  wrk_rates+="$w " obsctl_rates+="$o " wrk_cpu+="$wc " obsctl_cpu+="$oc "
done
mw=$(echo "$wrk_rates" | median); mo=$(echo "$obsctl_rates" | median)
cw=$(echo "$wrk_cpu" | median); co=$(echo "$obsctl_cpu" | median)
echo "| tool | median req/s | ratio to wrk | median CPU us/request |"
echo "|---|---|---|---|"
awk -v w="$mw" -v c="$cw" 'BEGIN {printf "| wrk -t2 -c'"$connections"' | %.0f | 1.000 | %.2f |\n", w, c}'
awk -v o="$mo" -v w="$mw" -v c="$co" 'BEGIN {printf "| obsctl load --rps max --max-in-flight '"$connections"' | %.0f | %.3f | %.2f |\n", o, o/w, c}'

echo
echo "## Rate accuracy: $duration at a fixed rate (open model)" >&2
echo "| planned req/s | sent | achieved req/s | error | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
for rate in 1000 5000 10000; do
  ./target/release/obsctl load "$work/health.toml" --target "$target" --rps "$rate" \
    --duration "$duration" --quiet --report "$work/rate.json" >/dev/null || true
  field "$work/rate.json" \
    '"| %d | %d | %.1f | %+.2f%% | %.2f | %d |" % ('"$rate"', r["requests_sent"], r["overall"]["achieved_rate"], (r["overall"]["achieved_rate"] / '"$rate"' - 1) * 100, r["overall"]["latency_ms"]["p99"] or 0, r["overall"]["errors"])'
done

echo
echo "## Peak memory of obsctl at 5000 req/s" >&2
echo "| run length | peak RSS (MiB) |"
echo "|---|---|"
for length in 10s 60s; do
  /usr/bin/time -f '%M' -o "$work/rss" ./target/release/obsctl load "$work/health.toml" --target "$target" \
    --rps 5000 --duration "$length" --quiet >/dev/null || true
  awk -v l="$length" '{printf "| %s | %.1f |\n", l, $1/1024}' "$work/rss"
done
echo
echo "## Run report v2: size and peak memory over random ids at 2000 req/s" >&2
printf '%s\n' 'name = "random-ids"' '[[stages]]' 'duration = "10s"' 'rate = 2000' '[[requests]]' \
  'name = "user"' 'path = "/api/users/{{random:1..1000000000}}"' 'expect = [200, 404]' >"$work/random.toml"
echo "| run length | requests | report bytes | peak RSS (MiB) |"
echo "|---|---|---|---|"
for length in 10s 40s; do
  /usr/bin/time -f '%M' -o "$work/rss" ./target/release/obsctl load "$work/random.toml" --target "$target" \
    --duration "$length" --quiet --report "$work/random.json" >/dev/null || true
  sent=$(field "$work/random.json" 'r["requests_sent"]')
  awk -v l="$length" -v n="$sent" -v b="$(stat -c %s "$work/random.json")" '{printf "| %s | %d | %d | %.1f |\n", l, n, b, $1/1024}' "$work/rss"
done
echo
echo "$(nproc) cores; backend: release, OTEL_SDK_DISABLED=true LOG_LEVEL=off"
