/* The settings layer: flags, environment, config file, precedence, lists, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "core/config.h"

/* A fake environment for the tests. */
static const char *fake_env[16][2];
static const char *fake_getenv(const char *name)
{
	for (size_t i = 0; i < 16 && fake_env[i][0]; i++)
		if (strcmp(fake_env[i][0], name) == 0)
			return fake_env[i][1];
	return NULL;
}
static void env_reset(void) { memset(fake_env, 0, sizeof(fake_env)); }
static void env_set(const char *k, const char *v)
{
	size_t i = 0;
	while (fake_env[i][0])
		i++;
	fake_env[i][0] = k;
	fake_env[i][1] = v;
}

static enum cli_action load(int argc, char **argv, enum cli_mode *mode, struct config **cfg,
			    char *err, size_t len)
{
	return cli_load(argc, argv, fake_getenv, 1, mode, cfg, err, len);
}

static void test_defaults_and_flags(void **state)
{
	(void)state;
	env_reset();
	char *argv[] = {"gpuhealth", "mock-dcgm", "--gpus", "16", "--speed=60", "--inject",
			"gpu=1,fault=dbe,at=30s", "--inject", "gpu=2,fault=xid,xid=79,at=1m"};
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512];
	assert_int_equal(load(9, argv, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(mode, CLI_MOCK);
	assert_int_equal(config_int(cfg, "gpus"), 16);
	assert_true(config_double(cfg, "speed") == 60.0);
	assert_true(config_double(cfg, "poll-interval") == 10.0); /* default */
	assert_string_equal(config_str(cfg, "model"), "A100-SXM4-80GB");
	assert_int_equal(config_list_len(cfg, "inject"), 2);
	assert_string_equal(config_list_at(cfg, "inject", 1), "gpu=2,fault=xid,xid=79,at=1m");
	assert_true(config_is_set(cfg, "gpus"));
	assert_false(config_is_set(cfg, "model"));
	config_destroy(cfg);
}

static void test_flag_beats_env_beats_file(void **state)
{
	(void)state;
	char path[] = "/tmp/gh-config-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *body = "# comment\n\ngpus = 4\nseed = 7\nmodel = \"H100-SXM5-80GB\"\n"
			   "topic = ignored-for-mock\r\n";
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);

	env_reset();
	env_set("MOCK_GPUS", "12");
	env_set("MOCK_SEED", "9");
	env_set("GPUHEALTH_CONFIG", path);
	char *argv[] = {"gpuhealth", "mock-dcgm", "--gpus", "2"};
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512];
	assert_int_equal(load(4, argv, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(config_int(cfg, "gpus"), 2);   /* flag */
	assert_int_equal(config_int(cfg, "seed"), 9);   /* env over file */
	assert_string_equal(config_str(cfg, "model"), "H100-SXM5-80GB"); /* file over default */
	assert_int_equal(config_source_of(cfg, "model"), CONFIG_SRC_FILE);
	config_destroy(cfg);
	unlink(path);
}

static void test_env_lists_and_flags_replace(void **state)
{
	(void)state;
	env_reset();
	env_set("SCRAPE_TARGETS", "http://a:9400/metrics, http://b:9400/metrics,,");
	env_set("NO_COLOR", "x");
	char *argv[] = {"gpuhealth", "collector"};
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512];
	assert_int_equal(load(2, argv, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(config_list_len(cfg, "target"), 2);
	assert_string_equal(config_list_at(cfg, "target", 1), "http://b:9400/metrics");
	assert_true(config_bool(cfg, "no-color"));
	config_destroy(cfg);

	/* A list given on the command line replaces the environment's list. */
	char *argv2[] = {"gpuhealth", "collector", "--target", "http://c/metrics"};
	assert_int_equal(load(4, argv2, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(config_list_len(cfg, "target"), 1);
	assert_string_equal(config_list_at(cfg, "target", 0), "http://c/metrics");
	config_destroy(cfg);

	/* MOCK_INJECT items contain commas, so ';' separates them. */
	env_reset();
	env_set("MOCK_INJECT", "gpu=1,fault=dbe,at=30s; gpu=2,fault=xid,xid=79,at=60s");
	char *argv3[] = {"gpuhealth", "mock-dcgm"};
	assert_int_equal(load(2, argv3, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(config_list_len(cfg, "inject"), 2);
	assert_string_equal(config_list_at(cfg, "inject", 0), "gpu=1,fault=dbe,at=30s");
	config_destroy(cfg);
}

static void expect_usage(int argc, char **argv, const char *needle)
{
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512] = "";
	enum cli_action a = load(argc, argv, &mode, &cfg, err, sizeof(err));
	if (a != CLI_USAGE_ERROR)
		fail_msg("expected a usage error for '%s', got action %d", argv[argc - 1], a);
	if (!strstr(err, needle))
		fail_msg("message '%s' does not mention '%s'", err, needle);
	assert_null(cfg);
}

static void test_usage_errors_name_the_input(void **state)
{
	(void)state;
	env_reset();
	char *a1[] = {"gpuhealth", "mock-dcgm", "--gpus", "eight"};
	expect_usage(4, a1, "'eight'");
	char *a2[] = {"gpuhealth", "mock-dcgm", "--gpus", "0"};
	expect_usage(4, a2, "out of range");
	char *a3[] = {"gpuhealth", "sink", "--gpus", "8"};
	expect_usage(4, a3, "does not apply to 'sink'");
	char *a4[] = {"gpuhealth", "sink", "--frobnicate"};
	expect_usage(3, a4, "--frobnicate");
	char *a5[] = {"gpuhealth", "launch"};
	expect_usage(2, a5, "unknown command 'launch'");
	char *a6[] = {"gpuhealth", "collector", "--interval", "ten"};
	expect_usage(4, a6, "not a duration");
	char *a7[] = {"gpuhealth", "collector", "--interval"};
	expect_usage(3, a7, "needs a value");
	char *a8[] = {"gpuhealth", "db", "upgrade"};
	expect_usage(3, a8, "db migrate");
	char *a9[] = {"gpuhealth", "sink", "stray"};
	expect_usage(3, a9, "unexpected argument 'stray'");
	char *a10[] = {"gpuhealth", "sink", "--log-level", "loud"};
	expect_usage(4, a10, "'loud'");
	env_set("MOCK_SPEED", "fast");
	char *a11[] = {"gpuhealth", "mock-dcgm"};
	expect_usage(2, a11, "MOCK_SPEED");
	env_reset();
	char *a12[] = {"gpuhealth", "collector", "--output", "events.json"};
	expect_usage(4, a12, "--output");
	char *a13[] = {"gpuhealth", "--log-level", "debug", "sink"};
	expect_usage(4, a13, "must come before its options");
}

static void test_modes(void **state)
{
	(void)state;
	env_reset();
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512];
	char *a1[] = {"gpuhealth", "--daemon", "--duration", "30"};
	assert_int_equal(load(4, a1, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(mode, CLI_DAEMON);
	assert_true(config_double(cfg, "duration") == 30.0);
	config_destroy(cfg);
	char *a2[] = {"gpuhealth", "db", "migrate"};
	assert_int_equal(load(3, a2, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(mode, CLI_DB);
	config_destroy(cfg);
	char *a3[] = {"gpuhealth", "sink", "--help"};
	assert_int_equal(load(3, a3, &mode, &cfg, err, sizeof(err)), CLI_SHOW_HELP);
	assert_int_equal(mode, CLI_SINK);
	config_destroy(cfg);
	char *a4[] = {"gpuhealth", "-V"};
	assert_int_equal(load(2, a4, &mode, &cfg, err, sizeof(err)), CLI_SHOW_VERSION);
	config_destroy(cfg);
	/* No terminal and no command: the console cannot run; say what to do instead. */
	char *a5[] = {"gpuhealth"};
	assert_int_equal(cli_load(1, a5, fake_getenv, 0, &mode, &cfg, err, sizeof(err)),
			 CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "--daemon"));
	char *a6[] = {"gpuhealth", "sink", "-X", "security.protocol=SSL", "-Xssl.ca.location=/ca"};
	assert_int_equal(load(5, a6, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(config_list_len(cfg, "X"), 2);
	assert_string_equal(config_list_at(cfg, "X", 1), "ssl.ca.location=/ca");
	config_destroy(cfg);
}

static void test_config_file_errors(void **state)
{
	(void)state;
	char path[] = "/tmp/gh-config-XXXXXX";
	int fd = mkstemp(path);
	const char *body = "gpus = 4\nwhat = 1\n";
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	env_reset();
	char *argv[] = {"gpuhealth", "mock-dcgm", "--config", path};
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512];
	assert_int_equal(load(4, argv, &mode, &cfg, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, ":2: unknown key 'what'"));
	unlink(path);
	char *argv2[] = {"gpuhealth", "mock-dcgm", "--config", "/nonexistent/gh.conf"};
	assert_int_equal(load(4, argv2, &mode, &cfg, err, sizeof(err)), CLI_USAGE_ERROR);
	assert_non_null(strstr(err, "/nonexistent/gh.conf"));
}

/* A config file that is not a small text file: each a usage error naming the file (and the
 * line), never defaults taken silently or a read for ever. */
static void cfg_bad(const char *file, const char *want)
{
	char *argv[] = {"gpuhealth", "mock-dcgm", "--config", (char *)file};
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[1024] = "";
	alarm(20); /* /dev/zero was read for ever */
	enum cli_action a = load(4, argv, &mode, &cfg, err, sizeof(err));
	alarm(0);
	if (a != CLI_USAGE_ERROR)
		fail_msg("--config %s: not a usage error (%d; '%s')", file, (int)a, err);
	if (!strstr(err, file) || !strstr(err, want))
		fail_msg("--config %s: error '%s' lacks the file or '%s'", file, err, want);
	assert_null(cfg);
}

static void cfg_write(const char *path, const char *body, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(body, 1, len, f), len);
	fclose(f);
}

static void test_config_file_bad_input(void **state)
{
	(void)state;
	env_reset();
	char dir[] = "/tmp/gh-config-dir-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char f[300], fifo[300];
	snprintf(f, sizeof(f), "%s/gh.conf", dir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	cfg_bad(dir, "a directory, not a file");
	cfg_bad("/dev/zero", "not a regular file");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	cfg_bad(fifo, "not a regular file");
	size_t n = ((size_t)1 << 20) + 1;
	char *big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	for (size_t i = 79; i < n; i += 80)
		big[i] = '\n';
	cfg_write(f, big, n);
	cfg_bad(f, "over the limit of 1048576");
	free(big);
	static const char latin1[] = "gpus = 4\nseed = 1 # \xe9t\xe9\n"; /* ISO 8859-1, not UTF-8 */
	cfg_write(f, latin1, sizeof(latin1) - 1);
	cfg_bad(f, ":2: invalid UTF-8");
	cfg_write(f, "gpus = 4\0\n", 10);
	cfg_bad(f, ":1: NUL byte");
	char line[4200];
	memset(line, ' ', sizeof(line));
	memcpy(line, "gpus = 4", 8);
	line[sizeof(line) - 1] = '\n';
	cfg_write(f, line, sizeof(line));
	cfg_bad(f, ":1: line longer than 4096 bytes");
	/* 4096 bytes is still a line */
	memset(line, ' ', sizeof(line));
	memcpy(line, "gpus = 4", 8);
	line[4096] = '\n';
	cfg_write(f, line, 4097);
	char *argv[] = {"gpuhealth", "mock-dcgm", "--config", f};
	enum cli_mode mode;
	struct config *cfg = NULL;
	char err[512];
	assert_int_equal(load(4, argv, &mode, &cfg, err, sizeof(err)), CLI_RUN);
	assert_int_equal(config_int(cfg, "gpus"), 4);
	config_destroy(cfg);
	unlink(f);
	cfg_bad(f, "No such file"); /* gone */
	unlink(fifo);
	rmdir(dir);
}

static void test_durations(void **state)
{
	(void)state;
	double s;
	assert_int_equal(config_parse_duration("10", &s), 0);
	assert_true(s == 10);
	assert_int_equal(config_parse_duration("500ms", &s), 0);
	assert_true(s == 0.5);
	assert_int_equal(config_parse_duration("5m", &s), 0);
	assert_true(s == 300);
	assert_int_equal(config_parse_duration("1h", &s), 0);
	assert_true(s == 3600);
	assert_int_equal(config_parse_duration("7d", &s), 0);
	assert_true(s == 7 * 86400);
	assert_int_not_equal(config_parse_duration("-1", &s), 0);
	assert_int_not_equal(config_parse_duration("10 parsecs", &s), 0);
	assert_int_not_equal(config_parse_duration("", &s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_flags),
		cmocka_unit_test(test_flag_beats_env_beats_file),
		cmocka_unit_test(test_env_lists_and_flags_replace),
		cmocka_unit_test(test_usage_errors_name_the_input),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_config_file_errors),
		cmocka_unit_test(test_config_file_bad_input),
		cmocka_unit_test(test_durations),
	};
	return cmocka_run_group_tests_name("config and command line", tests, NULL, NULL);
}
