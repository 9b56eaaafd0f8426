/* The simulator: workload cycle, thermal model, throttling, counters, determinism and every
 * kind of injected fault, checked through the values a scraper would see. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exporter/render.h"
#include "sim/inject.h"
#include "sim/sim.h"

static struct sim *make(const char *model, unsigned n, uint64_t seed,
                        const struct inject_spec *faults, size_t nf)
{
	struct sim *s = NULL;
	struct sim_params p = {.model = sim_model_find(model),
	                       .n_gpus = n,
	                       .seed = seed,
	                       .poll_interval = 10,
	                       .faults = faults,
	                       .n_faults = nf};
	assert_non_null(p.model);
	assert_int_equal(sim_create(&s, &p), 0);
	return s;
}

static struct inject_spec spec(const char *text, unsigned n)
{
	struct inject_spec s;
	char err[1024];
	if (inject_parse(text, n, &s, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return s;
}

static const struct sim_gpu *at(struct sim *s, double t)
{
	assert_int_equal(sim_advance(s, t), 0);
	return sim_gpus(s);
}

static bool has(const struct sim_gpu *g, enum sim_field f)
{
	return (g->valid >> f) & 1u;
}

/* ---- models */

static void test_models(void **state)
{
	(void)state;
	const struct sim_model *a = sim_model_find("a100-sxm4-80gb");
	const struct sim_model *h = sim_model_find("H100-SXM5-80GB");
	const struct sim_model *h2 = sim_model_find("H200");
	assert_non_null(a);
	assert_non_null(h);
	assert_non_null(h2);
	assert_null(sim_model_find("RTX-4090"));
	assert_true(a->power_limit_w == 400 && h->power_limit_w == 700 && h2->power_limit_w == 700);
	assert_true(a->idle_w_min >= 50 && a->idle_w_max <= 65);
	assert_true(a->fb_total_mib == 80 * 1024);
	assert_true(h2->fb_total_mib > 140 * 1000 && h2->fb_total_mib < 142 * 1024);
	assert_true(a->slowdown_c == 89 && a->shutdown_c == 92);
	assert_true(a->max_op_c >= 85 && h->max_op_c <= 87);
	struct sim *bad = NULL;
	struct sim_params p = {.model = a, .n_gpus = 0, .poll_interval = 10};
	assert_int_equal(sim_create(&bad, &p), -22);
	p.n_gpus = 2;
	p.poll_interval = 0;
	assert_int_equal(sim_create(&bad, &p), -22);
	struct sim *s = make("H200", 3, 1, NULL, 0);
	assert_int_equal(sim_advance(s, 10), 0);
	assert_int_equal(sim_advance(s, 9), -22); /* time only moves forward */
	assert_int_equal(sim_advance(s, NAN), -22);
	const struct sim_gpu *g = sim_gpus(s);
	assert_string_not_equal(g[0].uuid, g[1].uuid);
	assert_string_equal(g[2].device, "nvidia2");
	assert_int_equal(strlen(g[0].uuid), 40);
	assert_true(g[0].u[SIM_F_FB_FREE] + g[0].u[SIM_F_FB_USED] + g[0].u[SIM_F_FB_RESERVED] ==
	            h2->fb_total_mib);
	sim_destroy(s);
}

