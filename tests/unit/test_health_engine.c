/*
 * One health engine: for every scenario of the health tests (test_health_scenarios.c), the
 * same samples go the scorer's way and the console's way, and both must give the same
 * verdicts and alerts.
 *
 *   simulator + faults -> render -> prom_parse -> events (event v1), then per event:
 *   - the scorer's path: the JSON text -> health_sample_parse_checked() (its intake) ->
 *     health_engine_sample() with the scorer's clock; the alert changes applied to a model of
 *     the alerts table as scorer.c writes it (raise/escalate: the open row of (GPU, kind) with
 *     its severity and health_engine_alert_message(); clear: the row closed);
 *   - the console's path: events_json() -> fleet_ingest_event() (the tap), read back with
 *     fleet_get() and, for `status`, status_json() over fleet_snapshot().
 *
 * Compared after every scrape, for every GPU: status, score, reasons, recommended action,
 * failure probability, expected costs, the fleet's recent alerts against the engine's changes,
 * and status's open alerts against the alerts table's open rows (kind, severity, message).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "collect/events.h"
#include "core/event_check.h"
#include "exporter/render.h"
#include "fleet/fleet.h"
#include "health/health_engine.h"
#include "health/sample.h"
#include "prom/prom.h"
#include "sim/inject.h"
#include "sim/sim.h"
#include "status/status.h"

#define INTERVAL 10.0
#define EPOCH0   1780000000 /* simulated time 0 */
#define MAXG     64
#define CHANGES  4096

static double now_s; /* the clock of both paths: just after the scrape */
static double test_clock(void)
{
	return now_s;
}

/* An open row of the alerts table. */
struct row {
	bool open;
	char kind[32];
	enum health_status sev;
	char message[512];
	double raised_at; /* kept by an escalation (ON CONFLICT DO UPDATE leaves it) */
};

/* What the scorer's path decided for one GPU. */
struct gpu_db {
	char key[HS_KEY_MAX];
	bool judged;
	struct health_verdict v;                     /* the last verdict */
	struct row rows[2];                          /* health, failure_risk */
	size_t nchanges;                             /* alert changes in all */
	struct health_alert_change ch[FLEET_ALERTS]; /* the newest, ring by nchanges */
	double ch_time[FLEET_ALERTS];
};

struct run {
	struct sim *sim;
	struct events *ev;
	struct health_engine *engine;
	struct fleet *fleet;
	struct render_opts ro;
	char *buf, *json;
	size_t cap, jcap;
	unsigned n;
	struct gpu_db db[MAXG];
	/* totals, so that the comparison is known to mean something */
	size_t verdicts, not_pass, raises, risk_raises, clears, missing;
};

static struct gpu_db *db_gpu(struct run *r, const char *key)
{
	for (unsigned i = 0; i < MAXG; i++) {
		if (!r->db[i].key[0])
			snprintf(r->db[i].key, sizeof(r->db[i].key), "%s", key);
		if (strcmp(r->db[i].key, key) == 0)
			return &r->db[i];
	}
	fail_msg("more than %d GPUs", MAXG);
	return NULL;
}

/* The scorer's side of one verdict: what scorer.c writes for it. */
static int scorer_judged(const struct health_verdict *v, void *ud)
{
	struct run *r = ud;
	struct gpu_db *g = db_gpu(r, v->r.key);
	g->judged = true;
	g->v = *v;
	r->verdicts++;
	r->not_pass += v->r.status != HEALTH_PASS;
	r->missing += v->r.missing;
	for (size_t i = 0; i < v->nalerts; i++) {
		const struct health_alert_change *c = &v->alerts[i];
		bool risk = strcmp(c->kind, HEALTH_KIND_RISK) == 0;
		struct row *row = &g->rows[risk];
		if (c->action == ALERT_CLEAR) {
			row->open = false;
			r->clears++;
		} else { /* INSERT ... ON CONFLICT (gpu_key, kind) WHERE open DO UPDATE */
			if (!row->open)
				row->raised_at = v->r.time;
			row->open = true;
			snprintf(row->kind, sizeof(row->kind), "%s", c->kind);
			row->sev = c->severity;
			health_engine_alert_message(row->message, sizeof(row->message), v->r.key,
			                            v->r.host, c->summary);
			r->raises += c->action == ALERT_RAISE;
			r->risk_raises += risk && c->action == ALERT_RAISE;
		}
		g->ch[g->nchanges % FLEET_ALERTS] = *c;
		g->ch_time[g->nchanges % FLEET_ALERTS] = v->r.time;
		g->nchanges++;
	}
	return 0;
}

