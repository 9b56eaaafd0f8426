#include "api/api_int.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_json.h"
#include "core/config.h"
#include "core/timeutil.h"
#include "store/pg.h"

#define MAX_POINTS      10000
#define RAW_MAX_RANGE_S (6 * 3600.0)
#define DEFAULT_RANGE_S 3600.0
#define MAX_STEP_S      31536000.0 /* step: at most 365 days */

/* Looks the GPU up; sets a 404 (or 503) and returns NULL when it is not there. */
static json_t *find_gpu(struct api_req *rq, const char *key)
{
	const char *p[1] = {key};
	PGresult *r =
	    api_req_query(rq, "SELECT " API_GPU_COLS " FROM gpus g WHERE g.gpu_key = $1", 1, p);
	if (!r)
		return NULL;
	json_t *g = NULL;
	if (pg_rows(r) == 1)
		g = api_json_row(r, 0);
	else
		api_req_set(
		    rq, 404,
		    api_req_error("not_found", "uuid",
		                  "no GPU '%s' in the database: list them with GET /api/v1/gpus "
		                  "(MIG instances are UUID/GPU_I_ID)",
		                  key));
	pg_clear(r);
	return g;
}

/* Sets o's member name to the answer of sql about one GPU ($1: key): its first row (null when
 * none) or, with all, its rows. false when the query failed (rq answered). */
static bool put_query(struct api_req *rq, json_t *o, const char *name, bool all, const char *key,
                      const char *sql)
{
	const char *p[1] = {key};
	PGresult *r = api_req_query(rq, sql, 1, p);
	if (!r)
		return false;
	json_object_set_new(o, name,
	                    all          ? api_json_rows(r)
	                    : pg_rows(r) ? api_json_row(r, 0)
	                                 : json_null());
	pg_clear(r);
	return true;
}

void api_ep_gpu(struct api_req *rq, const char *key)
{
	if (!api_req_args_allowed(rq, NULL))
		return;
	json_t *g = find_gpu(rq, key);
	if (!g)
		return;
	bool ok =
	    put_query(
	        rq, g, "latest", false, key,
	        "SELECT time, gpu_temp, memory_temp, power_usage, power_limit, gpu_util, "
	        "mem_copy_util, fb_used, fb_free, sm_clock, mem_clock, xid, ecc_sbe_volatile, "
	        "ecc_dbe_volatile, pcie_replay, uncorrectable_remapped_rows, "
	        "row_remap_failure, clocks_event_reasons FROM gpu_metrics "
	        "WHERE gpu_key = $1 ORDER BY time DESC LIMIT 1") &&
	    put_query(rq, g, "health", false, key,
	              "SELECT time, score, status FROM gpu_health_scores WHERE gpu_key = $1 "
	              "ORDER BY time DESC LIMIT 1");
	api_req_ok(rq, ok, g);
}

