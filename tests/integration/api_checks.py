#!/usr/bin/env python3
"""Checks a running `gpuhealth api` (seeded with api_seed.sql) endpoint by endpoint: status
codes, values against the database, and every JSON body against docs/openapi.yaml.

  api_checks.py BASE_URL OPENAPI_YAML PSQL_CONNINFO DOWN_BASE_URL NOPRIV_BASE_URL

DOWN_BASE_URL is an API whose database is unreachable (503 answers); NOPRIV_BASE_URL one whose
login reaches the database but may read no table (a server-side failure: 500, not 503).
Exit 0 when all hold.
"""
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import jsonschema
import yaml

BASE, SPEC_PATH, PG, DOWN, NOPRIV = sys.argv[1:6]
SPEC = yaml.safe_load(open(SPEC_PATH))
A = "GPU-aaaa0000-0000-0000-0000-000000000000"
B = "GPU-bbbb0000-0000-0000-0000-000000000000"
MIG = "GPU-cccc0000-0000-0000-0000-000000000000/1"
passes = fails = 0
seen_paths = set()


def ok(what):
    global passes
    passes += 1
    print("ok:", what)


def bad(what):
    global fails
    fails += 1
    print("FAIL:", what, file=sys.stderr)


def check(cond, what):
    ok(what) if cond else bad(what)
    return cond


def sql(q):
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", PG, "-c", q], check=True,
                          capture_output=True, text=True).stdout.strip()


def template_of(path):
    """The OpenAPI path template that a concrete path matches."""
    for t in SPEC["paths"]:
        rx = "^" + re.sub(r"\\\{[a-z]+\\\}", "(.+)", re.escape(t)) + "$"
        if re.match(rx, path):
            # prefer the most specific (longest literal) template
            best = [x for x in SPEC["paths"] if re.match("^" + re.sub(r"\\\{[a-z]+\\\}", "(.+)",
                                                                       re.escape(x)) + "$", path)]
            return max(best, key=lambda x: len(x.replace("{uuid}", "")))
    return None


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"].lstrip("#/").split("/")
        node = SPEC
        for part in ref:
            node = node[part]
    return node


def validate(path, method, status, ctype, body):
    t = template_of(path)
    if not t and status == 404:  # an unknown path: still an Error object
        return validate_schema(path, method, status, {"$ref": "#/components/schemas/Error"}, body)
    if not t:
        bad(f"{path}: no path in the OpenAPI document")
        return
    seen_paths.add(t)
    op = SPEC["paths"][t][method.lower()]
    resp = op["responses"].get(str(status))
    if resp is None:
        bad(f"{method} {path}: status {status} is not documented for {t}")
        return
    resp = resolve(resp)
    content = resp.get("content", {})
    media = ctype.split(";")[0].strip()
    if media not in content:
        bad(f"{method} {path}: content type {media} not documented (has {list(content)})")
        return
    schema = content[media]["schema"]
    if media != "application/json":
        return ok(f"{method} {path} {status} {media} documented")
    validate_schema(path, method, status, schema, body)


def validate_schema(path, method, status, schema, body):
    # resolve $refs against the whole document
    full = dict(schema)
    full["components"] = SPEC["components"]
    try:
        jsonschema.Draft202012Validator(full).validate(body)
        ok(f"{method} {path} {status} matches the OpenAPI schema")
    except jsonschema.ValidationError as e:
        bad(f"{method} {path} {status} does not match the OpenAPI schema: {e.message} at "
            f"{list(e.absolute_path)}")


def get(path, want=200, method="GET", base=None):
    url = (base or BASE) + path
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, ctype, raw = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, raw = e.code, e.headers.get("Content-Type", ""), e.read()
    body = None
    if method == "HEAD":
        check(raw == b"", f"HEAD {path}: no body")
    elif ctype.startswith("application/json"):
        try:
            body = json.loads(raw)
        except ValueError:
            bad(f"{path}: body is not JSON: {raw[:200]!r}")
    elif ctype.startswith("text/plain"):
        body = raw.decode()
    check(status == want, f"{method} {path} -> {status} (want {want})" +
          ("" if status == want else f": {raw[:300]!r}"))
    if method != "HEAD" and status != 405:
        validate(path.split("?")[0], method, status, ctype, body)
    if status >= 400 and isinstance(body, dict):
        check(body.get("message"), f"{path}: the error has a message: {body.get('message')}")
    return body


