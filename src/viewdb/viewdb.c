#include "viewdb/viewdb.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/timeutil.h"
#include "pipeline/pipeline.h"
#include "store/pg.h"
#include "view/view.h"

enum want { W_NONE = 0, W_ALERTS, W_OVERVIEW, W_HISTORY, W_TABLE, W_GPU };

struct request {
	enum want what;
	enum viewdb_level level;
	char path[VDB_LEVELS - 1][96];
	char filter[64];
	char key[HS_KEY_MAX];
	enum viewdb_window window;
	double end;
	size_t points;
	/* the fleet table */
	int sort;
	bool desc, group;
	size_t offset, limit;
};

struct viewdb {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop;
	char conninfo[4096]; /* "" until get() gives it (the thread's only) */
	viewdb_conninfo_fn get;
	void *get_arg;
	double period_s;
	struct request req; /* under lock */
	uint64_t req_gen;   /* bumped by each change of req */
	uint64_t done_gen;  /* the req_gen of the last query done (or failed) */
	/* results, under lock; *_gen: the req_gen they answer */
	struct viewdb_alert *alerts;
	size_t nalerts;
	uint64_t alerts_gen;
	struct viewdb_node *nodes;
	size_t nnodes;
	uint64_t nodes_gen;
	struct viewdb_history *hist;
	uint64_t hist_gen;
	struct viewdb_status st;
	/* a table reader (viewdb_create_table): the page and the detail's GPU */
	bool table;
	double interval_s;
	struct fleet_gpu *page;
	struct viewdb_table *tinfo;
	uint64_t table_gen;
	struct fleet_gpu *gpu;
	bool gpu_found;
	uint64_t gpu_gen;
};

/* ------------------------------------------------------------------ names */

const char *viewdb_level_name(enum viewdb_level l)
{
	static const char *n[] = {"cluster", "datacenter", "rack", "host"};
	return (unsigned)l < VDB_LEVELS ? n[l] : "?";
}

const char *viewdb_sort_name(enum viewdb_sort s)
{
	static const char *n[] = {"name", "gpus", "health", "temp", "p_fail"};
	return (unsigned)s < VDBS_COUNT ? n[s] : "?";
}

double viewdb_window_s(enum viewdb_window w)
{
	static const double s[] = {600, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600};
	return (unsigned)w < VDB_WINDOWS ? s[w] : 600;
}

const char *viewdb_window_name(enum viewdb_window w)
{
	static const char *n[] = {"10 min", "1 h", "6 h", "24 h", "7 d"};
	return (unsigned)w < VDB_WINDOWS ? n[w] : "?";
}

const char *viewdb_window_source(enum viewdb_window w)
{
	return w <= VDB_W6H ? "gpu_metrics" : "gpu_metrics_1min";
}

char viewdb_health_letter(bool have, enum health_status s)
{
	if (!have)
		return '?';
	return s == HEALTH_FAIL ? 'F' : s == HEALTH_WARN ? 'W' : 'P';
}

/* ------------------------------------------------------------------ sorting */

static enum viewdb_sort sort_key;
static bool sort_desc;

static int cmp_double(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b) > 0 ? -1 : isnan(a) == isnan(b) ? 0 : 1;
	return a < b ? -1 : a > b;
}

static int node_cmp(const void *pa, const void *pb)
{
	const struct viewdb_node *a = pa, *b = pb;
	int c = 0;
	switch (sort_key) {
	case VDBS_GPUS: c = (a->gpus > b->gpus) - (a->gpus < b->gpus); break;
	case VDBS_HEALTH:
		c = (a->fail > b->fail) - (a->fail < b->fail);
		if (!c)
			c = (a->warn > b->warn) - (a->warn < b->warn);
		break;
	case VDBS_TEMP: c = cmp_double(a->hottest_c, b->hottest_c); break;
	case VDBS_PFAIL: c = cmp_double(a->p_fail_max, b->p_fail_max); break;
	default: break;
	}
	if (sort_desc)
		c = -c;
	if (!c)
		c = strcmp(a->name, b->name) * (sort_key == VDBS_NAME && sort_desc ? -1 : 1);
	return c;
}

void viewdb_sort_nodes(struct viewdb_node *n, size_t count, enum viewdb_sort s, bool desc)
{
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; /* qsort has no context argument */
	pthread_mutex_lock(&m);
	sort_key = s;
	sort_desc = desc;
	qsort(n, count, sizeof(*n), node_cmp);
	pthread_mutex_unlock(&m);
}

/* ------------------------------------------------------------------ live (no database) */

static int alert_cmp(const void *pa, const void *pb)
{
	const struct viewdb_alert *a = pa, *b = pb;
	if (a->severity != b->severity)
		return a->severity > b->severity ? -1 : 1;
	if (a->since != b->since)
		return a->since > b->since ? -1 : 1;
	return strcmp(a->key, b->key);
}