void api_ep_gpu_metrics(struct api_req *rq, const char *key)
{
	static const char *const allowed[] = {"from", "to", "step", NULL};
	if (!api_req_args_allowed(rq, allowed))
		return;
	const char *from_s = api_req_arg(rq, "from"), *to_s = api_req_arg(rq, "to"),
	           *step_s = api_req_arg(rq, "step");
	double to = time_now(), from = 0, step = 0;
	if (!api_req_time(rq, "to", to_s, &to))
		return;
	from = to - DEFAULT_RANGE_S;
	if (!api_req_time(rq, "from", from_s, &from))
		return;
	if (!(from < to)) {
		api_req_set(
		    rq, 400,
		    api_req_error("bad_parameter", "from",
		                  "from must be before to (got from=%.3f, to=%.3f in Unix seconds)",
		                  from, to));
		return;
	}
	if (step_s &&
	    (config_parse_duration(step_s, &step) != 0 || !(step >= 0) || step > MAX_STEP_S)) {
		api_req_set(
		    rq, 400,
		    api_req_error(
		        "bad_parameter", "step",
		        "step '%s' is not a duration up to 365 days: use seconds or 10s, 5m, "
		        "1h (0: every raw sample)",
		        api_req_echo(step_s)));
		return;
	}
	if (step >= 60 && fmod(step, 60) != 0) {
		api_req_set(rq, 400,
		            api_req_error(
		                "bad_parameter", "step",
		                "step %g s is served from the 1-minute rollups and must be a whole "
		                "number of minutes (e.g. 60, 300, 1h)",
		                step));
		return;
	}
	if (step > 0 && (to - from) / step > MAX_POINTS) {
		api_req_set(
		    rq, 400,
		    api_req_error(
		        "bad_parameter", "step",
		        "%.0f points (range %.0f s / step %g s) is more than %d: raise step "
		        "or narrow from..to",
		        ceil((to - from) / step), to - from, step, MAX_POINTS));
		return;
	}
	if (step == 0 && to - from > RAW_MAX_RANGE_S) {
		api_req_set(rq, 400,
		            api_req_error(
		                "bad_parameter", "step",
		                "raw samples are served for ranges up to %.0f h (this one is %.1f "
		                "h): give step=60 or more to read the 1-minute rollups",
		                RAW_MAX_RANGE_S / 3600, (to - from) / 3600));
		return;
	}
	json_t *g = find_gpu(rq, key);
	if (!g)
		return;
	json_decref(g);
	char f[40], t[40], s[40];
	snprintf(f, sizeof(f), "%.6f", from);
	snprintf(t, sizeof(t), "%.6f", to);
	snprintf(s, sizeof(s), "%.6f", step);
	const char *p[4] = {key, f, t, s};
	const char *source = step >= 60 ? "rollup_1min" : "raw";
	PGresult *r;
	if (step == 0)
		r = api_req_query(
		    rq,
		    "SELECT time, 1 AS samples, gpu_temp, gpu_temp AS gpu_temp_max, "
		    "memory_temp, power_usage, gpu_util, mem_copy_util, fb_used, sm_clock "
		    "FROM gpu_metrics WHERE gpu_key = $1 AND time >= to_timestamp($2::float8) "
		    "AND time < to_timestamp($3::float8) ORDER BY time",
		    3, p);
	else if (step < 60)
		r = api_req_query(
		    rq,
		    "SELECT to_timestamp(floor(extract(epoch FROM time)::float8 / $4::float8) * "
		    "$4::float8) AS time, count(*)::int AS samples, avg(gpu_temp) AS gpu_temp, "
		    "max(gpu_temp) AS gpu_temp_max, avg(memory_temp) AS memory_temp, "
		    "avg(power_usage) AS power_usage, avg(gpu_util) AS gpu_util, "
		    "avg(mem_copy_util) AS mem_copy_util, avg(fb_used) AS fb_used, "
		    "avg(sm_clock) AS sm_clock FROM gpu_metrics WHERE gpu_key = $1 "
		    "AND time >= to_timestamp($2::float8) AND time < to_timestamp($3::float8) "
		    "GROUP BY 1 ORDER BY 1",
		    4, p);
	else
		r = api_req_query(
		    rq,
		    "SELECT to_timestamp(floor(extract(epoch FROM minute)::float8 / $4::float8) * "
		    "$4::float8) AS time, sum(samples)::int AS samples, "
		    "sum(gpu_temp_sum) / NULLIF(sum(gpu_temp_n), 0) AS gpu_temp, "
		    "max(gpu_temp_max) AS gpu_temp_max, "
		    "sum(memory_temp_sum) / NULLIF(sum(memory_temp_n), 0) AS memory_temp, "
		    "sum(power_usage_sum) / NULLIF(sum(power_usage_n), 0) AS power_usage, "
		    "sum(gpu_util_sum) / NULLIF(sum(gpu_util_n), 0) AS gpu_util, "
		    "sum(mem_copy_util_sum) / NULLIF(sum(mem_copy_util_n), 0) AS mem_copy_util, "
		    "sum(fb_used_sum) / NULLIF(sum(fb_used_n), 0) AS fb_used, "
		    "sum(sm_clock_sum) / NULLIF(sum(sm_clock_n), 0) AS sm_clock "
		    "FROM gpu_metrics_1min_current WHERE gpu_key = $1 AND minute >= "
		    "to_timestamp($2::float8) "
		    "AND minute < to_timestamp($3::float8) GROUP BY 1 ORDER BY 1",
		    4, p);
	if (!r)
		return;
	char fb[40], tb[40];
	time_format_rfc3339(from, fb, sizeof(fb));
	time_format_rfc3339(to, tb, sizeof(tb));
	api_req_set(rq, 200,
	            json_pack("{s:s, s:s, s:s, s:f, s:s, s:i, s:o}", "gpu_key", key, "from", fb,
	                      "to", tb, "step", step, "source", source, "count", pg_rows(r),
	                      "points", api_json_rows(r)));
	pg_clear(r);
}