/* ---- the workload cycle */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void test_cycle(void **state)
{
	(void)state;
	assert_true(fabs(sim_cycle_load(30) - 0.10) < 1e-9);
	assert_true(fabs(sim_cycle_load(90) - 0.50) < 1e-9);
	assert_true(fabs(sim_cycle_load(180) - 0.90) < 1e-9);
	assert_true(fabs(sim_cycle_load(270) - 0.50) < 1e-9);
	assert_true(fabs(sim_cycle_load(480) - 0.90) < 1e-9); /* repeats */

	enum { N = 8, T = 600 };
	struct sim *s = make("A100-SXM4-80GB", N, 7, NULL, 0);
	static double util[N][T];
	for (int t = 0; t < T; t++) {
		const struct sim_gpu *g = at(s, t);
		for (int i = 0; i < N; i++)
			util[i][t] = g[i].f[SIM_F_GPU_UTIL];
	}
	double first_peak[N];
	for (int i = 0; i < N; i++) {
		double sorted[T];
		memcpy(sorted, util[i], sizeof(sorted));
		qsort(sorted, T, sizeof(double), cmp_double);
		double idle = sorted[T / 10], peak = sorted[T - T / 5]; /* middle of each phase */
		if (fabs(idle - 10) > 3 || fabs(peak - 90) > 3)
			fail_msg("GPU %d: idle %.1f %%, peak %.1f %% (want about 10 and 90)", i,
			         idle, peak);
		for (int t = 0; t + 300 < T; t++) /* a 300 s period */
			if (fabs(util[i][t] - util[i][t + 300]) > 7)
				fail_msg("GPU %d: util %.1f at %d s but %.1f at %d s", i,
				         util[i][t], t, util[i][t + 300], t + 300);
		first_peak[i] = -1;
		for (int t = 1; t < T && first_peak[i] < 0; t++)
			if (util[i][t] >= 85 && util[i][t - 1] < 85)
				first_peak[i] = t;
		assert_true(first_peak[i] >= 0);
	}
	/* every GPU has its own phase */
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			if (fabs(first_peak[i] - first_peak[j]) < 10)
				fail_msg(
				    "GPUs %d and %d reach peak at %.0f and %.0f s: in lock-step", i,
				    j, first_peak[i], first_peak[j]);
	sim_destroy(s);
}

/* ---- thermal model */

static void test_thermal_lag(void **state)
{
	(void)state;
	enum { T = 300 };
	struct sim *s = make("A100-SXM4-80GB", 4, 3, NULL, 0);
	double p[T], temp[T];
	for (int t = 0; t < T; t++) {
		const struct sim_gpu *g = at(s, t);
		p[t] = g[0].f[SIM_F_POWER_USAGE]; /* GPU 0 starts its cycle idle */
		temp[t] = g[0].f[SIM_F_GPU_TEMP];
	}
	double pmin = p[0], pmax = p[0], tmin = temp[0], tmax = temp[0];
	int t_pmax = 0, t_tmax = 0;
	for (int t = 0; t < T; t++) {
		if (p[t] > pmax)
			pmax = p[t], t_pmax = t;
		if (temp[t] > tmax)
			tmax = temp[t], t_tmax = t;
		pmin = fmin(pmin, p[t]);
		tmin = fmin(tmin, temp[t]);
	}
	assert_true(pmax - pmin > 200); /* idle to peak */
	int tp = -1, tt = -1;
	for (int t = 0; t < T; t++) {
		if (tp < 0 && p[t] >= pmin + 0.9 * (pmax - pmin))
			tp = t;
		if (tt < 0 && temp[t] >= tmin + 0.9 * (tmax - tmin))
			tt = t;
	}
	/* temperature follows power, later: not a copy of the load curve */
	if (tt - tp < 20)
		fail_msg("temperature reached 90 %% of its rise at %d s, power at %d s: no lag", tt,
		         tp);
	double rise_when_power_peaks = (temp[tp] - tmin) / (tmax - tmin);
	if (rise_when_power_peaks > 0.75)
		fail_msg("temperature already %.0f %% up when power peaks",
		         100 * rise_when_power_peaks);
	assert_true(t_tmax > t_pmax - 60); /* the hottest moment is not before the load */
	/* the temperature rises steadily: no jump of more than 3 °C in a second */
	for (int t = 1; t < T; t++)
		if (fabs(temp[t] - temp[t - 1]) > 3)
			fail_msg("temperature jumps from %.1f to %.1f at %d s", temp[t - 1],
			         temp[t], t);
	/* after the ramp down, the GPU is still warm while power is already at idle */
	int idle_again = -1;
	for (int t = t_pmax; t < T && idle_again < 0; t++)
		if (p[t] <= pmin + 0.1 * (pmax - pmin))
			idle_again = t;
	assert_true(idle_again > 0);
	assert_true(temp[idle_again] > tmin + 0.3 * (tmax - tmin));
	sim_destroy(s);
}

/* Normal runs of every model: values finite, temperatures in a plausible band, no thermal
 * throttling, counters never go back. */