# what only the database's own messages say: none of it may reach a client
RAW_DB_TEXT = ["ERROR", "permission denied", "out of range", "invalid byte sequence",
               "connection to server", "Connection refused", "port ", "127.0.0.1", "user=",
               "dbname", "host=", "password", "nobody", "relation ", "does not exist"]


def no_db_text(path, body):
    text = json.dumps(body)
    leaked = [t for t in RAW_DB_TEXT if t in text]
    return check(not leaked, f"{path}: the answer names nothing of the database ({leaked or 'ok'})")


def raw_get(path, base=None):
    """(status, parsed JSON or None) without checks."""
    try:
        with urllib.request.urlopen((base or BASE) + path, timeout=10) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def counters():
    text = raw_get("/metrics")[1].decode()
    return {c: int(re.search(r'^gpuhealth_api_responses_total\{class="%s"\} (\d+)$' % c, text,
                             re.M).group(1)) for c in ("2xx", "4xx", "5xx")}


def bad_param(path, param, want=400):
    body = get(path, want)
    if isinstance(body, dict):
        check(body.get("error") == "bad_parameter" and body.get("parameter") == param,
              f"{path}: error names parameter '{param}' ({body.get('parameter')})")
        print("   ", body.get("message"))


# ---- /healthz
h = get("/healthz")
check(h == {"status": "ok", "database": "up"}, f"/healthz says ok, database up: {h}")

# ---- /api/v1/gpus
g = get("/api/v1/gpus")
keys = [x["gpu_key"] for x in g["gpus"]]
check(g["count"] == 3 and keys == [A, B, MIG], f"three GPUs in host/index order: {keys}")
ga = g["gpus"][0]
check(ga["health_status"] == "warn" and ga["health_score"] == 81,
      f"GPU-aaaa carries its newest score (81, warn): {ga['health_score']} {ga['health_status']}")
check(g["gpus"][2]["mig_instance"] == 1 and g["gpus"][2]["health_status"] is None,
      "the MIG instance has mig_instance 1 and no score")
check(get("/api/v1/gpus?host=node-b")["count"] == 1, "host=node-b: one GPU")
check(get("/api/v1/gpus?status=pass")["gpus"][0]["gpu_key"] == B, "status=pass: GPU-bbbb")
bad_param("/api/v1/gpus?status=sick", "status")
bad_param("/api/v1/gpus?hostname=node-a", "hostname")
bad_param("/api/v1/gpus?host=a&host=b", "host")

# ---- /api/v1/gpus/{uuid}
d = get(f"/api/v1/gpus/{A}")
last = float(sql(f"SELECT gpu_temp FROM gpu_metrics WHERE gpu_key = '{A}' ORDER BY time DESC LIMIT 1"))
check(abs(d["latest"]["gpu_temp"] - last) < 1e-9 and abs(last - 57.19) < 1e-9,
      f"latest.gpu_temp is the newest sample's ({d['latest']['gpu_temp']} == {last})")
check(d["health"]["score"] == 81 and d["model"] == "NVIDIA A100-SXM4-80GB", "detail: health and model")
m1 = get(f"/api/v1/gpus/{MIG}")
m2 = get("/api/v1/gpus/" + MIG.replace("/", "%2F"))
check(m1["gpu_key"] == MIG and m2 == m1 and m1["latest"] is None and m1["health"] is None,
      "a MIG instance by UUID/GPU_I_ID, slash escaped or not; no samples: latest null")
nf = get("/api/v1/gpus/GPU-ffffffff-0000-0000-0000-000000000000", 404)
check(nf["error"] == "not_found", "an unknown GPU is a 404 not_found")
get("/api/v1/gpus/GPU-ffffffff-0000-0000-0000-000000000000/metrics", 404)
get("/api/v1/gpus/GPU-ffffffff-0000-0000-0000-000000000000/health", 404)
bad_param("/api/v1/gpus/GPU-x%27%3Bdrop", "uuid")
bad_param("/api/v1/gpus/" + "G" * 200, "uuid")
bad_param(f"/api/v1/gpus/{A}?verbose=1", "verbose")

