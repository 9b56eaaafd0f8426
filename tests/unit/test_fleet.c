/* fleet: the console's live picture of the GPUs, fed with event-v1 objects and database rows:
 * order and identity, history rings, health with recommendation and alerts, bounds, bad input,
 * staleness, rows from a fleet database. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/timeutil.h"
#include "fleet/fleet.h"

/* cmocka compares floats as float: too coarse for epoch seconds */
#define assert_time(a, b) assert_true(fabs((a) - (b)) < 1e-3)

static double T0; /* a recent whole second: the samples are live */

static int setup(void **state)
{
	(void)state;
	T0 = floor(time_now()) - 600;
	return 0;
}

/* One event of GPU uuid on host at T0 + t; dbe: ecc_dbe_volatile; util < 0: no gpu_util. */
static json_t *event(const char *host, int index, const char *uuid, double t, double temp,
		     double util, int dbe)
{
	char ts[40];
	time_format_rfc3339(T0 + t, ts, sizeof(ts));
	json_t *m = json_pack("{s:f, s:f, s:f, s:i, s:i, s:f, s:f, s:f, s:f}", "gpu_temp", temp,
			      "power_usage", 250.5, "slowdown_temp", 89.0, "ecc_dbe_volatile", dbe,
			      "ecc_sbe_volatile", 0, "fb_used", 1000.0, "fb_free", 79000.0,
			      "fb_reserved", 0.0, "sm_clock", 1410.0);
	if (util >= 0)
		json_object_set_new(m, "gpu_util", json_real(util));
	json_t *e = json_pack("{s:i, s:s, s:s, s:{s:i, s:s, s:s}, s:o}", "schema_version", 1, "time",
			      ts, "hostname", host, "gpu", "index", index, "uuid", uuid, "model",
			      "NVIDIA A100-SXM4-80GB", "metrics", m);
	assert_non_null(e);
	return e;
}

static void feed(struct fleet *f, json_t *e, int want)
{
	assert_int_equal(fleet_ingest_event(f, e), want);
	json_decref(e);
}

static void test_order_and_identity(void **state)
{
	(void)state;
	struct fleet *f;
	struct fleet_opts o = {.interval_s = 10, .horizon_h = 24};
	assert_int_equal(fleet_create(&f, &o), 0);
	feed(f, event("node-b", 1, "GPU-b1", 0, 60, 50, 0), 0);
	feed(f, event("node-a", 1, "GPU-a1", 0, 61, 50, 0), 0);
	feed(f, event("node-b", 0, "GPU-b0", 0, 62, 50, 0), 0);
	feed(f, event("node-a", 0, "GPU-a0", 0, 63, 50, 0), 0);
	struct fleet_gpu *g = calloc(8, sizeof(*g));
	assert_int_equal(fleet_snapshot(f, g, 8), 4);
	const char *want[] = {"GPU-a0", "GPU-a1", "GPU-b0", "GPU-b1"};
	for (int i = 0; i < 4; i++)
		assert_string_equal(g[i].key, want[i]);
	assert_string_equal(g[0].host, "node-a");
	assert_int_equal(g[0].index, 0);
	assert_string_equal(g[0].model, "NVIDIA A100-SXM4-80GB");
	assert_float_equal(g[0].last.v[HS_GPU_TEMP], 63, 1e-9);
	assert_float_equal(g[0].fb_used_mib, 1000, 1e-9);
	assert_float_equal(g[0].fb_total_mib, 80000, 1e-9);
	assert_float_equal(g[0].sm_clock_mhz, 1410, 1e-9);
	assert_true(isnan(g[0].mem_clock_mhz)); /* not in the event */
	/* a smaller buffer gets the first GPUs in order, and the count of all */
	assert_int_equal(fleet_snapshot(f, g, 1), 4);
	assert_string_equal(g[0].key, "GPU-a0");
	struct fleet_gpu one;
	assert_true(fleet_get(f, "GPU-b1", &one));
	assert_int_equal(one.index, 1);
	assert_false(fleet_get(f, "GPU-none", &one));
	struct fleet_stats st;
	fleet_stats(f, &st);
	assert_int_equal(st.gpus, 4);
	assert_int_equal(st.hosts, 2);
	assert_int_equal(st.events, 4);
	free(g);
	fleet_destroy(f);
}

