#!/usr/bin/env bash
# Health as metrics: a REAL Prometheus (scripts/prometheus.sh, cached in ~/.cache/gpuhealth)
# scrapes the scorer's --metrics-listen while the scorer scores events from the real Kafka
# broker into the real PostgreSQL: the target is up with no scrape error, and PromQL gives each
# GPU's health score, status (one series per status), failure probability and recommended
# action (one series per action) with dcgm-exporter's labels plus the workload, the values
# equal to the newest rows the scorer wrote to the database; a GPU with a volatile DBE is
# fail=1. Then every panel's PromQL of the Prometheus Grafana dashboard
# (docker/grafana/dashboards/prometheus-health.json) runs against that Prometheus: no error,
# a non-empty result.
source "$(dirname "$0")/lib.sh"
GH_PROM_DIR="$TMP/prom"
# shellcheck source=../../scripts/prometheus.sh
source "$ROOT/scripts/prometheus.sh"
DASH="$ROOT/docker/grafana/dashboards/prometheus-health.json"

prom_build || die "cannot build Prometheus $GH_PROM_VERSION (see the message above)"

# gen FILE START_EPOCH N GPU_INDEX UUID MIG DBE_FROM WORKLOAD_JSON: KEY|JSON lines, N samples
# 10 s apart on host node-pm (cluster c-pm, datacenter dc-pm, rack r-09); MIG: the GPU_I_ID or
# -1; ecc_dbe_volatile=1 from sample DBE_FROM on (-1: never).
gen() {
  python3 - "$@" <<'PY'
import json, sys, time
path, start, n, idx, uuid, mig, dbe_from, wl = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), int(sys.argv[7]), json.loads(sys.argv[8])
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + ".000Z"
key = uuid if mig < 0 else "%s/%d" % (uuid, mig)
with open(path, "w") as f:
    for i in range(n):
        t = start + 10 * i
        dbe = 1 if 0 <= dbe_from <= i else 0
        ev = {"schema_version": 1, "time": iso(t), "hostname": "node-pm", "cluster": "c-pm",
              "datacenter": "dc-pm", "rack": "r-09",
              "gpu": {"index": idx, "uuid": uuid, "model": "NVIDIA A100-SXM4-80GB",
                      "pci_bus_id": "00000000:%02X:00.0" % idx, "device": "nvidia%d" % idx,
                      "driver_version": "550.127.08",
                      "mig_profile": None if mig < 0 else "1g.10gb",
                      "mig_instance": None if mig < 0 else mig},
              "metrics": {"gpu_temp": 55 + i % 5, "power_usage": 250.5, "slowdown_temp": 89,
                          "shutdown_temp": 92, "ecc_sbe_volatile": 2, "ecc_dbe_volatile": dbe,
                          "pcie_replay": 10, "clocks_event_reasons": 0, "power_violation": 0,
                          "thermal_violation": 0, "row_remap_failure": 0},
              "extra": {}, "labels": {}, "workload": wl}
        f.write(key + "|" + json.dumps(ev) + "\n")
PY
}

owner=$(new_db gh_pmh_$$)
writer=$(writer_ci "$owner")
t=gh-pmh-$UNIQ
now=$(date +%s)
gen "$TMP/ok.txt" $(( now - 300 )) 12 0 GPU-pm-ok -1 -1 '{"namespace": "training", "pod": "llm-0", "container": "trainer"}'
gen "$TMP/dbe.txt" $(( now - 300 )) 12 1 GPU-pm-dbe -1 4 '{"namespace": "training", "pod": "llm-1", "container": "trainer"}'
gen "$TMP/mig.txt" $(( now - 300 )) 12 2 GPU-pm-mig 3 -1 'null'
produce "$t" "$TMP/ok.txt"
produce "$t" "$TMP/dbe.txt"
produce "$t" "$TMP/mig.txt"

# --health-row-interval 0: a row per evaluation, so the newest rows are the scorer's state;
# /metrics on a port the kernel picks, which the scorer says (bound_port)
"$BIN" scorer --brokers "$KAFKA" --topic "$t" --scorer-group "g-$t" --db "$writer" \
  --alerts-topic '' --batch-timeout 0.3 --health-row-interval 0 \
  --metrics-listen 127.0.0.1:0 \
  -X session.timeout.ms=6000 -X topic.metadata.refresh.interval.ms=1000 >"$TMP/scorer.log" 2>&1 &
PIDS+=($!)
scorer_pid=$!
sport=$(bound_port "$TMP/scorer.log" 'health on ') || die "the scorer did not start: $(cat "$TMP/scorer.log")"

prom_start "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: gpuhealth-scorer
    static_configs: [{targets: ['127.0.0.1:$sport']}]" || die "Prometheus did not start"
PIDS+=("$PROM_PID")

