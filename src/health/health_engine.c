#include "health/health_engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MISSING_MAX 256 /* silent GPUs judged per host tick */

struct health_engine {
	struct health_engine_opts o; /* o.econ points at econ below */
	struct econ_inputs econ;
	struct rules *rules;
	struct alerts *alerts;
	struct health_verdict v;                   /* scratch: the verdict being built */
	struct health_result missing[MISSING_MAX]; /* scratch: rules_missing's results */
};

void health_engine_destroy(struct health_engine *e)
{
	if (!e)
		return;
	rules_destroy(e->rules);
	alerts_destroy(e->alerts);
	free(e);
}

int health_engine_create(struct health_engine **out, const struct health_engine_opts *opts)
{
	*out = NULL;
	int rc = -ENOMEM;
	struct health_engine *e = calloc(1, sizeof(*e));
	if (!e)
		goto fail;
	if (opts)
		e->o = *opts;
	if (!(e->o.interval_s > 0))
		e->o.interval_s = 10;
	if (e->o.missing_intervals <= 0)
		e->o.missing_intervals = RULES_MISSING_INTERVALS;
	if (!(e->o.horizon_h > 0))
		e->o.horizon_h = 24;
	if (!(e->o.risk_level > 0 && e->o.risk_level <= 1))
		e->o.risk_level = 0.5;
	if (e->o.econ)
		e->econ = *e->o.econ;
	else
		econ_defaults(&e->econ);
	e->econ.horizon_h = e->o.horizon_h;
	e->o.econ = &e->econ; /* inputs out of range: no recommendation (the scorer refuses them) */
	struct rules_opts ro = {.interval_s = e->o.interval_s,
	                        .missing_intervals = e->o.missing_intervals};
	struct alerts_opts ao = {.raise_after = e->o.raise_after, .clear_after = e->o.clear_after};
	if ((rc = rules_create(&e->rules, &ro)) != 0 || (rc = alerts_create(&e->alerts, &ao)) != 0)
		goto fail;
	*out = e; /* caller owns */
	return 0;
fail:
	health_engine_destroy(e);
	return rc;
}

int health_engine_alert_message(char *buf, size_t len, const char *key, const char *host,
                                const char *summary)
{
	return snprintf(buf, len, "GPU %s%s%s: %s", key, host && host[0] ? " on " : "",
	                host ? host : "", summary);
}

/* Steps (key, kind) at sev; a change is added to v with its summary. */
static int step(struct health_engine *e, struct health_verdict *v, const char *kind,
                enum health_status sev, bool immediate)
{
	const struct health_result *r = &v->r;
	enum alert_action act;
	enum health_status open;
	int rc = alerts_step(e->alerts, r->key, kind, sev, immediate, &act, &open);
	if (rc || act == ALERT_NONE)
		return rc;
	struct health_alert_change *c = &v->alerts[v->nalerts++];
	c->action = act;
	c->kind = kind;
	c->severity = act == ALERT_CLEAR ? HEALTH_PASS : open;
	bool risk = strcmp(kind, HEALTH_KIND_RISK) == 0;
	if (act == ALERT_CLEAR)
		snprintf(c->summary, sizeof(c->summary), "%s",
		         risk ? "failure risk back to normal" : "healthy again");
	else if (risk)
		snprintf(c->summary, sizeof(c->summary),
		         "%.0f %% probability of failure within %g h", 100 * v->p.probability,
		         v->p.horizon_h);
	else
		snprintf(c->summary, sizeof(c->summary), "%s: %s", health_status_name(open),
		         r->nreasons ? r->reasons[0].text : "");
	return 0;
}

/* The verdict of one evaluation r into e->v, then to cb. */
static int judge(struct health_engine *e, const struct health_result *r, health_verdict_cb cb,
                 void *ud)
{
	struct health_verdict *v = &e->v;
	memset(v, 0, sizeof(*v));
	v->r = *r;
	predict_eval(&r->trends, r->status, e->o.horizon_h, &v->p);
	bool at_risk = v->p.probability >= e->o.risk_level;
	v->required = r->remedy;
	if (at_risk && !v->p.failing && v->p.required > v->required)
		v->required = v->p.required;
	v->action = ACT_KEEP;
	if ((r->status != HEALTH_PASS || at_risk) &&
	    econ_evaluate(&e->econ, v->p.probability, r->status == HEALTH_FAIL, v->required,
	                  &v->e) == 0) {
		v->recommended = true;
		v->action = v->e.best;
	}
	if (!v->recommended)
		memset(&v->e, 0, sizeof(v->e));
	int rc = step(e, v, HEALTH_KIND_HEALTH, r->status, r->event);
	if (rc)
		return rc;
	enum health_status risk =
	    v->p.failing ? HEALTH_PASS
	                 : predict_risk_status(v->p.probability, e->o.risk_level,
	                                       alerts_open(e->alerts, r->key, HEALTH_KIND_RISK) !=
	                                           HEALTH_PASS);
	rc = step(e, v, HEALTH_KIND_RISK, risk, false);
	return rc ? rc : cb(v, ud);
}

int health_engine_sample(struct health_engine *e, const struct health_sample *s, double now,
                         health_verdict_cb cb, void *ud)
{
	struct health_result r;
	int rc = rules_update(e->rules, s, &r);
	if (rc)
		return rc; /* -EALREADY: a redelivery; -ENOMEM */
	if ((rc = judge(e, &r, cb, ud)) != 0)
		return rc;
	bool live = now - s->time <= e->o.interval_s * (e->o.missing_intervals + 1);
	if (!live)
		return 0;
	/* a time ahead of this host's clock (within the allowed skew) is not "now" for the other
	 * GPUs of the host */
	double at = s->time < now ? s->time : now;
	size_t n = rules_missing(e->rules, s->host, at, e->missing, MISSING_MAX);
	for (size_t i = 0; i < n && !rc; i++)
		rc = judge(e, &e->missing[i], cb, ud);
	return rc;
}

int health_engine_restore_alert(struct health_engine *e, const char *key, const char *kind,
                                enum health_status sev)
{
	return alerts_restore(e->alerts, key, kind, sev);
}

size_t health_engine_gpu_count(const struct health_engine *e)
{
	return rules_gpu_count(e->rules);
}

size_t health_engine_open_alerts(const struct health_engine *e)
{
	return alerts_open_count(e->alerts);
}
