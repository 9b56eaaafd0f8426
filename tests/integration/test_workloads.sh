#!/usr/bin/env bash
# Workload attribution end to end (issue #24): a dcgm-exporter exposition with Kubernetes'
# pod/namespace/container labels (served by this test, its labels and values changed under the
# collector) -> the collector -> the real Kafka -> the sink -> gpu_workloads (one row per
# assignment, not per sample; a pod moving is a new row; a redelivered topic writes nothing
# twice) -> the API's namespace/pod filters and /api/v1/workloads -> the scorer's alert for a
# volatile DBE carrying the pod that held the GPU (alerts table, the Kafka alert topic).
source "$(dirname "$0")/lib.sh"

STATE="$TMP/state.json"

# state: per GPU [namespace, pod, container, dbe]; the exporter reads it on every scrape
set_state() { echo "$1" >"$STATE.tmp" && mv "$STATE.tmp" "$STATE"; }
set_state '{"GPU-wl-0": ["training", "llm-7b-worker-0", "trainer", 0],
            "GPU-wl-1": ["training", "llm-7b-worker-1", "trainer", 0],
            "GPU-wl-2": ["", "", "", 0]}'

# the exporter and the API listen on ports the kernel picks and say which (bound_port)
python3 - "$STATE" >"$TMP/exporter.log" 2>&1 <<'PY' &
import http.server, json, sys
state = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        s = json.load(open(state))
        out = ["# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).", "# TYPE DCGM_FI_DEV_GPU_TEMP gauge",
               "# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).", "# TYPE DCGM_FI_DEV_POWER_USAGE gauge",
               "# HELP DCGM_FI_DEV_ECC_DBE_VOL_TOTAL Total number of double-bit volatile ECC errors.",
               "# TYPE DCGM_FI_DEV_ECC_DBE_VOL_TOTAL counter"]
        for i, (uuid, st) in enumerate(sorted(s.items())):
            if st is None:  # the GPU fell off the bus: the exporter leaves it out
                continue
            ns, pod, cont, dbe = st
            lab = ('gpu="%d",UUID="%s",pci_bus_id="00000000:%02X:00.0",device="nvidia%d",'
                   'modelName="NVIDIA A100-SXM4-80GB",Hostname="node-wl",'
                   'DCGM_FI_DRIVER_VERSION="550.127.08",container="%s",namespace="%s",pod="%s"'
                   % (i, uuid, i + 1, i, cont, ns, pod))
            out.append("DCGM_FI_DEV_GPU_TEMP{%s} %d" % (lab, 50 + i))
            out.append("DCGM_FI_DEV_POWER_USAGE{%s} %d" % (lab, 250))
            out.append("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{%s} %d" % (lab, dbe))
        body = ("\n".join(out) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
PY
PIDS+=($!)
EXP_PORT=$(bound_port "$TMP/exporter.log") || die "the exporter did not start: $(cat "$TMP/exporter.log")"

owner=$(new_db gh_wl_$$)
writer=$(writer_ci "$owner")
psql -X -q "$owner" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gh_reader_it') THEN CREATE ROLE gh_reader_it LOGIN IN ROLE gpuhealth_reader; END IF; END \$\$" >/dev/null || die "cannot create the reader login role"
reader="${owner/user=postgres/user=gh_reader_it}"
t=gh-wl-$UNIQ

sql_is() { [ "$(sql "$1" "$2" 2>/dev/null)" = "$3" ]; }
wait_for() { # wait_for TIMEOUT_S COMMAND...: until COMMAND succeeds
  local n=$1 i; shift
  for i in $(seq 1 $(( n * 4 ))); do "$@" && return 0; sleep 0.25; done
  "$@"
}
wl_rows() { sql "$owner" "SELECT gpu_key || ' ' || coalesce(namespace, '-') || '/' || coalesce(pod, '-') || '/' || coalesce(container, '-') FROM gpu_workloads ORDER BY gpu_key, first_seen" | tr '\n' ';'; }
wl_is() { [ "$(wl_rows)" = "$1" ]; }

"$BIN" collector --target "http://127.0.0.1:$EXP_PORT/metrics" --interval 0.5 --brokers "$KAFKA" \
  --topic "$t" --stats-interval 1 >"$TMP/collector.log" 2>&1 &
PIDS+=($!)
collector_pid=$!
start_sink s1 "$writer" "$t" "g-$t" --batch-timeout 0.3
"$BIN" scorer --brokers "$KAFKA" --topic "$t" --scorer-group "gs-$t" --db "$writer" \
  --alerts-topic "$t-alerts" --batch-timeout 0.3 --stats-interval 1 --interval 2 \
  -X session.timeout.ms=6000 -X topic.metadata.refresh.interval.ms=1000 >"$TMP/scorer.log" 2>&1 &
PIDS+=($!)
scorer_pid=$!
"$BIN" api --db "$reader" --listen 127.0.0.1:0 >"$TMP/api.log" 2>&1 &
PIDS+=($!)
API_PORT=$(bound_port "$TMP/api.log") || die "gpuhealth api did not start: $(cat "$TMP/api.log")"
API="http://127.0.0.1:$API_PORT"

echo "== three GPUs, two held by pods of namespace training, one by none"
check "gpu_workloads holds one row per GPU: its workload, or none" \
  wait_for 30 wl_is "GPU-wl-0 training/llm-7b-worker-0/trainer;GPU-wl-1 training/llm-7b-worker-1/trainer;GPU-wl-2 -/-/-;"
# samples every 0.5 s: 6 s more are ~12 samples per GPU, still one row each
sleep 6
samples=$(sql "$owner" "SELECT count(*) FROM gpu_metrics")
check "still one row per GPU after $samples samples (assignments, not copies per sample)" \
  wl_is "GPU-wl-0 training/llm-7b-worker-0/trainer;GPU-wl-1 training/llm-7b-worker-1/trainer;GPU-wl-2 -/-/-;"
check "the events on the topic carry the workload" \
  bash -c "kcat -b '$KAFKA' -C -t '$t' -o beginning -c 30 -e -q | grep -q '\"workload\":{\"namespace\":\"training\"'"

echo "== pod llm-7b-worker-1 moves from GPU-wl-1 to GPU-wl-2"
set_state '{"GPU-wl-0": ["training", "llm-7b-worker-0", "trainer", 0],
            "GPU-wl-1": ["", "", "", 0],
            "GPU-wl-2": ["training", "llm-7b-worker-1", "trainer", 0]}'
