#!/usr/bin/env python3
"""Runs the SQL of every panel and every variable of the Grafana dashboards against a real
gpuhealth database, the way Grafana's PostgreSQL data source would send it.

  grafana_sql.py CONNINFO DASHBOARD.json...

Grafana's macros are expanded as its PostgreSQL data source expands them
($__timeFilter(c) -> c BETWEEN 'from' AND 'to'; $__timeGroup(c, i) ->
floor(extract(epoch from c)/s)*s; $__timeGroupAlias adds AS "time"; $__interval and
$__interval_ms from the range and the panel's minimum interval), variables with the values
their own queries return (a multi-value variable as a quoted, comma-separated list). Every
query must run without error as the given (read-only) role, return rows for the seeded data,
and a time series query must return a "time" column. Exit 0 when all hold.

A variable with a custom "All" value (allValue, inserted as it is) is run both ways: every
panel with "All" (rows required, as above) and again with each of its values on its own (the
query must run). The fleet dashboard's namespace variable (issue #24) is also checked for its
meaning: its "GPUs" table lists every GPU under "All" (those without a workload too) and, under
one namespace, exactly the GPUs whose current gpu_workloads row is in it.
"""
import csv
import io
import json
import re
import subprocess
import sys
import time

PG = sys.argv[1]
passes = fails = 0


def ok(what):
    global passes
    passes += 1
    print("ok:", what)


def bad(what):
    global fails
    fails += 1
    print("FAIL:", what, file=sys.stderr)


def run(sql):
    """Returns (header, rows) or raises RuntimeError with the server's message."""
    p = subprocess.run(["psql", "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", PG, "-c", sql],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip())
    rows = list(csv.reader(io.StringIO(p.stdout)))
    return (rows[0] if rows else []), rows[1:]


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", text.strip().strip("'\""))
    if not m:
        raise ValueError(f"interval '{text}' is not one Grafana understands")
    n, u = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[u]


