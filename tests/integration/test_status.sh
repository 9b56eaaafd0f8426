#!/usr/bin/env bash
# gpuhealth status --db against the real PostgreSQL, filled by the real pipeline (the daemon
# with the real Kafka and --db): every GPU present with typed numbers, the GPU with an injected
# double-bit ECC error failed with a recommendation other than keep and its open alert; the
# table names it too; an unreachable database is exit 1 naming it.
source "$(dirname "$0")/lib.sh"

DB="gh_status_$$"
CI=$(new_db "$DB")
TOPIC="gh-status-$UNIQ"
"$BIN" --daemon --duration 14 --gpus 6 --interval 1 --hostname status-node \
  --inject gpu=4,fault=dbe,at=3s \
  --brokers "$KAFKA" --topic "$TOPIC" --dlq-topic "$TOPIC-dlq" --alerts-topic "$TOPIC-alerts" \
  --group "g-$UNIQ" --scorer-group "s-$UNIQ" --db "$CI" --stats-interval 2 \
  -X session.timeout.ms=6000 -X topic.metadata.refresh.interval.ms=1000 >"$TMP/daemon.log" 2>&1
rc=$?
check "the daemon filled the database (exit $rc)" [ $rc = 0 ]

"$BIN" status --db "$CI" --json >"$TMP/status.json" 2>"$TMP/status.err"
rc=$?
check "status --db --json exits 0 (got $rc)" [ $rc = 0 ]
python3 - "$TMP/status.json" <<'PY' >"$TMP/py.out" 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
errs = []
def need(c, m):
    if not c: errs.append(m)
need(d["schema"] == "gpuhealth.status/1", "schema")
need(d["source"] == "database", "source")
hosts = {h["host"]: h for h in d["hosts"]}
need(list(hosts) == ["status-node"], "hosts %r" % list(hosts))
gpus = hosts.get("status-node", {"gpus": []})["gpus"]
need(sorted(g["index"] for g in gpus) == list(range(6)), "indexes %r" % [g["index"] for g in gpus])
need(d["summary"]["gpus"] == 6 and d["summary"]["hosts"] == 1, "summary %r" % d["summary"])
num = (int, float)
for g in gpus:
    for k in ("temperature_c", "power_w", "power_limit_w", "utilization_pct", "memory_used_mib",
              "memory_total_mib", "age_s"):
        need(isinstance(g[k], num) and not isinstance(g[k], bool), "gpu %s %s=%r" % (g["index"], k, g[k]))
    need(0 <= g["utilization_pct"] <= 100, "util range")
    need(isinstance(g["ecc_dbe_volatile_total"], int), "dbe int")
    h = g["health"]
    need(h is not None and isinstance(h["score"], int) and h["status"] in ("pass", "warn", "fail"), "health %r" % h)
    need(h is None or h["recommendation"] in ("keep", "drain", "reset", "reboot", "rma"), "recommendation")
    need(h is None or isinstance(h["failure_probability"], num), "p_fail %r" % (h and h["failure_probability"]))
bad = [g for g in gpus if g["index"] == 4]
if bad:
    b = bad[0]
    need(b["health"]["status"] == "fail", "gpu 4 status %s" % b["health"]["status"])
    need(b["health"]["recommendation"] != "keep", "gpu 4 recommendation keep")
    need(any(r["code"] == "dbe_volatile" and r["component"] == "memory" for r in b["health"]["reasons"]), "gpu 4 reasons %r" % b["health"]["reasons"])
    c = b["health"]["expected_costs"]
    need(isinstance(c, dict) and sorted(c) == sorted(["keep", "drain", "reset", "reboot", "rma"])
         and all(isinstance(v, num) for v in c.values()), "gpu 4 expected_costs %r" % c)
    if isinstance(c, dict) and c:
        need(c[b["health"]["recommendation"]] == min(c.values()), "the recommendation is the cheapest %r" % c)
    need(b["ecc_dbe_volatile_total"] >= 1, "gpu 4 dbe %r" % b["ecc_dbe_volatile_total"])
    need(any(a["severity"] == "fail" for a in b["alerts"]), "gpu 4 alerts %r" % b["alerts"])
need(d["summary"]["fail"] >= 1 and d["summary"]["open_alerts"] >= 1, "summary counts %r" % d["summary"])
print("\n".join(errs) if errs else "json ok")
sys.exit(1 if errs else 0)
PY
check "the JSON document: $(tail -3 "$TMP/py.out" | tr '\n' ' ')" grep -q 'json ok' "$TMP/py.out"

"$BIN" status --db "$CI" >"$TMP/status.txt" 2>&1
rc=$?
check "status --db (table) exits 0 (got $rc)" [ $rc = 0 ]
check "... the table shows the failed GPU and its action" grep -qE '^4 .* fail +[0-9]+ (reset|drain|reboot|rma) ' "$TMP/status.txt"
check "... and six GPU rows" [ "$(grep -cE '^[0-9]+ +A100' "$TMP/status.txt")" = 6 ]

# issue #24: each GPU's current workload is its newest gpu_workloads row (the daemon's sink wrote
# one per GPU, with no workload: simulated GPUs): GPU 2 taken by a pod after the daemon
# stopped; GPU 3 held by one before, and by none since
k2=$(sql "$CI" "SELECT gpu_key FROM gpus WHERE hostname = 'status-node' AND gpu_index = 2")
k3=$(sql "$CI" "SELECT gpu_key FROM gpus WHERE hostname = 'status-node' AND gpu_index = 3")
sql "$CI" "INSERT INTO gpu_workloads (gpu_key, namespace, pod, container, first_seen, last_seen) VALUES
  ('$k2', 'training', 'llm-7b-worker-3', 'trainer', now(), now()),
  ('$k3', 'infer', 'p-9', 'server', now() - interval '2 hours', now() - interval '1 hour')" >/dev/null
"$BIN" status --db "$CI" --json >"$TMP/wl.json" 2>"$TMP/wl.err"
got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join("%d=%s" % (g["index"], json.dumps(g["workload"], sort_keys=True).replace(" ", ""))
               for h in d["hosts"] for g in sorted(h["gpus"], key=lambda g: g["index"])))' "$TMP/wl.json" 2>&1)
check "status --db: each GPU's current workload: $got" \
  [ "$got" = '0=null 1=null 2={"container":"trainer","namespace":"training","pod":"llm-7b-worker-3"} 3=null 4=null 5=null' ]
"$BIN" status --db "$CI" >"$TMP/wl.txt" 2>&1
check "... and the table's WORKLOAD column" grep -qE '^2 .*  training/llm-7b-worker-3 ' "$TMP/wl.txt"

"$BIN" status --db "host=127.0.0.1 port=1 dbname=nothing connect_timeout=2" --json >"$TMP/none.out" 2>"$TMP/none.err"
rc=$?
check "an unreachable database: exit 1 (got $rc)" [ $rc = 1 ]
check "... the message names it: $(head -c 200 "$TMP/none.err")" grep -q 'port 1\|127.0.0.1' "$TMP/none.err"
check "... and nothing on standard output" [ ! -s "$TMP/none.out" ]
finish
