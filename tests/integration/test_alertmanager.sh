#!/usr/bin/env bash
# The scorer's alerts in a REAL Prometheus Alertmanager (built from the Go module proxy at a
# pinned version by scripts/alertmanager.sh, cached in ~/.cache/gpuhealth), with the real Kafka
# broker and PostgreSQL: an injected volatile DBE appears in Alertmanager's /api/v2/alerts with
# the GPU's labels and the annotations; a webhook receiver of this test gets it through
# Alertmanager's routing; an Alertmanager that is down for a while gets every firing alert
# after it returns (those it had, and one raised while it was down); the cleared alert resolves;
# a restarted scorer re-sends the alert open in the database to an Alertmanager that lost it.
#
# GH_AM_TEST_DOWNTIME: how long Alertmanager is down (default 60 s, the case the issue names;
# tests/CMakeLists.txt sets 20 s for the ASan+UBSan build, whose run of it checks the same code
# for memory errors, not the length of the outage). GH_AM_TEST_RESEND (default 5 s; the
# scorer's default is 60) keeps the run short.
source "$(dirname "$0")/lib.sh"
# shellcheck source=../../scripts/alertmanager.sh
GH_AM_DIR="$TMP/am"
source "$ROOT/scripts/alertmanager.sh"

DOWN=${GH_AM_TEST_DOWNTIME:-60}
RESEND=${GH_AM_TEST_RESEND:-5}

am_build || die "cannot build Alertmanager $GH_AM_VERSION (see the message above)"

# gen FILE START_EPOCH N GPU_INDEX UUID DBE_FROM WORKLOAD_JSON: KEY|JSON lines, N samples 10 s
# apart on host node-am (cluster c-am, datacenter dc-am, rack r-07); ecc_dbe_volatile=1 from
# sample DBE_FROM on (-1: never).
gen() {
  python3 - "$@" <<'PY'
import json, sys, time
path, start, n, idx, uuid, dbe_from, wl = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), json.loads(sys.argv[7])
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + ".000Z"
with open(path, "w") as f:
    for i in range(n):
        t = start + 10 * i
        dbe = 1 if 0 <= dbe_from <= i else 0
        ev = {"schema_version": 1, "time": iso(t), "hostname": "node-am", "cluster": "c-am",
              "datacenter": "dc-am", "rack": "r-07",
              "gpu": {"index": idx, "uuid": uuid, "model": "NVIDIA A100-SXM4-80GB",
                      "pci_bus_id": "00000000:%02X:00.0" % idx, "device": "nvidia%d" % idx,
                      "driver_version": "550.127.08", "mig_profile": None, "mig_instance": None},
              "metrics": {"gpu_temp": 55 + i % 5, "power_usage": 250.5, "slowdown_temp": 89,
                          "shutdown_temp": 92, "ecc_sbe_volatile": 2, "ecc_dbe_volatile": dbe,
                          "pcie_replay": 10, "clocks_event_reasons": 0, "power_violation": 0,
                          "thermal_violation": 0, "row_remap_failure": 0},
              "extra": {}, "labels": {"team": "vision"}, "workload": wl}
        f.write(uuid + "|" + json.dumps(ev) + "\n")
PY
}

