/* pipeline: the embedded pipeline with no external service: the simulator, the collector, the
 * in-process mock Kafka cluster, and no database (GPUHEALTH_PG_BINDIR names a directory without
 * PostgreSQL): GPUs reach the fleet through the tap, events are delivered to the mock cluster,
 * the database part is off and says why, a stop leaves every part stopped. Also: bad options
 * are refused before anything starts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cli.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"

static const char *env_get(const char *name) { return getenv(name); }

static struct config *load(int argc, char **argv)
{
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512] = "";
	enum cli_action a = cli_load(argc, argv, env_get, 0, &mode, &cfg, err, sizeof(err));
	if (a != CLI_RUN)
		fprintf(stderr, "cli_load: %s\n", err);
	assert_int_equal(a, CLI_RUN);
	assert_int_equal(mode, CLI_DAEMON);
	return cfg;
}

static void nap(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

static void test_embedded_without_database(void **state)
{
	(void)state;
	setenv("GPUHEALTH_PG_BINDIR", "/nonexistent", 1);
	char *argv[] = {"gpuhealth", "--daemon", "--gpus", "4", "--interval", "0.2", "--log-level",
			"warn"};
	struct config *cfg = load(8, argv);
	struct pipeline *p = NULL;
	char err[512] = "";
	assert_int_equal(pipeline_create(&p, cfg, err, sizeof(err)), 0);
	assert_int_equal(pipeline_start(p, err, sizeof(err)), 0);
	struct pipeline_view *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	double until = time_mono() + 20;
	do {
		nap(0.1);
		pipeline_view(p, v);
	} while (time_mono() < until &&
		 (v->fleet.gpus < 4 || v->collector.producer.delivered < 8));
	assert_int_equal(v->fleet.gpus, 4);
	assert_int_equal(v->fleet.hosts, 1);
	assert_true(v->collector.producer.delivered >= 8);
	assert_int_equal(v->parts[PP_SIM].state, PART_RUNNING);
	assert_int_equal(v->parts[PP_COLLECTOR].state, PART_RUNNING);
	assert_int_equal(v->parts[PP_BROKER].state, PART_RUNNING);
	assert_non_null(strstr(v->parts[PP_BROKER].detail, "mock cluster"));
	assert_int_equal(v->parts[PP_DATABASE].state, PART_OFF);
	assert_non_null(strstr(v->parts[PP_DATABASE].detail, "install postgresql"));
	assert_int_equal(v->parts[PP_SINK].state, PART_OFF);
	assert_int_equal(v->parts[PP_SCORER].state, PART_OFF);
	assert_true(v->have_exporter && v->have_collector);
	assert_false(v->have_sink);
	assert_int_equal(v->ntargets, 1);
	assert_true(v->targets[0].ok >= 2);
	assert_int_equal(v->db_rows, -1);
	/* the GPUs in the fleet carry their health */
	struct fleet_gpu *g = calloc(8, sizeof(*g));
	assert_non_null(g);
	assert_int_equal(fleet_snapshot(pipeline_fleet(p), g, 8), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(g[i].index, i);
		assert_true(g[i].have_health);
		assert_true(g[i].nhist >= 1);
	}
	/* SIGHUP with the simulator: nothing to re-read, not an error */
	assert_int_equal(pipeline_reload(p), 0);
	double t0 = time_mono();
	pipeline_stop(p);
	assert_true(time_mono() - t0 < 2.0);
	pipeline_stop(p); /* idempotent */
	pipeline_view(p, v);
	assert_int_equal(v->parts[PP_SIM].state, PART_STOPPED);
	assert_int_equal(v->parts[PP_COLLECTOR].state, PART_STOPPED);
	assert_int_equal(v->parts[PP_BROKER].state, PART_STOPPED);
	assert_int_equal(v->parts[PP_DATABASE].state, PART_OFF);
	assert_int_equal(v->collector.producer.dropped, 0);
	assert_int_equal(v->collector.producer.delivered, v->collector.producer.produced);
	pipeline_destroy(p);
	free(g);
	free(v);
	config_destroy(cfg);
	unsetenv("GPUHEALTH_PG_BINDIR");
}

static void test_bad_options(void **state)
{
	(void)state;
	char err[512] = "";
	struct pipeline *p = NULL;
	char *a1[] = {"gpuhealth", "--daemon", "--model", "Z80"};
	struct config *cfg = load(4, a1);
	assert_int_equal(pipeline_create(&p, cfg, err, sizeof(err)), -EINVAL);
	assert_null(p);
	assert_non_null(strstr(err, "Z80"));
	config_destroy(cfg);
	char *a2[] = {"gpuhealth", "--daemon", "--target", "ftp://x/metrics"};
	cfg = load(4, a2);
	err[0] = '\0';
	assert_int_equal(pipeline_create(&p, cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--target"));
	config_destroy(cfg);
	char *a3[] = {"gpuhealth", "--daemon", "--gpus", "2", "--inject", "gpu=9,fault=dbe,at=1s"};
	cfg = load(6, a3);
	err[0] = '\0';
	assert_int_equal(pipeline_create(&p, cfg, err, sizeof(err)), -EINVAL);
	assert_true(strlen(err) > 0);
	config_destroy(cfg);
}

static void test_names(void **state)
{
	(void)state;
	const char *want[PP_COUNT] = {"simulator", "collector", "broker",
				      "database",  "sink",      "scorer"};
	for (int i = 0; i < PP_COUNT; i++)
		assert_string_equal(pipeline_part_name((enum pipeline_part)i), want[i]);
	assert_string_equal(pipeline_state_name(PART_FAILED), "failed");
	assert_string_equal(pipeline_state_name(PART_OFF), "off");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_embedded_without_database),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
