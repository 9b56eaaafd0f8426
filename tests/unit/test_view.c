/* The console's pure logic (src/view): sparklines, thresholds, sort, filter, columns,
 * formatting, XID and throttle decoding, the pipeline panel's figures, and the fake source. */
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "health/rules.h"
#include "view/fake.h"
#include "view/view.h"

static void gpu_init(struct fleet_gpu *g, const char *host, int index, double temp, double power,
                     double util)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->host, sizeof(g->host), "%s", host);
	snprintf(g->key, sizeof(g->key), "GPU-%s-%d", host, index);
	snprintf(g->model, sizeof(g->model), "A100-SXM4-80GB");
	g->index = index;
	g->fb_used_mib = NAN;
	g->fb_total_mib = NAN;
	g->p_fail = NAN;
	health_sample_set(&g->last, HS_GPU_TEMP, temp);
	health_sample_set(&g->last, HS_POWER, power);
	health_sample_set(&g->last, HS_POWER_LIMIT, 400);
	health_sample_set(&g->last, HS_SLOWDOWN_TEMP, 87);
	health_sample_set(&g->last, HS_GPU_UTIL, util);
}

static void test_spark_levels(void **state)
{
	(void)state;
	float v[] = {0, 12.5f, 25, 50, 99.9f, 100, NAN, -5, 150};
	int l[9];
	view_spark_levels(v, 9, 0, 100, l, 9);
	int want[9] = {0, 1, 2, 4, 7, 7, -1, 0, 7};
	for (int i = 0; i < 9; i++)
		assert_int_equal(l[i], want[i]);
	/* right-aligned: fewer samples than cells leave blanks on the left */
	int l2[5];
	view_spark_levels(v, 2, 0, 100, l2, 5);
	assert_int_equal(l2[0], -1);
	assert_int_equal(l2[2], -1);
	assert_int_equal(l2[3], 0);
	assert_int_equal(l2[4], 1);
	/* more samples than cells: the newest ones */
	int l3[2];
	view_spark_levels(v, 6, 0, 100, l3, 2);
	assert_int_equal(l3[0], 7);
	assert_int_equal(l3[1], 7);
	/* an empty scale draws a middle level, not a division by zero */
	view_spark_levels(v, 1, 5, 5, l3, 1);
	assert_int_equal(l3[0], VIEW_SPARK_LEVELS / 2);
}

static void test_spark_text(void **state)
{
	(void)state;
	float v[] = {0, 50, 100};
	char buf[64];
	assert_int_equal(view_spark_text(v, 3, 0, 100, 4, true, buf, sizeof(buf)), 4);
	assert_string_equal(buf, " \u2581\u2585\u2588");
	view_spark_text(v, 3, 0, 100, 3, false, buf, sizeof(buf));
	assert_string_equal(buf, "_=#");
	/* truncated to the buffer, never past it */
	char small[5];
	assert_int_equal(view_spark_text(v, 3, 0, 100, 3, true, small, sizeof(small)), 1);
	assert_string_equal(small, "\u2581");
	assert_string_equal(view_spark_glyph(-1, true), " ");
	assert_string_equal(view_spark_glyph(8, false), " ");
}

static void test_series_scale(void **state)
{
	(void)state;
	struct fleet_gpu g;
	gpu_init(&g, "a", 0, 50, 300, 40);
	double lo, hi;
	view_series_scale(&g, FLEET_POWER, &lo, &hi);
	assert_true(lo == 0 && hi == 400);
	g.hist[FLEET_POWER][0] = 450; /* above the limit (a transient): the scale follows */
	g.nhist = 1;
	view_series_scale(&g, FLEET_POWER, &lo, &hi);
	assert_true(hi == 450);
	health_sample_set(&g.last, HS_SLOWDOWN_TEMP, 105);
	view_series_scale(&g, FLEET_TEMP, &lo, &hi);
	assert_true(hi == 105);
	view_series_scale(&g, FLEET_UTIL, &lo, &hi);
	assert_true(hi == 100);
}