static void test_normal_runs(void **state)
{
	(void)state;
	const char *models[] = {"A100-SXM4-80GB", "H100-SXM5-80GB", "H200"};
	for (size_t mi = 0; mi < 3; mi++) {
		enum { N = 8 };
		const struct sim_model *m = sim_model_find(models[mi]);
		struct sim *s = make(models[mi], N, 11 + mi, NULL, 0);
		struct sim_gpu prev[N];
		double tmax[N], tmin[N];
		for (int i = 0; i < N; i++)
			tmax[i] = -1e9, tmin[i] = 1e9;
		memcpy(prev, sim_gpus(s), sizeof(prev));
		for (double t = 0.5; t <= 900; t += 0.5) {
			const struct sim_gpu *g = at(s, t);
			for (int i = 0; i < N; i++) {
				for (int f = 0; f < SIM_F_COUNT; f++)
					if (has(&g[i], f) && !isfinite(g[i].f[f]))
						fail_msg("%s GPU %d field %d is %f at %.1f s",
						         m->name, i, f, g[i].f[f], t);
				double temp = g[i].f[SIM_F_GPU_TEMP];
				tmax[i] = fmax(tmax[i], temp);
				tmin[i] = fmin(tmin[i], temp);
				if (temp < 20 || temp >= m->max_op_c ||
				    g[i].f[SIM_F_MEMORY_TEMP] >= 95)
					fail_msg("%s GPU %d at %.1f °C (memory %.1f) at %.1f s",
					         m->name, i, temp, g[i].f[SIM_F_MEMORY_TEMP], t);
				if (g[i].u[SIM_F_CLOCKS_EVENT_REASONS] &
				    (SIM_CLK_SW_THERMAL | SIM_CLK_HW_THERMAL | SIM_CLK_HW_SLOWDOWN))
					fail_msg("%s GPU %d thermally throttled in a normal run",
					         m->name, i);
				if (g[i].f[SIM_F_POWER_USAGE] > m->power_limit_w + 1e-9)
					fail_msg("%s GPU %d above its power limit", m->name, i);
				double fb = g[i].f[SIM_F_FB_USED] /
				            (double)(m->fb_total_mib - m->fb_reserved_mib);
				assert_true(fb >= 0.099 && fb <= 0.901);
				static const enum sim_field counters[] = {
				    SIM_F_TOTAL_ENERGY,
				    SIM_F_PCIE_REPLAY,
				    SIM_F_ECC_SBE_VOL,
				    SIM_F_ECC_SBE_AGG,
				    SIM_F_ECC_DBE_AGG,
				    SIM_F_NVLINK_BANDWIDTH_TOTAL,
				    SIM_F_POWER_VIOLATION,
				    SIM_F_THERMAL_VIOLATION,
				    SIM_F_CORRECTABLE_REMAPPED_ROWS};
				for (size_t c = 0; c < sizeof(counters) / sizeof(counters[0]); c++)
					if (g[i].u[counters[c]] < prev[i].u[counters[c]])
						fail_msg("%s GPU %d counter %d went back at %.1f s",
						         m->name, i, counters[c], t);
			}
			memcpy(prev, g, sizeof(prev));
		}
		for (int i = 0; i < N; i++) {
			if (tmax[i] < 50 || tmax[i] >= 95)
				fail_msg("%s GPU %d peaks at %.1f °C (want 50 to 95)", m->name, i,
				         tmax[i]);
			assert_true(tmax[i] - tmin[i] > 20); /* temperature follows the load */
		}
		/* the energy counter grew by about the mean power times the time */
		const struct sim_gpu *g = sim_gpus(s);
		assert_true(g[0].u[SIM_F_TOTAL_ENERGY] > 0);
		sim_destroy(s);
	}
}