# The test's webhook receiver: every POST body Alertmanager sends, one line each. It listens
# on a port the kernel picks and says which (bound_port).
python3 - "$TMP/hook.out" >"$TMP/hook.log" 2>&1 <<'PY' &
import http.server, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print("listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
PY
PIDS+=($!)
hook_port=$(bound_port "$TMP/hook.log") || die "the webhook receiver did not start: $(cat "$TMP/hook.log")"
touch "$TMP/hook.out"

am_start a "global:
  resolve_timeout: 5m
route:
  receiver: test-hook
  group_by: [alertname, gpu_uuid]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test-hook
    webhook_configs:
      - url: http://127.0.0.1:$hook_port/hook
        send_resolved: true" || die "Alertmanager did not start"
PIDS+=("$AM_PID_a")
AM=$AM_URL_a
echo "  Alertmanager $GH_AM_VERSION at $AM; webhook receiver on 127.0.0.1:$hook_port"

# am_alerts: the active alerts Alertmanager holds, as JSON
am_alerts() { curl -fs --max-time 5 "$AM/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"; }

# am_query PYTHON_EXPR: evaluates EXPR over `alerts` (Alertmanager's list) and prints it
am_query() {
  am_alerts | python3 -c "
import json, sys
alerts = json.load(sys.stdin)
by = {a['labels'].get('gpu_uuid'): a for a in alerts}
print($1)" 2>/dev/null
}

wait_for() { # wait_for TIMEOUT_S COMMAND...: until COMMAND succeeds
  local t=$1 i; shift
  for i in $(seq 1 $(( t * 4 ))); do "$@" && return 0; sleep 0.25; done
  "$@"
}

am_has() { [ "$(am_query "$1")" = "$2" ]; }
sql_is() { [ "$(sql "$1" "$2" 2>/dev/null)" = "$3" ]; }

owner=$(new_db gh_am_$$)
writer=$(writer_ci "$owner")
t=gh-am-$UNIQ
now=$(date +%s)

echo "== a healthy GPU and one with a volatile DBE from its 5th sample, held by a pod"
gen "$TMP/ok.txt" $(( now - 600 )) 12 0 GPU-am-ok -1 '{"namespace": "training", "pod": "llm-0", "container": "t"}'
gen "$TMP/dbe.txt" $(( now - 600 )) 12 1 GPU-am-dbe 4 '{"namespace": "training", "pod": "llm-1", "container": "t"}'
produce "$t" "$TMP/ok.txt"
produce "$t" "$TMP/dbe.txt"
# --health-row-interval 0: a health row for every sample, so the rows count the samples scored
"$BIN" scorer --brokers "$KAFKA" --topic "$t" --scorer-group "g-$t" --db "$writer" \
  --alerts-topic '' --batch-timeout 0.3 --stats-interval 1 --health-row-interval 0 \
  --alertmanager "$AM" --alertmanager-resend "$RESEND" --api-url http://gpuhealth-api.test:8080/ \
  -X session.timeout.ms=6000 -X topic.metadata.refresh.interval.ms=1000 >"$TMP/scorer.log" 2>&1 &
PIDS+=($!)
scorer_pid=$!

check "the DBE alert is in Alertmanager" wait_for 60 am_has "sorted(by)" "['GPU-am-dbe']"
check "its labels: alertname, severity, the GPU, host, cluster, datacenter, rack, namespace, pod" \
  am_has "sorted(by['GPU-am-dbe']['labels'].items())" \
  "[('alertname', 'GPUHealth'), ('cluster', 'c-am'), ('datacenter', 'dc-am'), ('gpu', '1'), ('gpu_uuid', 'GPU-am-dbe'), ('hostname', 'node-am'), ('namespace', 'training'), ('pod', 'llm-1'), ('rack', 'r-07'), ('severity', 'critical')]"
check "its annotations: summary, description, remedy, recommended_action, failure_probability" \
  am_has "sorted(by['GPU-am-dbe']['annotations'])" \
  "['description', 'failure_probability', 'recommended_action', 'remedy', 'summary']"
check "the description names the DBE rule, the remedy is a reset, the probability 1" \
  am_has "('dbe_volatile' in by['GPU-am-dbe']['annotations']['description'], by['GPU-am-dbe']['annotations']['remedy'], by['GPU-am-dbe']['annotations']['recommended_action'], by['GPU-am-dbe']['annotations']['failure_probability'])" \
  "(True, 'reset', 'reset', '1')"
check "the summary is the scorer's message" \
  am_has "by['GPU-am-dbe']['annotations']['summary'].startswith('GPU GPU-am-dbe on node-am: fail: ')" "True"
first_fail=$(sql "$owner" "SELECT to_char(min(time) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM gpu_health_scores WHERE gpu_key = 'GPU-am-dbe' AND status = 'fail'")
check "startsAt is the sample that raised it ($first_fail)" \
  am_has "by['GPU-am-dbe']['startsAt'].startswith('$first_fail')" "True"
check "generatorURL is the API's page of the GPU" \
  am_has "by['GPU-am-dbe']['generatorURL']" "http://gpuhealth-api.test:8080/api/v1/gpus/GPU-am-dbe"
check "the webhook receiver got it, firing, through Alertmanager's routing" \
  wait_for 30 grep -q '"status":"firing".*"gpu_uuid":"GPU-am-dbe"' "$TMP/hook.out"

echo "== Alertmanager down for $DOWN s; meanwhile a second GPU fails (no pod holds it)"
am_kill a
gen "$TMP/dbe2.txt" $(( now - 480 )) 8 2 GPU-am-dbe2 2 'null'
produce "$t" "$TMP/dbe2.txt"
check "the scorer raised the second alert in the database while Alertmanager is down" \
  wait_for 30 sql_is "$owner" "SELECT count(*) FROM alerts WHERE cleared_at IS NULL" 2
check "its POSTs fail and are counted, scoring goes on" \
  wait_for 30 grep -qE 'am_failed=[1-9]' "$TMP/scorer.log"
sleep "$DOWN"
check "scoring was not blocked: every sample scored" \
  test "$(sql "$owner" "SELECT count(*) FROM gpu_health_scores")" = 32
am_restart a || die "Alertmanager did not come back"
PIDS+=("$AM_PID_a")
back=$(date +%s.%N)
check "the returned Alertmanager gets every firing alert (within the resend interval and backoff)" \
  wait_for $(( RESEND * 2 + 10 )) am_has "sorted(by)" "['GPU-am-dbe', 'GPU-am-dbe2']"
echo "  both back in $(python3 -c "print(round($(date +%s.%N) - $back, 1))") s"
check "the second alert has the GPU's labels and no workload" \
  am_has "sorted(by['GPU-am-dbe2']['labels'].items())" \
  "[('alertname', 'GPUHealth'), ('cluster', 'c-am'), ('datacenter', 'dc-am'), ('gpu', '2'), ('gpu_uuid', 'GPU-am-dbe2'), ('hostname', 'node-am'), ('rack', 'r-07'), ('severity', 'critical')]"
check "the first alert kept its startsAt" \
  am_has "by['GPU-am-dbe']['startsAt'].startswith('$first_fail')" "True"

echo "== the DBE GPU is healthy again (driver reloaded): its alert resolves"
gen "$TMP/heal.txt" $(( now - 480 )) 10 1 GPU-am-dbe -1 '{"namespace": "training", "pod": "llm-1", "container": "t"}'
produce "$t" "$TMP/heal.txt"
check "the alert is cleared in the database" \
  wait_for 30 sql_is "$owner" "SELECT count(*) FROM alerts WHERE cleared_at IS NOT NULL AND gpu_key = 'GPU-am-dbe'" 1
check "Alertmanager no longer lists it as active; the second one still fires" \
  wait_for 20 am_has "sorted(by)" "['GPU-am-dbe2']"
check "the webhook receiver got it resolved" \
  wait_for 30 grep -q '"status":"resolved".*"gpu_uuid":"GPU-am-dbe"' "$TMP/hook.out"
kill -TERM "$scorer_pid"; wait "$scorer_pid" 2>/dev/null; rc=$?
check "the scorer stopped cleanly (exit status $rc; a sanitizer report would make it non-zero)" \
  bash -c "grep -q 'scorer: stopped;' '$TMP/scorer.log' && [ $rc = 0 ]"
echo "  counted: $(grep -o 'am_sent=[^ ]* am_failed=[^ ]* am_dropped=[^ ]* am_pending=[^ ]*' "$TMP/scorer.log" | tail -1)"

echo "== a restarted scorer re-sends the alert open in the database to an Alertmanager that lost it"
am_kill a
am_restart a || die "Alertmanager did not come back"
PIDS+=("$AM_PID_a")
check "the restarted Alertmanager holds no alert" am_has "sorted(by)" "[]"
"$BIN" scorer --brokers "$KAFKA" --topic "$t" --scorer-group "g-$t" --db "$writer" \
  --alerts-topic '' --batch-timeout 0.3 --stats-interval 1 \
  --alertmanager "$AM" --alertmanager-resend "$RESEND" \
  -X session.timeout.ms=6000 -X topic.metadata.refresh.interval.ms=1000 >"$TMP/scorer2.log" 2>&1 &
PIDS+=($!)
scorer_pid=$!
gen "$TMP/dbe2b.txt" $(( now - 390 )) 3 2 GPU-am-dbe2 0 'null'
produce "$t" "$TMP/dbe2b.txt"
check "the open alert is back in Alertmanager once the GPU reports" \
  wait_for 30 am_has "sorted(by)" "['GPU-am-dbe2']"
raised=$(sql "$owner" "SELECT to_char(raised_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') FROM alerts WHERE gpu_key = 'GPU-am-dbe2'")
check "with the startsAt it was raised at ($raised) and the GPU's labels" \
  am_has "(by['GPU-am-dbe2']['startsAt'][:19], by['GPU-am-dbe2']['labels'].get('rack'), by['GPU-am-dbe2']['labels']['severity'], 'dbe_volatile' in by['GPU-am-dbe2']['annotations']['description'])" \
  "('$raised', 'r-07', 'critical', True)"
kill -TERM "$scorer_pid"; wait "$scorer_pid" 2>/dev/null; rc=$?
check "the restarted scorer stopped cleanly (exit status $rc)" \
  bash -c "grep -q 'scorer: stopped;' '$TMP/scorer2.log' && [ $rc = 0 ]"
am_kill a
finish
