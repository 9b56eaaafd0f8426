#!/usr/bin/env python3
"""Writes the Grafana dashboards of docker/grafana/dashboards/ (the source of their JSON).

  python3 docker/grafana/make_dashboards.py      # rewrites dashboards/*.json

Every panel of fleet, gpu, health and pipeline queries the TimescaleDB/PostgreSQL data source
provisioned as uid gpuhealth-tsdb with SQL written for the gpuhealth schema (schema/*.sql);
tests/integration/test_grafana_sql.sh runs every one of them against a migrated, seeded database.

prometheus-health.json is over Prometheus instead: the scorer's --metrics-listen series
(gpuhealth_gpu_health_score, ..._status, ..._failure_probability, ..._recommended_action and
gpuhealth_scorer_*). The compose stack runs no Prometheus: the dashboard picks its data source
with the variable `datasource` (any Prometheus data source; import it, or provision it beside a
Prometheus of your own). tests/integration/test_prometheus_health.sh runs each panel's PromQL
against a real Prometheus scraping a scorer.
"""
import json
import os

DS = {"type": "grafana-postgresql-datasource", "uid": "gpuhealth-tsdb"}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")


class Layout:
    def __init__(self):
        self.x = self.y = 0
        self.row_h = 0
        self.next_id = 1

    def place(self, w, h):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + self.row_h
            self.row_h = 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos


def target(sql, fmt):
    return {"refId": "A", "datasource": DS, "editorMode": "code", "format": fmt,
            "rawQuery": True, "rawSql": " ".join(sql.split())}


def timeseries(lay, title, sql, unit="short", w=12, h=8, min_interval=None, desc=""):
    p = {"id": lay.next_id, "type": "timeseries", "title": title, "description": desc,
         "datasource": DS, "gridPos": lay.place(w, h),
         "fieldConfig": {"defaults": {"unit": unit, "custom": {"lineWidth": 1, "fillOpacity": 10,
                                                                "spanNulls": False}},
                         "overrides": []},
         "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                     "tooltip": {"mode": "multi", "sort": "desc"}},
         "targets": [target(sql, "time_series")]}
    if min_interval:
        p["interval"] = min_interval
    lay.next_id += 1
    return p


def table(lay, title, sql, w=24, h=8, desc=""):
    p = {"id": lay.next_id, "type": "table", "title": title, "description": desc, "datasource": DS,
         "gridPos": lay.place(w, h), "fieldConfig": {"defaults": {}, "overrides": []},
         "options": {"showHeader": True}, "targets": [target(sql, "table")]}
    lay.next_id += 1
    return p


def stat(lay, title, sql, w=8, h=4, unit="short"):
    p = {"id": lay.next_id, "type": "stat", "title": title, "datasource": DS,
         "gridPos": lay.place(w, h), "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                     "colorMode": "value", "graphMode": "none", "textMode": "value_and_name"},
         "targets": [target(sql, "table")]}
    lay.next_id += 1
    return p


def text(lay, title, content, w=24, h=4):
    p = {"id": lay.next_id, "type": "text", "title": title, "gridPos": lay.place(w, h),
         "options": {"mode": "markdown", "content": content}}
    lay.next_id += 1
    return p