check "a new row for each GPU whose assignment changed" \
  wait_for 30 wl_is "GPU-wl-0 training/llm-7b-worker-0/trainer;GPU-wl-1 training/llm-7b-worker-1/trainer;GPU-wl-1 -/-/-;GPU-wl-2 -/-/-;GPU-wl-2 training/llm-7b-worker-1/trainer;"
# the finished run's row ends at its GPU's last sample before the next run began, though its
# last_seen moved only every 30 s while the samples came (it was up to 30 s short)
check "the finished runs end at their last sample with that workload" \
  wait_for 10 sql_is "$owner" "SELECT count(*) FILTER (WHERE abs(extract(epoch FROM w.last_seen - (SELECT max(m.time) FROM gpu_metrics m WHERE m.gpu_key = w.gpu_key AND m.time < n.first_seen))) < 0.001) || '/' || count(*) FROM gpu_workloads w CROSS JOIN LATERAL (SELECT first_seen FROM gpu_workloads x WHERE x.gpu_key = w.gpu_key AND x.first_seen > w.first_seen ORDER BY first_seen LIMIT 1) n" "2/2"
check "last_seen of a held GPU moves forward (at most 30 s behind), first_seen stays" \
  sql_is "$owner" "SELECT bool_and(last_seen > first_seen AND last_seen >= (SELECT max(time) FROM gpu_metrics) - interval '31 seconds') FROM gpu_workloads WHERE gpu_key = 'GPU-wl-0'" t

echo "== the API"
for i in $(seq 1 40); do curl -fs "$API/healthz" >/dev/null && break; sleep 0.25; done
api_keys() { curl -fs "$API$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print(' '.join(sorted(g['gpu_key'] for g in d[sys.argv[1]])))" "$2"; }
check "GET /api/v1/gpus?namespace=training: the two GPUs held in it now" \
  test "$(api_keys '/api/v1/gpus?namespace=training' gpus)" = "GPU-wl-0 GPU-wl-2"
check "GET /api/v1/gpus?pod=llm-7b-worker-1: the GPU that holds it now" \
  test "$(api_keys '/api/v1/gpus?pod=llm-7b-worker-1' gpus)" = "GPU-wl-2"
check "each GPU says its workload" \
  test "$(curl -fs "$API/api/v1/gpus?pod=llm-7b-worker-1" | python3 -c "import json,sys; g=json.load(sys.stdin)['gpus'][0]; print(g['namespace'], g['pod'], g['container'])")" = "training llm-7b-worker-1 trainer"
from=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ); to=$(date -u -d '+1 min' +%Y-%m-%dT%H:%M:%SZ)
check "GET /api/v1/workloads?pod=llm-7b-worker-1 over the last 10 min: both GPUs it used" \
  test "$(api_keys "/api/v1/workloads?pod=llm-7b-worker-1&from=$from&to=$to" workloads)" = "GPU-wl-1 GPU-wl-2"
old_to=$(date -u -d '-9 min' +%Y-%m-%dT%H:%M:%SZ)
check "... and none in a window before it ran" \
  test "$(api_keys "/api/v1/workloads?pod=llm-7b-worker-1&from=$from&to=$old_to" workloads)" = ""