wait_for() { # wait_for TIMEOUT_S COMMAND...: until COMMAND succeeds
  local t=$1 i; shift
  for i in $(seq 1 $(( t * 4 ))); do "$@" && return 0; sleep 0.25; done
  "$@"
}
scored_all() { [ "$(sql "$owner" "SELECT count(*) FROM gpu_health_scores" 2>/dev/null)" = 36 ]; }
check "the scorer scored every sample (36 rows)" wait_for 60 scored_all

targets_ok() {
  curl -fs --max-time 5 "$PROM_URL/api/v1/targets" | python3 -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"]
sys.exit(0 if len(t) == 1 and t[0]["health"] == "up" and not t[0]["lastError"] else 1)'
}
check "the scorer's target is up with no scrape error" wait_for 30 targets_ok
curl -fs "$PROM_URL/api/v1/targets" | python3 -c '
import json, sys
for x in json.load(sys.stdin)["data"]["activeTargets"]:
    print("  target %s: %s %s" % (x["labels"]["job"], x["health"], x["lastError"] or "(no error)"))'

# q PROMQL: the instant result as sorted lines "label=value,... VALUE" (job, instance dropped)
q() {
  curl -fs --max-time 5 "$PROM_URL/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["status"] == "success", r
out = []
for s in r["data"]["result"]:
    m = {k: v for k, v in s["metric"].items() if k not in ("job", "instance")}
    out.append(",".join("%s=%s" % kv for kv in sorted(m.items())) + " " + s["value"][1])
print("\n".join(sorted(out)))'
}
q_is() { [ "$(q "$1")" = "$2" ]; }
# qv PROMQL: the value of the one series of the result ("N series" otherwise)
qv() {
  curl -fs --max-time 5 "$PROM_URL/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "%d series" % len(r))'
}
# the newest row of the database for a GPU key
newest() { sql "$owner" "SELECT $2 FROM $3 WHERE gpu_key = '$1' ORDER BY time DESC LIMIT 1"; }
near() { python3 -c "import sys; sys.exit(0 if abs(float('$1') - float('$2')) < 1e-5 else 1)" 2>/dev/null; }

check "the DBE GPU's status series are in Prometheus (fail=1)" \
  wait_for 30 q_is 'gpuhealth_gpu_health_status{UUID="GPU-pm-dbe",status="fail"}' \
  'Hostname=node-pm,UUID=GPU-pm-dbe,__name__=gpuhealth_gpu_health_status,cluster=c-pm,container=trainer,datacenter=dc-pm,gpu=1,namespace=training,pod=llm-1,rack=r-09,status=fail 1'
sleep 2 # a scrape after the last evaluation
q 'gpuhealth_gpu_health_status == 1 or gpuhealth_gpu_recommended_action == 1' | sed 's/^/  /'

for g in GPU-pm-ok GPU-pm-dbe GPU-pm-mig/3; do
  sel="UUID=\"${g%/*}\""
  st=$(newest "$g" status gpu_health_scores)
  check "$g: three status series (pass, warn, fail), summing to 1" \
    test "$(qv "count(gpuhealth_gpu_health_status{$sel})") $(qv "sum(gpuhealth_gpu_health_status{$sel})")" = "3 1"
  check "$g: the one at 1 is $st (the database's newest)" \
    test "$(q "gpuhealth_gpu_health_status{$sel} == 1" | grep -o 'status=[a-z]*')" = "status=$st"
  score=$(newest "$g" score gpu_health_scores)
  check "$g: the health score is the database's newest ($score)" \
    test "$(qv "gpuhealth_gpu_health_score{$sel}")" = "$score"
  prob=$(newest "$g" "probability::float8::text" gpu_failure_predictions)
  check "$g: the failure probability is the database's newest ($prob)" \
    near "$(qv "gpuhealth_gpu_failure_probability{$sel}")" "$prob"
  act=$(newest "$g" "coalesce(recommendation, 'keep')" gpu_failure_predictions)
  check "$g: five action series (keep, drain, reset, reboot, rma), summing to 1" \
    test "$(qv "count(gpuhealth_gpu_recommended_action{$sel})") $(qv "sum(gpuhealth_gpu_recommended_action{$sel})")" = "5 1"
  check "$g: the one at 1 is $act (the database's newest recommendation)" \
    test "$(q "gpuhealth_gpu_recommended_action{$sel} == 1" | grep -o 'action=[a-z]*')" = "action=$act"
done
check "the DBE GPU: fail with a score below the healthy GPU's, recommended reset" \
  bash -c "[ '$(newest GPU-pm-dbe status gpu_health_scores)' = fail ] && [ '$(newest GPU-pm-ok status gpu_health_scores)' = pass ] && [ $(newest GPU-pm-dbe score gpu_health_scores) -lt $(newest GPU-pm-ok score gpu_health_scores) ] && [ '$(newest GPU-pm-dbe recommendation gpu_failure_predictions)' = reset ]"