static void test_history_ring(void **state)
{
	(void)state;
	struct fleet *f;
	assert_int_equal(fleet_create(&f, NULL), 0);
	int n = FLEET_HISTORY + 10;
	for (int i = 0; i < n; i++)
		feed(f, event("h", 0, "GPU-x", i, 40 + i % 50, i == n - 1 ? -1 : i % 100, 0), 0);
	/* a redelivered (not newer) sample adds no history */
	feed(f, event("h", 0, "GPU-x", n - 1, 99, 99, 0), 0);
	struct fleet_gpu g;
	assert_true(fleet_get(f, "GPU-x", &g));
	assert_int_equal(g.nhist, FLEET_HISTORY);
	/* oldest first: the first 10 samples fell out */
	assert_time(g.hist_time[0], T0 + 10);
	assert_time(g.hist_time[FLEET_HISTORY - 1], T0 + n - 1);
	assert_float_equal(g.hist[FLEET_TEMP][0], (40 + 10 % 50), 1e-4);
	assert_float_equal(g.hist[FLEET_POWER][5], 250.5, 1e-4);
	assert_float_equal(g.hist[FLEET_UTIL][FLEET_HISTORY - 2], ((n - 2) % 100), 1e-4);
	assert_true(isnan(g.hist[FLEET_UTIL][FLEET_HISTORY - 1])); /* that sample had none */
	assert_time(g.first_seen, T0);
	assert_time(g.last_seen, T0 + n - 1);
	fleet_destroy(f);
}

static void test_health_and_alerts(void **state)
{
	(void)state;
	struct fleet *f;
	struct fleet_opts o = {.interval_s = 10, .horizon_h = 24};
	assert_int_equal(fleet_create(&f, &o), 0);
	for (int i = 0; i < 3; i++)
		feed(f, event("h", 0, "GPU-ok", i * 10, 60, 50, 0), 0);
	struct fleet_gpu g;
	assert_true(fleet_get(f, "GPU-ok", &g));
	assert_true(g.have_health);
	assert_int_equal(g.health.status, HEALTH_PASS);
	assert_int_equal(g.action, ACT_KEEP);
	assert_true(g.p_fail >= 0 && g.p_fail < 0.5);
	assert_int_equal(g.nalerts, 0);

	/* a double-bit ECC error: fail at once (a fail-class event), alert raised at once, and a
	 * recommendation other than keep */
	feed(f, event("h", 1, "GPU-bad", 0, 60, 50, 0), 0);
	feed(f, event("h", 1, "GPU-bad", 10, 60, 50, 1), 0);
	assert_true(fleet_get(f, "GPU-bad", &g));
	assert_int_equal(g.health.status, HEALTH_FAIL);
	assert_true(g.health.score <= RULES_SCORE_FAIL_MAX);
	assert_true(g.action != ACT_KEEP);
	assert_float_equal(g.p_fail, 1.0, 1e-9);
	assert_int_equal(g.nalerts, 1);
	assert_false(g.alerts[0].cleared);
	assert_int_equal(g.alerts[0].severity, HEALTH_FAIL);
	/* the alert as the scorer stores it (one engine): kind "health", "fail: <reason>" */
	assert_string_equal(g.alerts[0].kind, HEALTH_KIND_HEALTH);
	char want[HEALTH_ALERT_SUMMARY];
	snprintf(want, sizeof(want), "fail: %s", g.health.reasons[0].text);
	assert_string_equal(g.alerts[0].text, want);
	assert_time(g.alerts[0].time, T0 + 10);
	fleet_destroy(f);
}

/* A GPU that goes silent while its host's other GPU keeps reporting fell off the bus. */
static void test_fell_off_the_bus(void **state)
{
	(void)state;
	struct fleet *f;
	struct fleet_opts o = {.interval_s = 10, .missing_intervals = 3};
	assert_int_equal(fleet_create(&f, &o), 0);
	feed(f, event("h", 0, "GPU-a", 550, 60, 50, 0), 0);
	feed(f, event("h", 1, "GPU-b", 550, 60, 50, 0), 0);
	feed(f, event("h", 0, "GPU-a", 560, 60, 50, 0), 0);
	feed(f, event("h", 1, "GPU-b", 560, 60, 50, 0), 0);
	struct fleet_gpu g;
	for (int t = 570; t <= 600; t += 10)
		feed(f, event("h", 0, "GPU-a", t, 60, 50, 0), 0);
	assert_true(fleet_get(f, "GPU-b", &g));
	assert_true(g.health.missing);
	assert_int_equal(g.health.status, HEALTH_FAIL);
	assert_true(g.nalerts >= 1);
	assert_true(fleet_get(f, "GPU-a", &g));
	assert_false(g.health.missing);
	assert_int_equal(g.health.status, HEALTH_PASS);
	fleet_destroy(f);
}

