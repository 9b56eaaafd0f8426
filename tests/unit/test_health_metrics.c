/* health_metrics: the per-GPU gauges of the scorer's --metrics-listen. Labels from the event
 * (dcgm-exporter's names, the location, the workload, GPU_I_ID of a MIG instance, values
 * escaped), one series per status and per action with exactly one at 1, HELP and TYPE once per
 * family, GPUs not evaluated for stale_s dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "health/health_metrics.h"

static const char EV[] =
    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10.000Z\",\"hostname\":\"node-1\","
    "\"cluster\":\"c1\",\"datacenter\":null,\"rack\":\"r\\\"7\","
    "\"gpu\":{\"index\":3,\"uuid\":\"GPU-a\",\"mig_instance\":null},\"metrics\":{},"
    "\"workload\":{\"namespace\":\"ns\",\"pod\":\"p-0\",\"container\":null}}";

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_render(void **state)
{
	(void)state;
	struct health_metrics *m = NULL;
	assert_int_equal(health_metrics_create(&m, 600), 0);
	assert_int_equal(health_metrics_note_event(m, "GPU-a", EV, strlen(EV)), 0);
	assert_int_equal(health_metrics_set(m, "GPU-a", 20, HEALTH_FAIL, 1.0, ACT_RESET, 100.0), 0);
	/* no event noted: labelled from its key */
	assert_int_equal(health_metrics_set(m, "GPU-b/5", 100, HEALTH_PASS, 0.25, ACT_KEEP, 100.0),
	                 0);
	struct strbuf b;
	strbuf_init(&b, 1 << 20);
	assert_int_equal(health_metrics_render(m, &b, 101.0), 0);
	const char *t = b.data;
	const char *lab = "gpu=\"3\",UUID=\"GPU-a\",Hostname=\"node-1\",cluster=\"c1\","
	                  "rack=\"r\\\"7\",namespace=\"ns\",pod=\"p-0\"";
	char line[512];
	snprintf(line, sizeof(line), "gpuhealth_gpu_health_score{%s} 20\n", lab);
	assert_non_null(strstr(t, line));
	snprintf(line, sizeof(line), "gpuhealth_gpu_health_status{%s,status=\"fail\"} 1\n", lab);
	assert_non_null(strstr(t, line));
	snprintf(line, sizeof(line), "gpuhealth_gpu_health_status{%s,status=\"pass\"} 0\n", lab);
	assert_non_null(strstr(t, line));
	snprintf(line, sizeof(line), "gpuhealth_gpu_failure_probability{%s} 1\n", lab);
	assert_non_null(strstr(t, line));
	snprintf(line, sizeof(line), "gpuhealth_gpu_recommended_action{%s,action=\"reset\"} 1\n",
	         lab);
	assert_non_null(strstr(t, line));
	snprintf(line, sizeof(line), "gpuhealth_gpu_recommended_action{%s,action=\"keep\"} 0\n",
	         lab);
	assert_non_null(strstr(t, line));
	assert_non_null(
	    strstr(t, "gpuhealth_gpu_health_score{UUID=\"GPU-b\",GPU_I_ID=\"5\"} 100\n"));
	assert_non_null(strstr(t,
	                       "gpuhealth_gpu_failure_probability{UUID=\"GPU-b\",GPU_I_ID=\"5\"} "
	                       "0.25\n"));
	assert_non_null(strstr(t, "gpuhealth_gpu_recommended_action{UUID=\"GPU-b\",GPU_I_ID=\"5\","
	                          "action=\"keep\"} 1\n"));
	assert_int_equal(count(t, "# TYPE "), 4);
	assert_int_equal(count(t, "# HELP "), 4);
	assert_int_equal(count(t, "# TYPE gpuhealth_gpu_health_status gauge\n"), 1);
	assert_int_equal(count(t, "gpuhealth_gpu_health_status{"), 6);
	assert_int_equal(count(t, "gpuhealth_gpu_recommended_action{"), 10);
	assert_null(strstr(t, "datacenter")); /* null in the event: left out */
	assert_null(strstr(t, "container"));

	/* the workload follows the newest event */
	static const char EV2[] =
	    "{\"hostname\":\"node-1\",\"gpu\":{\"index\":3,\"uuid\":\"GPU-a\"},"
	    "\"workload\":null}";
	assert_int_equal(health_metrics_note_event(m, "GPU-a", EV2, strlen(EV2)), 0);
	assert_int_equal(health_metrics_set(m, "GPU-a", 90, HEALTH_WARN, 0.5, ACT_DRAIN, 500.0), 0);
	strbuf_reset(&b);
	assert_int_equal(health_metrics_render(m, &b, 750.0), 0);
	t = b.data;
	assert_non_null(strstr(
	    t, "gpuhealth_gpu_health_score{gpu=\"3\",UUID=\"GPU-a\",Hostname=\"node-1\"} 90\n"));
	assert_null(strstr(t, "pod="));
	/* GPU-b was last evaluated at 100: stale at 750 (more than 600 s), dropped */
	assert_null(strstr(t, "GPU-b"));
	assert_int_equal(health_metrics_count(m), 1);
	/* and GPU-a at 1101 */
	strbuf_reset(&b);
	assert_int_equal(health_metrics_render(m, &b, 1101.0), 0);
	assert_null(strstr(b.data, "GPU-a"));
	assert_int_equal(count(b.data, "# TYPE "), 4); /* the families stay, empty */
	assert_int_equal(health_metrics_count(m), 0);
	/* a text that is not an event is ignored */
	assert_int_equal(health_metrics_note_event(m, "GPU-c", "[1,2]", 5), 0);
	assert_int_equal(health_metrics_count(m), 0);
	strbuf_free(&b);
	health_metrics_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_render)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
