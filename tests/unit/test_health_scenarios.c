/*
 * Health scenarios end to end, in process and in accelerated simulated time: the simulator
 * with injected faults -> dcgm-exporter text (render) -> prom_parse -> event v1 (events) ->
 * the health sample decoder -> rules, predictor, alerts; one scrape every 10 simulated seconds.
 * Asserts the "done when" items of the health work and prints the measured outcomes
 * (time to flag each fault, the SBE storm's lead time, the healthy fleet's warn rate).
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

#include "collect/events.h"
#include "exporter/render.h"
#include "health/alerts.h"
#include "health/predict.h"
#include "health/prom_samples.h"
#include "health/rules.h"
#include "health/sample.h"
#include "prom/prom.h"
#include "sim/inject.h"
#include "sim/sim.h"

#define INTERVAL 10.0
#define EPOCH0 1780000000 /* simulated time 0 */
#define RISK_LEVEL 0.5    /* the scorer's default --risk-alert */

struct pipe {
	struct sim *sim;
	struct events *ev;
	struct rules *rules;
	struct alerts *alerts;
	char *buf, *json;
	size_t cap, jcap;
	struct render_opts ro;
	enum feed { FEED_TEXT, FEED_DIRECT } feed; /* event v1 JSON text, or prom_samples */
	struct prom_samples *ps;
	struct health_result missing[64];
};

/* What one scrape produced for one GPU. */
struct obs {
	bool seen;
	struct health_result res;
	struct prediction pred;
	enum alert_action alert;
};

static void pipe_open(struct pipe *p, const char *model, unsigned n, uint64_t seed,
		      const char *const *faults, size_t nf, enum feed feed)
{
	memset(p, 0, sizeof(*p));
	struct inject_spec specs[8];
	char err[512];
	assert_true(nf <= 8);
	for (size_t i = 0; i < nf; i++)
		if (inject_parse(faults[i], n, &specs[i], err, sizeof(err)))
			fail_msg("%s", err);
	struct sim_params sp = {.model = sim_model_find(model), .n_gpus = n, .seed = seed,
				.poll_interval = INTERVAL, .faults = specs, .n_faults = nf};
	assert_non_null(sp.model);
	assert_int_equal(sim_create(&p->sim, &sp), 0);
	assert_int_equal(events_create(&p->ev, NULL), 0);
	struct rules_opts ro = {.interval_s = INTERVAL};
	assert_int_equal(rules_create(&p->rules, &ro), 0);
	assert_int_equal(alerts_create(&p->alerts, NULL), 0);
	p->ro = (struct render_opts){.hostname = "node-1", .host_label = "hostname",
				     .driver_version = sp.model->driver_version,
				     .model_name = sp.model->model_name};
	p->cap = render_bound(n, &p->ro);
	p->buf = malloc(p->cap);
	p->jcap = 1 << 16;
	p->json = malloc(p->jcap);
	assert_non_null(p->buf);
	assert_non_null(p->json);
	p->feed = feed;
	assert_int_equal(prom_samples_create(&p->ps, n), 0);
}

static void pipe_close(struct pipe *p)
{
	sim_destroy(p->sim);
	events_destroy(p->ev);
	rules_destroy(p->rules);
	alerts_destroy(p->alerts);
	free(p->buf);
	free(p->json);
	prom_samples_destroy(p->ps);
}

static void judge(struct pipe *p, struct obs *o)
{
	predict_eval(&o->res.trends, o->res.status, 24.0, &o->pred);
	enum health_status open;
	assert_int_equal(alerts_step(p->alerts, o->res.key, "health", o->res.status, o->res.event,
				     &o->alert, &open),
			 0);
}

