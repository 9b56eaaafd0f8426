#!/usr/bin/env bash
# The scorer against the real Kafka broker and PostgreSQL: event-v1 samples of a healthy GPU and
# of one with a volatile double-bit ECC error -> rows in gpu_health_scores,
# gpu_failure_predictions and alerts, and the alert on the Kafka topic; a webhook that is down
# (a closed port) does not stop scoring; after a restart the scorer clears the alert it finds
# open in the database, and POSTs the clear to a live webhook.
source "$(dirname "$0")/lib.sh"

# gen FILE START_EPOCH N DBE_FROM: KEY|JSON lines for GPU-it-ok and GPU-it-dbe, N samples 10 s
# apart; GPU-it-dbe reports ecc_dbe_volatile=1 from sample DBE_FROM on (-1: never).
gen() {
  python3 - "$@" <<'PY'
import json, sys, time
path, start, n, dbe_from = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + ".000Z"
with open(path, "w") as f:
    for i in range(n):
        t = start + 10 * i
        for idx, uuid in enumerate(["GPU-it-ok", "GPU-it-dbe"]):
            dbe = 1 if (uuid == "GPU-it-dbe" and 0 <= dbe_from <= i) else 0
            ev = {"schema_version": 1, "time": iso(t), "hostname": "node-it", "cluster": None,
                  "datacenter": None, "rack": None,
                  "gpu": {"index": idx, "uuid": uuid, "model": "NVIDIA A100-SXM4-80GB",
                          "pci_bus_id": "00000000:%02X:00.0" % idx, "device": "nvidia%d" % idx,
                          "driver_version": "550.127.08", "mig_profile": None, "mig_instance": None},
                  "metrics": {"gpu_temp": 55 + i % 5, "power_usage": 250.5, "slowdown_temp": 89,
                              "shutdown_temp": 92, "ecc_sbe_volatile": 2, "ecc_dbe_volatile": dbe,
                              "pcie_replay": 10, "clocks_event_reasons": 0, "power_violation": 0,
                              "thermal_violation": 0, "row_remap_failure": 0},
                  "extra": {}}
            f.write(uuid + "|" + json.dumps(ev) + "\n")
PY
}

# a loopback port nothing listens on
closed_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

start_scorer() { # start_scorer NAME CONNINFO TOPIC GROUP [extra args]
  local name=$1 ci=$2 topic=$3 group=$4; shift 4
  "$BIN" scorer --brokers "$KAFKA" --topic "$topic" --scorer-group "$group" --db "$ci" \
    --alerts-topic "$topic-alerts" --batch-timeout 0.3 --stats-interval 1 \
    -X session.timeout.ms=6000 -X topic.metadata.refresh.interval.ms=1000 "$@" \
    >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}

wait_sql() { # wait_sql CONNINFO SQL WANT TIMEOUT_S
  local got="" i
  for i in $(seq 1 $(( $4 * 4 ))); do
    got=$(sql "$1" "$2" 2>/dev/null)
    [ "$got" = "$3" ] && return 0
    sleep 0.25
  done
  echo "  '$2' gave '$got', expected '$3'" >&2
  return 1
}

owner=$(new_db gh_scorer_$$)
writer=$(writer_ci "$owner")
t=gh-scorer-$UNIQ
now=$(date +%s)

echo "== a healthy GPU and one with a volatile DBE from its 5th sample; the webhook is down"
gen "$TMP/s1.txt" $(( now - 300 )) 12 4
produce "$t" "$TMP/s1.txt"
echo "  injected: 24 events (12 per GPU); webhook http://127.0.0.1:$closed_port/ (closed port)"
t0=$(date +%s.%N)
start_scorer s1 "$writer" "$t" "g-$t" --health-row-interval 0 --webhook "http://127.0.0.1:$closed_port/hook" \
  --webhook-timeout 1 --webhook-retries 2
check "24 scores written while the webhook is down" \
  wait_sql "$writer" "SELECT count(*) FROM gpu_health_scores" 24 60
t1=$(date +%s.%N)
echo "  all 24 scores in $(python3 -c "print(round($t1 - $t0, 1))") s"
check "24 predictions written" wait_sql "$writer" "SELECT count(*) FROM gpu_failure_predictions" 24 10
check "the healthy GPU passes every sample" \
  test "$(sql "$owner" "SELECT count(*) FILTER (WHERE status = 'pass') || '/' || count(*) FROM gpu_health_scores WHERE gpu_key = 'GPU-it-ok'")" = "12/12"
check "the DBE GPU passes before the error and fails from it on" \
  test "$(sql "$owner" "SELECT string_agg(status, ',' ORDER BY time) FROM gpu_health_scores WHERE gpu_key = 'GPU-it-dbe'")" = "pass,pass,pass,pass,fail,fail,fail,fail,fail,fail,fail,fail"
check "its reason is dbe_volatile and its memory score is low" \
  test "$(sql "$owner" "SELECT (reasons @> '[{\"code\": \"dbe_volatile\"}]')::text || ' ' || (memory <= 20)::text FROM gpu_health_scores WHERE gpu_key = 'GPU-it-dbe' ORDER BY time DESC LIMIT 1")" = "true true"
