/* From samples to event v1: identity, known fields, extra, sentinels, MIG, rendering. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collect/events.h"

#define T0 "2026-11-28T12:00:10.000Z"

static struct events *EV;
static struct prom_stats PST;

static struct events *build(const char *text, const struct events_enrich *en)
{
	if (EV)
		events_destroy(EV);
	EV = NULL;
	assert_int_equal(events_create(&EV, en), 0);
	assert_int_equal(events_begin(EV, T0), 0);
	assert_int_equal(prom_parse(text, strlen(text), NULL, events_prom_cb, EV, &PST), 0);
	return EV;
}

static int teardown(void **state)
{
	(void)state;
	events_destroy(EV);
	EV = NULL;
	return 0;
}

static const json_t *path(const json_t *root, const char *a, const char *b)
{
	const json_t *j = json_object_get(root, a);
	return b && j ? json_object_get(j, b) : j;
}

static const json_t *event_by_key(const char *key)
{
	for (size_t i = 0; i < events_count(EV); i++)
		if (strcmp(events_key(EV, i), key) == 0)
			return events_json(EV, i);
	fail_msg("no event with key %s", key);
	return NULL;
}

#define L8                                                                                         \
	"gpu=\"0\",UUID=\"GPU-a\",pci_bus_id=\"00000000:31:00.0\",device=\"nvidia0\",modelName="   \
	"\"NVIDIA L4\",Hostname=\"node-1\",DCGM_FI_DRIVER_VERSION=\"580.105.08\""

static void test_one_gpu(void **state)
{
	(void)state;
	struct events_enrich en = {"local", "dc1", "r01", NULL};
	build("# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).\n"
	      "# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n"
	      "DCGM_FI_DEV_GPU_TEMP{" L8 "} 31\n"
	      "DCGM_FI_DEV_POWER_USAGE{" L8 "} 16.365000\n"
	      "DCGM_FI_DEV_VGPU_LICENSE_STATUS{" L8 "} 0\n"
	      "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{" L8 "} 4742776\n",
	      &en);
	assert_int_equal(events_count(EV), 1);
	assert_string_equal(events_key(EV, 0), "GPU-a");
	const json_t *e = events_json(EV, 0);
	assert_int_equal(json_integer_value(path(e, "schema_version", NULL)), 1);
	assert_string_equal(json_string_value(path(e, "time", NULL)), T0);
	assert_string_equal(json_string_value(path(e, "hostname", NULL)), "node-1");
	assert_string_equal(json_string_value(path(e, "cluster", NULL)), "local");
	assert_string_equal(json_string_value(path(e, "datacenter", NULL)), "dc1");
	assert_string_equal(json_string_value(path(e, "rack", NULL)), "r01");
	assert_true(json_is_integer(path(e, "gpu", "index")));
	assert_int_equal(json_integer_value(path(e, "gpu", "index")), 0);
	assert_string_equal(json_string_value(path(e, "gpu", "uuid")), "GPU-a");
	assert_string_equal(json_string_value(path(e, "gpu", "model")), "NVIDIA L4");
	assert_string_equal(json_string_value(path(e, "gpu", "pci_bus_id")), "00000000:31:00.0");
	assert_string_equal(json_string_value(path(e, "gpu", "device")), "nvidia0");
	assert_string_equal(json_string_value(path(e, "gpu", "driver_version")), "580.105.08");
	assert_true(json_is_null(path(e, "gpu", "mig_profile")));
	assert_true(json_is_null(path(e, "gpu", "mig_instance")));
	assert_true(json_is_integer(path(e, "metrics", "gpu_temp")));
	assert_int_equal(json_integer_value(path(e, "metrics", "gpu_temp")), 31);
	assert_true(json_is_real(path(e, "metrics", "power_usage")));
	assert_true(json_real_value(path(e, "metrics", "power_usage")) == 16.365);
	assert_int_equal(json_integer_value(path(e, "metrics", "total_energy")), 4742776);
	assert_int_equal(json_object_size(path(e, "metrics", NULL)), 3);
	/* absent fields are absent, not null */
	assert_null(path(e, "metrics", "memory_temp"));
	assert_int_equal(json_integer_value(path(e, "extra", "DCGM_FI_DEV_VGPU_LICENSE_STATUS")),
	                 0);
	assert_int_equal(json_object_size(path(e, "extra", NULL)), 1);
	/* label-typed fields are labels, never metrics */
	assert_null(path(e, "extra", "DCGM_FI_DRIVER_VERSION"));
	const struct events_stats *st = events_stats(EV);
	assert_int_equal(st->samples, 4);
	assert_int_equal(st->metrics, 3);
	assert_int_equal(st->extra, 1);
	assert_int_equal(st->no_uuid + st->not_dcgm + st->duplicates + st->bad_labels, 0);
}