/* One scrape at simulated time t; obs[i] for GPU index i (n entries). */
static void scrape(struct pipe *p, double t, struct obs *obs, size_t n)
{
	size_t len;
	assert_int_equal(sim_advance(p->sim, t), 0);
	const struct sim_gpu *g = sim_gpus(p->sim);
	assert_int_equal(render_exposition(g, sim_gpu_count(p->sim), &p->ro, p->buf, p->cap, &len), 0);
	char ts[EVENTS_TIME_LEN];
	double whole = floor(t);
	struct timespec tsp = {.tv_sec = EPOCH0 + (time_t)whole,
			       .tv_nsec = (long)((t - whole) * 1e9)};
	assert_int_equal(events_format_time(&tsp, ts), 0);
	struct prom_stats pst;
	for (size_t i = 0; i < n; i++)
		obs[i].seen = false;
	size_t count;
	if (p->feed == FEED_DIRECT) {
		prom_samples_begin(p->ps, EPOCH0 + t);
		assert_int_equal(prom_parse(p->buf, len, NULL, prom_samples_cb, p->ps, &pst), 0);
		assert_int_equal(prom_samples_dropped(p->ps), 0);
		count = prom_samples_count(p->ps);
	} else {
		assert_int_equal(events_begin(p->ev, ts), 0);
		assert_int_equal(prom_parse(p->buf, len, NULL, events_prom_cb, p->ev, &pst), 0);
		count = events_count(p->ev);
	}
	assert_int_equal(pst.bad_lines, 0);
	for (size_t i = 0; i < count; i++) {
		struct health_sample s;
		char err[256];
		if (p->feed == FEED_DIRECT) {
			s = *prom_samples_get(p->ps, i);
		} else {
			size_t jl;
			assert_int_equal(events_render(p->ev, i, p->json, p->jcap, &jl), 0);
			if (health_sample_parse(p->json, jl, &s, err, sizeof(err)))
				fail_msg("decode: %s", err);
		}
		assert_true(s.index >= 0 && (size_t)s.index < n);
		struct obs *o = &obs[s.index];
		assert_int_equal(rules_update(p->rules, &s, &o->res), 0);
		o->seen = true;
		judge(p, o);
	}
	size_t nm = rules_missing(p->rules, "node-1", EPOCH0 + t, p->missing, 64);
	for (size_t k = 0; k < nm; k++)
		for (size_t i = 0; i < n; i++)
			if (strcmp(g[i].uuid, p->missing[k].key) == 0) {
				obs[i].seen = true;
				obs[i].res = p->missing[k];
				judge(p, &obs[i]);
			}
}

static bool has_reason(const struct health_result *r, const char *code)
{
	for (size_t i = 0; i < r->nreasons; i++)
		if (strcmp(r->reasons[i].code, code) == 0)
			return true;
	return false;
}

/* ---- one fault on one GPU of eight: flagged within one scrape interval */

struct fault_case {
	const char *spec;
	unsigned gpu;
	double at;
	enum health_status want;
	const char *reason; /* the reason that must flag it */
};

/* Runs from 0 to end; returns the first scrape time at which the GPU's status reached want
 * with the reason, or -1. Checks that the seven other GPUs never fail. */
static double run_fault(const struct fault_case *fc, double end, const char *model)
{
	struct pipe p;
	const char *faults[] = {fc->spec};
	pipe_open(&p, model, 8, 7, faults, 1, FEED_TEXT);
	struct obs obs[8];
	double flagged = -1;
	for (double t = 0; t <= end; t += INTERVAL) {
		scrape(&p, t, obs, 8);
		for (unsigned i = 0; i < 8; i++) {
			if (i == fc->gpu || !obs[i].seen)
				continue;
			if (obs[i].res.status == HEALTH_FAIL)
				fail_msg("healthy GPU %u failed at t=%.0f (%s)", i, t, obs[i].res.reasons[0].code);
		}
		const struct obs *o = &obs[fc->gpu];
		if (t < fc->at && o->seen && o->res.status != HEALTH_PASS)
			fail_msg("%s: GPU %u flagged %s before the fault (t=%.0f, %s)", fc->spec, fc->gpu,
				 health_status_name(o->res.status), t, o->res.reasons[0].code);
		if (flagged < 0 && o->seen && o->res.status >= fc->want && has_reason(&o->res, fc->reason))
			flagged = t;
	}
	pipe_close(&p);
	return flagged;
}

static void check_fault(const struct fault_case *fc, const char *model)
{
	double t = run_fault(fc, fc->at + 120, model);
	if (t < 0)
		fail_msg("%s: never flagged %s by %s", fc->spec, health_status_name(fc->want), fc->reason);
	printf("  %-44s %s (%s) %.0f s after the fault\n", fc->spec, health_status_name(fc->want),
	       fc->reason, t - fc->at);
	assert_true(t - fc->at <= INTERVAL);
}

static void test_dbe(void **state)
{
	(void)state;
	struct fault_case fc = {"gpu=3,fault=dbe,at=305s", 3, 305, HEALTH_FAIL, "dbe_volatile"};
	check_fault(&fc, "A100-SXM4-80GB");
	struct fault_case x = {"gpu=3,fault=dbe,at=305s", 3, 305, HEALTH_FAIL, "xid_48"};
	check_fault(&x, "A100-SXM4-80GB");
}

static void test_xid79_and_off_the_bus(void **state)
{
	(void)state;
	struct fault_case fc = {"gpu=5,fault=fell-off-bus,at=300s", 5, 300, HEALTH_FAIL, "xid_79"};
	check_fault(&fc, "H100-SXM5-80GB");
	/* then the GPU leaves the output; its host's other GPUs go on: fell off the bus after
	 * RULES_MISSING_INTERVALS silent intervals */
	struct fault_case off = {"gpu=5,fault=fell-off-bus,at=300s", 5, 300, HEALTH_FAIL,
				 "fell_off_bus"};
	double t = run_fault(&off, 500, "H100-SXM5-80GB");
	assert_true(t > 0);
	printf("  %-44s fail (fell_off_bus) %.0f s after the fault\n", off.spec, t - off.at);
	/* the last sample is at 300 + the poll interval; silent for more than K intervals */
	assert_true(t - off.at <= INTERVAL + (RULES_MISSING_INTERVALS + 1) * INTERVAL);
}