def rel(expr, now):
    if expr == "now":
        return now
    m = re.fullmatch(r"now-(\d+)([smhd])", expr)
    if not m:
        raise ValueError(f"time '{expr}' not understood by this test")
    return now - seconds(m.group(1) + m.group(2))


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def expand(sql, frm, to, interval_s, variables):
    # variables first (Grafana interpolates them before the macros)
    def var(m):
        name = m.group(1) or m.group(2)
        if name.startswith("__"):
            return m.group(0)
        if name not in variables:
            raise ValueError(f"unknown variable ${name}")
        return variables[name]
    sql = re.sub(r"\$\{(\w+)\}|\$(\w+)", var, sql)
    sql = sql.replace("$__interval_ms", str(int(interval_s * 1000)))
    sql = sql.replace("$__interval", f"{int(interval_s)}s")

    def group(m, alias):
        col, iv = m.group(1).strip(), m.group(2).strip()
        s = seconds(iv)
        out = f"floor(extract(epoch from {col})/{s:g})*{s:g}"
        return out + (' AS "time"' if alias else "")
    args = r"\(\s*([^,()]+(?:\([^()]*\))?[^,()]*)\s*,\s*([^,()]+)\s*(?:,\s*[^()]+)?\)"
    sql = re.sub(r"\$__timeGroupAlias" + args, lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup" + args, lambda m: group(m, False), sql)
    sql = re.sub(r"\$__timeFilter\(\s*([^()]+?)\s*\)",
                 lambda m: f"{m.group(1)} BETWEEN '{iso(frm)}' AND '{iso(to)}'", sql)
    sql = sql.replace("$__timeFrom()", f"'{iso(frm)}'").replace("$__timeTo()", f"'{iso(to)}'")
    if "$" in sql:
        raise ValueError(f"unexpanded macro or variable left: {sql[sql.index('$'):][:40]}")
    return sql


def quote(v):
    return "'" + v.replace("'", "''") + "'"


def panels_of(d):
    for p in d.get("panels", []):
        yield p
        for q in p.get("panels", []):  # collapsed rows
            yield q


for path in sys.argv[2:]:
    d = json.load(open(path))
    name = d.get("title", path)
    now = time.time()
    frm, to = rel(d["time"]["from"], now), rel(d["time"]["to"], now)
    variables = {}
    alternatives = []  # (name, [(label, value)]): a custom "All" and each value on its own
    for v in d.get("templating", {}).get("list", []):
        if v["type"] == "textbox" or v["type"] == "constant" or v["type"] == "custom":
            variables[v["name"]] = str(v.get("current", {}).get("value") or v.get("query"))
            continue
        if v["type"] != "query":
            bad(f"{name}: variable {v['name']} of type {v['type']} is not handled by this test")
            continue
        try:
            sql = expand(v["query"], frm, to, 60, variables)
            header, rows = run(sql)
        except (RuntimeError, ValueError) as e:
            bad(f"{name}: variable ${v['name']}: {e}")
            continue
        col = header.index("__value") if "__value" in header else 0
        values = [r[col] for r in rows]
        if not values:
            bad(f"{name}: variable ${v['name']} has no values with the seeded data")
            continue
        ok(f"{name}: variable ${v['name']} = {values}")
        if v.get("includeAll") and v.get("allValue") is not None:
            variables[v["name"]] = v["allValue"]  # "All": Grafana inserts it as it is
            alternatives.append((v["name"], [(x, quote(x)) for x in values]))
        elif v.get("multi") or v.get("includeAll"):
            variables[v["name"]] = ",".join(quote(x) for x in values)  # "All"
        else:
            variables[v["name"]] = values[0]
    n_panels = 0
    for p in panels_of(d):
        if p.get("type") in ("row", "text"):
            continue
        targets = p.get("targets") or []
        if not targets:
            bad(f"{name}: panel '{p.get('title')}' has no query")
        min_iv = seconds(p["interval"]) if p.get("interval") else 10
        interval_s = max(min_iv, round((to - frm) / 1000))
        for t in targets:
            n_panels += 1
            what = f"{name}: '{p.get('title')}' ({p['type']})"
            if not t.get("rawSql"):
                bad(f"{what}: target {t.get('refId')} has no rawSql")
                continue
            if t.get("datasource", p.get("datasource", {})).get("uid") != "gpuhealth-tsdb":
                bad(f"{what}: not on the provisioned data source gpuhealth-tsdb")
            try:
                sql = expand(t["rawSql"], frm, to, interval_s, variables)
                header, rows = run(sql)
            except (RuntimeError, ValueError) as e:
                bad(f"{what}: {e}\n   SQL: {t['rawSql']}")
                continue
            if t.get("format") == "time_series":
                if p["type"] != "timeseries":
                    bad(f"{what}: a time series query in a {p['type']} panel")
                if "time" not in header:
                    bad(f"{what}: no 'time' column (columns {header})")
                    continue
                vals = [h for h in header if h not in ("time", "metric")]
                if not vals:
                    bad(f"{what}: no value column")
                    continue
            if not rows:
                bad(f"{what}: no rows from the seeded data: the query cannot be shown to work")
                continue
            if all(all(c == "" for i, c in enumerate(r) if header[i] not in ("time", "metric")) for r in rows):
                bad(f"{what}: every value is NULL")
                continue
            ok(f"{what}: {len(rows)} rows, columns {header}")
    if n_panels == 0:
        bad(f"{name}: no panels")
    # each value of a variable with a custom "All", on its own: every query runs
    for vname, vals in alternatives:
        for label, value in vals:
            vs = dict(variables, **{vname: value})
            for p in panels_of(d):
                if p.get("type") in ("row", "text"):
                    continue
                min_iv = seconds(p["interval"]) if p.get("interval") else 10
                interval_s = max(min_iv, round((to - frm) / 1000))
                for t in p.get("targets") or []:
                    what = f"{name}: '{p.get('title')}' with ${vname} = {label}"
                    try:
                        header, rows = run(expand(t["rawSql"], frm, to, interval_s, vs))
                    except (RuntimeError, ValueError) as e:
                        bad(f"{what}: {e}")
                        continue
                    ok(f"{what}: runs, {len(rows)} rows")
    # the namespace filter's meaning, on the fleet dashboard's GPUs table
    gpus_table = [p for p in panels_of(d) if p.get("title") == "GPUs" and p.get("type") == "table"]
    ns_var = [v for v in d.get("templating", {}).get("list", []) if v["name"] == "namespace"]
    if gpus_table and ns_var:
        sql = gpus_table[0]["targets"][0]["rawSql"]
        cur = ("(SELECT DISTINCT ON (gpu_key) gpu_key, namespace FROM gpu_workloads "
               "ORDER BY gpu_key, first_seen DESC)")
        _, every = run("SELECT gpu_key FROM gpus ORDER BY 1")
        _, none = run(f"SELECT g.gpu_key FROM gpus g LEFT JOIN {cur} w ON w.gpu_key = g.gpu_key "
                      "WHERE w.namespace IS NULL")
        cases = [("All", ns_var[0].get("allValue"), sorted(r[0] for r in every))]
        for label, value in dict(alternatives).get("namespace", []):
            _, want = run(f"SELECT gpu_key FROM {cur} w WHERE namespace = {value} ORDER BY 1")
            cases.append((label, value, sorted(r[0] for r in want)))
        if len(cases) < 2:
            bad(f"{name}: the namespace variable has no value to check the filter with")
        if not none:
            bad(f"{name}: the seeded data has no GPU without a workload: All cannot be checked")
        for label, value, want in cases:
            try:
                header, rows = run(expand(sql, frm, to, 60, dict(variables, namespace=value)))
            except (RuntimeError, ValueError) as e:
                bad(f"{name}: GPUs with $namespace = {label}: {e}")
                continue
            got = sorted(r[header.index("gpu_key")] for r in rows)
            if got == want and want:
                ok(f"{name}: GPUs with $namespace = {label}: {got}")
            else:
                bad(f"{name}: GPUs with $namespace = {label}: {got}, expected {want}")
print(f"{passes} passed, {fails} failed")
sys.exit(1 if fails else 0)