static void test_levels(void **state)
{
	(void)state;
	struct fleet_gpu g;
	gpu_init(&g, "a", 0, 60, 300, 40);
	assert_int_equal(view_temp_level(&g), VL_OK);
	health_sample_set(&g.last, HS_GPU_TEMP, 75);
	assert_int_equal(view_temp_level(&g), VL_WARN);
	health_sample_set(&g.last, HS_GPU_TEMP, 83);
	assert_int_equal(view_temp_level(&g), VL_CRIT);
	assert_int_equal(view_power_level(&g), VL_OK);
	health_sample_set(&g.last, HS_POWER, 370);
	assert_int_equal(view_power_level(&g), VL_WARN);
	health_sample_set(&g.last, HS_POWER, 399);
	assert_int_equal(view_power_level(&g), VL_CRIT);
	g.stale = true;
	assert_int_equal(view_temp_level(&g), VL_DIM);
	assert_int_equal(view_health_level(&g), VL_NONE);
	g.have_health = true;
	g.health.status = HEALTH_FAIL;
	assert_int_equal(view_health_level(&g), VL_CRIT);
	struct fleet_gpu none;
	memset(&none, 0, sizeof(none));
	assert_int_equal(view_temp_level(&none), VL_NONE);
}

static void test_filter(void **state)
{
	(void)state;
	struct fleet_gpu g;
	gpu_init(&g, "node07", 3, 60, 300, 40);
	assert_true(view_filter_match(&g, NULL));
	assert_true(view_filter_match(&g, ""));
	assert_true(view_filter_match(&g, "  "));
	assert_true(view_filter_match(&g, "NODE07"));
	assert_true(view_filter_match(&g, "gpu3"));
	assert_false(view_filter_match(&g, "gpu4"));
	assert_true(view_filter_match(&g, "a100 node0"));
	assert_false(view_filter_match(&g, "a100 h100"));
	assert_false(view_filter_match(&g, "fail"));
	g.have_health = true;
	g.health.status = HEALTH_FAIL;
	g.action = ACT_RMA;
	assert_true(view_filter_match(&g, "fail"));
	assert_true(view_filter_match(&g, "rma node07"));
	/* host=NAME: that host exactly (Enter on a host of the overview), not by substring */
	assert_true(view_filter_match(&g, "host=node07"));
	assert_true(view_filter_match(&g, "fail host=node07"));
	assert_false(view_filter_match(&g, "host=node0"));
	assert_false(view_filter_match(&g, "host=node070"));
	assert_false(view_filter_match(&g, "host=NODE07"));
	assert_false(view_filter_match(&g, "host=-"));
	g.host[0] = '\0';
	assert_true(view_filter_match(&g, "host=-"));
}

static void test_order(void **state)
{
	(void)state;
	struct fleet_gpu g[5];
	gpu_init(&g[0], "b", 0, 50, 100, 10);
	gpu_init(&g[1], "a", 1, 80, 350, 90);
	gpu_init(&g[2], "a", 0, 70, 200, 50);
	gpu_init(&g[3], "b", 1, 90, 390, 95);
	gpu_init(&g[4], "a", 2, 60, 300, 70);
	size_t o[5];
	/* the fleet's own order: host, index */
	assert_int_equal(view_order(g, 5, "", VS_INDEX, false, true, o), 5);
	size_t want1[5] = {2, 1, 4, 0, 3};
	for (int i = 0; i < 5; i++)
		assert_int_equal(o[i], want1[i]);
	/* hottest first, grouped by host */
	view_order(g, 5, NULL, VS_TEMP, true, true, o);
	size_t want2[5] = {1, 2, 4, 3, 0};
	for (int i = 0; i < 5; i++)
		assert_int_equal(o[i], want2[i]);
	/* hottest first over the whole fleet */
	view_order(g, 5, NULL, VS_TEMP, true, false, o);
	size_t want3[5] = {3, 1, 2, 4, 0};
	for (int i = 0; i < 5; i++)
		assert_int_equal(o[i], want3[i]);
	/* filter and sort together */
	assert_int_equal(view_order(g, 5, "gpu-b-", VS_UTIL, false, false, o), 2);
	assert_int_equal(o[0], 0);
	assert_int_equal(o[1], 3);
	/* health: worst first, then the lower score */
	for (int i = 0; i < 5; i++) {
		g[i].have_health = true;
		g[i].health.score = 100;
	}
	g[4].health.status = HEALTH_WARN;
	g[4].health.score = 50;
	g[0].health.status = HEALTH_WARN;
	g[0].health.score = 40;
	g[2].health.status = HEALTH_FAIL;
	g[2].health.score = 10;
	view_order(g, 5, NULL, VS_HEALTH, true, false, o);
	assert_int_equal(o[0], 2);
	assert_int_equal(o[1], 0);
	assert_int_equal(o[2], 4);
	assert_true(view_sort_default_desc(VS_HEALTH));
	assert_false(view_sort_default_desc(VS_INDEX));
	assert_string_equal(view_sort_name(VS_TEMP), "temp");
}