# ---- /api/v1/gpus/{uuid}/metrics
now = time.time()
newest = float(sql(f"SELECT extract(epoch FROM max(time)) FROM gpu_metrics WHERE gpu_key = '{A}'"))
r = get(f"/api/v1/gpus/{A}/metrics?from={newest - 600:.0f}&to={newest + 1:.0f}")
check(r["source"] == "raw" and r["count"] == 61 and len(r["points"]) == 61,
      f"raw: 61 samples in the last 10 minutes ({r['count']})")
check(r["points"][-1]["gpu_temp"] == last and r["points"][0]["time"] < r["points"][-1]["time"],
      "raw: oldest first, newest value last")
dflt = get(f"/api/v1/gpus/{A}/metrics")
want_default = int(sql(f"SELECT count(*) FROM gpu_metrics WHERE gpu_key = '{A}' AND time >= now() - interval '1 hour'"))
check(abs(dflt["count"] - want_default) <= 1 and dflt["source"] == "raw",
      f"default range: the last hour of raw samples ({dflt['count']} ~ {want_default})")
r = get(f"/api/v1/gpus/{A}/metrics?from={newest - 3 * 3600:.0f}&to={newest + 1:.0f}&step=5m")
want = sql(f"SELECT count(DISTINCT floor(extract(epoch FROM time) / 300)) FROM gpu_metrics WHERE gpu_key = '{A}'")
check(r["source"] == "rollup_1min" and r["count"] == int(want) and r["step"] == 300,
      f"step=5m: from the rollups, {r['count']} points (database: {want})")
samples = sum(p["samples"] for p in r["points"])
check(samples == 720, f"step=5m: the points count all 720 samples ({samples})")
# one bucket's average against the raw samples
p0 = r["points"][1]
avg = float(sql(f"SELECT avg(gpu_temp) FROM gpu_metrics WHERE gpu_key = '{A}' AND "
                f"floor(extract(epoch FROM time) / 300) * 300 = extract(epoch FROM '{p0['time']}'::timestamptz)"))
check(abs(p0["gpu_temp"] - avg) < 1e-6, f"step=5m: a bucket's gpu_temp is the samples' mean ({p0['gpu_temp']} ~ {avg})")
iso_from = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(newest - 120))
r = get(f"/api/v1/gpus/{A}/metrics?from={iso_from.replace('+', '%2B')}&step=30s")
check(r["source"] == "raw" and 4 <= r["count"] <= 6 and all(p["samples"] <= 3 for p in r["points"]),
      f"step=30s with an RFC 3339 from: raw averaged per 30 s ({r['count']} points)")
bad_param(f"/api/v1/gpus/{A}/metrics?from=yesterday", "from")
bad_param(f"/api/v1/gpus/{A}/metrics?to=2026-13-45T00:00:00Z", "to")
bad_param(f"/api/v1/gpus/{A}/metrics?from={now:.0f}&to={now - 60:.0f}", "from")
bad_param(f"/api/v1/gpus/{A}/metrics?step=fast", "step")
bad_param(f"/api/v1/gpus/{A}/metrics?step=90", "step")
bad_param(f"/api/v1/gpus/{A}/metrics?from={now - 7 * 3600:.0f}", "step")
bad_param(f"/api/v1/gpus/{A}/metrics?from={now - 400 * 86400:.0f}&step=60", "step")
bad_param(f"/api/v1/gpus/{A}/metrics?start=0", "start")

# ---- /api/v1/gpus/{uuid}/health
hh = get(f"/api/v1/gpus/{A}/health")
check(hh["score"]["score"] == 81 and hh["score"]["status"] == "warn" and
      hh["score"]["reasons"][0]["rule"] == "ecc_sbe_rate", "health: the newest score with its reasons")
check(len(hh["predictions"]) == 1 and hh["predictions"][0]["probability"] == 0.35 and
      hh["predictions"][0]["recommendation"] == "drain", "health: the newest prediction per horizon")
