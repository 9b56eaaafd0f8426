#include "health/scorer_db.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "health/alertmanager.h"
#include "health/alerts.h"
#include "health/health_engine.h"
#include "health/scorer_int.h"
#include "store/pg.h"

void scorer_db_close(struct scorer *s)
{
	pgconn_close(s->pg);
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = false;
	pthread_mutex_unlock(&s->lock);
}

/* Connects (store/pgconn.h: a lost session re-opened with PQreset, a read-only one refused),
 * creates the staging tables, and (once) reads the alerts left open. */
int scorer_db_ensure(struct scorer *s)
{
	char err[512];
	int rc = pgconn_ensure(s->pg, PGCONN_WRITER, err, sizeof(err));
	if (rc == 0)
		return 0;
	if (rc < 0) {
		scorer_set_error(s, "%s", err);
		scorer_db_close(s);
		return -EIO;
	}
	if (pg_exec(
	        pgconn_db(s->pg),
	        "CREATE TEMP TABLE IF NOT EXISTS scorer_scores (LIKE gpu_health_scores) "
	        "ON COMMIT DELETE ROWS; "
	        "CREATE TEMP TABLE IF NOT EXISTS scorer_predictions (LIKE gpu_failure_predictions) "
	        "ON COMMIT DELETE ROWS",
	        err, sizeof(err))) {
		scorer_set_error(s, "database not ready (%s): run 'gpuhealth db migrate'", err);
		scorer_db_close(s);
		return -EIO;
	}
	PGresult *rr =
	    pg_exec_simple(pgconn_db(s->pg), "SELECT extract(epoch FROM value::interval) FROM "
	                                     "gpuhealth_settings WHERE key = 'retention'");
	if (pg_tuples_ok(rr) && pg_rows(rr) == 1 && !(s->o.max_age_s > 0))
		s->max_age_s = pg_double(rr, 0, 0);
	pg_clear(rr);
	/* alerts.namespace/pod/container: schema 013 */
	rr = pg_exec_simple(pgconn_db(s->pg),
	                    "SELECT 1 FROM pg_attribute WHERE attrelid = 'alerts'::regclass AND "
	                    "attname = 'pod' AND NOT attisdropped");
	s->has_alert_workload = pg_tuples_ok(rr) && pg_rows(rr) == 1;
	pg_clear(rr);
	/* fleet_gpu_now, fleet_host_now: schema 14 */
	rr = pg_exec_simple(
	    pgconn_db(s->pg),
	    "SELECT to_regprocedure('gpuhealth_fleet_now_merge(text[])') IS NOT NULL");
	s->has_fleet_now = pg_tuples_ok(rr) && pg_rows(rr) == 1 && pg_text(rr, 0, 0)[0] == 't';
	pg_clear(rr);
	if (!s->has_alert_workload)
		log_warn("scorer: the database schema is older than version 13: alerts are stored "
		         "without their workload; run 'gpuhealth db migrate'");
	if (!s->alerts_loaded) {
		static const char *const kinds[2] = {KIND_HEALTH, KIND_RISK};
		PGresult *r = pg_exec_params(
		    pgconn_db(s->pg),
		    "SELECT gpu_key, kind, severity, hostname, message, details::text, "
		    "extract(epoch FROM raised_at) FROM alerts WHERE cleared_at IS NULL "
		    "AND kind IN ($1, $2)",
		    2, kinds);
		if (!pg_tuples_ok(r)) {
			scorer_set_error(s, "reading open alerts: %s", pg_result_error(r));
			pg_clear(r);
			scorer_db_close(s);
			return -EIO;
		}
		for (int i = 0; i < pg_rows(r); i++) {
			const char *kind =
			    strcmp(pg_text(r, i, 1), KIND_RISK) == 0 ? KIND_RISK : KIND_HEALTH;
			enum health_status sev =
			    strcmp(pg_text(r, i, 2), "fail") == 0 ? HEALTH_FAIL : HEALTH_WARN;
			health_engine_restore_alert(s->engine, pg_text(r, i, 0), kind, sev);
			if (s->am && alertmanager_restore(
			                 s->am, pg_text(r, i, 0), kind, sev == HEALTH_FAIL,
			                 pg_double(r, i, 6), pg_text(r, i, 3), pg_text(r, i, 4),
			                 pg_null(r, i, 5) ? NULL : pg_text(r, i, 5)))
				log_warn("scorer: out of memory: an open alert is not re-sent to "
				         "Alertmanager");
		}
		if (pg_rows(r))
			log_info("scorer: %d alert(s) open in the database", pg_rows(r));
		pg_clear(r);
		s->alerts_loaded = true;
	}
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = true;
	s->st.open_alerts = health_engine_open_alerts(s->engine);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* r's outcome (r cleared here): 0, or -EIO with what and the server's message as the error
 * (every failure is retried: the scorer writes only rows it made). */
static int check(struct scorer *s, PGresult *r, const char *what)
{
	char err[512], state[6];
	int rc = pgconn_result(s->pg, r, err, sizeof(err), state);
	if (rc)
		scorer_set_error(s, "%s: %s", what, err);
	pg_clear(r);
	return rc ? -EIO : 0;
}

static int copy_in(struct scorer *s, const char *sql, const struct strbuf *b)
{
	char err[512], state[6];
	if (pgconn_copy_in(s->pg, sql, false, b->data, b->len, err, sizeof(err), state)) {
		scorer_set_error(s, "COPY: %s", err);
		return -EIO;
	}
	return 0;
}

static int write_op(struct scorer *s, const struct alert_op *op)
{
	char ts[40];
	time_format_rfc3339(op->time, ts, sizeof(ts));
	if (op->action == ALERT_CLEAR) {
		const char *p[3] = {op->key, op->kind, ts};
		return check(
		    s,
		    pg_exec_params(
		        pgconn_db(s->pg),
		        "UPDATE alerts SET cleared_at = $3 WHERE gpu_key = $1 AND kind = $2 "
		        "AND cleared_at IS NULL",
		        3, p),
		    "clearing an alert");
	}
	const char *p[10] = {op->key,     op->host[0] ? op->host : NULL,
	                     op->kind,    health_status_name(op->sev),
	                     op->message, op->details,
	                     ts,          op->wl[0],
	                     op->wl[1],   op->wl[2]};
	/* one open alert per GPU and kind (partial unique index): raising again updates it, and
	 * keeps the workload that held the GPU when the fault came */
	if (s->has_alert_workload)
		return check(
		    s,
		    pg_exec_params(
		        pgconn_db(s->pg),
		        "INSERT INTO alerts (gpu_key, hostname, kind, severity, message, "
		        "details, raised_at, namespace, pod, container) VALUES ($1, $2, "
		        "$3, $4, $5, $6::jsonb, $7, $8, $9, $10) "
		        "ON CONFLICT (gpu_key, kind) WHERE cleared_at IS NULL DO UPDATE SET "
		        "severity = EXCLUDED.severity, message = EXCLUDED.message, "
		        "details = EXCLUDED.details",
		        10, p),
		    "raising an alert");
	return check(s,
	             pg_exec_params(
	                 pgconn_db(s->pg),
	                 "INSERT INTO alerts (gpu_key, hostname, kind, severity, message, details, "
	                 "raised_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) "
	                 "ON CONFLICT (gpu_key, kind) WHERE cleared_at IS NULL DO UPDATE SET "
	                 "severity = EXCLUDED.severity, message = EXCLUDED.message, "
	                 "details = EXCLUDED.details",
	                 7, p),
	             "raising an alert");
}

/* The batch in one transaction. Returns 0 or -EIO (rolled back). */
int scorer_db_write(struct scorer *s)
{
	int rc = scorer_db_ensure(s);
	if (rc)
		return rc;
	rc = check(s, pg_exec_simple(pgconn_db(s->pg), "BEGIN"), "BEGIN");
	if (!rc && s->nrows) {
		rc = copy_in(
		    s,
		    "COPY scorer_scores (time, gpu_key, score, status, thermal, memory, power, "
		    "interconnect, xid, reasons) FROM STDIN",
		    &s->scores);
		rc = rc ? rc
		        : check(s,
		                pg_exec_simple(
		                    pgconn_db(s->pg),
		                    "INSERT INTO gpu_health_scores SELECT * FROM scorer_scores "
		                    "ON CONFLICT DO NOTHING"),
		                "scores");
		rc = rc ? rc
		        : copy_in(
		              s,
		              "COPY scorer_predictions (time, gpu_key, horizon_hours, probability, "
		              "model_version, reasons, recommendation) FROM STDIN",
		              &s->preds);
		rc = rc ? rc
		        : check(s,
		                pg_exec_simple(pgconn_db(s->pg),
		                               "INSERT INTO gpu_failure_predictions SELECT * FROM "
		                               "scorer_predictions ON CONFLICT DO NOTHING"),
		                "predictions");
		/* the newest state of these GPUs and their hosts for the console's overview
		 * (schema 14): a few index probes per GPU written, in the same transaction */
		rc = rc || !s->has_fleet_now
		         ? rc
		         : check(s,
		                 pg_exec_simple(
		                     pgconn_db(s->pg),
		                     "SELECT gpuhealth_fleet_now_merge(array(SELECT DISTINCT "
		                     "gpu_key FROM scorer_scores))"),
		                 "the fleet's newest state");
	}
	for (size_t i = 0; !rc && i < s->nops; i++)
		rc = write_op(s, &s->ops[i]);
	rc = rc ? rc : check(s, pg_exec_simple(pgconn_db(s->pg), "COMMIT"), "COMMIT");
	if (rc) {
		pgconn_abort(s->pg); /* rolled back, or the session closed */
		if (!pgconn_db(s->pg))
			scorer_db_close(s);
	}
	return rc;
}