check "one open fail alert for the DBE GPU, none for the healthy one" \
  test "$(sql "$owner" "SELECT string_agg(gpu_key || ':' || kind || ':' || severity || ':' || coalesce(hostname, '-'), ',') FROM alerts WHERE cleared_at IS NULL")" = "GPU-it-dbe:health:fail:node-it"
check "the alert was raised at the sample of the error" \
  test "$(sql "$owner" "SELECT raised_at = (SELECT min(time) FROM gpu_health_scores WHERE gpu_key = 'GPU-it-dbe' AND status = 'fail') FROM alerts")" = "t"
check "the failing GPU: probability 1, model version, recommendation reset" \
  test "$(sql "$owner" "SELECT probability || ' ' || model_version || ' ' || recommendation || ' ' || horizon_hours FROM gpu_failure_predictions WHERE gpu_key = 'GPU-it-dbe' ORDER BY time DESC LIMIT 1")" = "1 gh-logit-1 reset 24"
check "the recommendation's costs are stored: reset cheaper than keep" \
  test "$(sql "$owner" "SELECT ((reasons->'costs'->>'reset')::float < (reasons->'costs'->>'keep')::float)::text FROM gpu_failure_predictions WHERE gpu_key = 'GPU-it-dbe' ORDER BY time DESC LIMIT 1")" = "true"
check "the healthy GPU: low probability, no recommendation" \
  test "$(sql "$owner" "SELECT bool_and(probability < 0.05 AND recommendation IS NULL)::text FROM gpu_failure_predictions WHERE gpu_key = 'GPU-it-ok'")" = "true"
# (produced after the COMMIT, asynchronously: read until it is there, 10 s at most)
for i in $(seq 1 40); do
  kcat -b "$KAFKA" -C -t "$t-alerts" -e -q -f '%k|%s\n' > "$TMP/alerts1.out" 2>/dev/null
  [ -s "$TMP/alerts1.out" ] && break
  sleep 0.25
done
check "the alert is on the Kafka topic, keyed by the GPU" \
  bash -c "test \$(wc -l < '$TMP/alerts1.out') = 1 && grep -q '^GPU-it-dbe|.*\"action\":\"raise\".*\"severity\":\"fail\"' '$TMP/alerts1.out'"
for i in $(seq 1 40); do grep -qE 'webhook_failed=1 ' "$TMP/s1.log" && break; sleep 0.25; done
check "the webhook failed after its retries, counted" grep -qE 'webhook_failed=1 ' "$TMP/s1.log"
t2=$(date +%s.%N)
stop_sink s1
echo "  stopped in $(python3 -c "print(round($(date +%s.%N) - $t2, 1))") s"
check "the scorer stopped cleanly" grep -q 'scorer: stopped;' "$TMP/s1.log"
echo "  counted: $(grep -o 'stopped; .*' "$TMP/s1.log")"

echo "== after a restart, healthy samples clear the alert that is open in the database"
# the webhook receiver listens on a port the kernel picks and says which (bound_port)
python3 - "$TMP/hook.out" >"$TMP/hook.log" 2>&1 <<'PY' &
import http.server, sys
out = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(out, "ab") as f:
            f.write(body + b"\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
print("listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
PY
PIDS+=($!)
hook_port=$(bound_port "$TMP/hook.log") || die "the webhook receiver did not start: $(cat "$TMP/hook.log")"
for i in $(seq 1 40); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $hook_port), 1)" 2>/dev/null && break; sleep 0.25; done
gen "$TMP/s2.txt" $(( now - 180 )) 10 -1
produce "$t" "$TMP/s2.txt"
echo "  injected: 20 healthy events (the driver was reloaded: DBE counter back to 0)"
start_scorer s2 "$writer" "$t" "g-$t" --health-row-interval 0 --webhook "http://127.0.0.1:$hook_port/hook"
check "44 scores" wait_sql "$writer" "SELECT count(*) FROM gpu_health_scores" 44 60
check "the alert is cleared after 6 healthy samples" \
  wait_sql "$owner" "SELECT count(*) FILTER (WHERE cleared_at IS NOT NULL) || '/' || count(*) FROM alerts" "1/1" 20
check "cleared at the 6th healthy sample" \
  test "$(sql "$owner" "SELECT cleared_at = (SELECT time FROM gpu_health_scores WHERE gpu_key = 'GPU-it-dbe' AND status = 'pass' AND time > (SELECT raised_at FROM alerts) ORDER BY time OFFSET 5 LIMIT 1) FROM alerts")" = "t"
check "the scorer found the open alert in the database" grep -q '1 alert(s) open in the database' "$TMP/s2.log"
for i in $(seq 1 40); do [ -s "$TMP/hook.out" ] && break; sleep 0.25; done
check "the live webhook received the clear as JSON" \
  grep -q '"action":"clear".*"gpu_key":"GPU-it-dbe"' "$TMP/hook.out"
