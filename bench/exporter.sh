#!/usr/bin/env bash
# Benchmarks of the mock exporter, with the Python baseline measured in the same run:
#  1. rendering a 1,024-GPU exposition (bench_render: advance, render, gzip);
#  2. requests/s for an 8-GPU /metrics scrape with wrk on loopback, gpuhealth mock-dcgm beside
#     a Python prometheus_client exporter serving the same metric families.
# Usage: bench/exporter.sh [BUILD_DIR]   (env: SECONDS_PER_RUN=5 THREADS=2 CONNECTIONS=32)
# Exits 1 when gpuhealth serves fewer than 20 times the baseline's requests/s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
dur=${SECONDS_PER_RUN:-5} threads=${THREADS:-2} conns=${CONNECTIONS:-32}
bin=$build/gpuhealth
[ -x "$bin" ] && [ -x "$build/bench/bench_render" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk is missing: sudo scripts/install-deps.sh --test" >&2; exit 2; }
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import prometheus_client' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "python3 with prometheus_client is missing: sudo scripts/install-deps.sh --test" >&2; exit 2; }

tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

echo "== render: 1,024 GPUs"
"$build/bench/bench_render" 1024 30

echo "== HTTP: 8-GPU scrape, wrk -t$threads -c$conns -d${dur}s on loopback"
"$bin" mock-dcgm --gpus 8 --listen 127.0.0.1:0 --hostname bench-node 2>"$tmp/mock.log" &
pids+=($!)
addr=
for _ in $(seq 100); do
  addr=$(grep -oE 'http://[0-9.]+:[0-9]+' "$tmp/mock.log" | head -1 | sed 's|http://||') && [ -n "$addr" ] && break
  sleep 0.05
done
[ -n "$addr" ] || { echo "mock-dcgm did not start: $(cat "$tmp/mock.log")" >&2; exit 1; }
curl -sf "http://$addr/metrics" >"$tmp/scrape.txt"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$py" "$root/bench/python_baseline.py" "$tmp/scrape.txt" "$port" >"$tmp/py.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$tmp/py.log" && break; sleep 0.05; done
curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/py-scrape.txt" || { echo "baseline did not start: $(cat "$tmp/py.log")" >&2; exit 1; }

run_wrk() { # NAME URL: wrk's report in $tmp/NAME.wrk
  wrk -t"$threads" -c"$conns" -d"${dur}s" --latency "$2" >"$tmp/$1.wrk" 2>&1
}
report() { # NAME LABEL BODY_FILE -> prints, sets $rps
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/$1.wrk")
  printf '  %-26s %8.0f requests/s  (body %s bytes)\n' "$2:" "$rps" "$(stat -c %s "$3")"
  grep -E 'Latency  |50%|99%|Non-2xx|Socket errors' "$tmp/$1.wrk" | sed 's/^ */      /'
}
run_wrk ours "http://$addr/metrics"
run_wrk python "http://127.0.0.1:$port/metrics"
report ours "gpuhealth mock-dcgm" "$tmp/scrape.txt"; ours=$rps
report python "Python prometheus_client" "$tmp/py-scrape.txt"; theirs=$rps
ratio=$(echo "scale=1; $ours / $theirs" | bc)
echo "  ratio: ${ratio}x (required: at least 20x)"
[ "$(echo "$ratio >= 20" | bc)" = 1 ] || { echo "FAIL: below 20x the baseline" >&2; exit 1; }
