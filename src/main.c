/* main: picks the mode from the command line and runs it. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api/api_cmd.h"
#include "bus/topic_init.h"
#include "cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/service.h"
#include "health/scorer_cmd.h"
#include "mock_dcgm.h"
#include "pipeline/daemon.h"
#include "collect/collector_cmd.h"
#include "sink/sink_cmd.h"
#include "status/status.h"
#include "store/migrate.h"
#include "tui.h"

typedef int (*mode_fn)(struct config *cfg);

/* the services' host loop (core/service.h) returns these exit statuses */
_Static_assert((int)SERVICE_EXIT_OK == (int)CLI_EXIT_OK &&
                   (int)SERVICE_EXIT_FAILURE == (int)CLI_EXIT_FAILURE &&
                   (int)SERVICE_EXIT_USAGE == (int)CLI_EXIT_USAGE,
               "service.h's exit statuses are cli.h's");

/* The modes this build can run; the others are delivered by later work and say so. A mode
 * is a function, or a service run by the one host loop (service_main); stamps: its log lines
 * carry timestamps (the headless services; mock-dcgm's are the benchmarks' fleets). */
static const struct {
	enum cli_mode mode;
	mode_fn run;
	const struct service_ops *svc;
	bool stamps;
} runners[] = {
    {CLI_TUI, tui_run, NULL, false},
    {CLI_STATUS, status_cmd_run, NULL, false},
    {CLI_DB, migrate_cmd_run, NULL, false},
    {CLI_KAFKA, topic_init_cmd_run, NULL, false},
    {CLI_DAEMON, NULL, &daemon_service_ops, true},
    {CLI_MOCK, NULL, &mock_dcgm_service_ops, false},
    {CLI_COLLECTOR, NULL, &collector_cmd_service_ops, true},
    {CLI_SINK, NULL, &sink_service_ops, true},
    {CLI_SCORER, NULL, &scorer_service_ops, true},
    {CLI_API, NULL, &api_service_ops, true},
};

static const char *env_get(const char *name)
{
	return getenv(name);
}

int main(int argc, char **argv)
{
	enum cli_mode mode = CLI_TUI;
	struct config *cfg = NULL;
	char err[1024] = "";
	int status = CLI_EXIT_FAILURE;

	enum cli_action act =
	    cli_load(argc, argv, env_get, isatty(STDOUT_FILENO), &mode, &cfg, err, sizeof(err));
	switch (act) {
	case CLI_SHOW_HELP:
		cli_print_help(stdout, mode);
		status = CLI_EXIT_OK;
		goto out;
	case CLI_SHOW_VERSION:
		cli_print_version(stdout);
		status = CLI_EXIT_OK;
		goto out;
	case CLI_USAGE_ERROR:
		fprintf(stderr, "gpuhealth: %s\n", err);
		status = CLI_EXIT_USAGE;
		goto out;
	case CLI_FAILURE:
		fprintf(stderr, "gpuhealth: %s\n", err);
		status = CLI_EXIT_FAILURE;
		goto out;
	case CLI_RUN: break;
	}

	enum log_level lvl = LOG_INFO;
	log_level_parse(config_str(cfg, "log-level"), &lvl); /* validated by cli_load */
	log_set_level(lvl);
	cli_warn_exposed_secrets(cfg); /* once, before the mode starts */

	size_t r = 0;
	while (r < sizeof(runners) / sizeof(runners[0]) && runners[r].mode != mode)
		r++;
	if (r == sizeof(runners) / sizeof(runners[0])) {
		fprintf(stderr,
		        "gpuhealth: '%s' is not built yet in this version (%s); "
		        "see 'gpuhealth --help' for what is\n",
		        cli_mode_name(mode), cli_mode_summary(mode));
		status = CLI_EXIT_USAGE;
		goto out;
	}
	if (runners[r].stamps)
		log_set_timestamps(1);
	status = runners[r].run ? runners[r].run(cfg) : service_main(runners[r].svc, cfg);
out:
	config_destroy(cfg);
	return status;
}