static void run_open(struct run *r, const char *model, unsigned n, uint64_t seed,
                     const char *const *faults, size_t nf)
{
	memset(r, 0, sizeof(*r));
	assert_true(n <= MAXG && nf <= 8);
	struct inject_spec specs[8];
	char err[512];
	for (size_t i = 0; i < nf; i++)
		if (inject_parse(faults[i], n, &specs[i], err, sizeof(err)))
			fail_msg("%s", err);
	struct sim_params sp = {.model = sim_model_find(model),
	                        .n_gpus = n,
	                        .seed = seed,
	                        .poll_interval = INTERVAL,
	                        .faults = specs,
	                        .n_faults = nf};
	assert_non_null(sp.model);
	assert_int_equal(sim_create(&r->sim, &sp), 0);
	assert_int_equal(events_create(&r->ev, NULL), 0);
	/* the same options on both sides, as the daemon gives them (scorer_cmd_options) */
	struct econ_inputs econ;
	econ_defaults(&econ);
	struct health_engine_opts eo = {
	    .interval_s = INTERVAL, .horizon_h = 24, .risk_level = 0.5, .econ = &econ};
	assert_int_equal(health_engine_create(&r->engine, &eo), 0);
	struct fleet_opts fo = {.interval_s = INTERVAL,
	                        .horizon_h = 24,
	                        .risk_level = 0.5,
	                        .econ = &econ,
	                        .clock = test_clock};
	assert_int_equal(fleet_create(&r->fleet, &fo), 0);
	r->ro = (struct render_opts){.hostname = "node-1",
	                             .host_label = "hostname",
	                             .driver_version = sp.model->driver_version,
	                             .model_name = sp.model->model_name};
	r->n = n;
	r->cap = render_bound(n, &r->ro);
	r->buf = malloc(r->cap);
	r->jcap = 1 << 16;
	r->json = malloc(r->jcap);
	assert_non_null(r->buf);
	assert_non_null(r->json);
}

static void run_close(struct run *r)
{
	sim_destroy(r->sim);
	events_destroy(r->ev);
	health_engine_destroy(r->engine);
	fleet_destroy(r->fleet);
	free(r->buf);
	free(r->json);
}

