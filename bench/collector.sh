#!/usr/bin/env bash
# Collector benchmark (issue 4): scrape + parse + produce for 1,000 targets of 8 GPUs at a 10 s
# interval into the real Kafka broker, and the collector's CPU share over the measurement.
# The targets are distinct URLs on two mock-dcgm processes (`/metrics?t=N`: the exporter
# ignores the query string), so every scrape is a real HTTP transfer of 8 GPUs' text, gzip.
# Usage: bench/collector.sh [TARGETS] [SECONDS]   (default 1000 targets, 60 s measured)
set -euo pipefail
N=${1:-1000}
SECS=${2:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test >/dev/null
scripts/build.sh "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=$root/build/gpuhealth
source scripts/services.sh
T=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; kafka_stop; rm -rf "$T" "$GH_SVC_DIR"' EXIT
kafka_start 2>/dev/null
K=$GPUHEALTH_TEST_KAFKA

ports=()
for m in 1 2; do
  p=$(free_port)
  "$BIN" mock-dcgm --listen "127.0.0.1:$p" --gpus 8 --seed "$m" --log-level warn >"$T/mock$m.log" 2>&1 &
  pids+=($!); ports+=("$p")
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done
for i in $(seq 1 "$N"); do echo "http://127.0.0.1:${ports[$(( i % 2 ))]}/metrics?t=$i"; done >"$T/targets"
mport=$(free_port)
"$BIN" collector --targets-file "$T/targets" --interval 10 --brokers "$K" --topic bench-collector \
  --metrics-listen "127.0.0.1:$mport" --stats-interval 10 >"$T/collector.log" 2>&1 &
cpid=$!; pids+=($cpid)

metric() { curl -fs "http://127.0.0.1:$mport/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
sleep 15 # the first scrapes spread over one interval; librdkafka connects
s0=$(metric gpuhealth_collector_samples_total); d0=$(metric gpuhealth_collector_events_delivered_total)
c0=$(ticks $cpid); m0=$(( $(ticks "${pids[0]}") + $(ticks "${pids[1]}") )); t0=$(date +%s.%N)
sleep "$SECS"
s1=$(metric gpuhealth_collector_samples_total); d1=$(metric gpuhealth_collector_events_delivered_total)
c1=$(ticks $cpid); m1=$(( $(ticks "${pids[0]}") + $(ticks "${pids[1]}") )); t1=$(date +%s.%N)
ok=$(curl -fs "http://127.0.0.1:$mport/metrics" | awk '/^gpuhealth_collector_scrapes_total.*result="ok"/ {s += $2} END {print s}')
failed=$(curl -fs "http://127.0.0.1:$mport/metrics" | awk '/^gpuhealth_collector_scrapes_total.*result="failed"/ {s += $2} END {print s}')
dropped=$(metric gpuhealth_collector_events_dropped_total)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$cpid/status")
kill -TERM $cpid; wait $cpid || true

python3 - "$N" "$t0" "$t1" "$c0" "$c1" "$m0" "$m1" "$hz" "$s0" "$s1" "$d0" "$d1" "$ok" "$failed" "$dropped" "$rss" "$(nproc)" <<'PY'
import sys
a = sys.argv[1:]
n = int(a[0]); wall = float(a[2]) - float(a[1]); hz = float(a[7])
cpu = (float(a[4]) - float(a[3])) / hz; mock = (float(a[6]) - float(a[5])) / hz
samples = (float(a[9]) - float(a[8])) / wall; delivered = (float(a[11]) - float(a[10])) / wall
print(f"machine: {a[16]} cores; {n} targets x 8 GPUs every 10 s, measured over {wall:.0f} s")
print(f"collector CPU share: {100 * cpu / wall:.2f} % of one core "
      f"({1e3 * cpu / (n * wall / 10):.3f} ms CPU per scrape: HTTP + gunzip + parse + events + produce)")
print(f"samples parsed: {samples:,.0f}/s; events delivered to Kafka: {delivered:,.0f}/s "
      f"(expected {n * 8 / 10:,.0f}/s)")
print(f"scrapes: {a[12]} ok, {a[13]} failed; events dropped: {a[14]}; collector peak RSS {int(a[15]) / 1024:.0f} MiB")
print(f"(the two mock exporters used {100 * mock / wall:.2f} % of one core)")
PY
