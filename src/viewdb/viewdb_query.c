#include "viewdb/viewdb_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "viewdb/viewdb.h"
#include "store/pg.h"

/* ------------------------------------------------------------------ queries */

double viewdb_query_getd(const PGresult *r, int row, int col)
{
	return pg_null(r, row, col) ? NAN : pg_double(r, row, col);
}

enum health_status viewdb_query_status(const char *s)
{
	return strcmp(s, "fail") == 0   ? HEALTH_FAIL
	       : strcmp(s, "warn") == 0 ? HEALTH_WARN
	                                : HEALTH_PASS;
}

int viewdb_query_check(PGconn *c, const PGresult *r, int rows, const char *what, char *err,
                       size_t errlen)
{
	if (pg_tuples_ok(r) && (rows < 0 || pg_rows(r) == rows))
		return 0;
	snprintf(err, errlen, "%s: %s", what, pg_conn_error(c));
	err[strcspn(err, "\n")] = '\0';
	return -EIO;
}

/* Open alerts, worst and newest first: the newest of each severity class (alerts_raised_idx). */
int viewdb_query_alerts(PGconn *c, struct viewdb_alert *out, size_t max, size_t *n, char *err,
                        size_t errlen)
{
	char lim[16];
	snprintf(lim, sizeof(lim), "%zu", max);
	PGresult *r = pg_exec_params(
	    c,
	    "SELECT a.gpu_key, coalesce(a.hostname, g.hostname, ''), coalesce(g.gpu_index, -1), "
	    "concat_ws('/', a.namespace, a.pod), a.kind, a.severity, a.message, "
	    "extract(epoch FROM a.raised_at) "
	    "FROM (SELECT * FROM alerts WHERE cleared_at IS NULL AND severity = 'fail' "
	    "      ORDER BY raised_at DESC LIMIT $1::int) a "
	    "LEFT JOIN gpus g ON g.gpu_key = a.gpu_key "
	    "UNION ALL "
	    "SELECT * FROM (SELECT a.gpu_key, coalesce(a.hostname, g.hostname, ''), "
	    "coalesce(g.gpu_index, -1), concat_ws('/', a.namespace, a.pod), a.kind, "
	    "a.severity, a.message, extract(epoch FROM a.raised_at) "
	    "FROM (SELECT * FROM alerts WHERE cleared_at IS NULL AND severity <> 'fail' "
	    "      ORDER BY raised_at DESC LIMIT $1::int) a "
	    "LEFT JOIN gpus g ON g.gpu_key = a.gpu_key) b",
	    1, (const char *const[]){lim});
	int rc = viewdb_query_check(c, r, -1, "reading the open alerts", err, errlen);
	size_t k = 0;
	for (; !rc && k < max && (int)k < pg_rows(r); k++) {
		int i = (int)k;
		struct viewdb_alert *a = &out[k];
		*a = (struct viewdb_alert){.index = atoi(pg_text(r, i, 2)),
		                           .severity = viewdb_query_status(pg_text(r, i, 5)),
		                           .since = viewdb_query_getd(r, i, 7)};
		snprintf(a->key, sizeof(a->key), "%s", pg_text(r, i, 0));
		snprintf(a->host, sizeof(a->host), "%s", pg_text(r, i, 1));
		snprintf(a->workload, sizeof(a->workload), "%s", pg_text(r, i, 3));
		snprintf(a->kind, sizeof(a->kind), "%s", pg_text(r, i, 4));
		snprintf(a->text, sizeof(a->text), "%s", pg_text(r, i, 6));
	}
	qsort(out, k, sizeof(*out), viewdb_alert_cmp);
	*n = k;
	pg_clear(r);
	return rc;
}

/* The filter's words as a text[] literal: each word quoted, " and \ escaped. */
static void filter_words(const char *s, char *words, size_t len)
{
	size_t wl = 0;
	bool first = true;
	words[wl++] = '{';
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		if (wl + 4 >= len)
			break;
		if (!first)
			words[wl++] = ',';
		first = false;
		words[wl++] = '"';
		while (*s && *s != ' ' && wl + 3 < len) {
			if (*s == '"' || *s == '\\')
				words[wl++] = '\\';
			words[wl++] = *s++;
		}
		words[wl++] = '"';
	}
	words[wl++] = '}';
	words[wl] = '\0';
}

/* Schema 13 and older: each GPU's newest health row, sample and prediction looked up per
 * refresh (3 index probes per GPU: seconds at 200,000 GPUs). */