static void test_layout(void **state)
{
	(void)state;
	int widths[] = {40, 60, 80, 100, 132, 200, 400};
	for (size_t k = 0; k < sizeof(widths) / sizeof(widths[0]); k++) {
		struct view_layout L;
		view_layout(widths[k], &L);
		assert_true(L.total <= widths[k]);
		int end = -1;
		for (int c = 0; c < VC_COUNT; c++) {
			if (L.x[c] < 0)
				continue;
			assert_true(L.x[c] > end); /* no overlap, left to right */
			assert_true(L.x[c] + L.width[c] <= widths[k]);
			end = L.x[c] + L.width[c] - 1;
		}
		assert_true(L.x[VC_INDEX] == 0);
	}
	struct view_layout L;
	view_layout(80, &L);
	/* 80 columns: every column (the workload's only when asked for), sparklines of at least
	 * 4 cells */
	for (int c = 0; c < VC_COUNT; c++)
		assert_true(c == VC_WORKLOAD ? L.x[c] < 0 : L.x[c] >= 0);
	assert_true(L.width[VC_SPARK_UTIL] >= 5);
	assert_int_equal(L.width[VC_MODEL], 14);
	assert_int_equal(L.width[VC_SPARK_TEMP], L.width[VC_SPARK_UTIL]);
	/* narrow: the model and then the sparklines go first */
	view_layout(60, &L);
	assert_true(L.x[VC_HEALTH] >= 0);
	assert_true(L.x[VC_MODEL] < 0);
	view_layout(0, &L);
	assert_int_equal(L.total, 0);
}

