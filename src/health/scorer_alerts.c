#include "health/scorer_alerts.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "health/alertmanager.h"
#include "health/alerts.h"
#include "health/health_engine.h"
#include "health/scorer_int.h"
#include "health/scorer_rows.h"
#include "health/webhook.h"
#include "store/pg.h"

void scorer_alerts_free(struct alert_op *op)
{
	free(op->message);
	free(op->details);
	free(op->body);
	for (int i = 0; i < 3; i++)
		free(op->wl[i]);
	alertmanager_alert_free(op->am);
	memset(op, 0, sizeof(*op));
}

/* The Alertmanager form of op (sent after COMMIT, by scorer_alerts_announce). Returns 0 or -ENOMEM.
 */
static int am_prepare(struct scorer *s, struct alert_op *op, const struct health_result *r,
                      const struct prediction *p, const char *rec)
{
	bool firing = op->action != ALERT_CLEAR;
	/* a raise carries the labels (the workload) of the sample that raised it */
	if (firing && !r->missing && s->cur_event &&
	    alertmanager_note_event(s->am, r->key, s->cur_event, s->cur_len, true))
		return -ENOMEM;
	struct strbuf d;
	strbuf_init(&d, 4096);
	int rc = 0;
	for (size_t i = 0; i < r->nreasons && !rc; i++)
		if (r->reasons[i].sev != HEALTH_PASS)
			rc = strbuf_printf(
			    &d, "%s%s (%s, %s): %s", d.len ? "; " : "", r->reasons[i].code,
			    health_component_name(r->reasons[i].comp),
			    health_status_name(r->reasons[i].sev), r->reasons[i].text);
	if (!rc && op->kind == KIND_RISK && firing)
		rc = strbuf_printf(&d, "%s%.0f %% probability of failure within %g h",
		                   d.len ? "; " : "", 100 * p->probability, p->horizon_h);
	if (!rc && !d.len)
		rc = strbuf_puts(&d, firing ? "no reason recorded" : op->message);
	struct alertmanager_change c = {
	    .key = op->key,
	    .kind = op->kind,
	    .firing = firing,
	    .critical = op->sev == HEALTH_FAIL,
	    .time = op->time,
	    .hostname = op->host,
	    .summary = op->message,
	    .description = d.data ? d.data : "",
	    .remedy = health_action_name(r->remedy),
	    .recommended_action = rec,
	    .failure_probability = p->probability,
	};
	if (!rc)
		op->am = alertmanager_alert_new(s->am, &c);
	strbuf_free(&d);
	return rc || !op->am ? -ENOMEM : 0;
}

/* The last known workload of a GPU that fell silent (r->missing): its newest gpu_workloads run,
 * read on the scorer's connection when it has one (a few per host tick at most: one index probe
 * each). op->wl[] set to its non-empty namespace/pod/container; returns the alert body's object
 * (a new reference), or json_null() when the run had no workload, the table says nothing of the
 * GPU, or the database is not at hand (the alert is raised all the same). */
static json_t *silent_workload(struct scorer *s, struct alert_op *op, const char *key)
{
	static const char *const names[3] = {"namespace", "pod", "container"};
	json_t *out = NULL;
	if (!pgconn_up(s->pg) || !s->has_alert_workload)
		return json_null();
	const char *p[1] = {key};
	PGresult *res = NULL;
	char err[512];
	if (pg_query(pgconn_db(s->pg),
	             "SELECT namespace, pod, container FROM gpu_workloads WHERE gpu_key = "
	             "$1 ORDER BY first_seen DESC LIMIT 1",
	             1, p, &res, err, sizeof(err))) {
		log_warn(
		    "scorer: the last workload of %s (which fell silent) could not be read: %s",
		    key, err);
		goto out;
	}
	for (int i = 0; pg_rows(res) == 1 && i < 3; i++) {
		if (pg_null(res, 0, i) || !*pg_text(res, 0, i))
			continue;
		const char *v = pg_text(res, 0, i);
		if (!out)
			out = json_pack("{s:n, s:n, s:n}", names[0], names[1], names[2]);
		op->wl[i] = strdup(v);
		if (out)
			json_object_set_new(out, names[i], json_string(v));
	}
out:
	pg_clear(res);
	return out ? out : json_null();
}