static bool same_double(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* The console's GPU g against the scorer's decisions for it. */
static void compare_gpu(const struct gpu_db *d, const struct fleet_gpu *g, double t)
{
	const struct health_verdict *v = &d->v;
	if (!d->judged) {
		assert_false(g->have_health);
		return;
	}
	if (!g->have_health)
		fail_msg("t=%.0f %s: the console has no health, the scorer has %s", t, d->key,
		         health_status_name(v->r.status));
	if (g->health.status != v->r.status || g->health.score != v->r.score ||
	    g->health.missing != v->r.missing)
		fail_msg("t=%.0f %s: console %s/%d, scorer %s/%d", t, d->key,
		         health_status_name(g->health.status), g->health.score,
		         health_status_name(v->r.status), v->r.score);
	assert_int_equal(g->health.nreasons, v->r.nreasons);
	for (size_t k = 0; k < v->r.nreasons; k++)
		assert_string_equal(g->health.reasons[k].code, v->r.reasons[k].code);
	if (g->action != v->action)
		fail_msg("t=%.0f %s: console recommends %s, scorer %s", t, d->key,
		         health_action_name(g->action), health_action_name(v->action));
	assert_true(same_double(g->p_fail, v->p.probability));
	for (int a = 0; a < ACT_COUNT; a++)
		assert_true(same_double(g->cost[a], v->recommended ? v->e.cost[a] : NAN));
	/* the recent alerts, newest first, are the engine's changes */
	size_t want = d->nchanges < FLEET_ALERTS ? d->nchanges : FLEET_ALERTS;
	if (g->nalerts != want)
		fail_msg("t=%.0f %s: the console lists %zu alert changes, the scorer made %zu", t,
		         d->key, g->nalerts, d->nchanges);
	for (size_t k = 0; k < want; k++) {
		size_t j = (d->nchanges - 1 - k) % FLEET_ALERTS;
		const struct health_alert_change *c = &d->ch[j];
		const struct fleet_alert *a = &g->alerts[k];
		if (strcmp(a->kind, c->kind) != 0 || a->severity != c->severity ||
		    a->cleared != (c->action == ALERT_CLEAR) || strcmp(a->text, c->summary) != 0 ||
		    a->time != d->ch_time[j])
			fail_msg(
			    "t=%.0f %s: alert %zu: console %s %s%s \"%s\", scorer %s %s %s \"%s\"",
			    t, d->key, k, a->kind, health_status_name(a->severity),
			    a->cleared ? " cleared" : "", a->text, c->kind,
			    health_status_name(c->severity), alert_action_name(c->action),
			    c->summary);
	}
	/* the open alerts, as the alerts table holds them */
	size_t nopen = d->rows[0].open + d->rows[1].open;
	if (g->nopen != nopen)
		fail_msg("t=%.0f %s: the console has %zu open alerts, the alerts table %zu", t,
		         d->key, g->nopen, nopen);
	for (size_t k = 0; k < g->nopen; k++) {
		const struct fleet_alert *a = &g->open[k];
		const struct row *row = &d->rows[strcmp(a->kind, HEALTH_KIND_RISK) == 0];
		char msg[512];
		health_engine_alert_message(msg, sizeof(msg), g->key, g->host, a->text);
		assert_true(row->open);
		assert_string_equal(a->kind, row->kind);
		assert_int_equal(a->severity, row->sev);
		assert_string_equal(msg, row->message);
		assert_true(a->time == row->raised_at);
		assert_false(a->cleared);
	}
}

/* `status` over the console's fleet: each GPU's open alerts are the alerts table's. */
static void compare_status(struct run *r, double t)
{
	struct fleet_gpu *gpus = calloc(MAXG, sizeof(*gpus));
	assert_non_null(gpus);
	size_t n = fleet_snapshot(r->fleet, gpus, MAXG);
	assert_true(n <= MAXG);
	json_t *doc = status_json(gpus, n, "scrape", now_s, json_array());
	assert_non_null(doc);
	size_t hi, gi, ai, open_rows = 0;
	json_t *h, *gj, *a;
	json_array_foreach(json_object_get(doc, "hosts"), hi, h)
	{
		json_array_foreach(json_object_get(h, "gpus"), gi, gj)
		{
			const char *key = json_string_value(json_object_get(gj, "uuid"));
			assert_non_null(key);
			struct gpu_db *d = db_gpu(r, key);
			json_t *al = json_object_get(gj, "alerts");
			size_t nopen = d->rows[0].open + d->rows[1].open;
			open_rows += nopen;
			if (json_array_size(al) != nopen)
				fail_msg(
				    "t=%.0f %s: status shows %zu open alerts, the alerts table %zu",
				    t, key, json_array_size(al), nopen);
			json_array_foreach(al, ai, a)
			{
				const char *kind = json_string_value(json_object_get(a, "kind"));
				assert_non_null(kind);
				const struct row *row =
				    &d->rows[strcmp(kind, HEALTH_KIND_RISK) == 0];
				assert_true(row->open);
				assert_string_equal(kind, row->kind);
				assert_string_equal(
				    json_string_value(json_object_get(a, "severity")),
				    health_status_name(row->sev));
				assert_string_equal(
				    json_string_value(json_object_get(a, "message")), row->message);
			}
		}
	}
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(doc, "summary"), "open_alerts")),
	    open_rows);
	json_decref(doc);
	free(gpus);
}

/* One scrape at simulated time t through both paths, then the comparison. */
static void scrape(struct run *r, double t)
{
	assert_int_equal(sim_advance(r->sim, t), 0);
	size_t len;
	assert_int_equal(render_exposition(sim_gpus(r->sim), sim_gpu_count(r->sim), &r->ro, r->buf,
	                                   r->cap, &len),
	                 0);
	char ts[EVENTS_TIME_LEN];
	double whole = floor(t);
	struct timespec tsp = {.tv_sec = EPOCH0 + (time_t)whole,
	                       .tv_nsec = (long)((t - whole) * 1e9)};
	assert_int_equal(events_format_time(&tsp, ts), 0);
	now_s = EPOCH0 + t + 0.5; /* the events arrive half a second after the scrape */
	struct prom_stats pst;
	assert_int_equal(events_begin(r->ev, ts), 0);
	assert_int_equal(prom_parse(r->buf, len, NULL, events_prom_cb, r->ev, &pst), 0);
	assert_int_equal(pst.bad_lines, 0);
	struct event_check_opts co = {
	    .now = now_s, .max_age_s = 7 * 86400, .max_skew_s = EVENT_CHECK_MAX_SKEW_S};
	for (size_t i = 0; i < events_count(r->ev); i++) {
		/* the scorer: the event as Kafka carries it */
		size_t jl;
		struct health_sample s;
		char err[256];
		assert_int_equal(events_render(r->ev, i, r->json, r->jcap, &jl), 0);
		if (health_sample_parse_checked(r->json, jl, &co, &s, err, sizeof(err)))
			fail_msg("the scorer's intake: %s", err);
		assert_int_equal(health_engine_sample(r->engine, &s, now_s, scorer_judged, r), 0);
		/* the console: the collector's tap */
		const json_t *j = events_json(r->ev, i);
		assert_non_null(j);
		assert_int_equal(fleet_ingest_event(r->fleet, j), 0);
	}
	for (unsigned i = 0; i < MAXG && r->db[i].key[0]; i++) {
		struct fleet_gpu g;
		assert_true(fleet_get(r->fleet, r->db[i].key, &g));
		compare_gpu(&r->db[i], &g, t);
	}
	compare_status(r, t);
}