check([a["kind"] for a in hh["open_alerts"]] == ["ecc_sbe_rate"], "health: the open alerts only")
hb = get(f"/api/v1/gpus/{MIG}/health")
check(hb["score"] is None and hb["predictions"] == [] and hb["open_alerts"] == [],
      "health of a GPU with no scores: null and empty lists")

# ---- /api/v1/fleet/summary
f = get("/api/v1/fleet/summary")
check(f["gpus"] == 3 and f["hosts"] == 2 and f["gpus_reporting"] == 2 and f["gpus_warn"] == 1 and
      f["gpus_pass"] == 1 and f["open_alerts"] == 1, f"fleet summary counts: {f}")
check(abs(f["max_gpu_temp_c"] - 57.19) < 1e-9 and abs(f["total_power_w"] - (200 + 719 % 50 + 90.25)) < 1e-9,
      f"fleet summary values: max temp {f['max_gpu_temp_c']}, power {f['total_power_w']}")
bad_param("/api/v1/fleet/summary?x=1", "x")

# ---- /api/v1/workloads and the workload filters of /api/v1/gpus
w = get("/api/v1/workloads?pod=p-1")
check([r["gpu_key"] for r in w["workloads"]] == [A] and w["workloads"][0]["namespace"] == "ns-a",
      f"workloads: pod p-1 used GPU A ({w})")
check(get("/api/v1/workloads?pod=p-1&from=2026-01-01T00:30:00Z&to=2026-01-01T00:40:00Z")["count"] == 1,
      "workloads: a window inside the run")
check(get("/api/v1/workloads?pod=p-1&from=2026-01-01T01:30:00Z")["count"] == 0,
      "workloads: a window after the run")
check(get("/api/v1/workloads?namespace=nope")["count"] == 0, "workloads: another namespace")
bad_param("/api/v1/workloads", "pod")
bad_param("/api/v1/workloads?pod=p-1&from=yesterday", "from")
bad_param("/api/v1/workloads?pod=p-1&limit=0", "limit")
bad_param("/api/v1/workloads?pod=p-1&cursor=xyz", "cursor")
check(get("/api/v1/gpus?pod=p-1")["count"] == 0, "gpus?pod: GPU A is held by none now")
check(get("/api/v1/gpus?namespace=ns-a")["count"] == 0, "gpus?namespace: none held now")

# ---- /api/v1/alerts
al = get("/api/v1/alerts")
check(al["count"] == 1 and al["alerts"][0]["kind"] == "ecc_sbe_rate" and al["alerts"][0]["cleared_at"] is None
      and al["alerts"][0]["details"] == {"rate_per_h": 12}, "alerts: open by default")
check(get("/api/v1/alerts?state=all")["count"] == 2, "alerts: state=all")
c = get("/api/v1/alerts?state=cleared&severity=fail&host=node-a&gpu=" + A)
check(c["count"] == 1 and c["alerts"][0]["cleared_at"] is not None, "alerts: cleared, filtered")
check(get("/api/v1/alerts?state=all&limit=1")["count"] == 1, "alerts: limit")
check(get("/api/v1/alerts?host=node-b")["count"] == 0, "alerts: another host has none")
bad_param("/api/v1/alerts?state=closed", "state")
bad_param("/api/v1/alerts?severity=critical", "severity")
bad_param("/api/v1/alerts?limit=0", "limit")
bad_param("/api/v1/alerts?limit=ten", "limit")
bad_param("/api/v1/alerts?limit=1001", "limit")
bad_param("/api/v1/alerts?gpu=x%20y", "gpu")

