#include "pipeline/fleetdb.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health/rules.h"
#include "health/sample.h"
#include "store/pg.h"

#define EXACT_COUNT_MAX   1000000.0 /* count(*) below this estimate, else the estimate */
#define FLEET_DB_MAX_ROWS 65536

static double getd(const PGresult *r, int row, int col)
{
	return pg_null(r, row, col) ? NAN : pg_double(r, row, col);
}

int64_t fleetdb_count_rows(struct pg_conn *c, bool *estimate)
{
	double est = NAN;
	PGresult *r = pg_exec_params(
	    c,
	    "SELECT coalesce((SELECT sum(greatest(c.reltuples, 0)) FROM pg_inherits i "
	    "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1)), "
	    "(SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass($1)))",
	    1, (const char *const[]){"gpu_metrics"});
	if (pg_tuples_ok(r) && pg_rows(r) == 1)
		est = getd(r, 0, 0);
	pg_clear(r);
	int64_t rows = -1;
	*estimate = false;
	if (!isnan(est) && est >= EXACT_COUNT_MAX) {
		rows = (int64_t)est;
		*estimate = true;
	} else {
		r = pg_exec_params(c, "SELECT count(*) FROM gpu_metrics", 0, NULL);
		if (pg_tuples_ok(r) && pg_rows(r) == 1)
			rows = strtoll(pg_text(r, 0, 0), NULL, 10);
		pg_clear(r);
	}
	return rows;
}

static const struct {
	enum hs_field f;
	int col;
} fleet_cols[] = {
    {HS_GPU_TEMP, 5},
    {HS_MEMORY_TEMP, 6},
    {HS_SLOWDOWN_TEMP, 7},
    {HS_SHUTDOWN_TEMP, 8},
    {HS_POWER, 9},
    {HS_POWER_LIMIT, 10},
    {HS_GPU_UTIL, 11},
    {HS_PCIE_REPLAY, 12},
    {HS_XID, 13},
    {HS_SBE_VOL, 14},
    {HS_DBE_VOL, 15},
    {HS_SBE_AGG, 16},
    {HS_DBE_AGG, 17},
    {HS_UNCORR_ROWS, 18},
    {HS_CORR_ROWS, 19},
    {HS_REMAP_FAILURE, 20},
    {HS_REMAP_PENDING, 21},
    {HS_CLOCK_REASONS, 22},
    {HS_POWER_VIOLATION, 23},
    {HS_THERMAL_VIOLATION, 24},
};

static enum health_status status_of(const char *s)
{
	return strcmp(s, "fail") == 0   ? HEALTH_FAIL
	       : strcmp(s, "warn") == 0 ? HEALTH_WARN
	                                : HEALTH_PASS;
}

static enum health_action action_of(const char *s)
{
	for (int a = 0; a < ACT_COUNT; a++)
		if (strcmp(s, health_action_name((enum health_action)a)) == 0)
			return (enum health_action)a;
	return ACT_KEEP;
}

static void reasons_of(const char *text, struct health_result *h)
{
	json_t *a = json_loads(text, 0, NULL);
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x)
	{
		if (h->nreasons >= HEALTH_MAX_REASONS)
			break;
		struct health_reason *r = &h->reasons[h->nreasons++];
		const char *code = json_string_value(json_object_get(x, "code"));
		const char *t = json_string_value(json_object_get(x, "text"));
		const char *sev = json_string_value(json_object_get(x, "severity"));
		const char *rem = json_string_value(json_object_get(x, "remedy"));
		const char *comp = json_string_value(json_object_get(x, "component"));
		r->comp = HC_THERMAL;
		for (int c = 0; comp && c < HC_COUNT; c++)
			if (strcmp(comp, health_component_name((enum health_component)c)) == 0)
				r->comp = (enum health_component)c;
		snprintf(r->code, sizeof(r->code), "%s", code ? code : "?");
		snprintf(r->text, sizeof(r->text), "%s", t ? t : "");
		r->sev = sev ? status_of(sev) : HEALTH_PASS;
		r->remedy = rem ? action_of(rem) : ACT_KEEP;
		r->event = json_is_true(json_object_get(x, "event"));
	}
	json_decref(a);
}

/* Each GPU's current workload: its newest gpu_workloads row (schema 013; nothing to read from
 * an older database), by the query sql of one parameter, param: key, namespace, pod, container
 * a row. */