size_t viewdb_live_alerts(const struct fleet_gpu *gpus, size_t n, struct viewdb_alert *out,
                          size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < max; i++) {
		const struct fleet_gpu *g = &gpus[i];
		for (size_t a = 0; a < g->nalerts && k < max; a++) {
			const struct fleet_alert *fa = &g->alerts[a];
			if (fa->cleared)
				continue;
			/* the newest state of each kind only: an older raise of a cleared kind is
			 * not open (alerts[] is most recent first) */
			bool newer = false;
			for (size_t b = 0; b < a; b++)
				newer |= strcmp(g->alerts[b].kind, fa->kind) == 0;
			if (newer)
				continue;
			struct viewdb_alert *o = &out[k++];
			memset(o, 0, sizeof(*o));
			snprintf(o->key, sizeof(o->key), "%s", g->key);
			snprintf(o->host, sizeof(o->host), "%s", g->host);
			o->index = g->index;
			snprintf(o->kind, sizeof(o->kind), "%s", fa->kind);
			o->severity = fa->severity;
			snprintf(o->text, sizeof(o->text), "%s", fa->text);
			o->since = fa->time;
		}
	}
	qsort(out, k, sizeof(*out), alert_cmp);
	return k;
}

size_t viewdb_live_overview(const struct fleet_gpu *gpus, size_t n, enum viewdb_level level,
                            const char *const *path, const char *filter, struct viewdb_node *out,
                            size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct fleet_gpu *g = &gpus[i];
		if (filter && *filter && !view_filter_match(g, filter))
			continue;
		/* the live fleet has no cluster, datacenter or rack: "-" at each */
		bool in = true;
		for (int l = 0; l < (int)level && l < VDB_HOST; l++)
			in &= path && path[l] && strcmp(path[l], "-") == 0;
		if (!in)
			continue;
		const char *name = level == VDB_HOST ? (g->host[0] ? g->host : "-") : "-";
		size_t j = 0;
		while (j < k && strcmp(out[j].name, name) != 0)
			j++;
		if (j == k) {
			if (k == max)
				continue;
			memset(&out[k], 0, sizeof(out[k]));
			snprintf(out[k].name, sizeof(out[k].name), "%s", name);
			out[k].hottest_c = NAN;
			out[k].p_fail_max = NAN;
			k++;
		}
		struct viewdb_node *o = &out[j];
		o->gpus++;
		if (g->have_health) {
			if (g->health.status == HEALTH_FAIL)
				o->fail++;
			else if (g->health.status == HEALTH_WARN)
				o->warn++;
			else
				o->pass++;
		}
		if (health_sample_has(&g->last, HS_GPU_TEMP)) {
			double t = g->last.v[HS_GPU_TEMP];
			if (isnan(o->hottest_c) || t > o->hottest_c) {
				o->hottest_c = t;
				snprintf(o->hottest, sizeof(o->hottest), "%.60s/%d", g->host,
				         g->index);
			}
		}
		if (!isnan(g->p_fail) && (isnan(o->p_fail_max) || g->p_fail > o->p_fail_max))
			o->p_fail_max = g->p_fail;
		if (o->strip_n < VIEWDB_STRIP) {
			o->strip[o->strip_n++] =
			    viewdb_health_letter(g->have_health, g->health.status);
			o->strip[o->strip_n] = '\0';
		}
	}
	return k;
}

/* ------------------------------------------------------------------ queries */

static double getd(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NAN : strtod(PQgetvalue(r, row, col), NULL);
}

static enum health_status status_of(const char *s)
{
	return strcmp(s, "fail") == 0   ? HEALTH_FAIL
	       : strcmp(s, "warn") == 0 ? HEALTH_WARN
	                                : HEALTH_PASS;
}

static void query_error(PGconn *c, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, PQerrorMessage(c));
	err[strcspn(err, "\n")] = '\0';
}

/* Open alerts, worst and newest first: the newest of each severity class (alerts_raised_idx). */
static int q_alerts(PGconn *c, struct viewdb_alert *out, size_t max, size_t *n, char *err,
                    size_t errlen)
{
	char lim[16];
	snprintf(lim, sizeof(lim), "%zu", max);
	PGresult *r = PQexecParams(
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
	    1, NULL, (const char *const[]){lim}, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(c, "reading the open alerts", err, errlen);
		rc = -EIO;
		goto out;
	}
	size_t k = 0;
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		struct viewdb_alert *a = &out[k++];
		memset(a, 0, sizeof(*a));
		snprintf(a->key, sizeof(a->key), "%s", PQgetvalue(r, i, 0));
		snprintf(a->host, sizeof(a->host), "%s", PQgetvalue(r, i, 1));
		a->index = atoi(PQgetvalue(r, i, 2));
		snprintf(a->workload, sizeof(a->workload), "%s", PQgetvalue(r, i, 3));
		snprintf(a->kind, sizeof(a->kind), "%s", PQgetvalue(r, i, 4));
		a->severity = status_of(PQgetvalue(r, i, 5));
		snprintf(a->text, sizeof(a->text), "%s", PQgetvalue(r, i, 6));
		a->since = getd(r, i, 7);
	}
	qsort(out, k, sizeof(*out), alert_cmp);
	*n = k;