static void test_bad_events_and_bounds(void **state)
{
	(void)state;
	struct fleet *f;
	struct fleet_opts o = {.interval_s = 10, .max_gpus = 2};
	assert_int_equal(fleet_create(&f, &o), 0);
	json_t *e = json_pack("{s:i}", "schema_version", 2);
	assert_int_equal(fleet_ingest_event(f, e), -EINVAL);
	json_decref(e);
	e = json_string("not an object");
	assert_int_equal(fleet_ingest_event(f, e), -EINVAL);
	json_decref(e);
	feed(f, event("h", 0, "GPU-0", 0, 60, 50, 0), 0);
	feed(f, event("h", 1, "GPU-1", 0, 60, 50, 0), 0);
	feed(f, event("h", 2, "GPU-2", 0, 60, 50, 0), 0); /* past max_gpus: counted, not kept */
	struct fleet_stats st;
	fleet_stats(f, &st);
	assert_int_equal(st.bad_events, 2);
	assert_true(strlen(st.last_error) > 0);
	assert_int_equal(st.gpus, 2);
	assert_int_equal(st.over_limit, 1);
	struct fleet_gpu g;
	assert_false(fleet_get(f, "GPU-2", &g));
	fleet_destroy(f);
}

static void test_stale(void **state)
{
	(void)state;
	struct fleet *f;
	struct fleet_opts o = {.interval_s = 10};
	assert_int_equal(fleet_create(&f, &o), 0);
	feed(f, event("h", 0, "GPU-old", 0, 60, 50, 0), 0);   /* 600 s ago */
	feed(f, event("h", 1, "GPU-new", 598, 60, 50, 0), 0); /* 2 s ago */
	struct fleet_gpu g;
	assert_true(fleet_get(f, "GPU-old", &g));
	assert_true(g.stale);
	assert_true(fleet_get(f, "GPU-new", &g));
	assert_false(g.stale);
	fleet_destroy(f);
}

static void test_database_rows(void **state)
{
	(void)state;
	struct fleet *f;
	assert_int_equal(fleet_create(&f, NULL), 0);
	struct health_sample s;
	memset(&s, 0, sizeof(s));
	snprintf(s.key, sizeof(s.key), "GPU-remote");
	snprintf(s.host, sizeof(s.host), "node-z");
	s.index = 3;
	s.time = T0 + 100;
	health_sample_set(&s, HS_GPU_TEMP, 71);
	struct health_result h;
	memset(&h, 0, sizeof(h));
	h.score = 55;
	h.status = HEALTH_WARN;
	h.time = T0 + 100;
	assert_int_equal(fleet_ingest_health(f, &s, true, &h, ACT_DRAIN, 0.3), 0);
	/* an older row changes neither the last sample nor the history */
	struct health_sample older = s;
	older.time = T0 + 50;
	health_sample_set(&older, HS_GPU_TEMP, 20);
	assert_int_equal(fleet_ingest_health(f, &older, false, NULL, ACT_KEEP, NAN), 0);
	struct fleet_gpu g;
	assert_true(fleet_get(f, "GPU-remote", &g));
	assert_string_equal(g.host, "node-z");
	assert_int_equal(g.index, 3);
	assert_float_equal(g.last.v[HS_GPU_TEMP], 71, 1e-9);
	assert_int_equal(g.nhist, 1);
	assert_true(g.have_health);
	assert_int_equal(g.health.score, 55);
	assert_int_equal(g.health.status, HEALTH_WARN);
	assert_int_equal(g.action, ACT_DRAIN);
	assert_float_equal(g.p_fail, 0.3, 1e-9);
	struct fleet_stats st;
	fleet_stats(f, &st);
	assert_int_equal(st.rows, 2);
	assert_int_equal(st.hosts, 1);
	fleet_destroy(f);
}

/* issue #24: the event's workload is the GPU's (the last sample's); null clears it; the
 * database's gpu_workloads sets it; processes are kept per GPU, bounded */
