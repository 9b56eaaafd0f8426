/* Health rules on hand-made samples: every rule at, below and above its threshold, the sticky
 * XID gauge, counter resets, windows, temperature hysteresis, fell off the bus; and the
 * event-v1 decoder. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "health/rules.h"
#include "health/sample.h"

#define T0 1780000000.0

static struct rules *R;

static int setup(void **state)
{
	(void)state;
	struct rules_opts o = {.interval_s = 10, .missing_intervals = 3};
	return rules_create(&R, &o);
}

static int teardown(void **state)
{
	(void)state;
	rules_destroy(R);
	R = NULL;
	return 0;
}

/* A healthy A100 sample at T0 + t. */
static struct health_sample base(const char *key, double t)
{
	struct health_sample s;
	memset(&s, 0, sizeof(s));
	snprintf(s.key, sizeof(s.key), "%s", key);
	snprintf(s.host, sizeof(s.host), "node-a");
	snprintf(s.model, sizeof(s.model), "NVIDIA A100-SXM4-80GB");
	s.index = 0;
	s.time = T0 + t;
	health_sample_set(&s, HS_GPU_TEMP, 60);
	health_sample_set(&s, HS_SLOWDOWN_TEMP, 89);
	health_sample_set(&s, HS_MAX_OP_TEMP, 85);
	health_sample_set(&s, HS_POWER, 250);
	health_sample_set(&s, HS_PCIE_REPLAY, 100);
	health_sample_set(&s, HS_SBE_VOL, 3);
	health_sample_set(&s, HS_DBE_VOL, 0);
	health_sample_set(&s, HS_REMAP_FAILURE, 0);
	health_sample_set(&s, HS_CLOCK_REASONS, 0);
	health_sample_set(&s, HS_POWER_VIOLATION, 1000);
	health_sample_set(&s, HS_THERMAL_VIOLATION, 0);
	health_sample_set(&s, HS_NVLINK_CRC_FLIT, 0);
	health_sample_set(&s, HS_NVLINK_CRC_DATA, 0);
	return s;
}

static struct health_result feed(const struct health_sample *s)
{
	struct health_result r;
	assert_int_equal(rules_update(R, s, &r), 0);
	return r;
}

static const struct health_reason *reason(const struct health_result *r, const char *code)
{
	for (size_t i = 0; i < r->nreasons; i++)
		if (strcmp(r->reasons[i].code, code) == 0)
			return &r->reasons[i];
	return NULL;
}

static void test_healthy_and_redelivery(void **state)
{
	(void)state;
	struct health_sample s = base("GPU-a", 0);
	struct health_result r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS);
	assert_int_equal(r.score, 100);
	for (int c = 0; c < HC_COUNT; c++)
		assert_int_equal(r.comp[c], 100);
	assert_string_equal(r.key, "GPU-a");
	assert_string_equal(r.host, "node-a");
	/* same time again, and older: ignored */
	assert_int_equal(rules_update(R, &s, &r), -EALREADY);
	s.time -= 10;
	assert_int_equal(rules_update(R, &s, &r), -EALREADY);
	assert_int_equal(rules_gpu_count(R), 1);
}

static void test_dbe_fails_once_as_event(void **state)
{
	(void)state;
	struct health_sample s = base("GPU-d", 0);
	feed(&s);
	s = base("GPU-d", 10);
	health_sample_set(&s, HS_DBE_VOL, 1);
	struct health_result r = feed(&s);
	assert_int_equal(r.status, HEALTH_FAIL);
	const struct health_reason *d = reason(&r, "dbe_volatile");
	assert_non_null(d);
	assert_true(d->event && r.event);
	assert_int_equal(d->remedy, ACT_RESET);
	assert_true(r.comp[HC_MEMORY] <= RULES_SCORE_FAIL_MAX);
	assert_int_equal(r.comp[HC_THERMAL], 100);
	assert_int_equal(r.score, r.comp[HC_MEMORY]);
	/* still failing at the next sample, but no new event */
	s.time += 10;
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_FAIL);
	assert_false(r.event);
	/* the driver reload clears the volatile counter: healthy again */
	s.time += 10;
	health_sample_set(&s, HS_DBE_VOL, 0);
	health_sample_set(&s, HS_SBE_VOL, 0);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS);
	assert_non_null(reason(&r, "counters_reset"));
}