/* A hungry GPU hits its power limit: power capped, clocks down, SW_POWER_CAP set. */
static void test_power_cap(void **state)
{
	(void)state;
	enum { N = 64 };
	struct sim *s = make("A100-SXM4-80GB", N, 5, NULL, 0);
	unsigned capped = 0;
	for (int t = 0; t < 300; t += 2) {
		const struct sim_gpu *g = at(s, t);
		for (int i = 0; i < N; i++) {
			if (!(g[i].u[SIM_F_CLOCKS_EVENT_REASONS] & SIM_CLK_SW_POWER_CAP))
				continue;
			capped++;
			assert_true(g[i].f[SIM_F_POWER_USAGE] <= 400.0);
			assert_true(g[i].f[SIM_F_POWER_USAGE] > 380.0);
			assert_true(g[i].u[SIM_F_SM_CLOCK] < 1410);
		}
	}
	assert_true(capped > 0);
	const struct sim_gpu *g = at(s, 310);
	unsigned viol = 0;
	for (int i = 0; i < N; i++)
		viol += g[i].u[SIM_F_POWER_VIOLATION] > 0;
	assert_true(viol > 0);
	sim_destroy(s);
}

/* ---- determinism */

static char *render_all(struct sim *s)
{
	struct render_opts o = {"node", "hostname", "550.127.08", "NVIDIA A100-SXM4-80GB", false};
	size_t cap = render_bound(sim_gpu_count(s), &o), len = 0;
	char *buf = malloc(cap);
	assert_non_null(buf);
	assert_int_equal(render_exposition(sim_gpus(s), sim_gpu_count(s), &o, buf, cap, &len), 0);
	return buf;
}

static void test_determinism(void **state)
{
	(void)state;
	struct inject_spec f[] = {spec("gpu=1,fault=sbe-storm,at=20s,duration=100s", 4),
	                          spec("gpu=2,fault=nvlink-crc,at=5s", 4)};
	struct sim *a = make("H100-SXM5-80GB", 4, 42, f, 2);
	struct sim *b = make("H100-SXM5-80GB", 4, 42, f, 2);
	struct sim *c = make("H100-SXM5-80GB", 4, 43, f, 2);
	/* a in small uneven increments, b in one jump: the same values at the same time */
	for (double t = 0.3; t < 123.4; t += 0.7)
		at(a, t);
	at(a, 123.4);
	at(b, 123.4);
	at(c, 123.4);
	assert_memory_equal(sim_gpus(a), sim_gpus(b), 4 * sizeof(struct sim_gpu));
	char *ra = render_all(a), *rb = render_all(b), *rc = render_all(c);
	assert_string_equal(ra, rb);
	assert_string_not_equal(ra, rc); /* another seed, another fleet */
	free(ra);
	free(rb);
	free(rc);
	at(a, 300);
	at(b, 300);
	assert_memory_equal(sim_gpus(a), sim_gpus(b), 4 * sizeof(struct sim_gpu));
	sim_destroy(a);
	sim_destroy(b);
	sim_destroy(c);
}

/* ---- faults: each shows its effect and its XID at its time, and only on its GPU */

static void expect_no_xid_before(struct sim *s, double t, unsigned gpu)
{
	const struct sim_gpu *g = at(s, t);
	if (has(&g[gpu], SIM_F_XID))
		fail_msg("GPU %u has XID %llu at %.1f s, before the fault", gpu,
		         (unsigned long long)g[gpu].u[SIM_F_XID], t);
}

static void test_fault_dbe(void **state)
{
	(void)state;
	struct inject_spec f = spec("gpu=2,fault=dbe,at=30s", 4);
	struct sim *s = make("A100-SXM4-80GB", 4, 1, &f, 1);
	expect_no_xid_before(s, 29.5, 2);
	assert_int_equal(sim_gpus(s)[2].u[SIM_F_ECC_DBE_VOL], 0);
	const struct sim_gpu *g = at(s, 30);
	assert_true(has(&g[2], SIM_F_XID));
	assert_int_equal(g[2].u[SIM_F_XID], 48);
	assert_int_equal(g[2].u[SIM_F_ECC_DBE_VOL], 1);
	assert_int_equal(g[2].u[SIM_F_ECC_DBE_AGG], 1);
	assert_int_equal(g[2].u[SIM_F_UNCORRECTABLE_REMAPPED_ROWS], 1);
	assert_int_equal(g[2].u[SIM_F_ROW_REMAP_PENDING], 1);
	for (int i = 0; i < 4; i++)
		if (i != 2)
			assert_false(has(&g[i], SIM_F_XID));
	g = at(s, 100); /* the last XID sticks */
	assert_int_equal(g[2].u[SIM_F_XID], 48);
	assert_int_equal(g[2].u[SIM_F_ECC_DBE_VOL], 1);
	sim_destroy(s);
}