# ---- input that is not valid UTF-8 or over its bound: a 400 naming it, counted as sent
EURO = urllib.parse.quote("\u20ac")
utf8_cases = [
    ("/api/v1/gpus?status=%FF", "status"),
    ("/api/v1/gpus?host=%FF%FE", "host"),            # went to the database: 503 before
    ("/api/v1/gpus?host=" + "a" * 300, "host"),        # over 256 bytes
    ("/api/v1/alerts?gpu=" + EURO * 100, "gpu"),       # cut inside a character: 500 before
    ("/api/v1/alerts?state=x" + EURO * 100, "state"),
    ("/api/v1/alerts?host=%C0%AF", "host"),           # an overlong '/'
    ("/api/v1/alerts?%FF=1", None),
    ("/api/v1/gpus/" + EURO * 40, "uuid"),
    ("/api/v1/gpus/%ED%A0%80", "uuid"),               # a surrogate
    ("/api/v1/gpus/" + EURO * 200 + "/metrics", "uuid"),
]
c0 = counters()
sent = {"2xx": 0, "4xx": 0, "5xx": 0}
for path, param in utf8_cases:
    body = get(path, 400)
    sent["4xx"] += 1  # get() checked it was 400; a wrong one fails there
    if isinstance(body, dict):
        check(body.get("error") == "bad_parameter" and (param is None or body.get("parameter") == param),
              f"{path[:60]}: bad_parameter naming '{param}' ({body.get('parameter')})")
for path in ("/api/v1/%FF", "/" + EURO * 300):
    st, body = raw_get(path)
    sent[f"{st // 100}xx"] += 1
    check(st == 400 and isinstance(body, dict) and body.get("error") == "bad_parameter",
          f"{path[:40]}: a path that is not UTF-8 or too long is a 400 bad_parameter ({st})")
    if isinstance(body, dict):
        validate_schema(path[:40], "GET", st, {"$ref": "#/components/schemas/Error"}, body)
c1 = counters()
delta = {k: c1[k] - c0[k] for k in c0}
sent["2xx"] += 1  # the first /metrics
check(delta == sent, f"/metrics counts the statuses sent: {delta} == {sent}")

# ---- bad values are the client's: validated before any query, never a database outage
bad_param(f"/api/v1/gpus/{A}/metrics?from=100000000000000000000", "from")
bad_param(f"/api/v1/gpus/{A}/metrics?to=99999999999999", "to")
bad_param(f"/api/v1/gpus/{A}/metrics?from=0001-01-01T00:00:00Z&to=1970-01-01T01:00:00Z", "from")
bad_param(f"/api/v1/gpus/{A}/metrics?from={now - 3600:.0f}&to={now:.0f}&step=1e300", "step")
for path in (f"/api/v1/gpus/{A}/metrics?from=100000000000000000000", "/api/v1/gpus?host=%FF",
             f"/api/v1/gpus/{A}/metrics?to=99999999999999"):
    no_db_text(path, raw_get(path)[1])

# ---- /api/v1/gpus page by page: 530 more GPUs (cluster pg) on hosts with characters a URL
# must escape, without a host, without an index; every 5th fails its newest score
sql("""INSERT INTO gpus (gpu_key, uuid, gpu_index, hostname, cluster, first_seen, last_seen)
SELECT 'GPU-pg' || lpad(i::text, 4, '0'), 'GPU-pg' || lpad(i::text, 4, '0'),
       CASE WHEN i % 97 = 3 THEN NULL ELSE i % 8 END,
       CASE WHEN i < 3 THEN NULL WHEN i < 6 THEN 'pg h&x/ü' ELSE 'pg-' || lpad((i / 8)::text, 3, '0') END,
       'pg', now(), now()
FROM generate_series(0, 529) AS i;
INSERT INTO gpu_health_scores (time, gpu_key, score, status)
SELECT now() - interval '1 min', 'GPU-pg' || lpad(i::text, 4, '0'),
       CASE WHEN i % 5 = 0 THEN 10 ELSE 95 END, CASE WHEN i % 5 = 0 THEN 'fail' ELSE 'pass' END
FROM generate_series(0, 529) AS i""")


def fleet(where="true"):
    """(host, index, key) of the GPUs, in page order computed here: no host or index first."""
    rows = sql(f"SELECT coalesce(g.hostname, '') || chr(124) || coalesce(g.gpu_index, -1) || chr(124) || g.gpu_key "
               f"FROM gpus g LEFT JOIN LATERAL (SELECT status FROM gpu_health_scores s WHERE s.gpu_key = g.gpu_key "
               f"ORDER BY time DESC LIMIT 1) h ON true WHERE {where}").split("\n")
    out = [tuple(r.split("|")) for r in rows if r]
    out.sort(key=lambda t: (t[0].encode(), int(t[1]), t[2].encode()))  # the test database is C-collated
    return [t[2] for t in out]