void api_ep_gpu_health(struct api_req *rq, const char *key)
{
	if (!api_req_args_allowed(rq, NULL))
		return;
	json_t *g = find_gpu(rq, key), *o = NULL;
	if (!g)
		return;
	json_decref(g);
	o = json_pack("{s:s}", "gpu_key", key);
	bool ok =
	    o &&
	    put_query(rq, o, "score", false, key,
	              "SELECT time, score, status, thermal, memory, power, interconnect, xid, "
	              "reasons FROM gpu_health_scores WHERE gpu_key = $1 "
	              "ORDER BY time DESC LIMIT 1") &&
	    put_query(rq, o, "predictions", true, key,
	              "SELECT DISTINCT ON (horizon_hours) time, horizon_hours, probability, "
	              "model_version, recommendation, reasons FROM gpu_failure_predictions "
	              "WHERE gpu_key = $1 ORDER BY horizon_hours, time DESC") &&
	    put_query(rq, o, "open_alerts", true, key,
	              "SELECT id, gpu_key, hostname, kind, severity, message, details, raised_at, "
	              "cleared_at FROM alerts WHERE gpu_key = $1 AND cleared_at IS NULL "
	              "ORDER BY raised_at DESC, id DESC");
	api_req_ok(rq, ok, o);
}

void api_ep_fleet(struct api_req *rq)
{
	if (!api_req_args_allowed(rq, NULL))
		return;
	PGresult *r = api_req_query(rq, "SELECT * FROM v_fleet_summary", 0, NULL);
	if (!r)
		return;
	api_req_set(rq, 200, pg_rows(r) == 1 ? api_json_row(r, 0) : json_object());
	pg_clear(r);
}

void api_ep_alerts(struct api_req *rq)
{
	static const char *const allowed[] = {"state", "severity", "host", "gpu", "limit", NULL};
	if (!api_req_args_allowed(rq, allowed))
		return;
	const char *state = api_req_arg(rq, "state"), *sev = api_req_arg(rq, "severity"),
	           *lim = api_req_arg(rq, "limit");
	const char *host = api_req_arg(rq, "host"), *gpu = api_req_arg(rq, "gpu");
	if (!state)
		state = "open";
	if (strcmp(state, "open") && strcmp(state, "cleared") && strcmp(state, "all")) {
		api_req_set(rq, 400,
		            api_req_error("bad_parameter", "state",
		                          "state '%s' is not one of open, cleared, all",
		                          api_req_echo(state)));
		return;
	}
	if (sev && strcmp(sev, "info") && strcmp(sev, "warn") && strcmp(sev, "fail")) {
		api_req_set(rq, 400,
		            api_req_error("bad_parameter", "severity",
		                          "severity '%s' is not one of info, warn, fail",
		                          api_req_echo(sev)));
		return;
	}
	if (gpu && !api_req_valid_key(gpu)) {
		api_req_set(
		    rq, 400,
		    api_req_error("bad_parameter", "gpu",
		                  "gpu '%.64s' is not a GPU key (a UUID such as GPU-1234..., or "
		                  "UUID/GPU_I_ID)",
		                  gpu));
		return;
	}
	long limit = 100;
	if (lim) {
		char *end = NULL;
		errno = 0;
		limit = strtol(lim, &end, 10);
		if (!*lim || *end || errno || limit < 1 || limit > 1000) {
			api_req_set(rq, 400,
			            api_req_error("bad_parameter", "limit",
			                          "limit '%s' is not a whole number from 1 to 1000",
			                          api_req_echo(lim)));
			return;
		}
	}
	char lbuf[24];
	snprintf(lbuf, sizeof(lbuf), "%ld", limit);
	const char *p[5] = {state, sev, host, gpu, lbuf};
	PGresult *r = api_req_query(
	    rq,
	    "SELECT id, gpu_key, hostname, kind, severity, message, details, raised_at, "
	    "cleared_at, "
	    "namespace, pod, container FROM alerts WHERE ($1 = 'all' OR ($1 = 'open') = "
	    "(cleared_at IS NULL)) "
	    "AND ($2::text IS NULL OR severity = $2) AND ($3::text IS NULL OR hostname = $3) "
	    "AND ($4::text IS NULL OR gpu_key = $4) ORDER BY raised_at DESC, id DESC LIMIT $5::int",
	    5, p);
	if (!r)
		return;
	api_req_set(rq, 200,
	            json_pack("{s:i, s:o}", "count", pg_rows(r), "alerts", api_json_rows(r)));
	pg_clear(r);
}

void api_ep_healthz(struct api_req *rq)
{
	if (!api_req_args_allowed(rq, NULL))
		return;
	PGresult *r = api_req_query(rq, "SELECT 1", 0, NULL);
	if (!r) {
		/* never the connection string, host, port, role or the server's text */
		api_req_set(rq, 503,
		            json_pack("{s:s, s:s, s:s}", "status", "unavailable", "database",
		                      "down", "message",
		                      "the database is unreachable (the API's log has the cause)"));
		return;
	}
	pg_clear(r);
	api_req_set(rq, 200, json_pack("{s:s, s:s}", "status", "ok", "database", "up"));
}