static void test_sentinels(void **state)
{
	(void)state;
	build("DCGM_FI_DEV_MEMORY_TEMP{UUID=\"G\"} 9223372036854775794\n"
	      "DCGM_FI_DEV_GPU_TEMP{UUID=\"G\"} 9223372036854775792\n"
	      "DCGM_FI_DEV_SM_CLOCK{UUID=\"G\"} 9223372036854775807\n"
	      "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{UUID=\"G\"} 9223372036854775791\n"
	      "DCGM_FI_DEV_POWER_USAGE{UUID=\"G\"} 140737488355328.000000\n"
	      "DCGM_FI_DEV_POWER_MGMT_LIMIT{UUID=\"G\"} 140737488355327.9\n"
	      "DCGM_FI_PROF_PCIE_TX_BYTES{UUID=\"G\"} 1.5e14\n"
	      "DCGM_FI_PROF_PCIE_RX_BYTES{UUID=\"G\"} 140737488355328\n"
	      "DCGM_FI_DEV_MEM_CLOCK{UUID=\"G\"} NaN\n"
	      "DCGM_FI_DEV_GPU_UTIL{UUID=\"G\"} +Inf\n"
	      "DCGM_FI_DEV_PCIE_REPLAY_COUNTER{UUID=\"G\"} 18446744073709551615\n"
	      "DCGM_FI_DEV_ENC_UTIL{UUID=\"G\"} -3\n"
	      "DCGM_FI_DEV_SOMETHING{UUID=\"G\"} 9223372036854775795\n",
	      NULL);
	const json_t *m = path(events_json(EV, 0), "metrics", NULL);
	const json_t *x = path(events_json(EV, 0), "extra", NULL);
	/* integer sentinel range -> null, but present */
	assert_true(json_is_null(json_object_get(m, "memory_temp")));
	assert_true(json_is_null(json_object_get(m, "gpu_temp")));
	assert_true(json_is_null(json_object_get(m, "sm_clock")));
	/* just below the range: a real counter, exact */
	assert_true(json_is_integer(json_object_get(m, "total_energy")));
	assert_true(json_integer_value(json_object_get(m, "total_energy")) ==
	            INT64_C(9223372036854775791));
	/* FP blank: float-form at or above 2^47 */
	assert_true(json_is_null(json_object_get(m, "power_usage")));
	assert_true(json_is_real(json_object_get(m, "power_limit")));
	assert_true(json_is_null(json_object_get(m, "pcie_tx_bytes")));
	/* integer-form 2^47 is not the FP blank */
	assert_true(json_is_integer(json_object_get(m, "pcie_rx_bytes")));
	assert_true(json_integer_value(json_object_get(m, "pcie_rx_bytes")) ==
	            INT64_C(140737488355328));
	/* JSON has no NaN / Inf */
	assert_true(json_is_null(json_object_get(m, "mem_clock")));
	assert_true(json_is_null(json_object_get(m, "gpu_util")));
	/* beyond int64: a real, counted */
	assert_true(json_is_real(json_object_get(m, "pcie_replay")));
	assert_int_equal(json_integer_value(json_object_get(m, "enc_util")), -3);
	/* extra gets the same rules */
	assert_true(json_is_null(json_object_get(x, "DCGM_FI_DEV_SOMETHING")));
	const struct events_stats *st = events_stats(EV);
	assert_int_equal(st->blank, 6);
	assert_int_equal(st->nonfinite, 2);
	assert_int_equal(st->inexact, 1);
	assert_int_equal(st->metrics, 12);
	assert_int_equal(st->extra, 1);
	/* and the rendered text keeps the exact counter */
	char buf[4096];
	size_t len;
	assert_int_equal(events_render(EV, 0, buf, sizeof(buf), &len), 0);
	assert_non_null(strstr(buf, "\"total_energy\":9223372036854775791"));
	assert_non_null(strstr(buf, "\"memory_temp\":null"));
	assert_non_null(strstr(buf, "\"power_limit\":140737488355327.9"));
}