static const char *const overview_per_gpu =
    "WITH g AS ("
    " SELECT coalesce(g.cluster, '-') AS c, coalesce(g.datacenter, '-') AS d,"
    "  coalesce(g.rack, '-') AS r, coalesce(g.hostname, '-') AS h,"
    "  coalesce(g.gpu_index, -1) AS i, g.gpu_key, g.model"
    " FROM gpus g"
    " WHERE ($2::text IS NULL OR coalesce(g.cluster, '-') = $2)"
    "  AND ($3::text IS NULL OR coalesce(g.datacenter, '-') = $3)"
    "  AND ($4::text IS NULL OR coalesce(g.rack, '-') = $4)"
    "), s AS ("
    " SELECT g.*, h.status, m.gpu_temp, p.probability FROM g"
    " LEFT JOIN LATERAL (SELECT status FROM gpu_health_scores x WHERE x.gpu_key = g.gpu_key"
    "   ORDER BY time DESC LIMIT 1) h ON true"
    " LEFT JOIN LATERAL (SELECT gpu_temp FROM gpu_metrics x WHERE x.gpu_key = g.gpu_key"
    "   ORDER BY time DESC LIMIT 1) m ON true"
    " LEFT JOIN LATERAL (SELECT probability FROM gpu_failure_predictions x"
    "   WHERE x.gpu_key = g.gpu_key ORDER BY time DESC LIMIT 1) p ON true"
    "), f AS ("
    " SELECT * FROM s WHERE NOT EXISTS (SELECT 1 FROM unnest($5::text[]) w WHERE"
    "  CASE WHEN left(w, 5) = 'host=' THEN h <> substr(w, 6) ELSE"
    "  strpos(lower(concat_ws(' ', h, model, gpu_key, 'gpu' || i, status, c, d, r)),"
    "   lower(w)) = 0 END)"
    ")"
    "SELECT CASE $1::int WHEN 0 THEN c WHEN 1 THEN d WHEN 2 THEN r ELSE h END AS name,"
    " count(*), count(*) FILTER (WHERE status = 'pass'),"
    " count(*) FILTER (WHERE status = 'warn'), count(*) FILTER (WHERE status = 'fail'),"
    " max(gpu_temp),"
    " (array_agg(h || '/' || i ORDER BY gpu_temp DESC NULLS LAST))[1],"
    " max(probability),"
    " left(string_agg(CASE status WHEN 'pass' THEN 'P' WHEN 'warn' THEN 'W'"
    "  WHEN 'fail' THEN 'F' ELSE '?' END, '' ORDER BY h, i), 240)"
    " FROM f GROUP BY 1 ORDER BY 1 LIMIT $6::int";

/* Schema 14: the hosts' kept state (fleet_host_now) under the path, aggregated: one row per
 * host, by the primary key's prefix. $5 (the filter, always empty here) is only typed: every
 * parameter must be. */
static const char *const overview_hosts =
    "SELECT CASE $1::int WHEN 0 THEN cluster WHEN 1 THEN datacenter ELSE rack END AS name,"
    " sum(gpus), sum(pass), sum(warn), sum(fail), max(hottest_c),"
    " (array_agg(hostname || '/' || hottest_index ORDER BY hottest_c DESC NULLS LAST))[1],"
    " max(p_fail_max), left(string_agg(strip, '' ORDER BY hostname), 240)"
    " FROM fleet_host_now"
    " WHERE ($2::text IS NULL OR cluster = $2) AND ($3::text IS NULL OR datacenter = $3)"
    "  AND ($4::text IS NULL OR rack = $4) AND cardinality($5::text[]) >= 0"
    " GROUP BY 1 ORDER BY 1 LIMIT $6::int";

/* Schema 14, the host level or a filter: the GPUs' kept state (fleet_gpu_now), one row each,
 * under the path (fleet_gpu_now_place_idx's prefix). */
static const char *const overview_gpus =
    "SELECT CASE $1::int WHEN 0 THEN cluster WHEN 1 THEN datacenter WHEN 2 THEN rack"
    "  ELSE hostname END AS name,"
    " count(*), count(*) FILTER (WHERE status = 'pass'),"
    " count(*) FILTER (WHERE status = 'warn'), count(*) FILTER (WHERE status = 'fail'),"
    " max(gpu_temp),"
    " (array_agg(hostname || '/' || gpu_index ORDER BY gpu_temp DESC NULLS LAST))[1],"
    " max(p_fail),"
    " left(string_agg(CASE status WHEN 'pass' THEN 'P' WHEN 'warn' THEN 'W'"
    "  WHEN 'fail' THEN 'F' ELSE '?' END, '' ORDER BY hostname, gpu_index), 240)"
    " FROM fleet_gpu_now f"
    " WHERE ($2::text IS NULL OR cluster = $2) AND ($3::text IS NULL OR datacenter = $3)"
    "  AND ($4::text IS NULL OR rack = $4)"
    "  AND NOT EXISTS (SELECT 1 FROM unnest($5::text[]) w WHERE"
    "  CASE WHEN left(w, 5) = 'host=' THEN hostname <> substr(w, 6) ELSE"
    "  strpos(lower(concat_ws(' ', hostname, model, gpu_key, 'gpu' || gpu_index, status,"
    "   cluster, datacenter, rack)), lower(w)) = 0 END)"
    " GROUP BY 1 ORDER BY 1 LIMIT $6::int";