page1=$(curl -fs "$API/api/v1/workloads?namespace=training&limit=2")
next=$(echo "$page1" | python3 -c "import json,sys; print(json.load(sys.stdin)['next'])")
check "keyset paging: 2 rows of 3, then the third from next" \
  test "$(echo "$page1" | python3 -c "import json,sys; print(json.load(sys.stdin)['count'])") $(api_keys "$next" workloads)" = "2 GPU-wl-2"
check "a query without pod or namespace is a 400 that names pod" \
  bash -c "curl -s '$API/api/v1/workloads' | grep -q '\"parameter\":\"pod\"'"

echo "== a volatile DBE on GPU-wl-2 while llm-7b-worker-1 holds it"
set_state '{"GPU-wl-0": ["training", "llm-7b-worker-0", "trainer", 0],
            "GPU-wl-1": ["", "", "", 0],
            "GPU-wl-2": ["training", "llm-7b-worker-1", "trainer", 1]}'
check "the alert in the database names the pod that held the GPU" \
  wait_for 30 sql_is "$owner" "SELECT namespace || '/' || pod || '/' || container FROM alerts WHERE gpu_key = 'GPU-wl-2' AND cleared_at IS NULL" "training/llm-7b-worker-1/trainer"
check "the alert on the Kafka topic carries the workload" \
  wait_for 20 bash -c "kcat -b '$KAFKA' -C -t '$t-alerts' -o beginning -e -q | grep '\"gpu_key\":\"GPU-wl-2\"' | grep -q '\"workload\":{\"namespace\":\"training\",\"pod\":\"llm-7b-worker-1\",\"container\":\"trainer\"}'"
check "GET /api/v1/alerts shows it with its pod" \
  bash -c "curl -fs '$API/api/v1/alerts' | python3 -c \"import json,sys; a=json.load(sys.stdin)['alerts']; sys.exit(0 if [x['pod'] for x in a if x['gpu_key']=='GPU-wl-2']==['llm-7b-worker-1'] else 1)\""

echo "== GPU-wl-0 falls silent while llm-7b-worker-0 holds it, its host's other GPUs report"
set_state '{"GPU-wl-0": null,
            "GPU-wl-1": ["", "", "", 0],
            "GPU-wl-2": ["training", "llm-7b-worker-1", "trainer", 1]}'
# the scorer expects a sample every 2 s (--interval 2): silent after 3 intervals
check "the fell-silent alert in the database names the GPU's own last workload" \
  wait_for 40 sql_is "$owner" "SELECT namespace || '/' || pod || '/' || container FROM alerts WHERE gpu_key = 'GPU-wl-0' AND cleared_at IS NULL" "training/llm-7b-worker-0/trainer"
check "... and on the Kafka topic (not the workload of the GPU whose event was judged)" \
  wait_for 20 bash -c "kcat -b '$KAFKA' -C -t '$t-alerts' -o beginning -e -q | grep '\"gpu_key\":\"GPU-wl-0\"' | grep -q '\"workload\":{\"namespace\":\"training\",\"pod\":\"llm-7b-worker-0\",\"container\":\"trainer\"}'"
grep -E 'GPU-wl-0' "$TMP/scorer.log" | head -3 | sed 's/^/  scorer: /'

kill -TERM "$collector_pid"; wait "$collector_pid" 2>/dev/null
sleep 2
kill -TERM "$PID_s1"; wait "$PID_s1" 2>/dev/null
check "a stopped sink leaves every GPU's current run ending at its last sample" \
  sql_is "$owner" "SELECT count(*) FILTER (WHERE abs(extract(epoch FROM w.last_seen - (SELECT max(m.time) FROM gpu_metrics m WHERE m.gpu_key = w.gpu_key))) < 0.001) || '/' || count(*) FROM gpu_workloads w WHERE NOT EXISTS (SELECT 1 FROM gpu_workloads x WHERE x.gpu_key = w.gpu_key AND x.first_seen > w.first_seen)" "3/3"
before=$(sql "$owner" "SELECT count(*) FROM gpu_workloads")

echo "== a second sink reads the whole topic again (a redelivery): nothing is written twice"
start_sink s2 "$writer" "$t" "g2-$t" --batch-timeout 0.3 --batch-size 7
check "the second sink read the whole topic" \
  wait_for 30 grep -qE "consumed=$(kcat -b "$KAFKA" -C -t "$t" -o beginning -e -q | wc -l) " "$TMP/s2.log"
check "gpu_workloads has the same rows (last_seen only moved up to the last sample)" \
  test "$(sql "$owner" "SELECT count(*) FROM gpu_workloads WHERE last_seen <= (SELECT max(time) FROM gpu_metrics)")" = "$before"
kill -TERM "$PID_s2"; wait "$PID_s2" 2>/dev/null
kill -TERM "$scorer_pid"; wait "$scorer_pid" 2>/dev/null
finish