static void test_fault_xid(void **state)
{
	(void)state;
	struct inject_spec f[] = {spec("gpu=0,fault=xid,xid=13,at=12.5", 2),
	                          spec("gpu=0,fault=xid,xid=31,at=40", 2)};
	struct sim *s = make("A100-SXM4-80GB", 2, 1, f, 2);
	expect_no_xid_before(s, 12.4, 0);
	assert_int_equal(at(s, 12.5)[0].u[SIM_F_XID], 13);
	assert_int_equal(at(s, 39)[0].u[SIM_F_XID], 13);
	assert_int_equal(at(s, 40)[0].u[SIM_F_XID], 31);
	assert_false(has(&sim_gpus(s)[1], SIM_F_XID));
	sim_destroy(s);
}

static void test_fault_remaps(void **state)
{
	(void)state;
	struct inject_spec f[] = {spec("gpu=0,fault=remap-pending,at=20", 2),
	                          spec("gpu=1,fault=remap-failure,at=25", 2)};
	struct sim *s = make("A100-SXM4-80GB", 2, 1, f, 2);
	const struct sim_gpu *g = at(s, 19);
	assert_int_equal(g[0].u[SIM_F_ROW_REMAP_PENDING], 0);
	assert_int_equal(g[1].u[SIM_F_ROW_REMAP_FAILURE], 0);
	g = at(s, 20);
	assert_int_equal(g[0].u[SIM_F_XID], 63);
	assert_int_equal(g[0].u[SIM_F_ROW_REMAP_PENDING], 1);
	assert_int_equal(g[0].u[SIM_F_CORRECTABLE_REMAPPED_ROWS], 1);
	assert_int_equal(g[1].u[SIM_F_ROW_REMAP_FAILURE], 0);
	g = at(s, 25);
	assert_int_equal(g[1].u[SIM_F_XID], 64);
	assert_int_equal(g[1].u[SIM_F_ROW_REMAP_FAILURE], 1);
	sim_destroy(s);
}

static void test_fault_fell_off_bus(void **state)
{
	(void)state;
	struct inject_spec f[] = {spec("gpu=1,fault=fell-off-bus,at=40", 3),
	                          spec("gpu=2,fault=fell-off-bus,at=40,duration=25s", 3)};
	struct sim *s = make("A100-SXM4-80GB", 3, 1, f, 2);
	expect_no_xid_before(s, 39, 1);
	const struct sim_gpu *g = at(s, 40); /* listed with XID 79 for one poll interval */
	assert_true(g[1].present);
	assert_int_equal(g[1].u[SIM_F_XID], 79);
	char *text = render_all(s);
	assert_non_null(strstr(text, g[1].uuid));
	assert_non_null(strstr(text, "err_code=\"79\",err_msg=\"GPU has fallen off the bus\""));
	free(text);
	g = at(s, 50); /* then gone */
	assert_false(g[1].present);
	assert_true(g[0].present);
	assert_true(g[2].present);
	text = render_all(s);
	assert_null(strstr(text, g[1].uuid));
	assert_non_null(strstr(text, g[0].uuid));
	free(text);
	assert_false(at(s, 65)[2].present);
	assert_false(at(s, 500)[1].present);
	sim_destroy(s);
}