/* issue #24: the workload column, asked for with its widest text */
static void test_layout_workload(void **state)
{
	(void)state;
	int widths[] = {40, 60, 80, 100, 132, 200};
	for (size_t k = 0; k < sizeof(widths) / sizeof(widths[0]); k++) {
		struct view_layout L;
		view_layout_workload(widths[k], 24, &L);
		assert_true(L.total <= widths[k]);
		int end = -1;
		for (int c = 0; c < VC_COUNT; c++) {
			if (L.x[c] < 0)
				continue;
			assert_true(L.x[c] > end);
			end = L.x[c] + L.width[c] - 1;
		}
		if (L.x[VC_WORKLOAD] >= 0) { /* after the health, before the sparklines */
			assert_true(L.x[VC_WORKLOAD] > L.x[VC_HEALTH]);
			assert_true(L.width[VC_WORKLOAD] >= 8 && L.width[VC_WORKLOAD] <= 24);
		}
	}
	struct view_layout L;
	view_layout_workload(100, 24, &L); /* room: all 24 cells, the model and sparklines stay */
	assert_int_equal(L.width[VC_WORKLOAD], 24);
	assert_true(L.x[VC_MODEL] >= 0 && L.width[VC_SPARK_UTIL] >= 5);
	view_layout_workload(200, 80, &L); /* capped */
	assert_int_equal(L.width[VC_WORKLOAD], VIEW_WORKLOAD_MAX);
	view_layout_workload(80, 24, &L); /* too narrow: hidden, the rest as without it */
	assert_true(L.x[VC_WORKLOAD] < 0);
	assert_int_equal(L.width[VC_MODEL], 14);
	view_layout_workload(132, 0, &L); /* none asked */
	assert_true(L.x[VC_WORKLOAD] < 0);

	struct fleet_gpu g;
	memset(&g, 0, sizeof(g));
	char b[64];
	assert_string_equal(view_workload_text(&g, 20, b, sizeof(b)), "");
	g.has_workload = true;
	snprintf(g.wl_namespace, sizeof(g.wl_namespace), "training");
	snprintf(g.wl_pod, sizeof(g.wl_pod), "llm-7b-worker-3");
	snprintf(g.wl_container, sizeof(g.wl_container), "trainer");
	assert_string_equal(view_workload_text(&g, 24, b, sizeof(b)), "training/llm-7b-worker-3");
	assert_string_equal(view_workload_text(&g, 20, b, sizeof(b)), "llm-7b-worker-3");
	assert_string_equal(view_workload_text(&g, 8, b, sizeof(b)), "llm-7b-w");
	/* UTF-8 names (issue #24) in display columns: "\u00e9quipe/\u65e5\u672c-worker-0" is 20
	 * columns in 24 bytes; never cut inside a character */
	assert_non_null(setlocale(LC_CTYPE, "C.UTF-8"));
	snprintf(g.wl_namespace, sizeof(g.wl_namespace), "\xc3\xa9quipe");
	snprintf(g.wl_pod, sizeof(g.wl_pod), "\xe6\x97\xa5\xe6\x9c\xac-worker-0");
	assert_string_equal(view_workload_text(&g, 20, b, sizeof(b)),
	                    "\xc3\xa9quipe/\xe6\x97\xa5\xe6\x9c\xac-worker-0");
	assert_string_equal(view_workload_text(&g, 19, b, sizeof(b)),
	                    "\xe6\x97\xa5\xe6\x9c\xac-worker-0");
	assert_string_equal(view_workload_text(&g, 4, b, sizeof(b)), "\xe6\x97\xa5\xe6\x9c\xac");
	assert_string_equal(view_workload_text(&g, 3, b, sizeof(b)), "\xe6\x97\xa5");
	setlocale(LC_CTYPE, "C");
	snprintf(g.wl_namespace, sizeof(g.wl_namespace), "training");
	snprintf(g.wl_pod, sizeof(g.wl_pod), "llm-7b-worker-3");
	/* the filter finds a GPU by its workload */
	assert_true(view_filter_match(&g, "worker-3"));
	assert_true(view_filter_match(&g, "TRAINER"));
	assert_false(view_filter_match(&g, "worker-4"));
}

static void test_format(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(view_fmt_count(999, b, sizeof(b)), "999");
	assert_string_equal(view_fmt_count(1234, b, sizeof(b)), "1.23k");
	assert_string_equal(view_fmt_count(12345, b, sizeof(b)), "12.3k");
	assert_string_equal(view_fmt_count(1234567, b, sizeof(b)), "1.23M");
	assert_string_equal(view_fmt_count(NAN, b, sizeof(b)), "-");
	assert_string_equal(view_fmt_age(0.42, b, sizeof(b)), "0.4s");
	assert_string_equal(view_fmt_age(12, b, sizeof(b)), "12s");
	assert_string_equal(view_fmt_age(185, b, sizeof(b)), "3m05s");
	assert_string_equal(view_fmt_age(7380, b, sizeof(b)), "2h03m");
	assert_string_equal(view_fmt_age(2 * 86400 + 3 * 3600, b, sizeof(b)), "2d03h");
	assert_string_equal(view_fmt_age(-1, b, sizeof(b)), "-");
	assert_string_equal(view_fmt_mib(812, b, sizeof(b)), "812M");
	assert_string_equal(view_fmt_mib(81920, b, sizeof(b)), "80.0G");
	assert_string_equal(view_model_short("NVIDIA A100-SXM4-80GB"), "A100-SXM4-80GB");
	assert_string_equal(view_model_short("nvidia H200"), "H200");
	assert_string_equal(view_model_short("NVIDIA "), "NVIDIA ");
	assert_string_equal(view_model_short("H100"), "H100");
	char tiny[4];
	view_fmt_count(1234567, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), 3);
}