out:
	PQclear(r);
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
    "  strpos(lower(concat_ws(' ', h, model, gpu_key, 'gpu' || i, status, c, d, r)),"
    "   lower(w)) = 0)"
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
    "  strpos(lower(concat_ws(' ', hostname, model, gpu_key, 'gpu' || gpu_index, status,"
    "   cluster, datacenter, rack)), lower(w)) = 0)"
    " GROUP BY 1 ORDER BY 1 LIMIT $6::int";

/* The overview's groups at one level under a path, aggregated in SQL. kept: the database
 * keeps each GPU's and host's newest state (schema 14). */
static int q_overview(PGconn *c, bool kept, const struct request *q, struct viewdb_node *out,
                      size_t max, size_t *n, char *err, size_t errlen)
{
	char lvl[8], lim[16], words[160];
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
	PGresult *r = PQexecParams(c, sql, 6, NULL, params, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(c, "reading the fleet overview", err, errlen);
		rc = -EIO;
		goto out;
	}
	size_t k = 0;
	for (int i = 0; i < PQntuples(r) && k < max; i++) {
		struct viewdb_node *o = &out[k++];
		memset(o, 0, sizeof(*o));
		snprintf(o->name, sizeof(o->name), "%s", PQgetvalue(r, i, 0));
		o->gpus = strtoull(PQgetvalue(r, i, 1), NULL, 10);
		o->pass = strtoull(PQgetvalue(r, i, 2), NULL, 10);
		o->warn = strtoull(PQgetvalue(r, i, 3), NULL, 10);
		o->fail = strtoull(PQgetvalue(r, i, 4), NULL, 10);
		o->hottest_c = getd(r, i, 5);
		snprintf(o->hottest, sizeof(o->hottest), "%s", PQgetvalue(r, i, 6));
		o->p_fail_max = getd(r, i, 7);
		snprintf(o->strip, sizeof(o->strip), "%s", PQgetvalue(r, i, 8));
		o->strip_n = strlen(o->strip);
	}
	*n = k;
out:
	PQclear(r);
	return rc;
}

/* One GPU's history over the window, bucketed in SQL to the chart's width: min, mean and max
 * of temperature, power and utilization per bucket; then the XIDs, status changes and alerts
 * in the window. */
static int q_history(PGconn *c, const struct request *q, struct viewdb_history *h, char *err,
                     size_t errlen)
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
	r = PQexecParams(c, q->window <= VDB_W6H ? raw : rolled, 4, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(c, "reading the GPU's history", err, errlen);
		rc = -EIO;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		int b = atoi(PQgetvalue(r, i, 0));
		if (b < 0 || (size_t)b >= points)
			continue;
		for (int s = 0; s < VIEWDB_NSERIES; s++) {
			h->min[s][b] = (float)getd(r, i, 1 + 3 * s);
			h->mean[s][b] = (float)getd(r, i, 2 + 3 * s);
			h->max[s][b] = (float)getd(r, i, 3 + 3 * s);
		}
	}
	PQclear(r);
	/* the events on the time axis: a new XID (the value changing to a non-zero one), a
	 * health status that changed, an alert raised; the newest 64 */
	r = PQexecParams(
	    c,
	    "SELECT * FROM ("
	    " SELECT t, 'X', 'XID ' || xid FROM (SELECT extract(epoch FROM time) AS t, xid,"
	    "  lag(xid) OVER (ORDER BY time) AS prev FROM gpu_metrics WHERE gpu_key = $1"
	    "  AND time >= to_timestamp($2::float8) AND time < to_timestamp($3::float8)"
	    "  AND xid IS NOT NULL) x WHERE xid <> 0 AND xid IS DISTINCT FROM prev"
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
	    3, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(c, "reading the GPU's events", err, errlen);
		rc = -EIO;
		goto out;
	}
	for (int i = PQntuples(r) - 1; i >= 0 && h->nmarks < VIEWDB_MAX_MARKS; i--) {
		struct viewdb_mark *m = &h->marks[h->nmarks++];
		m->t = getd(r, i, 0);
		m->kind = PQgetvalue(r, i, 1)[0];
		snprintf(m->text, sizeof(m->text), "%s", PQgetvalue(r, i, 2));
	}
out:
	PQclear(r);
	return rc;
}

/* ------------------------------------------------------------------ the fleet table */

/* The filter of the fleet table: each of up to TABLE_WORDS lower-case words ("" unused) in
 * fleet_gpu_now's search text (schema 15: view_filter_match's fields); the parameters' numbers */
#define TABLE_WORDS 8
#define T_W(a, b, c, d, e, f, g, h)                                                                \
	" strpos(search, $" #a ") > 0 AND strpos(search, $" #b ") > 0 AND strpos(search, $" #c     \
	") > 0 AND strpos(search, $" #d ") > 0 AND strpos(search, $" #e                            \
	") > 0 AND strpos(search, $" #f ") > 0 AND strpos(search, $" #g                            \
	") > 0 AND strpos(search, $" #h ") > 0"