def pages(query, limit=None):
    """Follows next from the first page; returns (keys, number of pages)."""
    path = "/api/v1/gpus" + (f"?limit={limit}" if limit else "") + (("&" if limit else "?") + query if query else "")
    keys, n, want_limit = [], 0, limit or 500
    while path:
        b = get(path) if n < 3 or n % 100 == 0 else get_quiet(path)
        if not isinstance(b, dict) or "gpus" not in b:
            bad(f"{path}: no page")
            break
        n += 1
        if b["count"] != len(b["gpus"]) or b["limit"] != want_limit or b["count"] > want_limit:
            bad(f"{path}: count {b['count']}, {len(b['gpus'])} GPUs, limit {b['limit']} (want {want_limit})")
        if b["next"] is not None and b["count"] != want_limit:
            bad(f"{path}: a page before the last has {b['count']} GPUs, not {want_limit}")
        if (b["next"] is None) != (b["next_cursor"] is None) or (b["next"] and b["next_cursor"] not in b["next"]):
            bad(f"{path}: next {b['next']} and next_cursor {b['next_cursor']} disagree")
        keys += [x["gpu_key"] for x in b["gpus"]]
        path = b["next"]
        if n > 2000:
            bad("more than 2000 pages: next never ends")
            break
    return keys, n


def get_quiet(path):
    with urllib.request.urlopen(BASE + path, timeout=10) as r:
        return json.loads(r.read())