static void test_memory_thresholds(void **state)
{
	(void)state;
	struct health_sample s = base("GPU-m", 0);
	health_sample_set(&s, HS_RETIRED_SBE, 40);
	health_sample_set(&s, HS_RETIRED_DBE, RULES_RETIRED_PAGES_FAIL - 41);
	struct health_result r = feed(&s);
	assert_null(reason(&r, "retired_pages"));
	assert_int_equal(r.status, HEALTH_PASS);
	s.time += 10;
	health_sample_set(&s, HS_RETIRED_DBE, RULES_RETIRED_PAGES_FAIL - 40);
	r = feed(&s);
	assert_non_null(reason(&r, "retired_pages"));
	assert_int_equal(r.status, HEALTH_FAIL);

	s = base("GPU-m2", 0);
	health_sample_set(&s, HS_UNCORR_ROWS, RULES_UNCORR_ROWS_WARN - 1);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS);
	s.time += 10;
	health_sample_set(&s, HS_UNCORR_ROWS, RULES_UNCORR_ROWS_WARN);
	health_sample_set(&s, HS_REMAP_PENDING, 1);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_WARN);
	assert_non_null(reason(&r, "uncorrectable_rows"));
	assert_non_null(reason(&r, "row_remap_pending"));
	assert_true(r.trends.pending);
	assert_int_equal(r.remedy, ACT_RMA);

	s = base("GPU-m3", 0);
	health_sample_set(&s, HS_REMAP_FAILURE, 1);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_FAIL);
	assert_true(reason(&r, "row_remap_failure")->event);
	assert_int_equal(r.remedy, ACT_RMA);

	/* DBE retired pages: > 15 only fails with more than one new in the past week */
	s = base("GPU-m4", 0);
	health_sample_set(&s, HS_RETIRED_DBE, 20);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS);
	s.time += 86400;
	health_sample_set(&s, HS_RETIRED_DBE, 21);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS); /* one new */
	s.time += 86400;
	health_sample_set(&s, HS_RETIRED_DBE, 22);
	r = feed(&s);
	assert_non_null(reason(&r, "retired_dbe_pages")); /* two new this week */
	assert_int_equal(r.status, HEALTH_FAIL);
}

static void test_xid_sticky_gauge(void **state)
{
	(void)state;
	struct health_sample s = base("GPU-x", 0);
	health_sample_set(&s, HS_XID, 13); /* seen first: counts, informational */
	struct health_result r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS);
	assert_non_null(reason(&r, "xid_13"));
	s.time += 10;
	health_sample_set(&s, HS_XID, 94);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_WARN);
	assert_non_null(reason(&r, "xid_94"));
	assert_false(r.event);
	/* the gauge stays at 94: one event, held for the warn hold, then gone */
	for (double t = 20; t <= 10 + RULES_XID_WARN_HOLD_S; t += 10) {
		s.time = T0 + t;
		r = feed(&s);
		assert_int_equal(r.status, HEALTH_WARN);
	}
	s.time += 10;
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS);
	/* a change to 79 is a new fail-class event, raised at once */
	s.time += 10;
	health_sample_set(&s, HS_XID, 79);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_FAIL);
	assert_true(r.event);
	assert_int_equal(r.remedy, ACT_REBOOT);
	s.time += 10;
	r = feed(&s);
	assert_false(r.event);
	assert_int_equal(r.status, HEALTH_FAIL);
	/* each of DCGM's always-fail XIDs fails; an XID outside every list warns */
	static const unsigned fails[] = {48, 64, 74, 95, 119, 120, 140};
	for (size_t i = 0; i < sizeof(fails) / sizeof(fails[0]); i++) {
		char key[32];
		snprintf(key, sizeof(key), "GPU-xf%u", fails[i]);
		s = base(key, 0);
		health_sample_set(&s, HS_XID, fails[i]);
		r = feed(&s);
		assert_int_equal(r.status, HEALTH_FAIL);
	}
	s = base("GPU-xother", 0);
	health_sample_set(&s, HS_XID, 999);
	assert_int_equal(feed(&s).status, HEALTH_WARN);
	s = base("GPU-xzero", 0);
	health_sample_set(&s, HS_XID, 0);
	assert_int_equal(feed(&s).status, HEALTH_PASS);
}

static void test_pcie_by_generation(void **state)
{
	(void)state;
	assert_true(rules_pcie_limit_per_min("NVIDIA A100-SXM4-80GB") == 16);
	assert_true(rules_pcie_limit_per_min("NVIDIA H100 80GB HBM3") == 31);
	assert_true(rules_pcie_limit_per_min("Tesla T4") == 8);
	/* A100 (Gen4 x16): 16 replays in a minute pass, 17 warn */
	for (int extra = 16; extra <= 17; extra++) {
		char key[32];
		snprintf(key, sizeof(key), "GPU-p%d", extra);
		struct health_sample s = base(key, 0);
		struct health_result r = feed(&s);
		for (int i = 1; i <= 6; i++) {
			s.time = T0 + 10 * i;
			health_sample_set(&s, HS_PCIE_REPLAY, 100 + (double)extra * i / 6.0);
			r = feed(&s);
		}
		assert_int_equal(r.status, extra > 16 ? HEALTH_WARN : HEALTH_PASS);
		assert_true(extra > 16 ? reason(&r, "pcie_replay") != NULL : true);
	}
}

