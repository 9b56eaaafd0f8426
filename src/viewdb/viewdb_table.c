#include "viewdb/viewdb_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "fleet/fleet.h"
#include "pipeline/pipeline.h"
#include "store/pg.h"
#include "view/view.h"
#include "viewdb/viewdb.h"

/* ------------------------------------------------------------------ the fleet table */

/* The filter of the fleet table: each of up to TABLE_WORDS lower-case words ("" unused) in
 * fleet_gpu_now's search text (schema 15: view_filter_match's fields), and a host that must
 * be the GPU's exactly (a word "host=NAME"; "" none); the parameters' numbers */
#define TABLE_WORDS 8
#define T_W(a, b, c, d, e, f, g, h, x)                                                             \
	" strpos(search, $" #a ") > 0 AND strpos(search, $" #b ") > 0 AND strpos(search, $" #c     \
	") > 0 AND strpos(search, $" #d ") > 0 AND strpos(search, $" #e                            \
	") > 0 AND strpos(search, $" #f ") > 0 AND strpos(search, $" #g                            \
	") > 0 AND strpos(search, $" #h ") > 0 AND ($" #x                                          \
	"::text = '' OR hostname COLLATE \"C\" = $" #x ")"
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
	    3, 4, 5, 6, 7, 8, 9, 10, 11) " ORDER BY " order " OFFSET $1::bigint LIMIT $2::int"
#define T_FEW(order)                                                                               \
	"WITH m AS MATERIALIZED (SELECT gpu_key, hostname, gpu_index, model, gpu_temp,"            \
	" power_usage, gpu_util, fb_used, health_rank FROM fleet_gpu_now WHERE" T_W(               \
	    3, 4, 5, 6, 7, 8, 9, 10, 11) ") SELECT gpu_key, hostname FROM m ORDER BY " order       \
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
	return pg_null(r, row, col) ? 0 : (size_t)(uint64_t)pg_int(r, row, col);
}

/* The detail's recent alerts of a viewer: the GPU's newest ones in the database */
#define VIEWDB_DETAIL_ALERTS_SQL "5"

/* Whether each of the n GPUs is stale by the data's own sampling interval, not the console's
 * (a fleet sampled every 30 s is not stale 6 s after its last sample): the median gap between
 * the GPU's newest 5 samples (gpu_metrics' primary key, read backwards); a GPU is stale when
 * its newest sample is older than 3 of those gaps (and of the console's interval_s, the least
 * the data can be trusted to arrive in); one sample only: 3 of interval_s. */
static int own_intervals(PGconn *c, struct fleet_gpu *g, size_t n, double interval_s, char *err,
                         size_t errlen)
{
	int rc = 0;
	PGresult *r = NULL;
	const char **keys = calloc(n + 1, sizeof(*keys));
	size_t len = 16;
	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(g[i].key) + 3;
	char *lit = malloc(len);
	if (!keys || !lit) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		keys[i] = g[i].key;
	if (pg_text_array(keys, n, lit, len) != 0) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	r = pg_exec_params(
	    c,
	    "SELECT key, percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) FROM ("
	    " SELECT k.key, extract(epoch FROM lag(x.time) OVER (PARTITION BY k.key"
	    "  ORDER BY x.time DESC) - x.time) AS gap"
	    " FROM unnest($1::text[]) AS k(key) CROSS JOIN LATERAL (SELECT time"
	    "  FROM gpu_metrics m WHERE m.gpu_key = k.key ORDER BY time DESC LIMIT 5) x"
	    ") s WHERE gap > 0 GROUP BY key",
	    1, (const char *const[]){lit});
	if ((rc = viewdb_query_check(c, r, -1, "reading the GPUs' sampling intervals", err,
	                             errlen)) != 0)
		goto out;
	double now = time_now();
	for (size_t i = 0; i < n; i++) {
		double own = interval_s;
		for (int j = 0; j < pg_rows(r); j++)
			if (strcmp(pg_text(r, j, 0), g[i].key) == 0 &&
			    viewdb_query_getd(r, j, 1) > own)
				own = viewdb_query_getd(r, j, 1);
		g[i].stale = g[i].last_seen > 0 && now - g[i].last_seen > 3 * own;
	}
out:
	pg_clear(r);
	free(lit);
	free(keys);
	return rc;
}

/* A page of the fleet table: the whole fleet's counts (fleet_host_now: one row a host), the
 * GPUs that match the filter (without one: all of them), the keys of the page in the order
 * asked (by the order's index), those GPUs' rows (pipeline_read_fleet_keys into tf, whose
 * rings grow while a GPU stays on screen), and with grouping, the page's hosts' counts. */