static void test_fault_thermal_runaway(void **state)
{
	(void)state;
	struct inject_spec f = spec("gpu=0,fault=thermal-runaway,at=60", 2);
	struct sim *s = make("A100-SXM4-80GB", 2, 9, &f, 1);
	struct sim *base = make("A100-SXM4-80GB", 2, 9, NULL, 0);
	const struct sim_model *m = sim_model_find("A100-SXM4-80GB");
	/* nothing changes before the fault */
	assert_true(at(s, 60)[0].f[SIM_F_GPU_TEMP] == at(base, 60)[0].f[SIM_F_GPU_TEMP]);
	double tmax = 0, base_max = 0;
	unsigned reasons = 0, hw_samples = 0;
	for (int t = 61; t <= 600; t++) {
		const struct sim_gpu *g = at(s, t), *b = at(base, t);
		double temp = g[0].f[SIM_F_GPU_TEMP];
		tmax = fmax(tmax, temp);
		base_max = fmax(base_max, b[0].f[SIM_F_GPU_TEMP]);
		unsigned r = (unsigned)g[0].u[SIM_F_CLOCKS_EVENT_REASONS];
		reasons |= r;
		if (r & SIM_CLK_HW_THERMAL) {
			hw_samples++;
			/* hardware slowdown cuts clocks at least in half */
			assert_true(g[0].f[SIM_F_SM_CLOCK] <= 0.5 * m->sm_clock_max);
			assert_true(temp >= m->slowdown_c - 2.5);
		}
		assert_true(temp < m->shutdown_c + 3);
		assert_true(g[1].f[SIM_F_GPU_TEMP] == b[1].f[SIM_F_GPU_TEMP]); /* other GPU alike */
	}
	if (tmax < m->slowdown_c)
		fail_msg("runaway peaked at %.1f °C, below slowdown", tmax);
	assert_true(base_max < m->max_op_c);
	assert_true(reasons & SIM_CLK_SW_THERMAL);
	assert_true(reasons & SIM_CLK_HW_THERMAL);
	assert_true(reasons & SIM_CLK_HW_SLOWDOWN);
	assert_true(hw_samples > 10);
	assert_true(sim_gpus(s)[0].u[SIM_F_THERMAL_VIOLATION] > 10ull * 1000000000ull);
	assert_int_equal(sim_gpus(base)[0].u[SIM_F_THERMAL_VIOLATION], 0);
	sim_destroy(s);
	sim_destroy(base);
}

static void test_fault_power_brake(void **state)
{
	(void)state;
	/* GPU 0 is at its peak from about 120 s to 240 s */
	struct inject_spec f = spec("gpu=0,fault=power-brake,at=150,duration=60s", 1);
	struct sim *s = make("A100-SXM4-80GB", 1, 2, &f, 1);
	struct sim *base = make("A100-SXM4-80GB", 1, 2, NULL, 0);
	const struct sim_gpu *g = at(s, 149), *b;
	assert_false(g[0].u[SIM_F_CLOCKS_EVENT_REASONS] & SIM_CLK_HW_POWER_BRAKE);
	uint64_t viol0 = g[0].u[SIM_F_POWER_VIOLATION];
	g = at(s, 150);
	b = at(base, 150);
	assert_true(g[0].u[SIM_F_CLOCKS_EVENT_REASONS] & SIM_CLK_HW_POWER_BRAKE);
	assert_true(g[0].u[SIM_F_CLOCKS_EVENT_REASONS] & SIM_CLK_HW_SLOWDOWN);
	assert_true(g[0].f[SIM_F_SM_CLOCK] < 0.5 * b[0].f[SIM_F_SM_CLOCK]);
	assert_true(g[0].f[SIM_F_POWER_USAGE] < 0.6 * b[0].f[SIM_F_POWER_USAGE]);
	g = at(s, 200);
	assert_true(g[0].u[SIM_F_POWER_VIOLATION] >= viol0 + 45ull * 1000000000ull);
	g = at(s, 215); /* the brake is released after its duration */
	assert_false(g[0].u[SIM_F_CLOCKS_EVENT_REASONS] & SIM_CLK_HW_POWER_BRAKE);
	sim_destroy(s);
	sim_destroy(base);
}