static void test_nvlink_and_violations(void **state)
{
	(void)state;
	struct health_sample s = base("GPU-n", 0);
	feed(&s);
	s.time += 10;
	health_sample_set(&s, HS_NVLINK_CRC_FLIT, 1);
	struct health_result r = feed(&s);
	assert_int_equal(r.status, HEALTH_WARN);
	assert_non_null(reason(&r, "nvlink_crc"));
	s.time += 10;
	health_sample_set(&s, HS_NVLINK_CRC_FLIT, 1 + 100 * 10);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_FAIL);
	assert_non_null(reason(&r, "nvlink_crc_rate"));

	/* thermal violation growth warns; power violation alone (power cap) does not */
	s = base("GPU-v", 0);
	feed(&s);
	s.time += 10;
	health_sample_set(&s, HS_POWER_VIOLATION, 5e9);
	health_sample_set(&s, HS_CLOCK_REASONS, RULES_CLK_SW_POWER_CAP);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_PASS);
	assert_non_null(reason(&r, "power_capped"));
	assert_true(r.comp[HC_POWER] < 100);
	s.time += 10;
	health_sample_set(&s, HS_POWER_VIOLATION, 9e9);
	health_sample_set(&s, HS_CLOCK_REASONS, RULES_CLK_HW_POWER_BRAKE | RULES_CLK_HW_SLOWDOWN);
	r = feed(&s);
	assert_int_equal(r.status, HEALTH_WARN);
	assert_non_null(reason(&r, "power_brake"));
	assert_non_null(reason(&r, "power_violation"));
	s.time += 10;
	health_sample_set(&s, HS_CLOCK_REASONS, 0);
	health_sample_set(&s, HS_THERMAL_VIOLATION, 2e9);
	r = feed(&s);
	assert_non_null(reason(&r, "thermal_violation"));
	assert_int_equal(r.status, HEALTH_WARN);
	/* the 60 s window passes with no growth: the warning ends */
	for (int i = 0; i < 7; i++) {
		s.time += 10;
		r = feed(&s);
	}
	assert_int_equal(r.status, HEALTH_PASS);
	assert_true(r.trends.thermal_frac > 0);
	/* power that cannot be read warns (DCGM POWER watch) */
	s.time += 10;
	s.valid &= ~(1u << HS_POWER);
	r = feed(&s);
	assert_non_null(reason(&r, "power_unreadable"));
}

static void test_temperature_hysteresis(void **state)
{
	(void)state;
	/* warn at max-op (85) - 2 = 83; ends below 81; fail at slowdown (89) */
	static const struct {
		double temp;
		enum health_status want;
	} seq[] = {{82.9, HEALTH_PASS}, {83, HEALTH_WARN}, {82, HEALTH_WARN}, {81.5, HEALTH_WARN},
		   {83.5, HEALTH_WARN}, {80.9, HEALTH_PASS}, {82, HEALTH_PASS}, {89, HEALTH_FAIL},
		   {70, HEALTH_PASS}};
	struct health_sample s = base("GPU-t", 0);
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		s.time = T0 + 10.0 * (double)i;
		health_sample_set(&s, HS_GPU_TEMP, seq[i].temp);
		struct health_result r = feed(&s);
		if (r.status != seq[i].want)
			fail_msg("%.1f C: %s, expected %s", seq[i].temp, health_status_name(r.status),
				 health_status_name(seq[i].want));
	}
	/* without GPU_MAX_OP_TEMP: slowdown - 4 */
	s = base("GPU-t2", 0);
	s.valid &= ~(1u << HS_MAX_OP_TEMP);
	health_sample_set(&s, HS_GPU_TEMP, 89 - RULES_MAX_OP_BELOW_SLOWDOWN_C - RULES_TEMP_WARN_MARGIN_C);
	assert_int_equal(feed(&s).status, HEALTH_WARN);
	/* the hardware thermal bit fails even between readings */
	s = base("GPU-t3", 0);
	health_sample_set(&s, HS_CLOCK_REASONS, RULES_CLK_HW_THERMAL | RULES_CLK_HW_SLOWDOWN);
	struct health_result r = feed(&s);
	assert_int_equal(r.status, HEALTH_FAIL);
	assert_non_null(reason(&r, "hw_thermal_slowdown"));
	assert_null(reason(&r, "hw_slowdown")); /* explained by temperature, not power */
}

