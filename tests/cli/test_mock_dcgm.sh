#!/usr/bin/env bash
# gpuhealth mock-dcgm as a scraper meets it, over loopback with curl: strict parsing and
# comparison with real dcgm-exporter output, the workload cycle at --speed 60, every kind of
# injected fault at its time, --seed reproducibility, the HTTP edge cases, exit statuses.
set -u
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
data="$root/tests/data/dcgm"
checker="$root/tests/cli/check_exposition.py"
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# A Python with prometheus_client (the strict parser); never skip: say what is missing.
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import prometheus_client' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "FAIL: no python3 with prometheus_client; run 'sudo scripts/install-deps.sh --test'" >&2
  echo "0 passed, 1 failed"; exit 1
fi

# start_mock NAME ARGS...: starts mock-dcgm on a free loopback port; sets $addr and $pid.
start_mock() {
  local name=$1; shift
  "$bin" mock-dcgm --listen 127.0.0.1:0 --hostname node-17 "$@" 2>"$tmp/$name.log" &
  pid=$!; pids+=("$pid")
  addr=
  for _ in $(seq 100); do
    addr=$(grep -oE 'http://[0-9.]+:[0-9]+' "$tmp/$name.log" | head -1 | sed 's|http://||')
    [ -n "$addr" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  bad "mock-dcgm $* did not start: $(cat "$tmp/$name.log")"; return 1
}

# ---- HTTP edge cases
if start_mock http --gpus 2; then
  code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
  hdrs=$(curl -s -D - -o "$tmp/plain.txt" "http://$addr/metrics")
  if grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' <<<"$hdrs"; then ok; else bad "content type: $hdrs"; fi
  if ! grep -qi '^content-encoding' <<<"$hdrs"; then ok; else bad "plain scrape is encoded: $hdrs"; fi
  hdrs=$(curl -s -D - -H 'Accept-Encoding: gzip' -o "$tmp/gz.bin" "http://$addr/metrics")
  if grep -qi '^content-encoding: gzip' <<<"$hdrs" && gzip -dc "$tmp/gz.bin" >"$tmp/gunz.txt" 2>/dev/null \
     && grep -q '^# TYPE DCGM_FI_DEV_GPU_TEMP gauge$' "$tmp/gunz.txt"; then ok; else bad "gzip: $hdrs"; fi
  [ "$(stat -c %s "$tmp/gz.bin")" -lt "$(( $(stat -c %s "$tmp/plain.txt") / 3 ))" ] && ok || bad "gzip body not smaller"
  [ "$(curl -s "http://$addr/healthz")" = ok ] && ok || bad "/healthz"
  [ "$(code "http://$addr/")" = 200 ] && curl -s "http://$addr/" | grep -q 'href="/metrics"' && ok || bad "index page"
  [ "$(code "http://$addr/nope")" = 404 ] && ok || bad "404 for /nope"
  [ "$(code "http://$addr/metrics.txt")" = 404 ] && ok || bad "404 for /metrics.txt"
  [ "$(code -X POST -d x=1 "http://$addr/metrics")" = 405 ] && ok || bad "405 for POST"
  [ "$(code -X PUT -d x=1 "http://$addr/healthz")" = 405 ] && ok || bad "405 for PUT"
  curl -s -D - -o /dev/null -X POST -d x=1 "http://$addr/metrics" | grep -qi '^allow: GET, HEAD' && ok || bad "405 without Allow"
  [ "$(code -I "http://$addr/metrics")" = 200 ] && ok || bad "HEAD /metrics"
  big=$(head -c 100000 /dev/zero | tr '\0' a)
  c=$(code -H "X-Big: $big" "http://$addr/metrics")
  case "$c" in 413|414|431|400) ok ;; *) bad "oversize request answered $c" ;; esac
  [ "$(code "http://$addr/metrics")" = 200 ] && ok || bad "not serving after the oversize request"
  # a client that connects and sends nothing does not hold the others up
  (exec 3<>/dev/tcp/127.0.0.1/"${addr##*:}"; sleep 3) 2>/dev/null &
  sleeper=$!
  [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$addr/metrics")" = 200 ] && ok || bad "stalled by an idle client"
  kill "$sleeper" 2>/dev/null
  # the port is taken: exit 1 with a clear message
  out=$("$bin" mock-dcgm --listen "$addr" --duration 1 2>&1); rc=$?
  [ $rc = 1 ] && grep -q 'already in use' <<<"$out" && ok || bad "port in use: exit $rc: $out"
  # SIGTERM: a clean stop, exit 0
  kill -TERM "$pid"; wait "$pid"; rc=$?
  [ $rc = 0 ] && grep -q 'stopped' "$tmp/http.log" && ok || bad "SIGTERM: exit $rc: $(cat "$tmp/http.log")"
  "$py" "$checker" check --data "$data" "$tmp/plain.txt" "$tmp/gunz.txt" && ok || bad "strict check of the first scrapes"
fi

# ---- usage errors and --duration
out=$("$bin" mock-dcgm --listen 127.0.0.1:0 --inject 'gpu=1,fault=warp-core-breach,at=3s' 2>&1); rc=$?
[ $rc = 2 ] && grep -q 'gpu=N,fault=KIND,at=TIME' <<<"$out" && ok || bad "bad --inject: exit $rc: $out"
out=$("$bin" mock-dcgm --listen 127.0.0.1:0 --gpus 2 --inject 'gpu=2,fault=dbe,at=3s' 2>&1); rc=$?
[ $rc = 2 ] && grep -q 'out of range' <<<"$out" && ok || bad "--inject on a missing GPU: exit $rc: $out"
out=$(MOCK_INJECT='gpu=0,fault=dbe,at=1s;gpu=0,fault=xid' "$bin" mock-dcgm --listen 127.0.0.1:0 2>&1); rc=$?
[ $rc = 2 ] && grep -q 'needs xid=CODE' <<<"$out" && ok || bad "bad MOCK_INJECT: exit $rc: $out"
out=$("$bin" mock-dcgm --listen 127.0.0.1:0 --model RTX-4090 2>&1); rc=$?
[ $rc = 2 ] && grep -q 'A100-SXM4-80GB, H100-SXM5-80GB, H200' <<<"$out" && ok || bad "unknown model: exit $rc: $out"
out=$("$bin" mock-dcgm --listen 127.0.0.1:0 --host-label HOST 2>&1); rc=$?
[ $rc = 2 ] && grep -q "'hostname'" <<<"$out" && ok || bad "bad host label: exit $rc: $out"
out=$("$bin" mock-dcgm --listen nonsense 2>&1); rc=$?
[ $rc = 2 ] && grep -q 'HOST:PORT' <<<"$out" && ok || bad "bad --listen: exit $rc: $out"
start=$(date +%s.%N)
out=$("$bin" mock-dcgm --listen 127.0.0.1:0 --duration 0.5 2>&1); rc=$?
el=$(echo "$(date +%s.%N) - $start" | bc)
[ $rc = 0 ] && [ "$(echo "$el < 3" | bc)" = 1 ] && ok || bad "--duration 0.5: exit $rc after ${el}s: $out"

# ---- the old host label spelling matches the real samples exactly
if start_mock oldlabel --gpus 2 --host-label Hostname --model H100-SXM5-80GB --inject gpu=0,fault=dbe,at=0; then
  curl -s "http://$addr/metrics" >"$tmp/old.txt"
  "$py" "$checker" check --data "$data" --host-label Hostname --require-xid "$tmp/old.txt" && ok || bad "Hostname spelling"
  grep -q ',Hostname="node-17",' "$tmp/old.txt" && ! grep -q ',hostname=' "$tmp/old.txt" && ok || bad "Hostname label missing"
  kill "$pid"
fi

# ---- --seed reproduces the output; another seed does not (simulated time 3600 s at 3.6 s)
runs=()
for s in 7 7 8; do
  start_mock "seed$s-${#runs[@]}" --gpus 3 --seed $s --speed 1000 --poll-interval 1h \
    --inject gpu=2,fault=sbe-storm,at=10m,duration=20m && runs+=("$addr")
done
if [ ${#runs[@]} = 3 ]; then
  sleep 4.6
  for i in 0 1 2; do curl -s "http://${runs[$i]}/metrics" >"$tmp/seed$i.txt"; done
  cmp -s "$tmp/seed0.txt" "$tmp/seed1.txt" && ok || bad "same seed, different output: $(diff "$tmp/seed0.txt" "$tmp/seed1.txt" | head -5)"
  cmp -s "$tmp/seed0.txt" "$tmp/seed2.txt" && bad "another seed gave the same output" || ok
  grep -q 'DCGM_FI_DEV_ECC_SBE_VOL_TOTAL{gpu="2"' "$tmp/seed0.txt" && ok || bad "seed scrape lacks GPU 2"
fi

# ---- --speed 60: the cycle and every fault at its time, scraped every 0.25 s for 8 s
faults=(gpu=1,fault=dbe,at=60s gpu=2,fault=xid,xid=13,at=60s gpu=2,fault=nvlink-crc,at=60s
        gpu=3,fault=remap-failure,at=60s gpu=3,fault=pcie-replay-storm,at=60s
        gpu=4,fault=fell-off-bus,at=60s,duration=60s gpu=5,fault=thermal-runaway,at=0s
        gpu=6,fault=power-brake,at=60s gpu=7,fault=sbe-storm,at=0s,duration=180s
        gpu=0,fault=remap-pending,at=240s)
args=(--gpus 8 --speed 60 --poll-interval 10 --seed 3)
for f in "${faults[@]}"; do args+=(--inject "$f"); done
if start_mock speed "${args[@]}"; then
  t0=$(date +%s.%N)
  : >"$tmp/manifest"
  # scrape often (a snapshot lives 1/6 s here) until 420 simulated seconds have been served,
  # so short-lived states (the peak of a thermal runaway) are not skipped
  for i in $(seq -w 0 299); do
    # the snapshot's own simulated time (a response header), so a slow machine cannot blur
    # which scrape came before or after a fault
    st=$(curl -s -m 5 -D - -o "$tmp/scrape$i.txt" "http://$addr/metrics" |
         tr -d '\r' | awk -F': ' 'tolower($1) == "x-gpuhealth-simulated-time" {print $2}')
    [ -n "$st" ] || st=-1
    echo "$(echo "$st / 60" | bc -l) $(echo "$(date +%s.%N) - $t0" | bc) $tmp/scrape$i.txt" >>"$tmp/manifest"
    [ "${st%.*}" -ge 420 ] 2>/dev/null && break
    sleep 0.05
  done
  kill "$pid"
  "$py" "$checker" check --data "$data" "$tmp"/scrape*.txt && ok || bad "strict check of the --speed 60 scrapes"
  "$py" - "$tmp/manifest" <<'PY' >"$tmp/timeline.out" 2>&1
import sys
from prometheus_client.parser import text_string_to_metric_families
speed = 60.0
rows = []
for line in open(sys.argv[1]):
    ta, wall, path = line.split()
    tb = ta  # the simulated time of the snapshot, in real seconds at --speed 60
    v = {}
    for fam in text_string_to_metric_families(open(path).read()):
        for s in fam.samples:
            v[(fam.name, s.labels["gpu"])] = s.value
    rows.append((float(ta), float(tb), v))
    last_wall = float(wall)
def say(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
# ta and tb are the snapshot's simulated time / speed (from X-Gpuhealth-Simulated-Time); a
# snapshot of simulated time t shows the state at t, so margins of one poll step are enough
def before(at):  # scrapes certainly served before simulated time `at`
    return [v for ta, tb, v in rows if 0 <= tb < at / speed - 0.01]
def after(at):   # scrapes certainly served after it
    return [v for ta, tb, v in rows if ta > at / speed + 0.01]
def between(a, b):
    return [v for ta, tb, v in rows if ta > a / speed + 0.01 and tb < b / speed - 0.01]
def get(v, m, g):
    return v.get(("DCGM_FI_DEV_" + m, str(g)))
def all_(vs, f):
    return len(vs) > 0 and all(f(v) for v in vs)

# a GPU goes from idle to peak and back within the six seconds
found = None
for g in range(8):
    u = [get(v, "GPU_UTIL", g) for _, _, v in rows if get(v, "GPU_UTIL", g) is not None]
    i = next((k for k, x in enumerate(u) if x <= 20), None)
    j = next((k for k in range(i or 0, len(u)) if u[k] >= 85), None) if i is not None else None
    k = next((k for k in range(j or 0, len(u)) if u[k] <= 20), None) if j is not None else None
    if k is not None:
        found = g
        break
say(found is not None and rows[-1][0] >= 6.0 and 0.6 <= rows[-1][0] / last_wall <= 1.4,
    "a GPU goes idle -> peak -> idle (GPU %s), simulated time %.0f s after %.1f s real"
    % (found, rows[-1][0] * speed, last_wall))
say(all_(before(60), lambda v: get(v, "XID_ERRORS", 1) is None) and
    all_(after(60), lambda v: get(v, "XID_ERRORS", 1) == 48 and get(v, "ECC_DBE_VOL_TOTAL", 1) >= 1),
    "dbe: XID 48 and a DBE from 60 s")
say(all_(before(60), lambda v: get(v, "XID_ERRORS", 2) is None and get(v, "NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", 2) == 0) and
    all_(after(60), lambda v: get(v, "XID_ERRORS", 2) == 13) and
    all_(after(80), lambda v: get(v, "NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", 2) > 0),
    "xid 13 and NVLink CRC errors from 60 s")
say(all_(before(60), lambda v: get(v, "ROW_REMAP_FAILURE", 3) == 0 and get(v, "PCIE_REPLAY_COUNTER", 3) <= 3) and
    all_(after(60), lambda v: get(v, "XID_ERRORS", 3) == 64 and get(v, "ROW_REMAP_FAILURE", 3) == 1) and
    all_(after(120), lambda v: get(v, "PCIE_REPLAY_COUNTER", 3) >= 32),
    "remap failure (XID 64) and a PCIe replay storm from 60 s")
say(all_(before(60), lambda v: get(v, "XID_ERRORS", 4) is None and get(v, "GPU_TEMP", 4) is not None) and
    all_(between(60, 120), lambda v: get(v, "XID_ERRORS", 4) == 79) and
    all_(after(120), lambda v: not any(k[1] == "4" for k in v)),
    "fell off the bus: XID 79 at 60 s, gone after 120 s")
say(any(get(v, "GPU_TEMP", 5) >= 89 and int(get(v, "CLOCKS_EVENT_REASONS", 5)) & 0x48 == 0x48 for _, _, v in rows) and
    all_(before(60), lambda v: get(v, "GPU_TEMP", 5) < 85),
    "thermal runaway: through slowdown into HW thermal slowdown")
say(all_(before(60), lambda v: int(get(v, "CLOCKS_EVENT_REASONS", 6)) & 0x80 == 0) and
    all_(after(60), lambda v: int(get(v, "CLOCKS_EVENT_REASONS", 6)) & 0x88 == 0x88),
    "power brake from 60 s")
say(any(get(v, "XID_ERRORS", 7) == 92 for v in between(0, 180)) and
    all_(before(180), lambda v: get(v, "ECC_DBE_VOL_TOTAL", 7) == 0) and
    all_(after(180), lambda v: get(v, "XID_ERRORS", 7) == 48 and get(v, "ECC_DBE_VOL_TOTAL", 7) == 1),
    "SBE storm: XID 92, then a DBE (XID 48) at 180 s")
sbe = [get(v, "ECC_SBE_VOL_TOTAL", 7) for v in before(180)]
say(len(sbe) > 4 and sbe[-1] - sbe[len(sbe) // 2] > 3 * max(1, sbe[len(sbe) // 2] - sbe[0]),
    "SBE storm: the error rate rises (%s)" % sbe)
say(all_(before(240), lambda v: get(v, "XID_ERRORS", 0) is None) and
    all_(after(240), lambda v: get(v, "XID_ERRORS", 0) == 63 and get(v, "ROW_REMAP_PENDING", 0) == 1),
    "remap pending: XID 63 at 240 s")
mono = True
for g in range(8):
    e = [get(v, "TOTAL_ENERGY_CONSUMPTION", g) for _, _, v in rows if get(v, "TOTAL_ENERGY_CONSUMPTION", g) is not None]
    mono = mono and all(b >= a for a, b in zip(e, e[1:])) and e[-1] > e[0]
say(mono, "energy counters only grow")
PY
  while read -r verdict what; do
    if [ "$verdict" = PASS ]; then ok; else bad "speed 60: $what"; fi
  done < <(grep -E '^(PASS|FAIL) ' "$tmp/timeline.out")
  [ "$(grep -cE '^(PASS|FAIL) ' "$tmp/timeline.out")" = 11 ] && ok || bad "timeline analysis did not run: $(cat "$tmp/timeline.out")"
fi

# ---- --k8s (issue #24): dcgm-exporter's pod mapping on every sample (container, namespace,
# pod; "" while no pod holds the GPU), pods that come and go with the 300 s workload cycle (1 s
# at --speed 300), and the collector's events carry them as workload
if start_mock k8s --gpus 4 --seed 5 --speed 300 --poll-interval 1 --k8s; then
  curl -s "http://$addr/metrics" >"$tmp/k8s.txt"
  "$py" "$checker" check --data "$data" --k8s "$tmp/k8s.txt" && ok || bad "--k8s: the exposition"
  : >"$tmp/k8s.jsonl"
  start=$(date +%s%N) n=0
  while :; do # at least 1.5 s (a cycle and a half) and 8 scrapes
    "$bin" collector --target "http://$addr/metrics" --output - --once >>"$tmp/k8s.jsonl" 2>"$tmp/k8s.err" \
      || { bad "--k8s: collector --once: $(tail -c 300 "$tmp/k8s.err")"; break; }
    n=$((n + 1))
    [ $(( ($(date +%s%N) - start) / 1000000 )) -ge 1500 ] && [ $n -ge 8 ] && break
    sleep 0.1
  done
  "$py" - "$tmp/k8s.jsonl" >"$tmp/k8s.out" 2>&1 <<'PY'
import json, re, sys
seen, bad, events = {}, [], 0
for line in open(sys.argv[1]):
    e = json.loads(line)
    events += 1
    if "workload" not in e:
        bad.append("an event without workload")
        continue
    w = e["workload"]
    if w is not None:
        if sorted(w) != ["container", "namespace", "pod"] or not all(isinstance(v, str) and re.fullmatch(r"[a-z0-9-]+", v) for v in w.values()):
            bad.append("workload %r" % (w,))
        w = (w["namespace"], w["pod"], w["container"])
    seen.setdefault(e["gpu"]["index"], []).append(w)
if sorted(seen) != [0, 1, 2, 3]:
    bad.append("GPUs %r" % sorted(seen))
for g, ws in sorted(seen.items()):
    if len(set(ws)) < 2 or not any(ws):
        bad.append("GPU %d: its workloads did not change: %r" % (g, ws))
if not any(w is None for ws in seen.values() for w in ws):
    bad.append("no GPU was ever free of a pod")
print("\n".join(bad[:10]) or "k8s ok %d events" % events)
PY
  grep -q '^k8s ok' "$tmp/k8s.out" && ok || bad "--k8s: the events: $(head -c 600 "$tmp/k8s.out")"
  kill "$pid"
  # without --k8s no pod labels (the exposition of the runs above)
  ! grep -q 'pod=' "$tmp/seed0.txt" && ok || bad "pod labels without --k8s"
fi

echo "$passes passed, $fails failed"
[ $fails = 0 ]