static void test_remap_failure(void **state)
{
	(void)state;
	struct fault_case fc = {"gpu=1,fault=remap-failure,at=95s", 1, 95, HEALTH_FAIL,
				"row_remap_failure"};
	check_fault(&fc, "A100-SXM4-80GB");
}

static void test_power_brake(void **state)
{
	(void)state;
	/* DCGM's power watch warns on power violation growth; the brake bit shows it at once */
	struct fault_case fc = {"gpu=2,fault=power-brake,at=200s", 2, 200, HEALTH_WARN, "power_brake"};
	check_fault(&fc, "A100-SXM4-80GB");
}

static void test_thermal_runaway(void **state)
{
	(void)state;
	/* Cooling fails while GPU 0 is at peak load. The temperature climbs with the thermal
	 * lag: flagged warn within one interval of crossing max-operating - margin, fail within
	 * one interval of reaching the slowdown temperature, as the simulator reports it. */
	struct pipe p;
	const char *faults[] = {"gpu=0,fault=thermal-runaway,at=130s"};
	pipe_open(&p, "A100-SXM4-80GB", 8, 7, faults, 1, FEED_TEXT);
	const struct sim_model *m = sim_model_find("A100-SXM4-80GB");
	struct obs obs[8];
	double hot = -1, slow = -1, warned = -1, failed = -1;
	for (double t = 0; t <= 600; t += INTERVAL) {
		scrape(&p, t, obs, 8);
		double temp = (double)sim_gpus(p.sim)[0].u[SIM_F_GPU_TEMP]; /* as exported */
		if (hot < 0 && temp >= m->max_op_c - RULES_TEMP_WARN_MARGIN_C)
			hot = t;
		if (slow < 0 && temp >= m->slowdown_c)
			slow = t;
		if (t < 130)
			assert_int_equal(obs[0].res.status, HEALTH_PASS);
		if (warned < 0 && obs[0].res.status >= HEALTH_WARN)
			warned = t;
		if (failed < 0 && obs[0].res.status == HEALTH_FAIL)
			failed = t;
	}
	pipe_close(&p);
	assert_true(hot > 0 && slow > 0);
	assert_true(warned >= 0 && failed >= 0);
	printf("  thermal runaway at 130 s: exported temperature hot at +%.0f s, warn at +%.0f s; slowdown temperature at "
	       "+%.0f s, fail at +%.0f s\n",
	       hot - 130, warned - 130, slow - 130, failed - 130);
	assert_true(warned <= hot + INTERVAL);
	assert_true(failed <= slow + INTERVAL);
}

/* ---- an SBE storm raises the predicted risk above the alert level before its DBE */

static void test_sbe_storm_predicted(void **state)
{
	(void)state;
	struct pipe p;
	const char *faults[] = {"gpu=4,fault=sbe-storm,at=1200s"};
	pipe_open(&p, "A100-SXM4-80GB", 8, 3, faults, 1, FEED_TEXT);
	struct obs obs[8];
	double risk = -1, dbe = -1, maxp_before = 0;
	for (double t = 0; t <= 1600; t += INTERVAL) {
		scrape(&p, t, obs, 8);
		const struct obs *o = &obs[4];
		if (t < 1200)
			maxp_before = fmax(maxp_before, o->pred.probability);
		if (risk < 0 && !o->pred.failing && o->pred.probability >= RISK_LEVEL)
			risk = t;
		if (dbe < 0 && has_reason(&o->res, "dbe_volatile"))
			dbe = t;
		for (unsigned i = 0; i < 8; i++)
			if (i != 4 && obs[i].pred.probability >= RISK_LEVEL)
				fail_msg("healthy GPU %u at risk %.2f at t=%.0f", i, obs[i].pred.probability, t);
	}
	pipe_close(&p);
	printf("  SBE storm at 1200 s: risk >= %.2f at +%.0f s, DBE at +%.0f s: %.0f s of warning "
	       "(highest risk before the storm %.3f)\n",
	       RISK_LEVEL, risk - 1200, dbe - 1200, dbe - risk, maxp_before);
	assert_true(dbe > 0);
	assert_true(risk > 0);
	assert_true(maxp_before < RISK_LEVEL);
	assert_true(risk < dbe); /* predicted before it happened */
	assert_true(dbe - risk >= INTERVAL);
}