static void test_host_labels_and_alias(void **state)
{
	(void)state;
	build(
	    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{gpu=\"0\",UUID=\"GPU-old\",Hostname=\"old-host\"} "
	    "1\n"
	    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS{gpu=\"1\",UUID=\"GPU-new\",hostname=\"new-host\"} 8\n"
	    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{gpu=\"1\",UUID=\"GPU-new\",hostname=\"new-host\"} "
	    "4\n"
	    "DCGM_FI_DEV_GPU_TEMP{gpu=\"2\",UUID=\"GPU-nohost\"} 50\n",
	    NULL);
	assert_int_equal(events_count(EV), 3);
	const json_t *o = event_by_key("GPU-old"), *n = event_by_key("GPU-new"),
	             *h = event_by_key("GPU-nohost");
	assert_string_equal(json_string_value(path(o, "hostname", NULL)), "old-host");
	assert_string_equal(json_string_value(path(n, "hostname", NULL)), "new-host");
	assert_true(json_is_null(path(h, "hostname", NULL)));
	assert_int_equal(json_integer_value(path(o, "metrics", "clocks_event_reasons")), 1);
	/* both names on one GPU: the first is kept, the second counted and recorded */
	assert_int_equal(json_integer_value(path(n, "metrics", "clocks_event_reasons")), 8);
	assert_int_equal(json_integer_value(path(n, "gpu", "index")), 1);
	/* enrichment not set: null */
	assert_true(json_is_null(path(o, "cluster", NULL)));
	assert_true(json_is_null(path(o, "datacenter", NULL)));
	assert_true(json_is_null(path(o, "rack", NULL)));
	const struct events_stats *st = events_stats(EV);
	assert_int_equal(st->duplicates, 1);
	assert_int_equal(st->nskipped, 1);
	assert_int_equal(st->skipped[0].line, 3);
	assert_int_equal(st->skipped[0].reason, EVENTS_SKIP_DUPLICATE);
	assert_string_equal(st->skipped[0].name, "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS");
}

static void test_mig(void **state)
{
	(void)state;
	build("DCGM_FI_PROF_SM_ACTIVE{gpu=\"0\",UUID=\"GPU-m\",modelName=\"A100\",GPU_I_PROFILE="
	      "\"1g.10gb\",GPU_I_ID=\"3\"} 0.25\n"
	      "DCGM_FI_PROF_SM_ACTIVE{gpu=\"0\",UUID=\"GPU-m\",modelName=\"A100\",GPU_I_PROFILE="
	      "\"3g.40gb\",GPU_I_ID=\"1\"} 0.5\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-m\",modelName=\"A100\",GPU_I_PROFILE=\"\","
	      "GPU_I_ID=\"\"} 40\n",
	      NULL);
	assert_int_equal(events_count(EV), 3);
	assert_string_equal(events_key(EV, 0), "GPU-m/3");
	assert_string_equal(events_key(EV, 1), "GPU-m/1");
	assert_string_equal(events_key(EV, 2), "GPU-m");
	const json_t *a = events_json(EV, 0), *b = events_json(EV, 1), *w = events_json(EV, 2);
	assert_string_equal(json_string_value(path(a, "gpu", "uuid")), "GPU-m");
	assert_string_equal(json_string_value(path(a, "gpu", "mig_profile")), "1g.10gb");
	assert_int_equal(json_integer_value(path(a, "gpu", "mig_instance")), 3);
	assert_true(json_real_value(path(a, "metrics", "sm_active")) == 0.25);
	assert_string_equal(json_string_value(path(b, "gpu", "mig_profile")), "3g.40gb");
	assert_int_equal(json_integer_value(path(b, "gpu", "mig_instance")), 1);
	assert_true(json_is_null(path(w, "gpu", "mig_instance")));
	assert_true(json_is_null(path(w, "gpu", "mig_profile")));
	assert_int_equal(json_integer_value(path(w, "metrics", "gpu_temp")), 40);
}

static void test_unattributed_and_foreign(void **state)
{
	(void)state;
	build("DCGM_FI_DEV_FAN_SPEED 0\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"\"} 1\n"
	      "DCGM_EXP_XID_ERRORS_COUNT{gpu=\"0\",UUID=\"GPU-x\",xid=\"42\"} 1\n"
	      "go_goroutines 12\n"
	      "DCGM_FI_DEV_NVLINK_BANDWIDTH_L0{nvlink=\"0\",gpu=\"0\",gpu_uuid=\"GPU-x\",model_"
	      "name=\"H100\"} 7\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-x\"} 33\n",
	      NULL);
	const struct events_stats *st = events_stats(EV);
	assert_int_equal(st->samples, 6);
	assert_int_equal(st->no_uuid, 2);
	assert_int_equal(st->not_dcgm, 2);
	assert_int_equal(st->nskipped, 2);
	assert_int_equal(st->skipped[0].line, 1);
	assert_int_equal(st->skipped[0].reason, EVENTS_SKIP_NO_UUID);
	assert_string_equal(st->skipped[0].name, "DCGM_FI_DEV_FAN_SPEED");
	assert_int_equal(st->skipped[1].line, 2);
	assert_non_null(strstr(events_skip_str(EVENTS_SKIP_NO_UUID), "UUID"));
	/* the NVLink series names its GPU with gpu_uuid / model_name: same event */
	assert_int_equal(events_count(EV), 1);
	const json_t *e = events_json(EV, 0);
	assert_string_equal(json_string_value(path(e, "gpu", "model")), "H100");
	assert_int_equal(json_integer_value(path(e, "extra", "DCGM_FI_DEV_NVLINK_BANDWIDTH_L0")),
	                 7);
	assert_int_equal(json_integer_value(path(e, "metrics", "gpu_temp")), 33);
	/* every sample is accounted for */
	assert_int_equal(st->metrics + st->extra + st->no_uuid + st->not_dcgm + st->duplicates +
	                     st->bad_key + st->too_many_gpus,
	                 st->samples);
}

static void test_escaped_identity(void **state)
{
	(void)state;
	build(
	    "DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-\\\"q\\\"\",modelName=\"A \\\\ B\\nC\",gpu=\"x\"} 1\n",
	    NULL);
	assert_int_equal(events_count(EV), 1);
	assert_string_equal(events_key(EV, 0), "GPU-\"q\"");
	const json_t *e = events_json(EV, 0);
	assert_string_equal(json_string_value(path(e, "gpu", "model")), "A \\ B\nC");
	/* gpu index that is not a number: null, counted */
	assert_true(json_is_null(path(e, "gpu", "index")));
	assert_int_equal(events_stats(EV)->bad_labels, 1);
	char buf[2048];
	size_t len;
	assert_int_equal(events_render(EV, 0, buf, sizeof(buf), &len), 0);
	assert_non_null(strstr(buf, "\"uuid\":\"GPU-\\\"q\\\"\""));
	assert_non_null(strstr(buf, "\"model\":\"A \\\\ B\\nC\""));
	/* invalid UTF-8 in a label: null and counted, never invalid JSON */
	build("DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-u\",modelName=\"\xff\xfe\"} 1\n", NULL);
	assert_true(json_is_null(path(events_json(EV, 0), "gpu", "model")));
	assert_int_equal(events_stats(EV)->bad_labels, 1);
	build("DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-\xff\"} 1\n", NULL);
	assert_int_equal(events_count(EV), 0);
	assert_int_equal(events_stats(EV)->bad_key, 1);
	/* a NUL byte in a label (PostgreSQL's jsonb refuses \u0000): null or skipped, counted */
	static const char nul[] = "DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-n\",device=\"nv\0x\"} 1\n"
	                          "DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-n\",GPU_I_ID=\"\0\"} 1\n";
	struct events *ev;
	struct prom_stats pst;
	assert_int_equal(events_create(&ev, NULL), 0);
	assert_int_equal(events_begin(ev, T0), 0);
	assert_int_equal(prom_parse(nul, sizeof(nul) - 1, NULL, events_prom_cb, ev, &pst), 0);
	assert_int_equal(pst.samples, 2);
	assert_int_equal(events_count(ev), 1);
	assert_true(json_is_null(path(events_json(ev, 0), "gpu", "device")));
	assert_int_equal(events_stats(ev)->bad_labels, 1);
	assert_int_equal(events_stats(ev)->bad_key, 1);
	events_destroy(ev);
}

static void test_render(void **state)
{
	(void)state;
	struct events_enrich en = {"c \"1\"", "", NULL, NULL};
	build("DCGM_FI_DEV_POWER_USAGE{gpu=\"0\",UUID=\"GPU-r\"} 70.000000\n"
	      "DCGM_FI_DEV_FB_USED_PERCENT{gpu=\"0\",UUID=\"GPU-r\"} 0.000008\n"
	      "DCGM_FI_PROF_DRAM_ACTIVE{gpu=\"0\",UUID=\"GPU-r\"} 0.1\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-r\"} 65\n",
	      &en);
	char buf[4096];
	size_t len = 0;
	assert_int_equal(events_render(EV, 0, buf, sizeof(buf), &len), 0);
	assert_int_equal(len, strlen(buf));
	assert_null(strchr(buf, '\n'));
	assert_null(strstr(buf, ": "));
	assert_non_null(strstr(buf, "\"power_usage\":70.0,"));
	assert_non_null(strstr(buf, "\"DCGM_FI_DEV_FB_USED_PERCENT\":8e-06"));
	assert_non_null(strstr(buf, "\"dram_active\":0.1,"));
	assert_non_null(strstr(buf, "\"gpu_temp\":65}"));
	assert_non_null(
	    strstr(buf, "\"cluster\":\"c \\\"1\\\"\",\"datacenter\":null,\"rack\":null"));
	/* field order of the contract */
	const char *order[] = {"\"schema_version\":1",
	                       "\"time\":\"" T0 "\"",
	                       "\"hostname\"",
	                       "\"cluster\"",
	                       "\"datacenter\"",
	                       "\"rack\"",
	                       "\"gpu\":{\"index\":0",
	                       "\"uuid\"",
	                       "\"model\"",
	                       "\"pci_bus_id\"",
	                       "\"device\"",
	                       "\"driver_version\"",
	                       "\"mig_profile\"",
	                       "\"mig_instance\"",
	                       "\"metrics\"",
	                       "\"extra\""};
	const char *at = buf;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const char *p = strstr(at, order[i]);
		if (!p)
			fail_msg("'%s' missing or out of order in %s", order[i], buf);
		at = p;
	}
	/* it reads back to the same values */
	json_error_t jerr;
	json_t *back = json_loads(buf, 0, &jerr);
	assert_non_null(back);
	assert_true(json_equal(back, (json_t *)events_json(EV, 0)));
	json_decref(back);
	/* too small: -ENOSPC, the size needed, and a terminated buffer */
	char small[16];
	size_t need = 0;
	assert_int_equal(events_render(EV, 0, small, sizeof(small), &need), -ENOSPC);
	assert_int_equal(need, len);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(events_render(EV, 0, buf, len, &need), -ENOSPC);
	assert_int_equal(events_render(EV, 0, buf, len + 1, &need), 0);
	assert_int_equal(events_render(EV, 1, buf, sizeof(buf), &need), -EINVAL);
}

/* Reals are written with a '.' whatever the process locale says. */
static void test_render_locale(void **state)
{
	(void)state;
	const char *locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
	bool comma = false;
	for (size_t i = 0; i < 4 && !comma; i++)
		comma = setlocale(LC_NUMERIC, locs[i]) != NULL;
	if (!comma)
		skip(); /* no locale with a decimal comma installed here */
	build("DCGM_FI_DEV_POWER_USAGE{UUID=\"GPU-l\"} 16.5\n", NULL);
	char buf[1024];
	size_t len;
	assert_int_equal(events_render(EV, 0, buf, sizeof(buf), &len), 0);
	setlocale(LC_NUMERIC, "C");
	assert_non_null(strstr(buf, "\"power_usage\":16.5}"));
}

static void test_time(void **state)
{
	(void)state;
	struct events *ev;
	assert_int_equal(events_create(&ev, NULL), 0);
	assert_int_equal(events_begin(ev, "2026-11-28T12:00:10Z"), -EINVAL);
	assert_int_equal(events_begin(ev, "2026-11-28 12:00:10.000Z"), -EINVAL);
	assert_int_equal(events_begin(ev, NULL), -EINVAL);
	struct prom_sample s = {0};
	assert_int_equal(events_add(ev, &s), -EINVAL); /* no events_begin() yet */
	char t[EVENTS_TIME_LEN];
	struct timespec ts = {1795867210, 7000000};
	assert_int_equal(events_format_time(&ts, t), 0);
	assert_string_equal(t, "2026-11-28T12:00:10.007Z");
	assert_int_equal(events_begin(ev, t), 0);
	ts.tv_nsec = 1000000000L;
	assert_int_equal(events_format_time(&ts, t), -EINVAL);
	events_destroy(ev);
}

/* A second scrape on the same builder starts clean. */
static void test_reuse(void **state)
{
	(void)state;
	build("DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-1\"} 1\nDCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-2\"} 2\n",
	      NULL);
	assert_int_equal(events_count(EV), 2);
	assert_int_equal(events_begin(EV, "2026-11-28T12:00:20.000Z"), 0);
	assert_int_equal(events_count(EV), 0);
	assert_int_equal(events_stats(EV)->samples, 0);
	const char *t = "DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-2\"} 3\n";
	assert_int_equal(prom_parse(t, strlen(t), NULL, events_prom_cb, EV, &PST), 0);
	assert_int_equal(events_count(EV), 1);
	assert_string_equal(json_string_value(path(events_json(EV, 0), "time", NULL)),
	                    "2026-11-28T12:00:20.000Z");
	assert_int_equal(json_integer_value(path(events_json(EV, 0), "metrics", "gpu_temp")), 3);
}

static void test_many_gpus(void **state)
{
	(void)state;
	size_t n = EVENTS_MAX_GPUS + 3, off = 0, size = n * 64;
	char *text = malloc(size);
	assert_non_null(text);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(text + off, size - off,
		                        "DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-%zu\"} 1\n", i);
	build(text, NULL);
	free(text);
	assert_int_equal(events_count(EV), EVENTS_MAX_GPUS);
	assert_int_equal(events_stats(EV)->too_many_gpus, 3);
}

/* Every finite real is written so that it reads back to the same double, with a '.' or an
 * exponent: random bit patterns, short decimals (the fast path) and their neighbours. */
static void test_reals_round_trip(void **state)
{
	(void)state;
	uint64_t x = 88172645463325252ull;
	char text[256], buf[4096];
	size_t checked = 0;
	for (int i = 0; i < 20000; i++) {
		double d;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		switch (i % 4) {
		case 0: { /* any finite double */
			uint64_t bits = x;
			memcpy(&d, &bits, sizeof(d));
			if (!isfinite(d))
				continue;
			break;
		}
		case 1: /* k decimals, as exporters print them */
			d = (double)(int64_t)(x % 2000000001ull - 1000000000) /
			    pow(10, (double)((x >> 40) % 9));
			break;
		case 2: /* next to such a decimal */
			d = nextafter((double)(x % 100000) / 1000.0, (x >> 63) ? 1e9 : -1e9);
			break;
		default: /* wide range of magnitudes */
			d = ((double)(x % 1000000) + 0.5) *
			    pow(10, (double)((x >> 32) % 40) - 20.0);
			break;
		}
		if (d >= 140737488355328.0) /* blank sentinel range: null by design */
			continue;
		char num[64]; /* float form (integer-form text is an integer by design) */
		snprintf(num, sizeof(num), "%.17g", d);
		snprintf(text, sizeof(text), "DCGM_FI_DEV_POWER_USAGE{UUID=\"GPU-r\"} %s%s\n", num,
		         strpbrk(num, ".e") ? "" : ".0");
		build(text, NULL);
		size_t len = 0;
		assert_int_equal(events_render(EV, 0, buf, sizeof(buf), &len), 0);
		const char *v = strstr(buf, "\"power_usage\":");
		assert_non_null(v);
		v += strlen("\"power_usage\":");
		char *end = NULL;
		double back = strtod(v, &end);
		if (back != d)
			fail_msg("%.17g written as %.*s", d, (int)(end - v), v);
		if (*end != '}')
			fail_msg("%.17g: junk after the number: %s", d, v);
		if (!memchr(v, '.', (size_t)(end - v)) && !memchr(v, 'e', (size_t)(end - v)))
			fail_msg("%.17g written as %.*s: neither '.' nor exponent", d,
			         (int)(end - v), v);
		checked++;
	}
	assert_true(checked > 15000);
}

/* Families list GPUs in different orders (forward, backward, shuffled) with extra series
 * names past the intern table's first size: every value lands on its own GPU. */
static void test_lookup_orders(void **state)
{
	(void)state;
	enum { NG = 600, NX = 300 };
	size_t size = (size_t)NG * (3 + NX / 50) * 96 + 4096, off = 0;
	char *text = malloc(size);
	assert_non_null(text);
	unsigned perm[NG];
	for (unsigned g = 0; g < NG; g++)
		perm[g] = g;
	uint64_t x = 12345;
	for (unsigned g = NG - 1; g > 0; g--) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned j = (unsigned)(x % (g + 1)), t = perm[g];
		perm[g] = perm[j];
		perm[j] = t;
	}
	for (unsigned g = 0; g < NG; g++)
		off += (size_t)snprintf(text + off, size - off,
		                        "DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-%u\"} %u\n", g, g);
	for (unsigned g = NG; g-- > 0;)
		off += (size_t)snprintf(text + off, size - off,
		                        "DCGM_FI_DEV_POWER_USAGE{UUID=\"GPU-%u\"} %u.5\n", g, g);
	for (unsigned k = 0; k < NG; k++)
		off += (size_t)snprintf(text + off, size - off,
		                        "DCGM_FI_DEV_SM_CLOCK{UUID=\"GPU-%u\"} %u\n", perm[k],
		                        perm[k] + 7);
	/* NX extra names, each on the GPU its number names */
	for (unsigned e = 0; e < NX; e++)
		off += (size_t)snprintf(text + off, size - off,
		                        "DCGM_FI_X_%u{UUID=\"GPU-%u\"} %u\n", e, (e * 7) % NG, e);
	/* a second series of a field for a GPU: counted, the first kept */
	off += (size_t)snprintf(
	    text + off, size - off,
	    "DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-5\"} 99\nDCGM_FI_X_3{UUID=\"GPU-21\"} 9\n");
	build(text, NULL);
	free(text);
	assert_int_equal(events_count(EV), NG);
	assert_int_equal(events_stats(EV)->duplicates, 2);
	char key[32], name[32];
	for (unsigned g = 0; g < NG; g++) {
		snprintf(key, sizeof(key), "GPU-%u", g);
		const json_t *e = event_by_key(key);
		assert_int_equal(json_integer_value(path(e, "metrics", "gpu_temp")), g);
		assert_true(json_real_value(path(e, "metrics", "power_usage")) == g + 0.5);
		assert_int_equal(json_integer_value(path(e, "metrics", "sm_clock")), g + 7);
	}
	for (unsigned e = 0; e < NX; e++) {
		snprintf(key, sizeof(key), "GPU-%u", (e * 7) % NG);
		snprintf(name, sizeof(name), "DCGM_FI_X_%u", e);
		const json_t *j = path(event_by_key(key), "extra", name);
		if (!j)
			fail_msg("%s missing on %s", name, key);
		assert_int_equal(json_integer_value(j), e);
	}
}

/* dcgm-exporter's pod mapping: namespace/pod/container -> "workload"; empty strings -> null */
static void test_workload(void **state)
{
	(void)state;
	build("DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-a\",container=\"trainer\","
	      "namespace=\"training\",pod=\"llm-7b-worker-3\"} 40\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"1\",UUID=\"GPU-b\",container=\"\",namespace=\"\","
	      "pod=\"\"} 41\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"2\",UUID=\"GPU-c\"} 42\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"3\",UUID=\"GPU-d\",GPU_I_ID=\"1\",GPU_I_PROFILE=\"1g."
	      "10gb\","
	      "namespace=\"infer\",pod=\"p-1\",container=\"\"} 43\n"
	      "DCGM_FI_DEV_GPU_TEMP{gpu=\"3\",UUID=\"GPU-d\",GPU_I_ID=\"2\",GPU_I_PROFILE=\"1g."
	      "10gb\","
	      "namespace=\"infer\",pod=\"p-2\",container=\"srv\"} 44\n",
	      NULL);
	assert_int_equal(events_count(EV), 5);
	const json_t *w = path(event_by_key("GPU-a"), "workload", NULL);
	assert_true(json_is_object(w));
	assert_int_equal(json_object_size(w), 3);
	assert_string_equal(json_string_value(json_object_get(w, "namespace")), "training");
	assert_string_equal(json_string_value(json_object_get(w, "pod")), "llm-7b-worker-3");
	assert_string_equal(json_string_value(json_object_get(w, "container")), "trainer");
	/* present and null, both for empty labels and for none */
	w = path(event_by_key("GPU-b"), "workload", NULL);
	assert_non_null(w);
	assert_true(json_is_null(w));
	w = path(event_by_key("GPU-c"), "workload", NULL);
	assert_non_null(w);
	assert_true(json_is_null(w));
	/* MIG instances keep their own */
	w = path(event_by_key("GPU-d/1"), "workload", NULL);
	assert_string_equal(json_string_value(json_object_get(w, "pod")), "p-1");
	assert_true(json_is_null(json_object_get(w, "container")));
	w = path(event_by_key("GPU-d/2"), "workload", NULL);
	assert_string_equal(json_string_value(json_object_get(w, "pod")), "p-2");
	assert_string_equal(json_string_value(json_object_get(w, "container")), "srv");
	/* no labels given: no "labels" */
	assert_null(path(event_by_key("GPU-a"), "labels", NULL));
}

/* a target's discovery enrichment replaces the collector's, per scrape */
static void test_target_enrich(void **state)
{
	(void)state;
	struct events_enrich base = {"c0", "dc0", "r0", NULL};
	build("DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-a\"} 40\n", &base);
	struct events_enrich t = {"c1", NULL, "r7", "{\"team\":\"vision\",\"zone\":\"b\"}"};
	events_set_target(EV, &t);
	const json_t *e = events_json(EV, 0);
	assert_string_equal(json_string_value(path(e, "cluster", NULL)), "c1");
	assert_string_equal(json_string_value(path(e, "datacenter", NULL)), "dc0");
	assert_string_equal(json_string_value(path(e, "rack", NULL)), "r7");
	assert_string_equal(json_string_value(path(e, "labels", "team")), "vision");
	assert_string_equal(json_string_value(path(e, "labels", "zone")), "b");
	events_set_target(EV, NULL);
	assert_int_equal(events_begin(EV, T0), 0);
	assert_int_equal(prom_parse("DCGM_FI_DEV_GPU_TEMP{UUID=\"GPU-a\"} 40\n", 38, NULL,
	                            events_prom_cb, EV, &PST),
	                 0);
	e = events_json(EV, 0);
	assert_string_equal(json_string_value(path(e, "cluster", NULL)), "c0");
	assert_null(path(e, "labels", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_one_gpu, teardown),
	    cmocka_unit_test_teardown(test_sentinels, teardown),
	    cmocka_unit_test_teardown(test_host_labels_and_alias, teardown),
	    cmocka_unit_test_teardown(test_mig, teardown),
	    cmocka_unit_test_teardown(test_unattributed_and_foreign, teardown),
	    cmocka_unit_test_teardown(test_escaped_identity, teardown),
	    cmocka_unit_test_teardown(test_render, teardown),
	    cmocka_unit_test_teardown(test_render_locale, teardown),
	    cmocka_unit_test(test_time),
	    cmocka_unit_test_teardown(test_reuse, teardown),
	    cmocka_unit_test_teardown(test_many_gpus, teardown),
	    cmocka_unit_test_teardown(test_reals_round_trip, teardown),
	    cmocka_unit_test_teardown(test_lookup_orders, teardown),
	    cmocka_unit_test_teardown(test_workload, teardown),
	    cmocka_unit_test_teardown(test_target_enrich, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