static int read_workloads(struct pg_conn *c, struct fleet *f, const char *sql, const char *param,
                          char *err, size_t errlen)
{
	PGresult *r = pg_exec_params(c, sql, 1, (const char *const[]){param});
	int rc = 0;
	if (!pg_tuples_ok(r)) {
		/* an older schema: no such table */
		const char *state = pg_sqlstate(r);
		if (state && strcmp(state, "42P01") == 0)
			goto out;
		snprintf(err, errlen, "reading the GPUs' workloads: %s", pg_conn_error(c));
		err[strcspn(err, "\n")] = '\0';
		rc = -EIO;
		goto out;
	}
	for (int i = 0; i < pg_rows(r); i++)
		fleet_set_workload(f, pg_text(r, i, 0), pg_text(r, i, 1), pg_text(r, i, 2),
		                   pg_text(r, i, 3));
out:
	pg_clear(r);
	return rc;
}

/* The columns after the identity (key, host, index, model): the newest sample m, health row h
 * and prediction pr of a GPU; ingest_rows() reads them by position. */
#define FLEET_VALUE_COLS                                                                           \
	"extract(epoch FROM m.time), m.gpu_temp, m.memory_temp, "                                  \
	"m.slowdown_temp, m.shutdown_temp, m.power_usage, m.power_limit, m.gpu_util, "             \
	"m.pcie_replay, m.xid, m.ecc_sbe_volatile, m.ecc_dbe_volatile, m.ecc_sbe_aggregate, "      \
	"m.ecc_dbe_aggregate, m.uncorrectable_remapped_rows, m.correctable_remapped_rows, "        \
	"m.row_remap_failure, m.row_remap_pending, m.clocks_event_reasons, m.power_violation, "    \
	"m.thermal_violation, h.score, h.status, h.reasons::text, extract(epoch FROM h.time), "    \
	"pr.probability, pr.recommendation, h.thermal, h.memory, h.power, h.interconnect, h.xid, " \
	"m.fb_used, m.fb_used + m.fb_free + coalesce(m.fb_reserved, 0), m.sm_clock, m.mem_clock, " \
	"pr.reasons -> 'costs' "