/* the fleet's own order, ties of every sort key (by byte, as the console's strcmp) */
#define T_NAT      "hostname COLLATE \"C\", gpu_index, gpu_key COLLATE \"C\""
#define T_NAT_DESC "hostname COLLATE \"C\" DESC, gpu_index DESC, gpu_key COLLATE \"C\" DESC"
#define T_GRP      "hostname COLLATE \"C\", "
/* a page: all GPUs; those that match the words in $3..$10 when most do (the order's index,
 * read until the page is full); and when few do, the matching ones (one scan of the table),
 * then sorted (a page of few rows: no index order read to its end for them) */
#define T_ALL(order)                                                                               \
	"SELECT gpu_key, hostname FROM fleet_gpu_now ORDER BY " order                              \
	" OFFSET $1::bigint LIMIT $2::int"
#define T_FLT(order)                                                                               \
	"SELECT gpu_key, hostname FROM fleet_gpu_now WHERE" T_W(                                   \
	    3, 4, 5, 6, 7, 8, 9, 10) " ORDER BY " order " OFFSET $1::bigint LIMIT $2::int"
#define T_FEW(order)                                                                               \
	"WITH m AS MATERIALIZED (SELECT gpu_key, hostname, gpu_index, model, gpu_temp,"            \
	" power_usage, gpu_util, fb_used, health_rank FROM fleet_gpu_now WHERE" T_W(               \
	    3, 4, 5, 6, 7, 8, 9, 10) ") SELECT gpu_key, hostname FROM m ORDER BY " order           \
	                             " OFFSET $1::bigint LIMIT $2::int"
/* a sort key x: ascending (unknown first), descending (unknown last), each grouped by host or
 * not; the fleet_gpu_now_*_idx indexes of schema 15 serve them */
#define T_KEY(Q, x)                                                                                \
	{                                                                                          \
		Q(x " ASC NULLS FIRST, " T_NAT), Q(x " DESC NULLS LAST, " T_NAT),                  \
		    Q(T_GRP x " ASC NULLS FIRST, " T_NAT), Q(T_GRP x " DESC NULLS LAST, " T_NAT)   \
	}
#define T_ORDERS(Q)                                                                                \
	{                                                                                          \
		{Q(T_NAT), Q(T_NAT_DESC), Q(T_NAT),                                                \
		 Q(T_GRP "gpu_index DESC, gpu_key COLLATE \"C\" DESC")},                           \
		    T_KEY(Q, "model COLLATE \"C\""), T_KEY(Q, "gpu_temp"),                         \
		    T_KEY(Q, "power_usage"), T_KEY(Q, "gpu_util"), T_KEY(Q, "fb_used"),            \
		    T_KEY(Q, "health_rank")                                                        \
	}
/* [all, most, few][view_sort_key][desc + 2 * group] */
static const char *const table_sql[3][VS_COUNT][4] = {T_ORDERS(T_ALL), T_ORDERS(T_FLT),
                                                      T_ORDERS(T_FEW)};

static size_t getz(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : (size_t)strtoull(PQgetvalue(r, row, col), NULL, 10);
}

/* A page of the fleet table: the whole fleet's counts (fleet_host_now: one row a host), the
 * GPUs that match the filter (without one: all of them), the keys of the page in the order
 * asked (by the order's index), those GPUs' rows (pipeline_read_fleet_keys into tf, whose
 * rings grow while a GPU stays on screen), and with grouping, the page's hosts' counts. */