/* ---- a healthy fleet of 64 GPUs over 24 simulated hours: no fail, warns on <= 1 % */

static void test_healthy_fleet_day(void **state)
{
	(void)state;
	const unsigned n = 64;
	struct pipe p;
	pipe_open(&p, "H100-SXM5-80GB", n, 1, NULL, 0, FEED_DIRECT);
	struct obs *obs = calloc(n, sizeof(*obs));
	assert_non_null(obs);
	size_t samples = 0, warns = 0, fails = 0, risky = 0, raised = 0;
	double maxp = 0;
	char first_warn[64] = "";
	clock_t c0 = clock();
	for (double t = 0; t <= 86400; t += INTERVAL) {
		scrape(&p, t, obs, n);
		for (unsigned i = 0; i < n; i++) {
			assert_true(obs[i].seen);
			samples++;
			warns += obs[i].res.status == HEALTH_WARN;
			fails += obs[i].res.status == HEALTH_FAIL;
			if (obs[i].res.status == HEALTH_WARN && !first_warn[0])
				snprintf(first_warn, sizeof(first_warn), "%s", obs[i].res.reasons[0].code);
			risky += obs[i].pred.probability >= RISK_LEVEL;
			maxp = fmax(maxp, obs[i].pred.probability);
			raised += obs[i].alert == ALERT_RAISE;
		}
	}
	double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
	pipe_close(&p);
	free(obs);
	printf("  healthy fleet: %zu samples of 64 GPUs over 24 h: %zu warn (%.3f %%%s%s), %zu fail, "
	       "%zu alerts, highest risk %.3f, %zu at risk; %.1f s CPU\n",
	       samples, warns, 100.0 * (double)warns / (double)samples, first_warn[0] ? ", first: " : "",
	       first_warn, fails, raised, maxp, risky, cpu);
	assert_int_equal(samples, (size_t)n * 8641);
	assert_int_equal(fails, 0);
	assert_true((double)warns <= 0.01 * (double)samples);
	assert_int_equal(risky, 0);
}

/* ---- the two ways in give the same evaluations: event v1 JSON text, and prom_samples */

static void test_feeds_agree(void **state)
{
	(void)state;
	const char *faults[] = {"gpu=0,fault=sbe-storm,at=600s", "gpu=1,fault=dbe,at=900s",
				"gpu=2,fault=nvlink-crc,at=300s,duration=5m",
				"gpu=3,fault=pcie-replay-storm,at=1200s,duration=10m",
				"gpu=4,fault=remap-pending,at=100s", "gpu=5,fault=xid,xid=13,at=50s",
				"gpu=6,fault=thermal-runaway,at=700s", "gpu=7,fault=fell-off-bus,at=3000s"};
	struct pipe a, b;
	pipe_open(&a, "A100-SXM4-80GB", 12, 5, faults, 8, FEED_TEXT);
	pipe_open(&b, "A100-SXM4-80GB", 12, 5, faults, 8, FEED_DIRECT);
	struct obs oa[12], ob[12];
	size_t compared = 0, flagged = 0;
	for (double t = 0; t <= 3600; t += INTERVAL) {
		scrape(&a, t, oa, 12);
		scrape(&b, t, ob, 12);
		for (unsigned i = 0; i < 12; i++) {
			assert_int_equal(oa[i].seen, ob[i].seen);
			if (!oa[i].seen)
				continue;
			const struct health_result *x = &oa[i].res, *y = &ob[i].res;
			assert_string_equal(x->key, y->key);
			assert_string_equal(x->host, y->host);
			assert_int_equal(x->status, y->status);
			assert_int_equal(x->score, y->score);
			assert_int_equal(x->nreasons, y->nreasons);
			for (size_t k = 0; k < x->nreasons; k++)
				assert_string_equal(x->reasons[k].code, y->reasons[k].code);
			assert_true(fabs(oa[i].pred.probability - ob[i].pred.probability) < 1e-12);
			assert_int_equal(oa[i].alert, ob[i].alert);
			compared++;
			flagged += x->status != HEALTH_PASS;
		}
	}
	pipe_close(&a);
	pipe_close(&b);
	printf("  %zu evaluations identical through both feeds (%zu not pass)\n", compared, flagged);
	assert_true(flagged > 100); /* the faults were seen, so the comparison means something */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dbe),
		cmocka_unit_test(test_xid79_and_off_the_bus),
		cmocka_unit_test(test_remap_failure),
		cmocka_unit_test(test_power_brake),
		cmocka_unit_test(test_thermal_runaway),
		cmocka_unit_test(test_sbe_storm_predicted),
		cmocka_unit_test(test_feeds_agree),
		cmocka_unit_test(test_healthy_fleet_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