check "the DBE GPU's score series: dcgm-exporter's labels, the location and the workload" \
  q_is 'gpuhealth_gpu_health_score{UUID="GPU-pm-dbe"} * 0' \
  'Hostname=node-pm,UUID=GPU-pm-dbe,cluster=c-pm,container=trainer,datacenter=dc-pm,gpu=1,namespace=training,pod=llm-1,rack=r-09 0'
check "the MIG instance's series carry GPU_I_ID and no workload" \
  q_is 'gpuhealth_gpu_failure_probability{UUID="GPU-pm-mig"} * 0' \
  'GPU_I_ID=3,Hostname=node-pm,UUID=GPU-pm-mig,cluster=c-pm,datacenter=dc-pm,gpu=2,rack=r-09 0'
check "the scorer's own counters: 36 consumed, 36 evaluations" \
  test "$(qv 'gpuhealth_scorer_consumed_total') $(qv 'sum(gpuhealth_scorer_evaluations_total)')" = "36 36"
check "the metadata: the four families are gauges" \
  bash -c "curl -fs '$PROM_URL/api/v1/metadata' | python3 -c '
import json, sys
m = json.load(sys.stdin)[\"data\"]
names = [\"gpuhealth_gpu_health_score\", \"gpuhealth_gpu_health_status\", \"gpuhealth_gpu_failure_probability\", \"gpuhealth_gpu_recommended_action\"]
sys.exit(0 if all(m.get(n, [{}])[0].get(\"type\") == \"gauge\" for n in names) else 1)'"

check "the scorer's /metrics is text format 0.0.4: HELP and TYPE once before each family's samples, contiguous families, no duplicate series" \
  python3 - "http://127.0.0.1:$sport/metrics" <<'PY'
import re, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    ctype, text = r.headers["Content-Type"], r.read().decode()
bad = []
if not ctype.startswith("text/plain; version=0.0.4"):
    bad.append("Content-Type " + ctype)
lab = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:%s(?:,%s)*)?\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$' % (lab, lab))
meta, done, cur, seen = {}, set(), None, set()
for ln in text.splitlines():
    m = re.match(r"^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$", ln)
    if m:
        kind, fam = m[1], m[2]
        if (kind, fam) in meta or fam in done:
            bad.append("repeated or late " + ln)
        meta[(kind, fam)] = m[3]
        if kind == "TYPE" and m[3] not in ("counter", "gauge"):
            bad.append(ln)
        if cur and cur != fam:
            done.add(cur)
        cur = fam
        continue
    m = sample.match(ln)
    if not m:
        bad.append("not a sample line: " + ln); continue
    name = m[1][:-6] if m[1].endswith("_total") and ("TYPE", m[1][:-6]) in meta else m[1]
    if name != cur or ("HELP", name) not in meta or ("TYPE", name) not in meta:
        bad.append("sample outside its family (no HELP/TYPE before it): " + ln)
    key = m[1] + (m[2] or "")
    if key in seen:
        bad.append("duplicate series " + key)
    seen.add(key)
print("\n".join("  " + b for b in bad[:10]))
sys.exit(1 if bad or len(seen) < 30 else 0)
PY

echo "== every panel's PromQL of $(basename "$DASH")"
python3 - "$DASH" "$PROM_URL" >"$TMP/dash.out" 2>&1 <<'PY'
import json, sys, urllib.parse, urllib.request
dash, prom = json.load(open(sys.argv[1])), sys.argv[2]
fails = n = 0
for p in dash["panels"]:
    for t in p.get("targets", []):
        n += 1
        if t.get("datasource", {}).get("type") != "prometheus":
            print("FAIL: '%s': not on a Prometheus data source" % p["title"]); fails += 1
            continue
        expr = t["expr"].replace("$__rate_interval", "1m").replace("$host", ".*")
        url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                res = json.load(r)
        except Exception as e:  # an HTTP 400 is a PromQL error
            print("FAIL: '%s': %s: %s" % (p["title"], expr, e)); fails += 1
            continue
        if res.get("status") != "success" or not res["data"]["result"]:
            print("FAIL: '%s': %s: %s" % (p["title"], expr, res.get("error") or "empty result")); fails += 1
        else:
            print("ok: '%s': %d series" % (p["title"], len(res["data"]["result"])))
if n < 5:
    print("FAIL: only %d queries" % n); fails += 1
sys.exit(1 if fails else 0)
PY
rc=$?
sed 's/^/  /' "$TMP/dash.out"
check "each panel's PromQL runs with a non-empty result" test $rc = 0

kill -TERM "$scorer_pid"; wait "$scorer_pid" 2>/dev/null; rc=$?
check "the scorer stopped cleanly (exit status $rc)" \
  bash -c "grep -q 'scorer: stopped;' '$TMP/scorer.log' && [ $rc = 0 ]"
prom_stop
finish