static int q_table(PGconn *c, struct fleet *tf, const struct request *q, struct fleet_gpu *out,
                   struct viewdb_table *ti, char *err, size_t errlen)
{
	int rc = 0;
	PGresult *r = NULL;
	char *keys_mem = NULL, *hosts_mem = NULL, *lit = NULL;
	const char **keys = NULL, **hosts = NULL;
	char off[24], lim[16], wbuf[TABLE_WORDS][sizeof(q->filter)];
	/* the words, lower case (the search text is), "" for those not given; a filter of more
	 * than TABLE_WORDS words is searched for its first TABLE_WORDS */
	size_t nw = 0;
	memset(wbuf, 0, sizeof(wbuf));
	for (const char *p = q->filter; *p && nw < TABLE_WORDS;) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t k = 0;
		while (*p && *p != ' ' && *p != '\t' && k + 1 < sizeof(wbuf[0]))
			wbuf[nw][k++] = (char)tolower((unsigned char)*p++);
		nw += k > 0;
	}
	bool filtered = nw > 0;
	/* the parameters: offset, limit, then the words (or, from 0: the words alone) */
	const char *params[2 + TABLE_WORDS] = {off, lim};
	for (size_t i = 0; i < TABLE_WORDS; i++)
		params[2 + i] = wbuf[i];
	size_t limit = q->limit > VIEWDB_TABLE_MAX ? VIEWDB_TABLE_MAX : q->limit;
	memset(ti, 0, sizeof(*ti));
	ti->sort = q->sort;
	ti->desc = q->desc;
	ti->group = q->group;
	snprintf(ti->filter, sizeof(ti->filter), "%s", q->filter);
	ti->offset = q->offset;
	r = PQexecParams(c, "SELECT sum(gpus), sum(pass), sum(warn), sum(fail) FROM fleet_host_now",
	                 0, NULL, NULL, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		query_error(c, "counting the fleet's GPUs", err, errlen);
		rc = -EIO;
		goto out;
	}
	ti->total = getz(r, 0, 0);
	ti->pass = getz(r, 0, 1);
	ti->warn = getz(r, 0, 2);
	ti->fail = getz(r, 0, 3);
	ti->matched = ti->total;
	PQclear(r);
	r = NULL;
	if (filtered) {
		r = PQexecParams(
		    c, "SELECT count(*) FROM fleet_gpu_now WHERE" T_W(1, 2, 3, 4, 5, 6, 7, 8),
		    TABLE_WORDS, NULL, params + 2, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			query_error(c, "counting the GPUs that match the filter", err, errlen);
			rc = -EIO;
			goto out;
		}
		ti->matched = getz(r, 0, 0);
		PQclear(r);
		r = NULL;
	}
	if (limit == 0)
		goto out;
	int sort = q->sort >= 0 && q->sort < VS_COUNT ? q->sort : VS_INDEX;
	snprintf(off, sizeof(off), "%zu", q->offset);
	snprintf(lim, sizeof(lim), "%zu", limit);
	/* few: at most a quarter of the fleet matches */
	int kind = !filtered ? 0 : ti->matched * 4 > ti->total ? 1 : 2;
	r = PQexecParams(c, table_sql[kind][sort][(q->desc ? 1 : 0) + (q->group ? 2 : 0)],
	                 filtered ? 2 + TABLE_WORDS : 2, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(c, "reading the fleet table's page", err, errlen);
		rc = -EIO;
		goto out;
	}
	size_t n = (size_t)PQntuples(r);
	keys = calloc(n + 1, sizeof(*keys));
	hosts = calloc(n + 1, sizeof(*hosts));
	keys_mem = calloc(n + 1, HS_KEY_MAX);
	hosts_mem = calloc(n + 1, HS_HOST_MAX);
	if (!keys || !hosts || !keys_mem || !hosts_mem) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	size_t nhosts = 0;
	char(*host_of)[HS_HOST_MAX] = (char(*)[HS_HOST_MAX])hosts_mem;
	for (size_t i = 0; i < n; i++) {
		char *k = keys_mem + i * HS_KEY_MAX;
		snprintf(k, HS_KEY_MAX, "%s", PQgetvalue(r, (int)i, 0));
		keys[i] = k;
		snprintf(host_of[i], HS_HOST_MAX, "%s", PQgetvalue(r, (int)i, 1));
		if (i == 0 || strcmp(host_of[i], host_of[i - 1]) != 0)
			hosts[nhosts++] = host_of[i];
	}
	PQclear(r);
	r = NULL;
	if (n && (rc = pipeline_read_fleet_keys(c, tf, keys, n, err, errlen)) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!fleet_get(tf, keys[i], &out[i])) { /* no gpus row: the key alone */
			memset(&out[i], 0, sizeof(out[i]));
			snprintf(out[i].key, sizeof(out[i].key), "%s", keys[i]);
			out[i].index = -1;
			out[i].p_fail = NAN;
			out[i].fb_used_mib = out[i].fb_total_mib = NAN;
			out[i].sm_clock_mhz = out[i].mem_clock_mhz = NAN;
			for (int a = 0; a < ACT_COUNT; a++)
				out[i].cost[a] = NAN;
		}
		/* the host as fleet_gpu_now has it: the headings' counts are by it */
		snprintf(out[i].host, sizeof(out[i].host), "%s",
		         strcmp(host_of[i], "-") == 0 ? "" : host_of[i]);
	}
	ti->n = n;
	if (!q->group || !nhosts)
		goto out;
	/* the headings: the page's hosts' GPUs (that match the filter) */
	size_t len = 16;
	for (size_t i = 0; i < nhosts; i++)
		len += 2 * strlen(hosts[i]) + 3;
	if (!(lit = malloc(len)) || pg_text_array(hosts, nhosts, lit, len) != 0) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	const char *hparams[1 + TABLE_WORDS] = {lit};
	for (size_t i = 0; i < TABLE_WORDS; i++)
		hparams[1 + i] = wbuf[i];
	r = PQexecParams(
	    c,
	    filtered
	        ? "SELECT hostname, count(*), count(*) FILTER (WHERE status IN ('warn', 'fail'))"
	          " FROM fleet_gpu_now WHERE hostname COLLATE \"C\" = ANY ($1::text[]) AND" T_W(
	              2, 3, 4, 5, 6, 7, 8, 9) " GROUP BY hostname"
	        : "SELECT hostname, count(*), count(*) FILTER (WHERE status IN ('warn', 'fail'))"
	          " FROM fleet_gpu_now WHERE hostname COLLATE \"C\" = ANY ($1::text[])"
	          " GROUP BY hostname",
	    filtered ? 1 + TABLE_WORDS : 1, NULL, hparams, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		query_error(c, "counting the hosts' GPUs", err, errlen);
		rc = -EIO;
		goto out;
	}
	for (int j = 0; j < PQntuples(r); j++)
		for (size_t i = 0; i < n; i++)
			if (strcmp(host_of[i], PQgetvalue(r, j, 0)) == 0) {
				ti->host_gpus[i] = getz(r, j, 1);
				ti->host_bad[i] = getz(r, j, 2);
			}