def query_var(name, label, sql, multi=False, all_value=None):
    sql = " ".join(sql.split())
    v = {"name": name, "label": label, "type": "query", "datasource": DS, "query": sql,
         "definition": sql, "refresh": 1, "sort": 0, "current": {}, "options": [],
         "multi": multi, "includeAll": multi}
    if all_value is not None:
        # Grafana inserts a custom "All" value as it is (not quoted, not the list of values)
        v["allValue"] = all_value
        v["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return v


# Each GPU's current workload: its newest gpu_workloads row (schema 013; namespace NULL: none)
CURRENT_WORKLOAD = """(SELECT DISTINCT ON (gpu_key) gpu_key, namespace, pod, container
    FROM gpu_workloads ORDER BY gpu_key, first_seen DESC)"""
# The fleet dashboard's namespace variable: "All" ('*') keeps every GPU, those without a
# workload too; chosen namespaces keep the GPUs whose current workload is in one of them.
NS_ALL = "'*'"


def ns_filter(key):
    return f"""('*' IN ($namespace) OR {key} IN (SELECT cw.gpu_key FROM {CURRENT_WORKLOAD} cw
        WHERE cw.namespace IN ($namespace)))"""


def dashboard(uid, title, panels, variables=(), time_from="now-6h"):
    return {"uid": uid, "title": title, "tags": ["gpuhealth"], "timezone": "utc",
            "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
            "time": {"from": time_from, "to": "now"}, "graphTooltip": 1,
            "templating": {"list": list(variables)}, "annotations": {"list": []},
            "links": [{"title": "gpuhealth", "type": "dashboards", "tags": ["gpuhealth"],
                       "asDropdown": True}],
            "panels": panels}


def fleet():
    L = Layout()
    host_mean = """SELECT $__timeGroupAlias(r.minute, $__interval), g.hostname AS metric,
        sum(r.{c}_sum) / NULLIF(sum(r.{c}_n), 0) AS value
        FROM gpu_metrics_1min_current r JOIN gpus g ON g.gpu_key = r.gpu_key
        WHERE $__timeFilter(r.minute) AND """ + ns_filter("r.gpu_key").replace("{", "{{").replace("}", "}}") + """
        GROUP BY 1, 2 ORDER BY 1"""
    panels = [
        stat(L, "GPUs", f"""SELECT count(*) AS "GPUs",
            count(*) FILTER (WHERE g.last_seen > now() - interval '5 minutes') AS "reporting",
            count(DISTINCT g.hostname) AS "hosts" FROM gpus g WHERE {ns_filter("g.gpu_key")}"""),
        stat(L, "Health now", f"""SELECT count(*) FILTER (WHERE h.status = 'pass') AS "pass",
            count(*) FILTER (WHERE h.status = 'warn') AS "warn",
            count(*) FILTER (WHERE h.status = 'fail') AS "fail",
            (SELECT count(*) FROM alerts a WHERE a.cleared_at IS NULL
             AND {ns_filter("a.gpu_key")}) AS "open alerts"
            FROM v_latest_health h WHERE {ns_filter("h.gpu_key")}"""),
        stat(L, "Fleet now", f"""SELECT round(avg(m.gpu_temp)::numeric, 1) AS "mean temp C",
            max(m.gpu_temp) AS "max temp C", round(sum(m.power_usage)::numeric) AS "power W",
            round(avg(m.gpu_util)::numeric, 1) AS "util %" FROM v_latest_gpu_metrics m
            WHERE {ns_filter("m.gpu_key")}"""),
        timeseries(L, "GPU temperature by host (mean)", host_mean.format(c="gpu_temp"), "celsius", min_interval="1m"),
        timeseries(L, "GPU temperature by host (max)", f"""SELECT $__timeGroupAlias(r.minute, $__interval),
            g.hostname AS metric, max(r.gpu_temp_max) AS value FROM gpu_metrics_1min_current r
            JOIN gpus g ON g.gpu_key = r.gpu_key WHERE $__timeFilter(r.minute)
            AND {ns_filter("r.gpu_key")} GROUP BY 1, 2 ORDER BY 1""", "celsius", min_interval="1m"),
        timeseries(L, "Fleet power draw", f"""SELECT "time", sum(p) AS "power" FROM (
            SELECT $__timeGroupAlias(minute, $__interval), gpu_key,
            sum(power_usage_sum) / NULLIF(sum(power_usage_n), 0) AS p FROM gpu_metrics_1min_current
            WHERE $__timeFilter(minute) AND {ns_filter("gpu_key")} GROUP BY 1, 2) per_gpu
            GROUP BY 1 ORDER BY 1""", "watt", min_interval="1m"),
        timeseries(L, "GPU utilisation by host (mean)", host_mean.format(c="gpu_util"), "percent", min_interval="1m"),
        timeseries(L, "Framebuffer used by host (mean per GPU)", host_mean.format(c="fb_used"), "decmbytes", min_interval="1m"),
        timeseries(L, "Memory copy utilisation by host (mean)", host_mean.format(c="mem_copy_util"), "percent", min_interval="1m"),
        table(L, "GPUs", f"""SELECT g.hostname, g.gpu_index, g.gpu_key, g.model, cw.namespace,
            cw.pod, cw.container, h.score, h.status, m.gpu_temp, m.power_usage, m.gpu_util,
            g.last_seen FROM gpus g
            LEFT JOIN {CURRENT_WORKLOAD} cw ON cw.gpu_key = g.gpu_key
            LEFT JOIN v_latest_health h ON h.gpu_key = g.gpu_key
            LEFT JOIN v_latest_gpu_metrics m ON m.gpu_key = g.gpu_key
            WHERE {ns_filter("g.gpu_key")}
            ORDER BY g.hostname, g.gpu_index, g.gpu_key""", h=10),
    ]
    variables = [query_var("namespace", "Namespace", f"""SELECT DISTINCT namespace
        FROM {CURRENT_WORKLOAD} cw WHERE namespace IS NOT NULL ORDER BY 1""",
                           multi=True, all_value=NS_ALL)]
    return dashboard("gpuhealth-fleet", "gpuhealth / Fleet overview", panels, variables)


def gpu():
    L = Layout()
    raw = """SELECT $__timeGroupAlias(time, $__interval), {cols} FROM gpu_metrics
        WHERE gpu_key = '$gpu' AND $__timeFilter(time) GROUP BY 1 ORDER BY 1"""
    panels = [
        timeseries(L, "Temperature", raw.format(cols='avg(gpu_temp) AS "GPU", avg(memory_temp) AS "memory", max(slowdown_temp) AS "slowdown"'), "celsius"),
        timeseries(L, "Power", raw.format(cols='avg(power_usage) AS "power", max(power_limit) AS "limit"'), "watt"),
        timeseries(L, "Utilisation", raw.format(cols='avg(gpu_util) AS "GPU", avg(mem_copy_util) AS "memory copy", avg(gr_engine_active) * 100 AS "graphics engine", avg(tensor_active) * 100 AS "tensor"'), "percent"),
        timeseries(L, "Clocks", raw.format(cols='avg(sm_clock) AS "SM", avg(mem_clock) AS "memory"'), "MHz"),
        timeseries(L, "Framebuffer", raw.format(cols='avg(fb_used) AS "used", avg(fb_free) AS "free"'), "decmbytes"),
        timeseries(L, "ECC and row remapping (counters)", raw.format(cols='max(ecc_sbe_volatile) AS "SBE volatile", max(ecc_dbe_volatile) AS "DBE volatile", max(correctable_remapped_rows) AS "remapped (correctable)", max(uncorrectable_remapped_rows) AS "remapped (uncorrectable)", max(retired_pages_pending) AS "retired pages pending"'), "short"),
        timeseries(L, "XID and PCIe replays", raw.format(cols='max(xid) AS "last XID", max(pcie_replay) AS "PCIe replays"'), "short"),
        timeseries(L, "Health score", """SELECT $__timeGroupAlias(time, $__interval), min(score) AS "score",
            min(thermal) AS "thermal", min(memory) AS "memory", min(power) AS "power",
            min(interconnect) AS "interconnect", min(xid) AS "xid" FROM gpu_health_scores
            WHERE gpu_key = '$gpu' AND $__timeFilter(time) GROUP BY 1 ORDER BY 1""", "short"),
        timeseries(L, "Failure probability", """SELECT $__timeGroupAlias(time, $__interval),
            horizon_hours::text || ' h' AS metric, max(probability) AS value
            FROM gpu_failure_predictions WHERE gpu_key = '$gpu' AND $__timeFilter(time)
            GROUP BY 1, 2 ORDER BY 1""", "percentunit", w=24),
        table(L, "Alerts of this GPU", """SELECT raised_at, cleared_at, severity, kind, message
            FROM alerts WHERE gpu_key = '$gpu' AND (cleared_at IS NULL OR $__timeFilter(raised_at))
            ORDER BY raised_at DESC LIMIT 100"""),
    ]
    variables = [
        query_var("host", "Host", "SELECT DISTINCT hostname FROM gpus WHERE hostname IS NOT NULL ORDER BY 1"),
        query_var("gpu", "GPU", "SELECT gpu_key AS __value, coalesce('#' || gpu_index::text || ' ', '') || gpu_key AS __text FROM gpus WHERE hostname = '$host' ORDER BY gpu_index, gpu_key"),
    ]
    return dashboard("gpuhealth-gpu", "gpuhealth / One GPU", panels, variables, "now-3h")


def health():
    L = Layout()
    panels = [
        timeseries(L, "Health score by GPU (lowest per interval)", """SELECT $__timeGroupAlias(h.time, $__interval),
            g.hostname || ' #' || coalesce(g.gpu_index::text, '?') || coalesce('/' || g.mig_instance::text, '') AS metric,
            min(h.score) AS value FROM gpu_health_scores h JOIN gpus g ON g.gpu_key = h.gpu_key
            WHERE $__timeFilter(h.time) AND g.hostname IN ($host) GROUP BY 1, 2 ORDER BY 1"""),
        timeseries(L, "GPUs by health status", """SELECT $__timeGroupAlias(h.time, $__interval),
            h.status AS metric, count(DISTINCT h.gpu_key) AS value FROM gpu_health_scores h
            JOIN gpus g ON g.gpu_key = h.gpu_key WHERE $__timeFilter(h.time) AND g.hostname IN ($host)
            GROUP BY 1, 2 ORDER BY 1"""),
        timeseries(L, "Failure probability by GPU", """SELECT $__timeGroupAlias(p.time, $__interval),
            g.hostname || ' #' || coalesce(g.gpu_index::text, '?') || ' ' || p.horizon_hours::text || ' h' AS metric,
            max(p.probability) AS value FROM gpu_failure_predictions p JOIN gpus g ON g.gpu_key = p.gpu_key
            WHERE $__timeFilter(p.time) AND g.hostname IN ($host) GROUP BY 1, 2 ORDER BY 1""", "percentunit"),
        timeseries(L, "Alerts raised", """SELECT $__timeGroupAlias(raised_at, $__interval), severity AS metric,
            count(*) AS value FROM alerts WHERE $__timeFilter(raised_at) AND hostname IN ($host)
            GROUP BY 1, 2 ORDER BY 1"""),
        table(L, "Open alerts", """SELECT raised_at, hostname, gpu_key, severity, kind, message, details
            FROM alerts WHERE cleared_at IS NULL AND hostname IN ($host) ORDER BY raised_at DESC LIMIT 200"""),
        table(L, "Newest prediction per GPU and horizon", """SELECT DISTINCT ON (p.gpu_key, p.horizon_hours)
            p.time, g.hostname, p.gpu_key, p.horizon_hours, p.probability, p.recommendation, p.model_version
            FROM gpu_failure_predictions p JOIN gpus g ON g.gpu_key = p.gpu_key WHERE g.hostname IN ($host)
            ORDER BY p.gpu_key, p.horizon_hours, p.time DESC""", w=12),
        table(L, "Lowest scores now", """SELECT hostname, gpu_index, gpu_key, score, status, thermal, memory,
            power, interconnect, xid, time FROM v_latest_health WHERE hostname IN ($host)
            ORDER BY score, hostname, gpu_index LIMIT 20""", w=12),
    ]
    variables = [query_var("host", "Host", "SELECT DISTINCT hostname FROM gpus WHERE hostname IS NOT NULL ORDER BY 1", multi=True)]
    return dashboard("gpuhealth-health", "gpuhealth / Health", panels, variables, "now-24h")


def pipeline():
    L = Layout()
    panels = [
        timeseries(L, "Ingest rate", """SELECT $__timeGroupAlias(minute, $__interval),
            sum(samples) / ($__interval_ms / 1000.0) AS "samples/s" FROM gpu_metrics_1min_current
            WHERE $__timeFilter(minute) GROUP BY 1 ORDER BY 1""", "short", min_interval="1m",
                   desc="Samples written by the sink per second of sample time (from the 1-minute rollups)."),
        timeseries(L, "Ingest rate by host", """SELECT $__timeGroupAlias(r.minute, $__interval), g.hostname AS metric,
            sum(r.samples) / ($__interval_ms / 1000.0) AS value FROM gpu_metrics_1min_current r
            JOIN gpus g ON g.gpu_key = r.gpu_key WHERE $__timeFilter(r.minute) GROUP BY 1, 2 ORDER BY 1""",
                   "short", min_interval="1m"),
        timeseries(L, "GPUs reporting", """SELECT $__timeGroupAlias(minute, $__interval),
            count(DISTINCT gpu_key) AS "GPUs" FROM gpu_metrics_1min_current WHERE $__timeFilter(minute)
            GROUP BY 1 ORDER BY 1""", "short", min_interval="1m"),
        timeseries(L, "Sample coverage", """SELECT $__timeGroupAlias(minute, $__interval),
            least(1.0, sum(samples) / NULLIF(count(DISTINCT gpu_key) * ($__interval_ms / 1000.0) / $interval_s, 0)) AS "received / expected"
            FROM gpu_metrics_1min_current WHERE $__timeFilter(minute) GROUP BY 1 ORDER BY 1""", "percentunit",
                   min_interval="1m",
                   desc="Samples received per GPU over those expected at the collection interval (variable interval_s)."),
        stat(L, "Newest sample age", """SELECT extract(epoch FROM now() - max(time)) AS "age"
            FROM gpu_metrics WHERE time > now() - interval '1 day'""", unit="s"),
        table(L, "Data freshness (lag) by host", """SELECT hostname, count(*) AS gpus,
            round(extract(epoch FROM now() - max(last_seen))::numeric, 1) AS "lag s",
            max(last_seen) AS "newest sample" FROM gpus GROUP BY 1 ORDER BY 3 DESC""", w=16, h=4),
        timeseries(L, "Kafka consumer lag by sink", """SELECT $__timeGroupAlias(time, $__interval),
            instance AS metric, max(lag) AS value FROM pipeline_stats
            WHERE $__timeFilter(time) AND service = 'sink' GROUP BY 1, 2 ORDER BY 1""", "short",
                   desc="Messages each sink (hostname:pid) is behind the ends of its partitions, from "
                        "the rows it writes to pipeline_stats every 10 s. Gaps: lag unknown "
                        "(no partitions assigned yet) or the sink not running."),
        timeseries(L, "Dead letters per minute", """SELECT $__timeGroupAlias(time, $__interval),
            sum(d) / ($__interval_ms / 60000.0) AS "dead letters/min" FROM (
            SELECT time, CASE WHEN p IS NULL THEN 0 WHEN dead_letters < p THEN dead_letters
            ELSE dead_letters - p END AS d FROM (
            SELECT time, dead_letters, lag(dead_letters) OVER (PARTITION BY service, instance ORDER BY time) AS p
            FROM pipeline_stats WHERE $__timeFilter(time) AND service = 'sink') w) x
            GROUP BY 1 ORDER BY 1""", "short", min_interval="1m",
                   desc="Events the sinks sent to the dead-letter topic (deltas of the pipeline_stats "
                        "counters). Read them, with the reason in the gpuhealth.reason header: "
                        "kcat -b localhost:9092 -C -t gpu-metrics-dlq -e -f '%h %s\\n'"),
        timeseries(L, "Rows written per second by sink", """SELECT $__timeGroupAlias(time, $__interval),
            instance AS metric, sum(d) / ($__interval_ms / 1000.0) AS value FROM (
            SELECT time, instance, CASE WHEN p IS NULL THEN 0 WHEN rows_written < p THEN rows_written
            ELSE rows_written - p END AS d FROM (
            SELECT time, instance, rows_written, lag(rows_written) OVER (PARTITION BY service, instance ORDER BY time) AS p
            FROM pipeline_stats WHERE $__timeFilter(time) AND service = 'sink') w) x
            GROUP BY 1, 2 ORDER BY 1""", "short", w=16, min_interval="1m",
                   desc="New rows each sink committed to gpu_metrics per second of wall-clock time "
                        "(deltas of the pipeline_stats counters; Ingest rate above is by sample time)."),
        stat(L, "Consumer lag now", """SELECT sum(lag) AS "messages behind" FROM (
            SELECT DISTINCT ON (service, instance) lag FROM pipeline_stats
            WHERE time > now() - interval '1 minute' ORDER BY service, instance, time DESC) l""", h=8),
        table(L, "Sinks (latest report in the range)", """SELECT DISTINCT ON (service, instance) instance,
            consumer_group AS "group", topic, lag, consumed, rows_written AS "rows written",
            dead_letters AS "dead letters", db_errors AS "db errors", time AS "reported"
            FROM pipeline_stats WHERE $__timeFilter(time) ORDER BY service, instance, time DESC""", h=6,
              desc="Counters since each sink process started; a restarted sink is a new instance."),
    ]
    variables = [{"name": "interval_s", "label": "Collection interval (s)", "type": "textbox",
                  "query": "10", "current": {"text": "10", "value": "10"},
                  "options": [{"selected": True, "text": "10", "value": "10"}]}]
    return dashboard("gpuhealth-pipeline", "gpuhealth / Pipeline", panels, variables, "now-6h")


PROM = {"type": "prometheus", "uid": "${datasource}"}
GPU_LEGEND = "{{Hostname}} #{{gpu}}{{GPU_I_ID}} {{UUID}}"


def prom_panel(lay, kind, title, expr, legend="", unit="short", w=12, h=8, desc="", instant=False):
    p = {"id": lay.next_id, "type": kind, "title": title, "description": desc, "datasource": PROM,
         "gridPos": lay.place(w, h), "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
         "targets": [{"refId": "A", "datasource": PROM, "editorMode": "code", "expr": expr,
                      "legendFormat": legend, "range": not instant, "instant": instant,
                      "format": "table" if kind == "table" else "time_series"}]}
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"lineWidth": 1, "fillOpacity": 10}
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "none", "textMode": "value_and_name"}
    else:
        p["options"] = {"showHeader": True}
    lay.next_id += 1
    return p