/* The overview's groups at one level under a path, aggregated in SQL. kept: the database
 * keeps each GPU's and host's newest state (schema 14). */
int viewdb_query_overview(PGconn *c, bool kept, const struct viewdb_request *q,
                          struct viewdb_node *out, size_t max, size_t *n, char *err, size_t errlen)
{
	char lvl[8], lim[16], words[2 * VIEWDB_FILTER_MAX + 8];
	snprintf(lvl, sizeof(lvl), "%d", (int)q->level);
	snprintf(lim, sizeof(lim), "%zu", max);
	filter_words(q->filter, words, sizeof(words));
	const char *params[6] = {lvl,
	                         q->level > 0 ? q->path[0] : NULL,
	                         q->level > 1 ? q->path[1] : NULL,
	                         q->level > 2 ? q->path[2] : NULL,
	                         words,
	                         lim};
	const char *sql = !kept                                              ? overview_per_gpu
	                  : q->level == VDB_HOST || strcmp(words, "{}") != 0 ? overview_gpus
	                                                                     : overview_hosts;
	PGresult *r = pg_exec_params(c, sql, 6, params);
	int rc = 0;
	if ((rc = viewdb_query_check(c, r, -1, "reading the fleet overview", err, errlen)) != 0)
		goto out;
	size_t k = 0;
	for (int i = 0; i < pg_rows(r) && k < max; i++) {
		struct viewdb_node *o = &out[k++];
		memset(o, 0, sizeof(*o));
		snprintf(o->name, sizeof(o->name), "%s", pg_text(r, i, 0));
		o->gpus = (uint64_t)pg_int(r, i, 1);
		o->pass = (uint64_t)pg_int(r, i, 2);
		o->warn = (uint64_t)pg_int(r, i, 3);
		o->fail = (uint64_t)pg_int(r, i, 4);
		o->hottest_c = viewdb_query_getd(r, i, 5);
		snprintf(o->hottest, sizeof(o->hottest), "%s", pg_text(r, i, 6));
		o->p_fail_max = viewdb_query_getd(r, i, 7);
		snprintf(o->strip, sizeof(o->strip), "%s", pg_text(r, i, 8));
		o->strip_n = strlen(o->strip);
	}
	*n = k;
out:
	pg_clear(r);
	return rc;
}

/* One GPU's history over the window, bucketed in SQL to the chart's width: min, mean and max
 * of temperature, power and utilization per bucket; then the XIDs, status changes and alerts
 * in the window. */