int viewdb_table_page(PGconn *c, struct fleet *tf, const struct viewdb_request *q,
                      double interval_s, struct fleet_gpu *out, struct viewdb_table *ti, char *err,
                      size_t errlen)
{
	int rc = 0;
	PGresult *r = NULL;
	char *keys_mem = NULL, *hosts_mem = NULL, *lit = NULL;
	const char **keys = NULL, **hosts = NULL;
	char off[24], lim[16], wbuf[TABLE_WORDS + 1][sizeof(q->filter)];
	/* the words, lower case (the search text is), "" for those not given; a filter of more
	 * than TABLE_WORDS words is searched for its first TABLE_WORDS; a word "host=NAME" is
	 * the host (wbuf[TABLE_WORDS], as written), wherever it stands; every word must match, as
	 * in the console's own filter, so two different hosts match no GPU (none) */
	size_t nw = 0;
	bool host = false, none = false;
	memset(wbuf, 0, sizeof(wbuf));
	for (const char *p = q->filter; *p;) {
		while (*p == ' ' || *p == '\t')
			p++;
		size_t k = 0, wl = strcspn(p, " \t");
		if (wl >= 5 && strncmp(p, "host=", 5) == 0) {
			if (!host)
				snprintf(wbuf[TABLE_WORDS], sizeof(wbuf[0]), "%.*s", (int)(wl - 5),
				         p + 5);
			else if (strlen(wbuf[TABLE_WORDS]) != wl - 5 ||
			         strncmp(wbuf[TABLE_WORDS], p + 5, wl - 5) != 0)
				none = true;
			host = true;
			p += wl;
			continue;
		}
		if (nw == TABLE_WORDS) { /* searched for its first TABLE_WORDS words */
			p += wl;
			continue;
		}
		while (*p && *p != ' ' && *p != '\t' && k + 1 < sizeof(wbuf[0]))
			wbuf[nw][k++] = (char)tolower((unsigned char)*p++);
		p += strcspn(p, " \t"); /* a word longer than the buffer: its start */
		nw += k > 0;
	}
	bool filtered = nw > 0 || host;
	/* the parameters: offset, limit, then the words and the host (or, from 0: the words and
	 * the host alone) */
	const char *params[2 + TABLE_WORDS + 1] = {off, lim};
	for (size_t i = 0; i <= TABLE_WORDS; i++)
		params[2 + i] = wbuf[i];
	size_t limit = q->limit > VIEWDB_TABLE_MAX ? VIEWDB_TABLE_MAX : q->limit;
	memset(ti, 0, sizeof(*ti));
	ti->sort = q->sort;
	ti->desc = q->desc;
	ti->group = q->group;
	snprintf(ti->filter, sizeof(ti->filter), "%s", q->filter);
	ti->offset = q->offset;
	r = pg_exec_params(
	    c, "SELECT sum(gpus), sum(pass), sum(warn), sum(fail) FROM fleet_host_now", 0, NULL);
	if ((rc = viewdb_query_check(c, r, 1, "counting the fleet's GPUs", err, errlen)) != 0)
		goto out;
	ti->total = getz(r, 0, 0);
	ti->pass = getz(r, 0, 1);
	ti->warn = getz(r, 0, 2);
	ti->fail = getz(r, 0, 3);
	ti->matched = ti->total;
	pg_clear(r);
	/* the open alerts (alerts_open_idx: a partial index of them) */
	r = pg_exec_params(c, "SELECT count(*) FROM alerts WHERE cleared_at IS NULL", 0, NULL);
	if ((rc = viewdb_query_check(c, r, 1, "counting the open alerts", err, errlen)) != 0)
		goto out;
	ti->open_alerts = getz(r, 0, 0);
	pg_clear(r);
	r = NULL;
	if (none) { /* two different hosts: no GPU is on both */
		ti->matched = 0;
		goto out;
	}
	if (filtered) {
		r = pg_exec_params(
		    c, "SELECT count(*) FROM fleet_gpu_now WHERE" T_W(1, 2, 3, 4, 5, 6, 7, 8, 9),
		    TABLE_WORDS + 1, params + 2);
		if ((rc = viewdb_query_check(c, r, 1, "counting the GPUs that match the filter",
		                             err, errlen)) != 0)
			goto out;
		ti->matched = getz(r, 0, 0);
		pg_clear(r);
		r = NULL;
	}
	if (limit == 0)
		goto out;
	int sort = q->sort >= 0 && q->sort < VS_COUNT ? q->sort : VS_INDEX;
	snprintf(off, sizeof(off), "%zu", q->offset);
	snprintf(lim, sizeof(lim), "%zu", limit);
	/* few: at most a quarter of the fleet matches */
	int kind = !filtered ? 0 : ti->matched * 4 > ti->total ? 1 : 2;
	r = pg_exec_params(c, table_sql[kind][sort][(q->desc ? 1 : 0) + (q->group ? 2 : 0)],
	                   filtered ? 2 + TABLE_WORDS + 1 : 2, params);
	if ((rc = viewdb_query_check(c, r, -1, "reading the fleet table's page", err, errlen)) != 0)
		goto out;
	size_t n = (size_t)pg_rows(r);
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
		snprintf(k, HS_KEY_MAX, "%s", pg_text(r, (int)i, 0));
		keys[i] = k;
		snprintf(host_of[i], HS_HOST_MAX, "%s", pg_text(r, (int)i, 1));
		if (i == 0 || strcmp(host_of[i], host_of[i - 1]) != 0)
			hosts[nhosts++] = host_of[i];
	}
	pg_clear(r);
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
	if (n && (rc = own_intervals(c, out, n, interval_s, err, errlen)) != 0)
		goto out;
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
	const char *hparams[1 + TABLE_WORDS + 1] = {lit};
	for (size_t i = 0; i <= TABLE_WORDS; i++)
		hparams[1 + i] = wbuf[i];
	r = pg_exec_params(
	    c,
	    filtered
	        ? "SELECT hostname, count(*), count(*) FILTER (WHERE status IN ('warn', 'fail'))"
	          " FROM fleet_gpu_now WHERE hostname COLLATE \"C\" = ANY ($1::text[]) AND" T_W(
	              2, 3, 4, 5, 6, 7, 8, 9, 10) " GROUP BY hostname"
	        : "SELECT hostname, count(*), count(*) FILTER (WHERE status IN ('warn', 'fail'))"
	          " FROM fleet_gpu_now WHERE hostname COLLATE \"C\" = ANY ($1::text[])"
	          " GROUP BY hostname",
	    filtered ? 1 + TABLE_WORDS + 1 : 1, hparams);
	if ((rc = viewdb_query_check(c, r, -1, "counting the hosts' GPUs", err, errlen)) != 0)
		goto out;
	for (int j = 0; j < pg_rows(r); j++)
		for (size_t i = 0; i < n; i++)
			if (strcmp(host_of[i], pg_text(r, j, 0)) == 0) {
				ti->host_gpus[i] = getz(r, j, 1);
				ti->host_bad[i] = getz(r, j, 2);
			}