out:
	PQclear(r);
	free(lit);
	free(keys);
	free(hosts);
	free(keys_mem);
	free(hosts_mem);
	return rc;
}

/* One GPU's rows (the detail). *found: whether the database knows it. */
static int q_gpu(PGconn *c, struct fleet *tf, const struct request *q, struct fleet_gpu *out,
                 bool *found, char *err, size_t errlen)
{
	const char *keys[1] = {q->key};
	int rc = pipeline_read_fleet_keys(c, tf, keys, 1, err, errlen);
	*found = rc == 0 && fleet_get(tf, q->key, out);
	return rc;
}

/* ------------------------------------------------------------------ thread */

static void *viewdb_main(void *arg)
{
	struct viewdb *v = arg;
	PGconn *c = NULL;
	bool kept = false; /* schema 14: fleet_gpu_now and fleet_host_now */
	char err[512];
	struct viewdb_alert *alerts = calloc(VIEWDB_MAX_ALERTS, sizeof(*alerts));
	struct viewdb_node *nodes = calloc(VIEWDB_MAX_NODES, sizeof(*nodes));
	struct viewdb_history *hist = calloc(1, sizeof(*hist));
	uint64_t done_gen = UINT64_MAX;
	double next = 0;
	/* a table reader's: the GPUs read so far (their rings), the page and the GPU being read */
	struct fleet *tf = NULL;
	struct fleet_gpu *page = v->table ? calloc(VIEWDB_TABLE_MAX, sizeof(*page)) : NULL;
	struct viewdb_table *tinfo = v->table ? calloc(1, sizeof(*tinfo)) : NULL;
	struct fleet_gpu *gpu = v->table ? calloc(1, sizeof(*gpu)) : NULL;
	bool found = false;
	bool ready = alerts && nodes && hist && (!v->table || (page && tinfo && gpu));
	pthread_mutex_lock(&v->lock);
	while (!v->stop && ready) {
		double now = time_mono();
		if (v->req_gen == done_gen && now < next) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			double wait = next - now;
			if (wait > 0.2)
				wait = 0.2;
			ts.tv_nsec += (long)(wait * 1e9);
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&v->cond, &v->lock, &ts);
			continue;
		}
		struct request q = v->req;
		uint64_t gen = v->req_gen;
		pthread_mutex_unlock(&v->lock);

		err[0] = '\0';
		int rc = 0;
		if (q.what != W_NONE && (!c || PQstatus(c) != CONNECTION_OK)) {
			if (c)
				PQfinish(c);
			c = NULL;
			if (!v->conninfo[0] && v->get &&
			    v->get(v->get_arg, v->conninfo, sizeof(v->conninfo)) != 0) {
				v->conninfo[0] = '\0';
				snprintf(err, sizeof(err),
				         "the console's database is not running (yet)");
			} else {
				c = pg_connect(v->conninfo, "gpuhealth-console-viewer", err,
				               sizeof(err));
			}
			/* the viewer only reads: its session cannot write even by mistake */
			if (c &&
			    (pg_exec(c, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", err,
			             sizeof(err)) != 0 ||
			     pg_exec(c, "SET statement_timeout = '5s'", err, sizeof(err)) != 0)) {
				PQfinish(c);
				c = NULL;
			}
			if (!c)
				rc = -EIO;
			if (c) {
				PGresult *k =
				    PQexec(c, "SELECT to_regclass('fleet_host_now') IS NOT NULL");
				kept = PQresultStatus(k) == PGRES_TUPLES_OK && PQntuples(k) == 1 &&
				       PQgetvalue(k, 0, 0)[0] == 't';
				PQclear(k);
			}
		}
		double t0 = time_mono();
		size_t n = 0;
		if (rc == 0) {
			if (q.what == W_ALERTS)
				rc = q_alerts(c, alerts, VIEWDB_MAX_ALERTS, &n, err, sizeof(err));
			else if (q.what == W_OVERVIEW)
				rc = q_overview(c, kept, &q, nodes, VIEWDB_MAX_NODES, &n, err,
				                sizeof(err));
			else if (q.what == W_HISTORY)
				rc = q_history(c, &q, hist, err, sizeof(err));
			else if (q.what == W_TABLE || q.what == W_GPU) {
				/* the GPUs read so far, at most 4 pages' worth: then anew */
				struct fleet_stats fs;
				if (tf) {
					fleet_stats(tf, &fs);
					if (fs.gpus + VIEWDB_TABLE_MAX > 4 * VIEWDB_TABLE_MAX) {
						fleet_destroy(tf);
						tf = NULL;
					}
				}
				struct fleet_opts fo = {.interval_s = v->interval_s,
				                        .max_gpus = 4 * VIEWDB_TABLE_MAX};
				if (!tf && (rc = fleet_create(&tf, &fo)) != 0)
					snprintf(err, sizeof(err), "out of memory");
				else if (q.what == W_TABLE)
					rc = q_table(c, tf, &q, page, tinfo, err, sizeof(err));
				else
					rc = q_gpu(c, tf, &q, gpu, &found, err, sizeof(err));
			}
		}
		double ms = (time_mono() - t0) * 1000.0;

		pthread_mutex_lock(&v->lock);
		done_gen = gen;
		v->done_gen = gen;
		next = time_mono() + v->period_s;
		v->st.connected = c && PQstatus(c) == CONNECTION_OK;
		/* a longer error is cut to the status field (its start says what failed) */
		snprintf(v->st.error, sizeof(v->st.error), "%.*s", (int)sizeof(v->st.error) - 1,
		         rc ? err : "");
		if (q.what == W_NONE || rc)
			continue;
		v->st.query_ms = ms;
		v->st.queries++;
		v->st.total_query_ms += ms;
		if (ms > v->st.max_query_ms)
			v->st.max_query_ms = ms;
		v->st.at = time_now();
		if (q.what == W_ALERTS) {
			memcpy(v->alerts, alerts, n * sizeof(*alerts));
			v->nalerts = n;
			v->alerts_gen = gen;
		} else if (q.what == W_OVERVIEW) {
			memcpy(v->nodes, nodes, n * sizeof(*nodes));
			v->nnodes = n;
			v->nodes_gen = gen;
		} else if (q.what == W_HISTORY) {
			*v->hist = *hist;
			v->hist_gen = gen;
		} else if (q.what == W_TABLE) {
			memcpy(v->page, page, tinfo->n * sizeof(*page));
			*v->tinfo = *tinfo;
			v->table_gen = gen;
		} else {
			if (found)
				*v->gpu = *gpu;
			else
				snprintf(v->gpu->key, sizeof(v->gpu->key), "%s", q.key);
			v->gpu_found = found;
			v->gpu_gen = gen;
		}
	}
	pthread_mutex_unlock(&v->lock);
	if (c)
		PQfinish(c);
	fleet_destroy(tf);
	free(page);
	free(tinfo);
	free(gpu);
	free(alerts);
	free(nodes);
	free(hist);
	return NULL;
}