/* Ingests the rows of a fleet query (identity, then FLEET_VALUE_COLS) into f. */
static int ingest_rows(PGresult *r, struct fleet *f, char *err, size_t errlen)
{
	for (int i = 0; i < pg_rows(r); i++) {
		struct health_sample s;
		memset(&s, 0, sizeof(s));
		snprintf(s.key, sizeof(s.key), "%s", pg_text(r, i, 0));
		snprintf(s.host, sizeof(s.host), "%s", pg_text(r, i, 1));
		s.index = atoi(pg_text(r, i, 2));
		snprintf(s.model, sizeof(s.model), "%s", pg_text(r, i, 3));
		s.time = getd(r, i, 4);
		if (isnan(s.time))
			s.time =
			    0; /* a GPU without a sample (the table's rows): its identity only */
		for (size_t k = 0; k < sizeof(fleet_cols) / sizeof(fleet_cols[0]); k++) {
			double v = getd(r, i, fleet_cols[k].col);
			if (!isnan(v))
				health_sample_set(&s, fleet_cols[k].f, v);
		}
		bool have = !pg_null(r, i, 25);
		struct health_result h;
		memset(&h, 0, sizeof(h));
		if (have) {
			snprintf(h.key, sizeof(h.key), "%s", s.key);
			snprintf(h.host, sizeof(h.host), "%s", s.host);
			h.score = atoi(pg_text(r, i, 25));
			h.status = status_of(pg_text(r, i, 26));
			if (!pg_null(r, i, 27))
				reasons_of(pg_text(r, i, 27), &h);
			h.time = getd(r, i, 28);
			for (int k = 0; k < HC_COUNT; k++)
				h.comp[k] =
				    pg_null(r, i, 31 + k) ? 100 : atoi(pg_text(r, i, 31 + k));
			h.trends.temp_margin_c = NAN;
		}
		double pf = getd(r, i, 29);
		enum health_action act =
		    pg_null(r, i, 30) ? ACT_KEEP : action_of(pg_text(r, i, 30));
		if (fleet_ingest_health(f, &s, have, &h, act, pf) != 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		fleet_set_extra(f, s.key, getd(r, i, 36), getd(r, i, 37), getd(r, i, 38),
		                getd(r, i, 39));
		if (!pg_null(r, i, 40)) { /* {"keep": 75.0, "drain": ...} */
			json_t *cj = json_loads(pg_text(r, i, 40), 0, NULL);
			double cost[ACT_COUNT];
			for (int a = 0; a < ACT_COUNT; a++) {
				json_t *v =
				    json_object_get(cj, health_action_name((enum health_action)a));
				cost[a] = json_is_number(v) ? json_number_value(v) : NAN;
			}
			fleet_set_costs(f, s.key, cost);
			json_decref(cj);
		}
	}
	return 0;
}

/* Runs sql (one parameter, param; the identity, then FLEET_VALUE_COLS) into f, then the
 * workloads' query wl_sql with the same parameter. An error names what was read. */
static int read_rows(struct pg_conn *c, struct fleet *f, const char *sql, const char *wl_sql,
                     const char *param, const char *what, char *err, size_t errlen)
{
	PGresult *r = pg_exec_params(c, sql, 1, (const char *const[]){param});
	int rc = 0;
	if (!pg_tuples_ok(r)) {
		snprintf(err, errlen, "reading %s: %s", what, pg_conn_error(c));
		err[strcspn(err, "\n")] = '\0';
		rc = -EIO;
		goto out;
	}
	if ((rc = ingest_rows(r, f, err, errlen)) != 0)
		goto out;
	pg_clear(r);
	r = NULL;
	rc = read_workloads(c, f, wl_sql, param, err, errlen);
out:
	pg_clear(r);
	return rc;
}

int fleetdb_read(struct pg_conn *c, struct fleet *f, char *err, size_t errlen)
{
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", FLEET_DB_MAX_ROWS);
	return read_rows(
	    c, f,
	    "SELECT m.gpu_key, coalesce(m.hostname, ''), coalesce(m.gpu_index, -1), "
	    "coalesce(m.model, ''), " FLEET_VALUE_COLS "FROM v_latest_gpu_metrics m "
	    "LEFT JOIN v_latest_health h ON h.gpu_key = m.gpu_key "
	    "LEFT JOIN LATERAL (SELECT probability, recommendation, reasons FROM "
	    "gpu_failure_predictions f "
	    "  WHERE f.gpu_key = m.gpu_key ORDER BY f.time DESC LIMIT 1) pr ON true "
	    "LIMIT $1::int",
	    "SELECT m.gpu_key, w.namespace, w.pod, w.container FROM v_latest_gpu_metrics m "
	    "CROSS JOIN LATERAL (SELECT namespace, pod, container FROM gpu_workloads x "
	    "  WHERE x.gpu_key = m.gpu_key ORDER BY x.first_seen DESC LIMIT 1) w LIMIT $1::int",
	    lim, "the fleet", err, errlen);
}

int fleetdb_read_keys(struct pg_conn *c, struct fleet *f, const char *const *keys, size_t n,
                      char *err, size_t errlen)
{
	size_t len = 16;
	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(keys[i]) + 3;
	char *lit = malloc(len);
	if (!lit) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = pg_text_array(keys, n, lit, len);
	if (rc) {
		snprintf(err, errlen, "the GPUs' keys do not fit");
		free(lit);
		return rc;
	}
	/* the identity from gpus (a GPU without a sample still has one), the newest sample,
	 * health row and prediction of each key: three index probes a GPU */
	rc = read_rows(
	    c, f,
	    "SELECT g.gpu_key, coalesce(m.hostname, g.hostname, ''), "
	    "coalesce(m.gpu_index, g.gpu_index, -1), coalesce(g.model, ''), " FLEET_VALUE_COLS
	    "FROM unnest($1::text[]) AS k(key) JOIN gpus g ON g.gpu_key = k.key "
	    "LEFT JOIN LATERAL (SELECT * FROM gpu_metrics x WHERE x.gpu_key = g.gpu_key "
	    "  ORDER BY x.time DESC LIMIT 1) m ON true "
	    "LEFT JOIN LATERAL (SELECT * FROM gpu_health_scores x WHERE x.gpu_key = g.gpu_key "
	    "  ORDER BY x.time DESC LIMIT 1) h ON true "
	    "LEFT JOIN LATERAL (SELECT probability, recommendation, reasons "
	    "  FROM gpu_failure_predictions x WHERE x.gpu_key = g.gpu_key "
	    "  ORDER BY x.time DESC LIMIT 1) pr ON true",
	    "SELECT k.key, w.namespace, w.pod, w.container FROM unnest($1::text[]) AS k(key) "
	    "CROSS JOIN LATERAL (SELECT namespace, pod, container FROM gpu_workloads x "
	    "  WHERE x.gpu_key = k.key ORDER BY x.first_seen DESC LIMIT 1) w",
	    lit, "the GPUs", err, errlen);
	free(lit);
	return rc;
}
