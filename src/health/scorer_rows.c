#include "health/scorer_rows.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "health/rules.h"

/* Appends text escaped for COPY's text format. */
static int copy_text(struct strbuf *b, const char *t)
{
	int rc = 0;
	for (const char *p = t; *p && !rc; p++) {
		switch (*p) {
		case '\\': rc = strbuf_puts(b, "\\\\"); break;
		case '\t': rc = strbuf_puts(b, "\\t"); break;
		case '\n': rc = strbuf_puts(b, "\\n"); break;
		case '\r': rc = strbuf_puts(b, "\\r"); break;
		default: rc = strbuf_append(b, p, 1);
		}
	}
	return rc;
}

json_t *scorer_rows_reasons_json(const struct health_result *r)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < r->nreasons; i++) {
		const struct health_reason *x = &r->reasons[i];
		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "code", x->code, "component",
		              health_component_name(x->comp), "severity",
		              x->sev == HEALTH_PASS ? "info" : health_status_name(x->sev), "remedy",
		              health_action_name(x->remedy), "event", x->event, "text", x->text));
	}
	return a;
}

int scorer_rows_score(struct strbuf *b, const struct health_result *r, const char *ts)
{
	json_t *j = scorer_rows_reasons_json(r);
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!txt)
		return -ENOMEM;
	int rc = strbuf_printf(b, "%s\t", ts);
	rc = rc ? rc : copy_text(b, r->key);
	rc = rc ? rc
	        : strbuf_printf(b, "\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t", r->score,
	                        health_status_name(r->status), r->comp[HC_THERMAL],
	                        r->comp[HC_MEMORY], r->comp[HC_POWER], r->comp[HC_INTERCONNECT],
	                        r->comp[HC_XID]);
	rc = rc ? rc : copy_text(b, txt);
	rc = rc ? rc : strbuf_puts(b, "\n");
	free(txt);
	return rc;
}

/* The prediction's reasons: model terms, and the costs of each action when recommended. */
json_t *scorer_rows_prediction_json(const struct prediction *p, const struct econ_result *e,
                                    enum health_action required, bool recommended)
{
	json_t *terms = json_array();
	for (int i = 0; terms && i < p->nterms; i++)
		json_array_append_new(terms, json_pack("{s:s, s:f, s:f}", "name", p->terms[i].name,
		                                       "x", p->terms[i].x, "contribution",
		                                       p->terms[i].contribution));
	json_t *j = json_pack("{s:f, s:o, s:b}", "z", p->z, "terms", terms, "failing", p->failing);
	if (j && recommended) {
		json_t *costs = json_object();
		json_t *res = json_array();
		for (int a = 0; costs && res && a < ACT_COUNT; a++) {
			json_object_set_new(costs, health_action_name((enum health_action)a),
			                    json_real(round(e->cost[a] * 100) / 100));
			if (e->resolves[a])
				json_array_append_new(
				    res, json_string(health_action_name((enum health_action)a)));
		}
		json_object_set_new(j, "required", json_string(health_action_name(required)));
		json_object_set_new(j, "costs", costs);
		json_object_set_new(j, "resolved_by", res);
		json_object_set_new(j, "job_loss", json_real(round(e->job_loss * 100) / 100));
	}
	return j;
}

int scorer_rows_prediction(struct strbuf *b, const struct health_result *r,
                           const struct prediction *p, const char *ts, json_t *reasons,
                           const char *rec)
{
	char *txt = json_dumps(reasons, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (!txt)
		return -ENOMEM;
	int rc = strbuf_printf(b, "%s\t", ts);
	rc = rc ? rc : copy_text(b, r->key);
	rc = rc ? rc
	        : strbuf_printf(b, "\t%g\t%.17g\t%s\t", p->horizon_h, p->probability,
	                        PREDICT_MODEL_VERSION);
	rc = rc ? rc : copy_text(b, txt);
	rc = rc ? rc : strbuf_printf(b, "\t%s\n", rec ? rec : "\\N");
	free(txt);
	return rc;
}