static void run_scenario(const char *name, const char *model, unsigned n, uint64_t seed,
                         const char *const *faults, size_t nf, double end, struct run *out)
{
	struct run *r = out;
	run_open(r, model, n, seed, faults, nf);
	for (double t = 0; t <= end; t += INTERVAL)
		scrape(r, t);
	printf("  %-34s %6zu verdicts identical (%zu not pass, %zu fell off the bus), alerts: "
	       "%zu raised (%zu failure_risk), %zu cleared\n",
	       name, r->verdicts, r->not_pass, r->missing, r->raises, r->risk_raises, r->clears);
	run_close(r);
}

static void test_one_fault_each(void **state)
{
	(void)state;
	static const struct {
		const char *spec, *model;
		double end;
	} c[] = {
	    {"gpu=3,fault=dbe,at=305s", "A100-SXM4-80GB", 425},
	    {"gpu=5,fault=fell-off-bus,at=300s", "H100-SXM5-80GB", 500},
	    {"gpu=1,fault=remap-failure,at=95s", "A100-SXM4-80GB", 215},
	    {"gpu=2,fault=power-brake,at=200s", "A100-SXM4-80GB", 320},
	    {"gpu=0,fault=thermal-runaway,at=130s", "A100-SXM4-80GB", 600},
	};
	struct run *r = malloc(sizeof(*r));
	assert_non_null(r);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		run_scenario(c[i].spec, c[i].model, 8, 7, &c[i].spec, 1, c[i].end, r);
		assert_true(r->not_pass > 0 && r->raises > 0);
		if (strstr(c[i].spec, "fell-off-bus"))
			assert_true(r->missing > 0);
	}
	free(r);
}

/* The SBE storm raises failure_risk before its DBE: the console must show it too. */
static void test_sbe_storm(void **state)
{
	(void)state;
	const char *faults[] = {"gpu=4,fault=sbe-storm,at=1200s"};
	struct run *r = malloc(sizeof(*r));
	assert_non_null(r);
	run_scenario(faults[0], "A100-SXM4-80GB", 8, 3, faults, 1, 1600, r);
	assert_true(r->risk_raises > 0);
	free(r);
}

static void test_every_fault_at_once(void **state)
{
	(void)state;
	const char *faults[] = {"gpu=0,fault=sbe-storm,at=600s",
	                        "gpu=1,fault=dbe,at=900s",
	                        "gpu=2,fault=nvlink-crc,at=300s,duration=5m",
	                        "gpu=3,fault=pcie-replay-storm,at=1200s,duration=10m",
	                        "gpu=4,fault=remap-pending,at=100s",
	                        "gpu=5,fault=xid,xid=13,at=50s",
	                        "gpu=6,fault=thermal-runaway,at=700s",
	                        "gpu=7,fault=fell-off-bus,at=3000s"};
	struct run *r = malloc(sizeof(*r));
	assert_non_null(r);
	run_scenario("eight faults, 12 GPUs, 1 h", "A100-SXM4-80GB", 12, 5, faults, 8, 3600, r);
	assert_true(r->not_pass > 100 && r->risk_raises > 0 && r->clears > 0 && r->missing > 0);
	free(r);
}

/* The healthy fleet (the scenario's 64 GPUs; 2 of its 24 hours): nothing to disagree about
 * must stay so. */
static void test_healthy_fleet(void **state)
{
	(void)state;
	struct run *r = malloc(sizeof(*r));
	assert_non_null(r);
	run_scenario("healthy fleet, 64 GPUs, 2 h", "H100-SXM5-80GB", 64, 1, NULL, 0, 7200, r);
	assert_int_equal(r->verdicts, 64 * 721);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_fault_each),
	    cmocka_unit_test(test_sbe_storm),
	    cmocka_unit_test(test_every_fault_at_once),
	    cmocka_unit_test(test_healthy_fleet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