static void test_fell_off_the_bus(void **state)
{
	(void)state;
	struct health_result out[8];
	for (int t = 0; t <= 30; t += 10) {
		for (int g = 0; g < 3; g++) {
			char key[24];
			snprintf(key, sizeof(key), "GPU-b%d", g);
			struct health_sample s = base(key, t);
			if (g == 2 && t > 0)
				continue; /* GPU 2 reports once, then goes silent */
			feed(&s);
		}
		assert_int_equal(rules_missing(R, "node-a", T0 + t, out, 8), 0); /* <= 3 intervals */
	}
	struct health_sample s = base("GPU-b0", 40);
	feed(&s);
	assert_int_equal(rules_missing(R, "node-a", T0 + 40, out, 8), 1);
	assert_string_equal(out[0].key, "GPU-b2");
	assert_int_equal(out[0].status, HEALTH_FAIL);
	assert_true(out[0].event && out[0].missing);
	assert_int_equal(out[0].remedy, ACT_REBOOT);
	/* the same tick again: nothing; the next one: still missing, no new event */
	assert_int_equal(rules_missing(R, "node-a", T0 + 40, out, 8), 0);
	assert_int_equal(rules_missing(R, "node-a", T0 + 50, out, 8), 1);
	assert_false(out[0].event);
	/* another host's clock says nothing about this one */
	assert_int_equal(rules_missing(R, "node-z", T0 + 500, out, 8), 0);
	/* back on the bus */
	s = base("GPU-b2", 60);
	assert_int_equal(feed(&s).status, HEALTH_PASS);
	feed(&(struct health_sample){0}); /* an empty sample is just another GPU: harmless */
}

static void test_sbe_trends(void **state)
{
	(void)state;
	struct health_sample s = base("GPU-s", 0);
	struct health_result r = feed(&s);
	for (int i = 1; i <= 30; i++) { /* 5 min, one SBE per sample in the last minute */
		s.time = T0 + 10 * i;
		if (i > 24)
			health_sample_set(&s, HS_SBE_VOL, 3 + (i - 24));
		r = feed(&s);
	}
	assert_true(fabs(r.trends.sbe_count - 6) < 1e-9);
	assert_true(fabs(r.trends.sbe_per_h - 6 * 12) < 1e-9);
	assert_true(fabs(r.trends.sbe_per_h_recent - 6 * 60) < 1e-9);
	assert_non_null(reason(&r, "sbe_rate"));
	assert_int_equal(r.status, HEALTH_PASS);
	assert_true(r.comp[HC_MEMORY] < 100);
	assert_true(fabs(r.trends.temp_margin_c - 29) < 1e-9);
}

static void test_decoder(void **state)
{
	(void)state;
	const char *ev =
		"{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10.000Z\",\"hostname\":\"node-017\","
		"\"gpu\":{\"index\":3,\"uuid\":\"GPU-abc\",\"model\":\"NVIDIA H100 80GB HBM3\","
		"\"mig_instance\":2},\"metrics\":{\"gpu_temp\":65,\"power_usage\":301.25,"
		"\"ecc_dbe_volatile\":1,\"xid\":null,\"total_energy\":9223372036854000000,"
		"\"thermal_violation\":18446744073709551615.0},"
		"\"extra\":{\"DCGM_FI_DEV_GPU_MAX_OP_TEMP\":87}}";
	struct health_sample s;
	char err[128];
	assert_int_equal(health_sample_parse(ev, strlen(ev), &s, err, sizeof(err)), 0);
	assert_string_equal(s.key, "GPU-abc/2");
	assert_string_equal(s.host, "node-017");
	assert_string_equal(s.model, "NVIDIA H100 80GB HBM3");
	assert_int_equal(s.index, 3);
	assert_true(fabs(s.time - 1795867210.0) < 1e-6);
	assert_true(health_sample_has(&s, HS_GPU_TEMP) && s.v[HS_GPU_TEMP] == 65);
	assert_true(s.v[HS_POWER] == 301.25);
	assert_true(s.u[HS_DBE_VOL] == 1);
	assert_false(health_sample_has(&s, HS_XID)); /* null */
	assert_false(health_sample_has(&s, HS_SBE_VOL)); /* absent */
	assert_true(s.v[HS_MAX_OP_TEMP] == 87);
	assert_true(health_sample_has(&s, HS_THERMAL_VIOLATION));
	static const char *const bad[] = {
		"[1]", "{\"schema_version\":2}", "{\"schema_version\":1,\"gpu\":{}}",
		"{\"schema_version\":1,\"gpu\":{\"uuid\":\"G\"},\"time\":\"yesterday\"}", "{\"sch"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(health_sample_parse(bad[i], strlen(bad[i]), &s, err, sizeof(err)),
				 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_healthy_and_redelivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dbe_fails_once_as_event, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_thresholds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xid_sticky_gauge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pcie_by_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nvlink_and_violations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_temperature_hysteresis, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fell_off_the_bus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sbe_trends, setup, teardown),
		cmocka_unit_test(test_decoder),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