static void test_workload_and_processes(void **state)
{
	(void)state;
	struct fleet *f;
	assert_int_equal(fleet_create(&f, NULL), 0);
	json_t *e = event("node-k", 0, "GPU-k8s", 10, 50, 10, 0);
	json_object_set_new(e, "workload",
	                    json_pack("{s:s, s:s, s:n}", "namespace", "training", "pod",
	                              "llm-7b-worker-3", "container"));
	feed(f, e, 0);
	struct fleet_gpu g;
	assert_true(fleet_get(f, "GPU-k8s", &g));
	assert_true(g.has_workload);
	assert_string_equal(g.wl_namespace, "training");
	assert_string_equal(g.wl_pod, "llm-7b-worker-3");
	assert_string_equal(g.wl_container, "");
	assert_int_equal(g.nprocs, -1);
	/* an older event does not change it */
	e = event("node-k", 0, "GPU-k8s", 5, 50, 10, 0);
	feed(f, e, 0);
	assert_true(fleet_get(f, "GPU-k8s", &g));
	assert_true(g.has_workload);
	/* a newer one without workload (null) clears it */
	e = event("node-k", 0, "GPU-k8s", 20, 50, 10, 0);
	json_object_set_new(e, "workload", json_null());
	feed(f, e, 0);
	assert_true(fleet_get(f, "GPU-k8s", &g));
	assert_false(g.has_workload);
	assert_string_equal(g.wl_pod, "");
	/* from the database */
	assert_int_equal(fleet_set_workload(f, "GPU-k8s", "infer", "", "server"), 0);
	assert_true(fleet_get(f, "GPU-k8s", &g));
	assert_true(g.has_workload);
	assert_string_equal(g.wl_namespace, "infer");
	assert_string_equal(g.wl_container, "server");
	assert_int_equal(fleet_set_workload(f, "GPU-none", "a", "b", "c"), -ENOENT);

	static struct fleet_process pr[FLEET_PROCS_MAX + 5], out[FLEET_PROCS_MAX + 5];
	for (int i = 0; i < FLEET_PROCS_MAX + 5; i++) {
		pr[i].pid = 1000u + (unsigned)i;
		pr[i].type = i % 2 ? FLEET_PROC_GRAPHICS : FLEET_PROC_COMPUTE;
		pr[i].used_mib = 100.0 * i;
		snprintf(pr[i].command, sizeof(pr[i].command), "cmd%d", i);
	}
	assert_int_equal(fleet_processes(f, "GPU-k8s", out, 4), -1);
	assert_int_equal(fleet_set_processes(f, "GPU-k8s", pr, 2), 0);
	assert_int_equal(fleet_processes(f, "GPU-k8s", out, 4), 2);
	assert_int_equal(out[1].pid, 1001);
	assert_int_equal(out[1].type, FLEET_PROC_GRAPHICS);
	assert_string_equal(out[1].command, "cmd1");
	assert_true(fleet_get(f, "GPU-k8s", &g));
	assert_int_equal(g.nprocs, 2);
	/* more than kept: all counted, FLEET_PROCS_MAX copied */
	memset(out, 0, sizeof(out));
	assert_int_equal(fleet_set_processes(f, "GPU-k8s", pr, FLEET_PROCS_MAX + 5), 0);
	assert_int_equal(fleet_processes(f, "GPU-k8s", out, FLEET_PROCS_MAX + 5),
	                 FLEET_PROCS_MAX + 5);
	assert_int_equal(out[FLEET_PROCS_MAX - 1].pid, 1000 + FLEET_PROCS_MAX - 1);
	assert_int_equal(out[FLEET_PROCS_MAX].pid, 0);
	assert_int_equal(fleet_set_processes(f, "GPU-k8s", NULL, 0), 0);
	assert_int_equal(fleet_processes(f, "GPU-k8s", out, 4), 0);
	assert_int_equal(fleet_set_processes(f, "GPU-k8s", NULL, -1), 0);
	assert_int_equal(fleet_processes(f, "GPU-k8s", out, 4), -1);
	assert_int_equal(fleet_set_processes(f, "GPU-none", pr, 1), -ENOENT);
	fleet_destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_identity),
	    cmocka_unit_test(test_history_ring),
	    cmocka_unit_test(test_health_and_alerts),
	    cmocka_unit_test(test_fell_off_the_bus),
	    cmocka_unit_test(test_bad_events_and_bounds),
	    cmocka_unit_test(test_stale),
	    cmocka_unit_test(test_database_rows),
	    cmocka_unit_test(test_workload_and_processes),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