everything = fleet()
N = len(everything)
for limit in (1, 7, None, 5000):
    keys, n = pages("", limit)
    want_pages = -(-N // (limit or 500))
    check(keys == everything and n == want_pages,
          f"limit={limit}: {n} pages (want {want_pages}) give all {N} GPUs once each, in order "
          f"({len(keys)} GPUs, {len(set(keys))} distinct)")
first = get("/api/v1/gpus")
check(first["count"] == 500 and first["limit"] == 500 and first["next"].startswith("/api/v1/gpus?limit=500&cursor="),
      f"no limit: the first 500 GPUs and a next ({first['count']}, {first['next'][:40]}...)")
check(first["gpus"][0]["hostname"] is None, "GPUs without a host come first")
for query, where in (("host=pg%20h%26x%2F%C3%BC", "g.hostname = 'pg h&x/ü'"),
                     ("cluster=pg&status=fail", "g.cluster = 'pg' AND h.status = 'fail'"),
                     ("status=pass&host=pg-010", "g.hostname = 'pg-010' AND h.status = 'pass'"),
                     ("cluster=none", "false")):
    want = fleet(where)
    for limit in (1, 7):
        keys, n = pages(query, limit)
        check(keys == want and n == max(1, -(-len(want) // limit)),
              f"{query} limit={limit}: {n} pages give the {len(want)} matching GPUs once each, in order")
mid = get("/api/v1/gpus?limit=7&cluster=pg")
nxt = get(mid["next"])
check([x["gpu_key"] for x in nxt["gpus"]] == fleet("g.cluster = 'pg'")[7:14] and "cluster=pg" in mid["next"],
      "next keeps the filters: the second page of cluster=pg")
# the cursor is a position, not a filter: a GPU added before it is not on later pages
sql("INSERT INTO gpus (gpu_key, uuid, hostname, gpu_index, cluster, first_seen, last_seen) "
    "VALUES ('GPU-pg-late', 'GPU-pg-late', '', 0, 'pg', now(), now())")
again = get(mid["next"])
check(again["gpus"] == nxt["gpus"], "a GPU added before the cursor moves nothing on the next page")
for v in ("0", "5001", "x", "", "-1", "+5", "1e3", "99999999999999999999", "%C3%BC"):
    bad_param(f"/api/v1/gpus?limit={v}", "limit")
import base64
def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
for v in ("!!!", "", "a", b64(b"{}"), b64(b'[1,"pg-000",0]'), b64(b'[2,"pg-000",0,"k"]'),
          b64(b'[1,"pg-000",-2,"k"]'), b64(b'[1,"pg-000",0,""]'), b64(b'[1,"\\u0000",0,"k"]'),
          b64(b'[1,"\xff",0,"k"]'), first["next_cursor"] + "A", "A" * 5000):
    bad_param(f"/api/v1/gpus?cursor={v}", "cursor")
bad_param("/api/v1/gpus?host=" + "h" * 300, "host")
bad_param("/api/v1/gpus?cluster=%FF", "cluster")

# a page ends before limit when its answer would pass 8 MiB: 6,000 GPUs with 2 kB models
sql("""INSERT INTO gpus (gpu_key, uuid, gpu_index, hostname, model, cluster, first_seen, last_seen)
SELECT 'GPU-big' || lpad(i::text, 5, '0'), 'GPU-big' || lpad(i::text, 5, '0'), i % 8,
       'zz-big-' || lpad((i / 8)::text, 4, '0'), repeat('m', 2000), 'big', now(), now()
FROM generate_series(0, 5999) AS i""")
want, keys, path, sizes = fleet("g.cluster = 'big'"), [], "/api/v1/gpus?cluster=big&limit=5000", []
while path:
    with urllib.request.urlopen(BASE + path, timeout=30) as r:
        raw = r.read()
    b = json.loads(raw)
    sizes.append((len(raw), b["count"]))
    keys += [x["gpu_key"] for x in b["gpus"]]
    path = b["next"]
check(keys == want and len(sizes) >= 2 and all(n <= 8 * 2**20 + 4096 for n, _ in sizes) and sizes[0][1] < 5000,
      f"limit=5000 of 2 kB rows: pages end at 8 MiB ({sizes}) and still give the {len(want)} GPUs once each, in order")

# ---- other paths and methods
nf = get("/api/v1/nothing", 404)
check(nf["error"] == "not_found", "an unknown path is a JSON 404")
get("/api/v1/gpus", 405, method="POST")
get("/api/v1/alerts", 405, method="DELETE")
get("/api/v1/gpus", 200, method="HEAD")

# ---- /metrics (last: counts what came before)
text = get("/metrics")
m = re.search(r'^gpuhealth_api_requests_total\{endpoint="alerts"\} (\d+)$', text, re.M)
check(m and int(m.group(1)) >= 12, f"/metrics counts the alerts requests ({m and m.group(1)})")
m = re.search(r'^gpuhealth_api_responses_total\{class="4xx"\} (\d+)$', text, re.M)
check(m and int(m.group(1)) >= 20, f"/metrics counts 4xx answers ({m and m.group(1)})")
try:
    from prometheus_client.parser import text_string_to_metric_families
    fams = {f.name for f in text_string_to_metric_families(text)}
    check("gpuhealth_api_requests" in fams and "gpuhealth_api_db_connections" in fams,
          "/metrics parses as Prometheus text")
except ImportError:
    bad("python3-prometheus-client is missing (scripts/install-deps.sh --test)")

# ---- database unreachable: 503 with the Error schema, never a hang or a 200
d = get("/healthz", 503, base=DOWN)
check(d["status"] == "unavailable" and d["database"] == "down", f"/healthz 503 when the database is down")
no_db_text("/healthz (database down)", d)
e = get("/api/v1/gpus", 503, base=DOWN)
check(e["error"] == "database_unavailable", "/api/v1/gpus 503 database_unavailable")
no_db_text("/api/v1/gpus (database down)", e)

# ---- a database that answers but refuses the query: a 500 of ours, not an outage
hn = get("/healthz", 200, base=NOPRIV)
check(hn == {"status": "ok", "database": "up"}, f"/healthz: the database is up ({hn})")
for path in ("/api/v1/gpus", f"/api/v1/gpus/{A}", "/api/v1/alerts"):
    e = get(path, 500, base=NOPRIV)
    if isinstance(e, dict):
        check(e.get("error") == "internal", f"{path} without the right to read: 500 internal ({e.get('error')})")
        no_db_text(path + " (no privilege)", e)

# every documented path was exercised
missing = set(SPEC["paths"]) - seen_paths
check(not missing, f"every path in the OpenAPI document was checked (missing: {sorted(missing)})")

print(f"{passes} passed, {fails} failed")
sys.exit(1 if fails else 0)
