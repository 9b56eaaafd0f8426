#!/usr/bin/env bash
# gpuhealth status --target: one scrape of the simulator now, health from the rules: every GPU
# with typed numbers, the GPU with an injected double-bit ECC error failed with a
# recommendation; no source is a usage error (2) that names both; an unreachable target is 1.
set -u
bin=$1
fails=0 passes=0
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
# the servers here listen on ports the kernel picks, which they say (bound_port): a port picked
# here and freed before a server binds it can be taken meanwhile by a test running beside this one
# shellcheck source=../lib/ports.sh
source "$(dirname "$0")/../lib/ports.sh"
"$bin" mock-dcgm --listen 127.0.0.1:0 --gpus 5 --seed 3 --speed 60 --hostname node-a \
  --inject gpu=1,fault=dbe,at=1s --duration 60 >"$tmp/mock.log" 2>&1 &
pid=$!
port=$(bound_port "$tmp/mock.log" 'GPUs on ') || bad "mock-dcgm did not start: $(cat "$tmp/mock.log")"
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1.5 # past the fault's simulated time (speed 60)
url="http://127.0.0.1:$port/metrics"

"$bin" status --target "$url" --json >"$tmp/s.json" 2>"$tmp/s.err"; rc=$?
check "status --target --json exits 0 (got $rc; $(head -c 200 "$tmp/s.err"))" [ $rc = 0 ]
python3 - "$tmp/s.json" >"$tmp/py.out" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
e = []
def need(c, m):
    if not c: e.append(m)
need(d["source"] == "scrape", "source")
need([h["host"] for h in d["hosts"]] == ["node-a"], "hosts")
g = d["hosts"][0]["gpus"]
need([x["index"] for x in g] == [0, 1, 2, 3, 4], "indexes %r" % [x["index"] for x in g])
for x in g:
    for k in ("temperature_c", "power_w", "power_limit_w", "utilization_pct", "memory_used_mib", "sm_clock_mhz"):
        need(type(x[k]) in (int, float), "%s %r" % (k, x[k]))
    need(x["uuid"].startswith("GPU-") and x["mig_instance"] is None, "uuid")
    need(type(x["clocks_event_reasons"]["raw"]) is int, "clock reasons")
f = g[1]["health"]
need(f["status"] == "fail" and f["recommendation"] != "keep", "gpu 1 %r" % f)
need(any(r["code"] == "dbe_volatile" and r["remedy"] and r["component"] == "memory" for r in f["reasons"]), "gpu 1 reasons")
c = f["expected_costs"]
need(isinstance(c, dict) and len(c) == 5 and c[f["recommendation"]] == min(c.values()), "gpu 1 costs %r" % c)
need(all(x["health"]["expected_costs"] is None for i, x in enumerate(g) if i != 1), "healthy GPUs: no costs")
need(all(x["health"]["status"] == "pass" for i, x in enumerate(g) if i != 1), "others pass")
need(d["summary"] == dict(d["summary"], gpus=5, fail=1, hosts=1), "summary %r" % d["summary"])
print("\n".join(e) or "json ok")
PY
check "the document: $(tail -2 "$tmp/py.out" | tr '\n' ' ')" grep -q 'json ok' "$tmp/py.out"

"$bin" status --target "$url" >"$tmp/s.txt" 2>&1; rc=$?
check "the table exits 0 (got $rc)" [ $rc = 0 ]
check "... with the failed GPU, its action and reason" grep -qE '^1 .* fail +[0-9]+ (reset|drain|reboot|rma) .*double-bit' "$tmp/s.txt"

# issue #24: a dcgm-exporter exposition with Kubernetes' pod mapping (the L4 sample of
# tests/data/dcgm with the labels dcgm-exporter adds: GPU 0 held by a pod, a copy of it as GPU 1
# held by none, its labels empty): each GPU's workload in the document and the table
src=tests/data/dcgm/k8s-ai-conformance-kops-L4-metrics.prom
mkdir -p "$tmp/www"
{ grep -v '^DCGM_FI_' "$src"
  grep '^DCGM_FI_' "$src" | sed 's/} /,container="trainer",namespace="training",pod="llm-7b-worker-3"} /'
  grep '^DCGM_FI_' "$src" | sed 's/gpu="0",UUID="GPU-c2f76b33/gpu="1",UUID="GPU-d3f76b33/; s/nvidia0/nvidia1/; s/} /,container="",namespace="",pod=""} /'
} >"$tmp/www/metrics"
# unbuffered (-u): its first line says the port
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/www.log" 2>&1 &
kpid=$!
kport=$(bound_port "$tmp/www.log" 'port [0-9]* (') || bad "http.server did not start: $(cat "$tmp/www.log")"
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$kport/metrics" >/dev/null 2>&1 && break; sleep 0.1; done
"$bin" status --target "http://127.0.0.1:$kport/metrics" --json >"$tmp/k.json" 2>"$tmp/k.err"; rc=$?
check "k8s exposition: status --json exits 0 (got $rc; $(head -c 200 "$tmp/k.err"))" [ $rc = 0 ]
wl=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(json.dumps(g["workload"], sort_keys=True).replace(" ", "") + ";" + json.dumps(g["processes"])
               for h in d["hosts"] for g in h["gpus"]))' "$tmp/k.json" 2>&1)
