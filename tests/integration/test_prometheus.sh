#!/usr/bin/env bash
# mock-dcgm and the collector's --metrics-listen scraped by a REAL Prometheus (built from the Go
# module proxy at a pinned version by scripts/prometheus.sh, cached in ~/.cache/gpuhealth): every
# target up with no scrape error, and PromQL over the mock's series gives the metric names,
# label names and types of a real dcgm-exporter scrape (tests/data/dcgm/, an NVIDIA L4 under
# the GPU Operator), so the mock is proven against the scraper real users run.
source "$(dirname "$0")/lib.sh"
GH_PROM_DIR="$TMP/prom"
# shellcheck source=../../scripts/prometheus.sh
source "$ROOT/scripts/prometheus.sh"
REAL="$ROOT/tests/data/dcgm/k8s-ai-conformance-kops-L4-metrics.prom"

prom_build || die "cannot build Prometheus $GH_PROM_VERSION (see the message above)"

# both listen on a port the kernel picks and say which (bound_port)
# the real sample spells the host label Hostname (older dcgm-exporter); so does the mock here
"$BIN" mock-dcgm --listen 127.0.0.1:0 --gpus 2 --host-label Hostname --poll-interval 1 \
  >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
mport=$(bound_port "$TMP/mock.log" 'GPUs on ') || die "mock-dcgm did not start: $(cat "$TMP/mock.log")"
"$BIN" collector --target "http://127.0.0.1:$mport/metrics" --interval 1 --output - \
  --metrics-listen 127.0.0.1:0 >/dev/null 2>"$TMP/collector.log" &
PIDS+=($!)
cport=$(bound_port "$TMP/collector.log" 'own metrics on ') || die "the collector did not start: $(cat "$TMP/collector.log")"

prom_start "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: dcgm
    static_configs: [{targets: ['127.0.0.1:$mport']}]
  - job_name: gpuhealth-collector
    static_configs: [{targets: ['127.0.0.1:$cport']}]" || die "Prometheus did not start"
PIDS+=("$PROM_PID")

targets_ok() {
  curl -fs --max-time 5 "$PROM_URL/api/v1/targets" | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
bad = [(x["labels"]["job"], x["health"], x["lastError"]) for x in t if x["health"] != "up" or x["lastError"]]
sys.exit(0 if len(t) == 2 and not bad else 1)'
}
wait_targets() { local i; for i in $(seq 1 120); do targets_ok && return 0; sleep 0.25; done; targets_ok; }
check "both targets up with no scrape error" wait_targets
curl -fs "$PROM_URL/api/v1/targets" | python3 -c '
import json, sys
for x in json.load(sys.stdin)["data"]["activeTargets"]:
    print("  target %s: %s %s" % (x["labels"]["job"], x["health"], x["lastError"] or "(no error)"))'
sleep 3 # a few scrapes

# names, label names and types: the real scrape against what Prometheus holds of the mock
python3 - "$REAL" "$PROM_URL" >"$TMP/compare.out" 2>&1 <<'PY'
import json, re, sys, urllib.parse, urllib.request
real, prom = sys.argv[1], sys.argv[2]
def get(path, **q):
    with urllib.request.urlopen(prom + path + "?" + urllib.parse.urlencode(q), timeout=10) as r:
        return json.load(r)["data"]
types, labels = {}, {}
for line in open(real):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        types[m[1]] = m[2]
        continue
    m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)\{(.*)\}\s", line)
    if m:
        labels.setdefault(m[1], set()).update(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m[2]))
res = get("/api/v1/query", query='count by (__name__) ({job="dcgm"})')
scraped = {r["metric"]["__name__"] for r in res["result"]}
common = sorted(set(labels) & scraped)
fails = 0
print("real sample: %d metrics; scraped from the mock: %d; in both: %d" % (len(labels), len(scraped), len(common)))
if len(common) < 20:
    print("FAIL: fewer than 20 metrics in common"); fails += 1
meta = get("/api/v1/metadata")
for name in common:
    series = get("/api/v1/series", **{"match[]": '%s{job="dcgm"}' % name})
    got = set().union(*[set(s) for s in series]) - {"__name__", "job", "instance"}
    if got != labels[name]:
        print("FAIL: %s: labels %s, real dcgm-exporter %s" % (name, sorted(got), sorted(labels[name]))); fails += 1
    t = meta.get(name, [{}])[0].get("type")
    if name in types and t != types[name]:
        print("FAIL: %s: type %s in Prometheus, %s in the real scrape" % (name, t, types[name])); fails += 1
missing = sorted(set(labels) - scraped)
print("in the real scrape, not exported by the mock: %s" % (", ".join(missing) or "none"))
sys.exit(1 if fails else 0)
PY
rc=$?
sed 's/^/  /' "$TMP/compare.out"
check "PromQL over the mock's series: names, label names and types of the real dcgm-exporter scrape" test $rc = 0
check "the collector's own series are in Prometheus" \
  bash -c "curl -fs '$PROM_URL/api/v1/query?query=count(%7Bjob%3D%22gpuhealth-collector%22%7D)' | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"data\"][\"result\"]; sys.exit(0 if r and int(r[0][\"value\"][1]) > 0 else 1)'"
prom_stop
finish