int viewdb_query_history(PGconn *c, const struct viewdb_request *q, struct viewdb_history *h,
                         char *err, size_t errlen)
{
	int rc = 0;
	PGresult *r = NULL;
	double span = viewdb_window_s(q->window);
	double t1 = q->end > 0 ? q->end : time_now();
	double t0 = t1 - span;
	size_t points = q->points < 8                   ? 8
	                : q->points > VIEWDB_MAX_POINTS ? VIEWDB_MAX_POINTS
	                                                : q->points;
	memset(h, 0, sizeof(*h));
	snprintf(h->key, sizeof(h->key), "%s", q->key);
	h->window = q->window;
	h->t0 = t0;
	h->t1 = t1;
	h->source = viewdb_window_source(q->window);
	h->bucket_s = span / (double)points;
	h->n = points;
	for (int s = 0; s < VIEWDB_NSERIES; s++)
		for (size_t i = 0; i < points; i++)
			h->min[s][i] = h->mean[s][i] = h->max[s][i] = NAN;
	char a0[32], a1[32], bs[32];
	snprintf(a0, sizeof(a0), "%.3f", t0);
	snprintf(a1, sizeof(a1), "%.3f", t1);
	snprintf(bs, sizeof(bs), "%.6f", h->bucket_s);
	const char *params[4] = {q->key, a0, a1, bs};
	const char *raw =
	    "SELECT floor((extract(epoch FROM time) - $2::float8) / $4::float8)::int AS b,"
	    " min(gpu_temp), avg(gpu_temp), max(gpu_temp),"
	    " min(power_usage), avg(power_usage), max(power_usage),"
	    " min(gpu_util), avg(gpu_util), max(gpu_util)"
	    " FROM gpu_metrics WHERE gpu_key = $1"
	    " AND time >= to_timestamp($2::float8) AND time < to_timestamp($3::float8)"
	    " GROUP BY 1 ORDER BY 1";
	const char *rolled =
	    "SELECT floor((extract(epoch FROM minute) - $2::float8) / $4::float8)::int AS b,"
	    " min(gpu_temp_min), sum(gpu_temp_sum) / nullif(sum(gpu_temp_n), 0), max(gpu_temp_max),"
	    " min(power_usage_min), sum(power_usage_sum) / nullif(sum(power_usage_n), 0),"
	    " max(power_usage_max),"
	    " min(gpu_util_min), sum(gpu_util_sum) / nullif(sum(gpu_util_n), 0), max(gpu_util_max)"
	    " FROM gpu_metrics_1min_current WHERE gpu_key = $1"
	    " AND minute >= to_timestamp($2::float8) AND minute < to_timestamp($3::float8)"
	    " GROUP BY 1 ORDER BY 1";
	r = pg_exec_params(c, q->window <= VDB_W6H ? raw : rolled, 4, params);
	if ((rc = viewdb_query_check(c, r, -1, "reading the GPU's history", err, errlen)) != 0)
		goto out;
	for (int i = 0; i < pg_rows(r); i++) {
		int b = atoi(pg_text(r, i, 0));
		if (b < 0 || (size_t)b >= points)
			continue;
		for (int s = 0; s < VIEWDB_NSERIES; s++) {
			h->min[s][b] = (float)viewdb_query_getd(r, i, 1 + 3 * s);
			h->mean[s][b] = (float)viewdb_query_getd(r, i, 2 + 3 * s);
			h->max[s][b] = (float)viewdb_query_getd(r, i, 3 + 3 * s);
		}
	}
	pg_clear(r);
	/* the events on the time axis: a new XID (the value changing to a non-zero one, judged
	 * from the sample before the window too, the newest with an XID value in the hour before
	 * it (a bounded read): an XID that was there before is not new), a
	 * health status that changed, an alert raised; the newest 64 */
	r = pg_exec_params(
	    c,
	    "SELECT * FROM ("
	    " SELECT t, 'X', 'XID ' || xid FROM (SELECT extract(epoch FROM time) AS t, xid,"
	    "  lag(xid) OVER (ORDER BY time) AS prev FROM ("
	    "  (SELECT time, xid FROM gpu_metrics WHERE gpu_key = $1"
	    "   AND time < to_timestamp($2::float8) AND time >= to_timestamp($2::float8)"
	    "   - interval '1 hour' AND xid IS NOT NULL ORDER BY time DESC LIMIT 1)"
	    "  UNION ALL SELECT time, xid FROM gpu_metrics WHERE gpu_key = $1"
	    "  AND time >= to_timestamp($2::float8) AND time < to_timestamp($3::float8)"
	    "  AND xid IS NOT NULL) w) x"
	    "  WHERE xid <> 0 AND xid IS DISTINCT FROM prev AND t >= $2::float8"
	    " UNION ALL"
	    " SELECT t, 'S', prev || '->' || status FROM (SELECT extract(epoch FROM time) AS t,"
	    "  status, lag(status) OVER (ORDER BY time) AS prev FROM gpu_health_scores"
	    "  WHERE gpu_key = $1 AND time >= to_timestamp($2::float8) - interval '1 hour'"
	    "  AND time < to_timestamp($3::float8)) s"
	    "  WHERE prev IS NOT NULL AND status <> prev AND t >= $2::float8"
	    " UNION ALL"
	    " SELECT extract(epoch FROM raised_at), 'A', kind FROM alerts WHERE gpu_key = $1"
	    "  AND raised_at >= to_timestamp($2::float8) AND raised_at < to_timestamp($3::float8)"
	    ") e ORDER BY 1 DESC LIMIT 64",
	    3, params);
	if ((rc = viewdb_query_check(c, r, -1, "reading the GPU's events", err, errlen)) != 0)
		goto out;
	for (int i = pg_rows(r) - 1; i >= 0 && h->nmarks < VIEWDB_MAX_MARKS; i--) {
		struct viewdb_mark *m = &h->marks[h->nmarks++];
		m->t = viewdb_query_getd(r, i, 0);
		m->kind = pg_text(r, i, 1)[0];
		snprintf(m->text, sizeof(m->text), "%s", pg_text(r, i, 2));
	}
out:
	pg_clear(r);
	return rc;
}