static void test_decode(void **state)
{
	(void)state;
	assert_string_equal(view_xid_meaning(79), "GPU fell off the bus");
	assert_string_equal(view_xid_meaning(48), "double-bit ECC error");
	assert_non_null(strstr(view_xid_meaning(99999), "not in the catalog"));
	char b[160];
	assert_string_equal(view_clock_reasons(0, b, sizeof(b)), "none");
	assert_string_equal(view_clock_reasons(0x004 | 0x008, b, sizeof(b)),
	                    "SW power cap, HW slowdown");
	assert_string_equal(view_clock_reasons(0x020 | 0x040 | 0x080, b, sizeof(b)),
	                    "SW thermal, HW thermal, HW power brake");
	assert_string_equal(view_clock_reasons(0x1001, b, sizeof(b)), "idle, other 0x1000");
	char small[8];
	view_clock_reasons(0x004 | 0x008, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
}

static void test_pipeline_figures(void **state)
{
	(void)state;
	struct pipeline_view *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	v->now = 1000;
	assert_true(view_scrape_age(v) < 0);
	v->ntargets = 3;
	v->targets[0].last_success = 990;
	v->targets[1].last_success = 997.5;
	v->targets[2].consecutive_failures = 4;
	assert_true(fabs(view_scrape_age(v) - 2.5) < 1e-9);
	assert_int_equal(view_targets_down(v), 1);
	assert_string_equal(view_part_name(PP_SINK), "sink");
	assert_string_equal(view_state_name(PART_DEGRADED), "degraded");
	assert_string_equal(view_state_name((enum part_state)42), "?");
	free(v);
}

static void test_lag(void **state)
{
	(void)state;
	struct sink_stats *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	char b[64];
	s->lag_total = -1;
	assert_string_equal(view_fmt_lag(s, b, sizeof(b)), "lag -");
	s->lag_total = 0;
	s->nparts = 8;
	for (int p = 0; p < 8; p++)
		s->parts[p].partition = p;
	assert_string_equal(view_fmt_lag(s, b, sizeof(b)), "lag 0 [8 partitions]");
	s->parts[1].lag = 5;
	s->parts[3].lag = 7;
	s->parts[6].lag = -1;
	s->lag_total = 12;
	assert_string_equal(view_fmt_lag(s, b, sizeof(b)), "lag 12 [p1:5 p3:7 p6:?]");
	/* too narrow: the rest is counted */
	char n[22];
	assert_string_equal(view_fmt_lag(s, n, sizeof(n)), "lag 12 [p1:5 +2 more]");
	char t[12];
	view_fmt_lag(s, t, sizeof(t));
	assert_true(strlen(t) < sizeof(t));
	free(s);
}

/* Every loss is shown with its reason; the in-process broker's gate with its state. */
static void test_losses(void **state)
{
	(void)state;
	struct pipeline_view *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	char b[256];
	assert_string_equal(view_fmt_losses(v, b, sizeof(b)), "no loss");
	assert_string_equal(view_fmt_gate(v, b, sizeof(b)), ""); /* no gate: a real broker */
	v->collector.producer.dropped = 10;
	v->gate.lost = 2;
	assert_string_equal(
	    view_fmt_losses(v, b, sizeof(b)),
	    "LOST 12: 10 dropped (past the memory/spool bounds), 2 forgotten by the "
	    "in-process broker");
	v->collector.producer.refused = 1;
	v->collector.producer.failed = 3;
	char n[24];
	view_fmt_losses(v, n, sizeof(n)); /* truncated, still terminated */
	assert_int_equal(strlen(n), sizeof(n) - 1);
	assert_non_null(
	    strstr(view_fmt_losses(v, b, sizeof(b)), "1 refused (larger than the broker takes)"));
	v->gate.active = true;
	v->gate.held = true;
	v->gate.backlog = 1850;
	v->gate.backlog_bytes = 2621440;
	v->gate.high_bytes = 2097152;
	v->gate.holds = 1;
	v->gate.buffer_events = 230400;
	v->gate.buffer_bytes = 1024u << 20;
	assert_string_equal(
	    view_fmt_gate(v, b, sizeof(b)),
	    "in-process broker: HOLDING events (one partition: 1850 uncommitted, 2.5 "
	    "of 2.0 MiB), 1 hold; memory bound 230400 events / 1024 MiB");
	free(v);
}

static void test_rates(void **state)
{
	(void)state;
	struct view_rates *r = calloc(1, sizeof(*r));
	struct pipeline_view *v = calloc(1, sizeof(*v));
	assert_non_null(r);
	assert_non_null(v);
	v->ntargets = 2;
	snprintf(v->targets[0].url, sizeof(v->targets[0].url), "http://a/metrics");
	snprintf(v->targets[1].url, sizeof(v->targets[1].url), "http://b/metrics");
	v->now = 100;
	view_rates_update(r, v, 5);
	assert_true(isnan(view_rate_of(r, "http://a/metrics")));
	v->now = 103; /* inside the window: nothing yet */
	v->targets[0].ok = 3;
	view_rates_update(r, v, 5);
	assert_true(isnan(view_rate_of(r, "http://a/metrics")));
	v->now = 110;
	v->targets[0].ok = 8;
	v->targets[0].failed = 2;
	v->targets[1].failed = 5;
	view_rates_update(r, v, 5);
	assert_true(fabs(view_rate_of(r, "http://a/metrics") - 1.0) < 1e-9);
	assert_true(fabs(view_rate_of(r, "http://b/metrics") - 0.5) < 1e-9);
	/* a target that leaves is forgotten; an unknown one has no rate */
	v->ntargets = 1;
	snprintf(v->targets[0].url, sizeof(v->targets[0].url), "http://b/metrics");
	v->targets[0].ok = 0;
	v->targets[0].failed = 5;
	view_rates_update(r, v, 5);
	assert_int_equal(r->n, 1);
	assert_true(isnan(view_rate_of(r, "http://a/metrics")));
	assert_true(fabs(view_rate_of(r, "http://b/metrics") - 0.5) < 1e-9);
	free(r);
	free(v);
}

static void test_fake(void **state)
{
	(void)state;
	struct fake *f = NULL;
	struct fake_opts bad = {.gpus = 0, .step_s = 1};
	assert_int_equal(fake_create(&f, &bad), -22);
	struct fake_opts o = {.gpus = 20, .per_host = 8, .step_s = 100};
	assert_int_equal(fake_create(&f, &o), 0);
	struct view_source src = fake_source(f);
	struct fleet_gpu *g = calloc(20, sizeof(*g));
	struct pipeline_view *v = calloc(1, sizeof(*v));
	assert_non_null(g);
	assert_non_null(v);
	assert_int_equal(src.copy_gpus(src.ctx, g, 5), 20); /* tells how many exist */
	assert_int_equal(src.copy_gpus(src.ctx, g, 20), 20);
	assert_string_equal(g[0].host, "node01");
	assert_string_equal(g[19].host, "node03");
	assert_int_equal(g[9].index, 1);
	size_t n0 = g[0].nhist;
	float t0 = g[0].hist[FLEET_UTIL][n0 - 1];
	src.copy_view(src.ctx, v);
	uint64_t rows0 = v->sink.rows_written;
	fake_step(f);
	fake_step(f);
	src.copy_gpus(src.ctx, g, 20);
	src.copy_view(src.ctx, v);
	assert_int_equal(g[0].nhist, n0 + 2);
	assert_true(g[0].hist[FLEET_UTIL][g[0].nhist - 1] != t0);
	assert_true(v->sink.rows_written > rows0);
	assert_true(v->sink.lag_total >= 0);
	assert_int_equal(v->sink.nparts, 3);
	/* some GPUs carry health reasons, an XID and alerts */
	assert_int_equal(g[5].health.status, HEALTH_FAIL);
	assert_int_equal(g[5].last.u[HS_XID], 48);
	assert_true(g[5].nalerts > 0);
	assert_int_equal(g[11].action, ACT_REBOOT);
	free(g);
	free(v);
	fake_destroy(f);
	fake_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spark_levels),
	    cmocka_unit_test(test_spark_text),
	    cmocka_unit_test(test_series_scale),
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_filter),
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_pipeline_figures),
	    cmocka_unit_test(test_lag),
	    cmocka_unit_test(test_rates),
	    cmocka_unit_test(test_layout_workload),
	    cmocka_unit_test(test_fake),
	    cmocka_unit_test(test_losses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