out:
	pg_clear(r);
	free(lit);
	free(keys);
	free(hosts);
	free(keys_mem);
	free(hosts_mem);
	return rc;
}

/* One GPU's rows (the detail), and its newest alerts (open or cleared, newest first: the
 * detail's "Recent alerts"; alerts_gpu_raised_idx read backwards). *found: whether the
 * database knows it. */
int viewdb_table_gpu(PGconn *c, struct fleet *tf, const struct viewdb_request *q, double interval_s,
                     struct fleet_gpu *out, bool *found, char *err, size_t errlen)
{
	const char *keys[1] = {q->key};
	PGresult *r = NULL;
	int rc = pipeline_read_fleet_keys(c, tf, keys, 1, err, errlen);
	*found = rc == 0 && fleet_get(tf, q->key, out);
	if (!*found)
		goto out;
	if ((rc = own_intervals(c, out, 1, interval_s, err, errlen)) != 0)
		goto out;
	r = pg_exec_params(c,
	                   "SELECT extract(epoch FROM raised_at), kind, severity, message,"
	                   " cleared_at IS NOT NULL FROM alerts WHERE gpu_key = $1"
	                   " ORDER BY raised_at DESC LIMIT " VIEWDB_DETAIL_ALERTS_SQL,
	                   1, keys);
	if ((rc = viewdb_query_check(c, r, -1, "reading the GPU's alerts", err, errlen)) != 0)
		goto out;
	out->nalerts = 0;
	for (int i = 0; i < pg_rows(r) && out->nalerts < FLEET_ALERTS; i++) {
		struct fleet_alert *a = &out->alerts[out->nalerts++];
		memset(a, 0, sizeof(*a));
		a->time = viewdb_query_getd(r, i, 0);
		snprintf(a->kind, sizeof(a->kind), "%s", pg_text(r, i, 1));
		a->severity = viewdb_query_status(pg_text(r, i, 2));
		snprintf(a->text, sizeof(a->text), "%s", pg_text(r, i, 3));
		a->cleared = pg_text(r, i, 4)[0] == 't';
	}
out:
	pg_clear(r);
	return rc;
}