check "... GPU 0's workload is the pod, GPU 1's null; no processes (not local): $wl" \
  [ "$wl" = '{"container":"trainer","namespace":"training","pod":"llm-7b-worker-3"};null null;null' ]
"$bin" status --target "http://127.0.0.1:$kport/metrics" >"$tmp/k.txt" 2>&1; rc=$?
check "k8s exposition: the table exits 0 (got $rc)" [ $rc = 0 ]
check "... with a WORKLOAD column" grep -qE '^GPU .* WORKLOAD +TOP REASON' "$tmp/k.txt"
check "... GPU 0 held by training/llm-7b-worker-3, GPU 1 by none" \
  bash -c "grep -qE '^0 .*%  training/llm-7b-worker-3 {10}' '$tmp/k.txt' && grep -qE '^1 .*%  - {33}' '$tmp/k.txt'"
# a non-ASCII workload (label values are UTF-8): written as is, its cell padded by display
# columns (a wide CJK character is two), so the columns after it line up with the header's
{ grep -v '^DCGM_FI_' "$src"
  grep '^DCGM_FI_' "$src" | sed 's/} /,container="trainer",namespace="training",pod="llm-7b-worker-3"} /'
  grep '^DCGM_FI_' "$src" | sed 's/gpu="0",UUID="GPU-c2f76b33/gpu="1",UUID="GPU-d3f76b33/; s/nvidia0/nvidia1/; s/} /,container="c",namespace="équipe",pod="日本-worker-0"} /'
} >"$tmp/www/utf8"
"$bin" status --target "http://127.0.0.1:$kport/utf8" >"$tmp/u8.txt" 2>&1; rc=$?
check "UTF-8 workload: the table exits 0 (got $rc)" [ $rc = 0 ]
al=$(python3 - "$tmp/u8.txt" <<'PY' 2>&1
import re, sys, unicodedata
def width(s):
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
head = [l for l in lines if l.startswith("GPU ")][0]
want = head.index("TOP REASON")
out = []
for idx, wl in (("0", "training/llm-7b-worker-3"), ("1", "équipe/日本-worker-0")):
    row = [l for l in lines if l.startswith(idx + " ")]
    m = re.match("^(.*?" + re.escape(wl) + " *)", row[0]) if row else None
    out.append("%s:%s" % (idx, width(m.group(1)) - want if m else "missing"))
print(" ".join(out))
PY
)
check "... both GPUs' cells end under TOP REASON (columns off: $al)" [ "$al" = "0:0 1:0" ]
"$bin" status --target "$url" >"$tmp/s2.txt" 2>&1
check "no workload anywhere: no WORKLOAD column" bash -c "! grep -q WORKLOAD '$tmp/s2.txt'"
kill "$kpid" 2>/dev/null

env -u DATABASE_URL -u PGHOST -u PGDATABASE -u PGSERVICE -u PGPORT -u PGUSER -u PGHOSTADDR \
  "$bin" status >"$tmp/n.out" 2>"$tmp/n.err"; rc=$?
check "no source: exit 2 (got $rc)" [ $rc = 2 ]
check "... naming --db and --target" grep -q -- '--db CONNINFO.*--target URL' "$tmp/n.err"

"$bin" status --target "http://127.0.0.1:1/metrics" >"$tmp/u.out" 2>"$tmp/u.err"; rc=$?
check "an unreachable target: exit 1 (got $rc)" [ $rc = 1 ]
check "... naming it" grep -q '127.0.0.1:1/metrics' "$tmp/u.err"
"$bin" status --target "not a url" >/dev/null 2>"$tmp/b.err"; rc=$?
check "a bad URL: exit 2 (got $rc): $(head -c 150 "$tmp/b.err")" [ $rc = 2 ]

echo "$passes passed, $fails failed"
[ $fails = 0 ]