static void test_fault_sbe_storm(void **state)
{
	(void)state;
	struct inject_spec f = spec("gpu=1,fault=sbe-storm,at=10,duration=180s", 2);
	struct sim *s = make("A100-SXM4-80GB", 2, 4, &f, 1);
	bool xid92_before_dbe = false;
	for (int t = 10; t < 190; t++) {
		const struct sim_gpu *g = at(s, t);
		assert_int_equal(g[1].u[SIM_F_ECC_DBE_VOL], 0);
		if (has(&g[1], SIM_F_XID) && g[1].u[SIM_F_XID] == 92)
			xid92_before_dbe = true; /* XID 92: high single-bit error rate */
	}
	assert_true(xid92_before_dbe);
	const struct sim_gpu *g = at(s, 189.5);
	assert_int_equal(g[1].u[SIM_F_ECC_DBE_VOL], 0);
	g = at(s, 190); /* then the double-bit error */
	assert_int_equal(g[1].u[SIM_F_ECC_DBE_VOL], 1);
	assert_int_equal(g[1].u[SIM_F_XID], 48);
	assert_int_equal(g[1].u[SIM_F_ROW_REMAP_PENDING], 1);
	assert_false(has(&g[0], SIM_F_XID));
	sim_destroy(s);

	/* the rate rises: each minute of the storm sees more errors than the one before */
	s = make("A100-SXM4-80GB", 2, 4, &f, 1);
	uint64_t c10 = at(s, 10)[1].u[SIM_F_ECC_SBE_VOL];
	uint64_t c70 = at(s, 70)[1].u[SIM_F_ECC_SBE_VOL];
	uint64_t c130 = at(s, 130)[1].u[SIM_F_ECC_SBE_VOL];
	uint64_t c190 = at(s, 189.9)[1].u[SIM_F_ECC_SBE_VOL];
	uint64_t first = c70 - c10;
	uint64_t middle = c130 - c70, end = c190 - c130;
	if (!(end > 5 * middle && middle > first && end > 500))
		fail_msg("SBE counts per 60 s: %llu, %llu, %llu: not a rising storm",
		         (unsigned long long)first, (unsigned long long)middle,
		         (unsigned long long)end);
	assert_true(at(s, 189.9)[1].u[SIM_F_CORRECTABLE_REMAPPED_ROWS] > 0);
	assert_true(sim_gpus(s)[0].u[SIM_F_ECC_SBE_VOL] < 5);
	sim_destroy(s);
}

static void test_fault_nvlink_crc(void **state)
{
	(void)state;
	struct inject_spec f = spec("gpu=0,fault=nvlink-crc,at=50", 2);
	struct sim *s = make("H100-SXM5-80GB", 2, 1, &f, 1);
	const struct sim_gpu *g = at(s, 50);
	assert_int_equal(g[0].u[SIM_F_NVLINK_CRC_FLIT_ERRORS], 0);
	assert_int_equal(g[0].u[SIM_F_NVLINK_CRC_DATA_ERRORS], 0);
	g = at(s, 60);
	assert_true(g[0].u[SIM_F_NVLINK_CRC_FLIT_ERRORS] >= 200);
	assert_true(g[0].u[SIM_F_NVLINK_CRC_DATA_ERRORS] >= 20);
	assert_int_equal(g[1].u[SIM_F_NVLINK_CRC_FLIT_ERRORS], 0);
	sim_destroy(s);
}

static void test_fault_pcie_replay_storm(void **state)
{
	(void)state;
	struct inject_spec f = spec("gpu=1,fault=pcie-replay-storm,at=30,duration=120s", 2);
	struct sim *s = make("A100-SXM4-80GB", 2, 1, &f, 1);
	const struct sim_model *m = sim_model_find("A100-SXM4-80GB");
	uint64_t r30 = at(s, 30)[1].u[SIM_F_PCIE_REPLAY];
	assert_true(r30 <= 2); /* a few at most before */
	uint64_t r90 = at(s, 90)[1].u[SIM_F_PCIE_REPLAY];
	/* far above DCGM's PCIe health limit for a minute */
	assert_true((double)(r90 - r30) > 2 * m->pcie_replay_warn_per_min);
	uint64_t r150 = at(s, 150)[1].u[SIM_F_PCIE_REPLAY];
	uint64_t r210 = at(s, 210)[1].u[SIM_F_PCIE_REPLAY];
	assert_true(r210 - r150 <= 2); /* over after its duration */
	assert_true(sim_gpus(s)[0].u[SIM_F_PCIE_REPLAY] <= 2);
	sim_destroy(s);
}