stop_sink s2
kcat -b "$KAFKA" -C -t "$t-alerts" -e -q -f '%k|%s\n' > "$TMP/alerts2.out" 2>/dev/null
check "raise and clear on the Kafka topic" \
  bash -c "test \$(wc -l < '$TMP/alerts2.out') = 2 && grep -q '\"action\":\"clear\"' '$TMP/alerts2.out'"
check "redelivered samples added no duplicate score" \
  test "$(sql "$owner" "SELECT count(*) = count(DISTINCT (gpu_key, time)) FROM gpu_health_scores")" = "t"

echo "== #19.2: an event dated 9999 is a dead letter in the scorer as in the sink: no frozen GPU, no false 'fell off the bus'"
owner3=$(new_db gh_scorer_ff_$$)
t=gh-scorer-ff-$UNIQ
now=$(date +%s)
gen "$TMP/f1.txt" $(( now - 50 )) 3 -1
gen "$TMP/f2.txt" $(( now - 20 )) 3 -1
python3 - > "$TMP/f-bad.txt" <<'PY'
import json
print("GPU-it-ok|" + json.dumps({"schema_version": 1, "time": "9999-12-31T23:59:59.000Z", "hostname": "node-it",
      "gpu": {"index": 0, "uuid": "GPU-it-ok"}, "metrics": {"gpu_temp": 55}}))
PY
produce "$t" "$TMP/f1.txt"
start_scorer f "$owner3" "$t" "g-$t" --health-row-interval 0 # a row per sample, to count them
check "6 scores before the far-future event" wait_sql "$owner3" "SELECT count(*) FROM gpu_health_scores" 6 60
produce "$t" "$TMP/f-bad.txt"; produce "$t" "$TMP/f2.txt"
echo "  injected: 12 live events of 2 GPUs on one host, and one of GPU-it-ok dated 9999-12-31 between them"
check "every real sample scored, the later ones too (12)" wait_sql "$owner3" "SELECT count(*) FROM gpu_health_scores" 12 60
sleep 1
check "no score dated in the future" test "$(sql "$owner3" "SELECT count(*) FROM gpu_health_scores WHERE time > now() + interval '5 minutes'")" = 0
check "the newest score of GPU-it-ok is a real one" test "$(sql "$owner3" "SELECT max(time) < now() + interval '5 minutes' FROM gpu_health_scores WHERE gpu_key = 'GPU-it-ok'")" = t
check "no GPU of the host 'fell off the bus'" test "$(sql "$owner3" "SELECT count(*) FROM gpu_health_scores WHERE reasons::text LIKE '%fell_off_bus%'")" = 0
for i in $(seq 1 40); do grep -qE 'bad_events=1 ' "$TMP/f.log" && break; sleep 0.25; done
check "counted as a dead letter (bad_events=1)" grep -qE 'bad_events=1 ' "$TMP/f.log"
check "told at warning level with the validator's reason" grep -qE 'warn.*scorer: 1 dead letter skipped.*time 9999-12-31T23:59:59.000Z is more than 300 s in the future' "$TMP/f.log"
stop_sink f
echo "== by default a GPU's health rows only on a change, else once a minute (--health-row-interval)"
owner4=$(new_db gh_scorer3_$$)
writer4=$(writer_ci "$owner4")
t4=gh-scorer3-$UNIQ
gen "$TMP/s4.txt" $(( now - 300 )) 12 4
produce "$t4" "$TMP/s4.txt"
echo "  injected: 24 events (12 per GPU at 10 s), the DBE from the 5th sample"
wait_log() { local i; for i in $(seq 1 240); do grep -q "$2" "$1" && return 0; sleep 0.25; done; echo "  '$2' not in $1" >&2; return 1; }
start_scorer s4 "$writer4" "$t4" "g-$t4"
check "all 24 samples scored" wait_log "$TMP/s4.log" 'scored=24 '
stop_sink s4
echo "  rows: $(sql "$owner4" "SELECT string_agg(gpu_key || '@' || extract(epoch FROM time)::bigint - $(( now - 300 )) || ':' || status, ' ' ORDER BY gpu_key, time) FROM gpu_health_scores")"
check "the healthy GPU: its first sample and one a minute later (2 of 12)" \
  test "$(sql "$owner4" "SELECT string_agg((extract(epoch FROM time)::bigint - $(( now - 300 )))::text, ',' ORDER BY time) FROM gpu_health_scores WHERE gpu_key = 'GPU-it-ok'")" = "0,60"
check "the failing GPU: first, the change to fail, a minute after it (3 of 12)" \
  test "$(sql "$owner4" "SELECT string_agg((extract(epoch FROM time)::bigint - $(( now - 300 )))::text || status, ',' ORDER BY time) FROM gpu_health_scores WHERE gpu_key = 'GPU-it-dbe'")" = "0pass,40fail,100fail"
check "a prediction row with each health row" \
  test "$(sql "$owner4" "SELECT count(*) FROM gpu_failure_predictions")" = "$(sql "$owner4" "SELECT count(*) FROM gpu_health_scores")"

finish