static int create(struct viewdb **out, const char *conninfo, viewdb_conninfo_fn get, void *arg,
                  double period_s, double table_interval_s)
{
	*out = NULL;
	struct viewdb *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	snprintf(v->conninfo, sizeof(v->conninfo), "%s", conninfo);
	v->get = get;
	v->get_arg = arg;
	v->period_s = period_s > 0.05 ? period_s : 0.05;
	v->done_gen = UINT64_MAX;
	v->alerts_gen = v->nodes_gen = v->hist_gen = v->table_gen = v->gpu_gen = UINT64_MAX;
	v->alerts = calloc(VIEWDB_MAX_ALERTS, sizeof(*v->alerts));
	v->nodes = calloc(VIEWDB_MAX_NODES, sizeof(*v->nodes));
	v->hist = calloc(1, sizeof(*v->hist));
	v->table = table_interval_s > 0;
	v->interval_s = table_interval_s;
	if (v->table) {
		v->page = calloc(VIEWDB_TABLE_MAX, sizeof(*v->page));
		v->tinfo = calloc(1, sizeof(*v->tinfo));
		v->gpu = calloc(1, sizeof(*v->gpu));
	}
	if (!v->alerts || !v->nodes || !v->hist ||
	    (v->table && (!v->page || !v->tinfo || !v->gpu))) {
		viewdb_destroy(v);
		return -ENOMEM;
	}
	int rc = pthread_create(&v->thread, NULL, viewdb_main, v);
	if (rc) {
		viewdb_destroy(v);
		return -rc;
	}
	v->started = true;
	*out = v; /* caller owns */
	return 0;
}

int viewdb_create(struct viewdb **out, const char *conninfo, double period_s)
{
	return create(out, conninfo, NULL, NULL, period_s, 0);
}

int viewdb_create_table(struct viewdb **out, const char *conninfo, double period_s,
                        double interval_s)
{
	return create(out, conninfo, NULL, NULL, period_s, interval_s > 0 ? interval_s : 10);
}

int viewdb_create_deferred(struct viewdb **out, viewdb_conninfo_fn get, void *arg, double period_s)
{
	return create(out, "", get, arg, period_s, 0);
}

void viewdb_destroy(struct viewdb *v)
{
	if (!v)
		return;
	if (v->started) {
		pthread_mutex_lock(&v->lock);
		v->stop = true;
		pthread_cond_signal(&v->cond);
		pthread_mutex_unlock(&v->lock);
		pthread_join(v->thread, NULL);
	}
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v->alerts);
	free(v->nodes);
	free(v->hist);
	free(v->page);
	free(v->tinfo);
	free(v->gpu);
	free(v);
}