def prometheus_health():
    L = Layout()
    sel = 'Hostname=~"$host"'
    panels = [
        prom_panel(L, "stat", "GPUs by health status now",
                   f'sum by (status) (gpuhealth_gpu_health_status{{{sel}}})', "{{status}}", w=8, h=4,
                   instant=True),
        prom_panel(L, "stat", "GPUs by recommended action now",
                   f'sum by (action) (gpuhealth_gpu_recommended_action{{{sel}}})', "{{action}}", w=10,
                   h=4, instant=True),
        prom_panel(L, "stat", "Open alerts (scorers)", "sum(gpuhealth_scorer_open_alerts)", "open alerts",
                   w=6, h=4, instant=True),
        prom_panel(L, "timeseries", "Health score by GPU", f"gpuhealth_gpu_health_score{{{sel}}}",
                   GPU_LEGEND, desc="The scorer's health score (100 healthy, 0 failed)."),
        prom_panel(L, "timeseries", "Failure probability by GPU",
                   f"gpuhealth_gpu_failure_probability{{{sel}}}", GPU_LEGEND, "percentunit",
                   desc="Predicted probability of a failure within the scorer's --horizon."),
        prom_panel(L, "table", "GPUs not passing now",
                   f'gpuhealth_gpu_health_status{{status!="pass",{sel}}} == 1', w=12, instant=True,
                   desc="One row per GPU whose status is warn or fail, with its labels and workload."),
        prom_panel(L, "table", "Recommended actions other than keep",
                   f'gpuhealth_gpu_recommended_action{{action!="keep",{sel}}} == 1', w=12, instant=True),
        prom_panel(L, "timeseries", "Workloads on failing GPUs",
                   f'count by (namespace, pod) (gpuhealth_gpu_health_status{{status="fail",{sel}}} == 1)',
                   "{{namespace}}/{{pod}}", desc="Pods (from the events' workload) holding a GPU whose status is fail."),
        prom_panel(L, "timeseries", "Scorer evaluations per second by status",
                   "sum by (status) (rate(gpuhealth_scorer_evaluations_total[$__rate_interval]))",
                   "{{status}}"),
    ]
    variables = [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {}, "options": [], "refresh": 1, "hide": 0},
        {"name": "host", "label": "Host", "type": "query", "datasource": PROM,
         "query": {"query": "label_values(gpuhealth_gpu_health_score, Hostname)", "refId": "A"},
         "definition": "label_values(gpuhealth_gpu_health_score, Hostname)", "refresh": 2, "sort": 1,
         "current": {}, "options": [], "multi": True, "includeAll": True, "allValue": ".*"},
    ]
    return dashboard("gpuhealth-prometheus-health", "gpuhealth / Health (Prometheus)", panels,
                     variables, "now-6h")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, d in (("fleet", fleet()), ("gpu", gpu()), ("health", health()), ("pipeline", pipeline()),
                    ("prometheus-health", prometheus_health())):
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(d, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