/* The workload of the event being judged (s->cur_event), when the alert is that event's GPU's.
 * A GPU that fell silent (r->missing) is judged while another GPU's event is taken and must not
 * get that GPU's workload: it gets its own last known one (silent_workload). op->wl[] set to the
 * non-empty namespace/pod/container, and the JSON object for the alert's body (a new
 * reference), or json_null(). */
static json_t *op_workload(struct scorer *s, struct alert_op *op, const struct health_result *r)
{
	static const char *const names[3] = {"namespace", "pod", "container"};
	if (r->missing)
		return silent_workload(s, op, r->key);
	if (!s->cur_event)
		return json_null();
	json_t *ev = json_loadb(s->cur_event, s->cur_len, 0, NULL);
	json_t *w = json_object_get(ev, "workload");
	json_t *out = NULL;
	for (int i = 0; i < 3; i++) {
		const char *v = json_string_value(json_object_get(w, names[i]));
		if (!v || !*v)
			continue;
		if (!out)
			out = json_pack("{s:n, s:n, s:n}", names[0], names[1], names[2]);
		op->wl[i] = strdup(v);
		if (out)
			json_object_set_new(out, names[i], json_string(v));
	}
	json_decref(ev);
	return out ? out : json_null();
}

int scorer_alerts_add(struct scorer *s, const struct health_alert_change *c,
                      const struct health_result *r, const struct prediction *p, const char *rec,
                      const char *ts)
{
	if (grow_array((void **)&s->ops, &s->capops, s->nops + 1, sizeof(*s->ops), 64))
		return -ENOMEM;
	enum alert_action act = c->action;
	const char *kind = strcmp(c->kind, KIND_RISK) == 0 ? KIND_RISK : KIND_HEALTH;
	enum health_status sev = c->severity;
	struct alert_op *op = &s->ops[s->nops];
	memset(op, 0, sizeof(*op));
	op->action = act;
	op->kind = kind;
	op->sev = sev;
	op->time = r->time;
	snprintf(op->key, sizeof(op->key), "%s", r->key);
	snprintf(op->host, sizeof(op->host), "%s", r->host);
	char msg[512];
	health_engine_alert_message(msg, sizeof(msg), r->key, r->host, c->summary);
	json_t *details = json_pack("{s:i, s:s, s:f, s:o, s:s?}", "score", r->score, "status",
	                            health_status_name(r->status), "probability", p->probability,
	                            "reasons", scorer_rows_reasons_json(r), "recommendation", rec);
	json_t *body = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:O?, s:o}", "schema", "gpu-health-alert-v1",
	    "action", alert_action_name(act), "time", ts, "gpu_key", r->key, "hostname", r->host,
	    "kind", kind, "severity", act == ALERT_CLEAR ? "info" : health_status_name(sev),
	    "message", msg, "details", details, "workload", op_workload(s, op, r));
	op->message = strdup(msg);
	op->details = details ? json_dumps(details, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	op->body = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	json_decref(details);
	json_decref(body);
	if (!op->message || !op->details || !op->body || (s->am && am_prepare(s, op, r, p, rec))) {
		scorer_alerts_free(op);
		return -ENOMEM;
	}
	s->nops++;
	if (act == ALERT_CLEAR)
		log_info("scorer: alert cleared: %s", msg);
	else
		log_warn("scorer: alert %s: %s", act == ALERT_RAISE ? "raised" : "escalated", msg);
	return 0;
}

void scorer_alerts_announce(struct scorer *s, struct alert_op *op)
{
	if (s->producer && op->body) {
		/* up to 5 s for room in a full local queue, then counted as not produced */
		int code = 0;
		int rc = sender_send(s->producer, s->alerts_topic, op->key, strlen(op->key), op->body,
		                     strlen(op->body), NULL, 0, NULL, 5000, &code);
		if (rc) {
			STAT_ADD(s, alerts_produce_failed, 1);
			log_warn("scorer: cannot produce an alert to %s: %s", s->alerts_topic,
			         rc == -EAGAIN ? "the local queue stayed full for 5 s"
			                       : sender_err_str(code));
		}
	}
	if (s->hook && op->body && webhook_post(s->hook, op->body, strlen(op->body)))
		log_warn("scorer: out of memory queueing a webhook");
	if (s->am && op->am) {
		alertmanager_post(s->am, op->am); /* the sender owns it now */
		op->am = NULL;
	}
}
