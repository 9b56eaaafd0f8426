#!/usr/bin/env bash
# Discovery benchmark (issue 24): a file_sd file of N targets (default 10,000; one reachable
# mock-dcgm, the rest refusing connections) rewritten under a running collector with one
# target replaced; reports the collector's own "read and applied in" time of each reload,
# beside the same reload of a 100-target file measured in the same run (the baseline).
# Target: a 10,000-target reload in under 1 s. Usage: bench/discovery.sh [N] [RELOADS]
set -euo pipefail
N=${1:-10000}
R=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/build.sh "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=$root/build/gpuhealth
T=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$BIN" mock-dcgm --listen "127.0.0.1:$port" --gpus 8 --log-level warn >"$T/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

write_sd() { # write_sd FILE COUNT SUFFIX
  python3 - "$1" "$port" "$2" "$3" <<'PY'
import json, sys
path, port, n, suf = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
g = [{"targets": ["127.0.0.1:%s" % port], "labels": {"src": "stay"}},
     {"targets": ["127.0.0.1:9"], "labels": {"__metrics_path__": "/m%s" % suf}}]
g += [{"targets": ["127.0.0.1:9"], "labels": {"__metrics_path__": "/x%d" % i, "n": str(i)}}
      for i in range(n - 2)]
json.dump(g, open(path + ".tmp", "w"))
PY
  mv "$1.tmp" "$1"
}

measure() { # measure COUNT -> prints the mean reload time over R reloads
  local n=$1 f=$T/sd-$1.json err=$T/c-$1.err i
  write_sd "$f" "$n" 0
  "$BIN" collector --file-sd "$f" --output - --interval 10 --scrape-timeout 1 >/dev/null 2>"$err" &
  local cpid=$!
  for _ in $(seq 1 200); do grep -q "file_sd '$f': $n targets" "$err" && break; sleep 0.1; done
  for i in $(seq 1 "$R"); do
    write_sd "$f" "$n" "$i"
    for _ in $(seq 1 100); do
      [ "$(grep -c "read and applied in" "$err")" -ge "$i" ] && break; sleep 0.1
    done
    sleep 1
  done
  kill "$cpid"; wait "$cpid" 2>/dev/null || true
  grep -o "read and applied in [0-9.]* s" "$err" | awk -v n="$n" '
    {s += $5; if ($5 > m) m = $5; c++}
    END {if (c == 0) {print "no reload logged for " n " targets" > "/dev/stderr"; exit 1}
         printf "%d %d %.4f %.4f\n", n, c, s / c, m}'
}

base=$(measure 100)
big=$(measure "$N")
read -r bn bc bmean bmax <<<"$base"
read -r n c mean max <<<"$big"
printf '%-8s %-8s %-10s %-10s\n' targets reloads mean_s max_s
printf '%-8s %-8s %-10s %-10s\n' "$bn" "$bc" "$bmean" "$bmax" "$n" "$c" "$mean" "$max"
ratio=$(python3 -c "print('%.1f' % ($mean / max($bmean, 1e-6)))")
echo "discovery: $n-target reload mean $mean s, max $max s ($ratio x the $bn-target reload, $bmean s); target < 1 s: $(python3 -c "print('met' if $max < 1.0 else 'NOT met')")"