static void set_request(struct viewdb *v, const struct request *q)
{
	pthread_mutex_lock(&v->lock);
	if (memcmp(&v->req, q, sizeof(*q)) != 0) {
		v->req = *q;
		v->req_gen++;
		pthread_cond_signal(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
}

void viewdb_want_none(struct viewdb *v)
{
	struct request q;
	memset(&q, 0, sizeof(q));
	set_request(v, &q);
}

void viewdb_want_alerts(struct viewdb *v)
{
	struct request q;
	memset(&q, 0, sizeof(q));
	q.what = W_ALERTS;
	set_request(v, &q);
}

void viewdb_want_overview(struct viewdb *v, enum viewdb_level level, const char *const *path,
                          const char *filter)
{
	struct request q;
	memset(&q, 0, sizeof(q));
	q.what = W_OVERVIEW;
	q.level = level;
	for (int l = 0; l < (int)level && l < VDB_LEVELS - 1; l++)
		snprintf(q.path[l], sizeof(q.path[l]), "%s", path && path[l] ? path[l] : "-");
	snprintf(q.filter, sizeof(q.filter), "%s", filter ? filter : "");
	set_request(v, &q);
}

void viewdb_want_history(struct viewdb *v, const char *key, enum viewdb_window w, double end,
                         size_t points)
{
	struct request q;
	memset(&q, 0, sizeof(q));
	q.what = W_HISTORY;
	snprintf(q.key, sizeof(q.key), "%s", key);
	q.window = w;
	q.end = end;
	q.points = points;
	set_request(v, &q);
}

void viewdb_want_table(struct viewdb *v, int sort, bool desc, bool group, const char *filter,
                       size_t offset, size_t limit)
{
	struct request q;
	memset(&q, 0, sizeof(q));
	q.what = W_TABLE;
	q.sort = sort;
	q.desc = desc;
	q.group = group;
	snprintf(q.filter, sizeof(q.filter), "%s", filter ? filter : "");
	q.offset = offset;
	q.limit = limit > VIEWDB_TABLE_MAX ? VIEWDB_TABLE_MAX : limit;
	set_request(v, &q);
}

void viewdb_want_gpu(struct viewdb *v, const char *key)
{
	struct request q;
	memset(&q, 0, sizeof(q));
	q.what = W_GPU;
	snprintf(q.key, sizeof(q.key), "%s", key);
	set_request(v, &q);
}

static void copy_status(struct viewdb *v, uint64_t gen, struct viewdb_status *st)
{
	if (!st)
		return;
	*st = v->st;
	st->have = gen == v->req_gen;
}

size_t viewdb_copy_alerts(struct viewdb *v, struct viewdb_alert *out, size_t max,
                          struct viewdb_status *st)
{
	pthread_mutex_lock(&v->lock);
	size_t n = v->nalerts < max ? v->nalerts : max;
	memcpy(out, v->alerts, n * sizeof(*out));
	copy_status(v, v->alerts_gen, st);
	pthread_mutex_unlock(&v->lock);
	return n;
}

size_t viewdb_copy_overview(struct viewdb *v, struct viewdb_node *out, size_t max,
                            struct viewdb_status *st)
{
	pthread_mutex_lock(&v->lock);
	size_t n = v->nnodes < max ? v->nnodes : max;
	memcpy(out, v->nodes, n * sizeof(*out));
	copy_status(v, v->nodes_gen, st);
	pthread_mutex_unlock(&v->lock);
	return n;
}

void viewdb_copy_history(struct viewdb *v, struct viewdb_history *out, struct viewdb_status *st)
{
	pthread_mutex_lock(&v->lock);
	*out = *v->hist;
	copy_status(v, v->hist_gen, st);
	pthread_mutex_unlock(&v->lock);
}

size_t viewdb_copy_table(struct viewdb *v, struct fleet_gpu *out, size_t max,
                         struct viewdb_table *info, struct viewdb_status *st)
{
	size_t n = 0;
	pthread_mutex_lock(&v->lock);
	if (v->table) {
		n = v->tinfo->n < max ? v->tinfo->n : max;
		memcpy(out, v->page, n * sizeof(*out));
		*info = *v->tinfo;
	} else {
		memset(info, 0, sizeof(*info));
	}
	copy_status(v, v->table_gen, st);
	if (st && v->table_gen == UINT64_MAX)
		st->have = false;
	pthread_mutex_unlock(&v->lock);
	return n;
}

bool viewdb_copy_gpu(struct viewdb *v, const char *key, struct fleet_gpu *out,
                     struct viewdb_status *st)
{
	pthread_mutex_lock(&v->lock);
	bool ok =
	    v->table && v->gpu_gen != UINT64_MAX && v->gpu_found && strcmp(v->gpu->key, key) == 0;
	if (ok)
		*out = *v->gpu;
	copy_status(v, v->gpu_gen, st);
	pthread_mutex_unlock(&v->lock);
	return ok;
}

bool viewdb_pending(struct viewdb *v)
{
	pthread_mutex_lock(&v->lock);
	bool p = v->req_gen != v->done_gen;
	pthread_mutex_unlock(&v->lock);
	return p;
}

void viewdb_copy_status(struct viewdb *v, struct viewdb_status *st)
{
	pthread_mutex_lock(&v->lock);
	*st = v->st;
	st->have = false;
	pthread_mutex_unlock(&v->lock);
}