/* ---- Kubernetes pods (sim_params.k8s) */

static struct sim *make_k8s(unsigned n, uint64_t seed, bool k8s)
{
	struct sim *s = NULL;
	struct sim_params p = {.model = sim_model_find("H100-SXM5-80GB"),
	                       .n_gpus = n,
	                       .seed = seed,
	                       .poll_interval = 10,
	                       .k8s = k8s};
	assert_int_equal(sim_create(&s, &p), 0);
	return s;
}

/* A pod holds a GPU through its busy phases and none while it idles; a new pod each cycle,
 * the same one through a cycle; the names are a function of the seed; none without k8s. */
static void test_pods(void **state)
{
	(void)state;
	enum { N = 4, T = 900 };
	struct sim *s = make_k8s(N, 11, true), *same = make_k8s(N, 11, true),
	           *other = make_k8s(N, 12, true), *off = make_k8s(N, 11, false);
	char last[N][64] = {{0}};
	unsigned changes[N] = {0}, held[N] = {0}, differ = 0;
	for (int t = 0; t < T; t++) {
		const struct sim_gpu *g = at(s, t), *g2 = at(same, t), *g3 = at(other, t),
		                     *g4 = at(off, t);
		for (int i = 0; i < N; i++) {
			double util = g[i].f[SIM_F_GPU_UTIL];
			bool none = !g[i].pod[0];
			/* all three labels, or none */
			assert_int_equal(!g[i].pod_namespace[0], none);
			assert_int_equal(!g[i].container[0], none);
			if (none && util > 20)
				fail_msg("GPU %d at %d s: %.0f %% busy but no pod", i, t, util);
			if (!none && util >= 85)
				held[i]++;
			if (util >= 85 && none)
				fail_msg("GPU %d at %d s: at its peak without a pod", i, t);
			if (!none) {
				for (const char *c = g[i].pod; *c; c++)
					assert_true((*c >= 'a' && *c <= 'z') ||
					            (*c >= '0' && *c <= '9') || *c == '-');
				if (last[i][0] && strcmp(last[i], g[i].pod) != 0)
					fail_msg(
					    "GPU %d at %d s: the pod %s became %s within a cycle",
					    i, t, last[i], g[i].pod);
				if (!last[i][0])
					changes[i]++;
			}
			snprintf(last[i], sizeof(last[i]), "%s", g[i].pod);
			assert_string_equal(g[i].pod, g2[i].pod);
			assert_string_equal(g[i].pod_namespace, g2[i].pod_namespace);
			differ += strcmp(g[i].pod, g3[i].pod) != 0;
			assert_string_equal(g4[i].pod, "");
			assert_string_equal(g4[i].pod_namespace, "");
			assert_string_equal(g4[i].container, "");
		}
	}
	for (int i = 0; i < N; i++) {
		/* 900 s: three cycles, so at least two pods came and went */
		if (changes[i] < 2 || !held[i])
			fail_msg("GPU %d: %u pods, %u s at the peak with one", i, changes[i],
			         held[i]);
	}
	assert_true(differ > 0); /* another seed, other pods */
	sim_destroy(s);
	sim_destroy(same);
	sim_destroy(other);
	sim_destroy(off);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_models),
	    cmocka_unit_test(test_cycle),
	    cmocka_unit_test(test_thermal_lag),
	    cmocka_unit_test(test_normal_runs),
	    cmocka_unit_test(test_power_cap),
	    cmocka_unit_test(test_determinism),
	    cmocka_unit_test(test_fault_dbe),
	    cmocka_unit_test(test_fault_xid),
	    cmocka_unit_test(test_fault_remaps),
	    cmocka_unit_test(test_fault_fell_off_bus),
	    cmocka_unit_test(test_fault_thermal_runaway),
	    cmocka_unit_test(test_fault_power_brake),
	    cmocka_unit_test(test_fault_sbe_storm),
	    cmocka_unit_test(test_fault_nvlink_crc),
	    cmocka_unit_test(test_fault_pcie_replay_storm),
	    cmocka_unit_test(test_pods),
	};
	return cmocka_run_group_tests_name("simulator", tests, NULL, NULL);
}
