#include "mock_dcgm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/config.h"
#include "core/log.h"
#include "exporter/exporter.h"
#include "sim/inject.h"
#include "sim/sim.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int mock_dcgm_run(struct config *cfg)
{
	int status = CLI_EXIT_USAGE;
	struct inject_spec *faults = NULL;
	struct sim *sim = NULL;
	struct exporter *ex = NULL;
	char err[1024] = "";

	const char *model_arg = config_str(cfg, "model");
	const struct sim_model *model = sim_model_find(model_arg);
	if (!model) {
		fprintf(stderr, "gpuhealth: --model '%s' is not a known GPU model; use one of: %s\n",
			model_arg ? model_arg : "", sim_model_names());
		goto out;
	}
	const char *host_label = config_str(cfg, "host-label");
	if (strcmp(host_label, "hostname") != 0 && strcmp(host_label, "Hostname") != 0) {
		fprintf(stderr,
			"gpuhealth: --host-label '%s': use 'hostname' (current dcgm-exporter) or "
			"'Hostname' (releases before 2026-05)\n",
			host_label);
		goto out;
	}
	unsigned n_gpus = (unsigned)config_int(cfg, "gpus");
	size_t n_faults = config_list_len(cfg, "inject");
	if (n_faults) {
		faults = calloc(n_faults, sizeof(*faults));
		if (!faults) {
			status = CLI_EXIT_FAILURE;
			fprintf(stderr, "gpuhealth: out of memory\n");
			goto out;
		}
	}
	for (size_t i = 0; i < n_faults; i++)
		if (inject_parse(config_list_at(cfg, "inject", i), n_gpus, &faults[i], err,
				 sizeof(err)) != 0) {
			fprintf(stderr, "gpuhealth: %s\n", err);
			goto out;
		}
	char hostname[256] = "";
	const char *host_arg = config_str(cfg, "hostname");
	if (host_arg)
		snprintf(hostname, sizeof(hostname), "%s", host_arg);
	else if (gethostname(hostname, sizeof(hostname) - 1) != 0)
		snprintf(hostname, sizeof(hostname), "localhost");

	status = CLI_EXIT_FAILURE;
	struct sim_params sp = {
		.model = model,
		.n_gpus = n_gpus,
		.seed = (uint64_t)config_int(cfg, "seed"),
		.poll_interval = config_double(cfg, "poll-interval"),
		.faults = faults,
		.n_faults = n_faults,
	};
	int rc = sim_create(&sim, &sp);
	if (rc) {
		fprintf(stderr, "gpuhealth: cannot create the simulated fleet: %s\n", strerror(-rc));
		goto out;
	}
	const char *listen = config_str(cfg, "listen");
	struct exporter_params ep = {
		.listen = listen ? listen : ":9400",
		.speed = config_double(cfg, "speed"),
		.poll_interval = sp.poll_interval,
		.render = {.hostname = hostname,
			   .host_label = host_label,
			   .driver_version = model->driver_version,
			   .model_name = model->model_name},
	};
	rc = exporter_create(&ex, sim, &ep, err, sizeof(err));
	sim = NULL; /* owned by the exporter, even on failure */
	if (rc) {
		fprintf(stderr, "gpuhealth: %s\n", err);
		goto out;
	}

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = exporter_start(ex, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "gpuhealth: %s\n", err);
		if (rc == -EINVAL) /* --listen not understood: bad usage */
			status = CLI_EXIT_USAGE;
		goto out;
	}
	log_info("mock-dcgm: serving %u simulated %s GPUs on http://%s/metrics (seed %lld, speed "
		 "%g, poll interval %g s, %zu injected faults)",
		 n_gpus, model->name, exporter_address(ex), (long long)config_int(cfg, "seed"),
		 ep.speed, ep.poll_interval, n_faults);

	bool timed = config_is_set(cfg, "duration");
	double until = mono_s() + (timed ? config_double(cfg, "duration") : 0);
	while (!stop_requested && (!timed || mono_s() < until)) {
		struct timespec nap = {0, 50 * 1000 * 1000};
		nanosleep(&nap, NULL);
	}
	exporter_stop(ex);
	struct exporter_stats st;
	exporter_get_stats(ex, &st);
	log_info("mock-dcgm: stopped at simulated time %.0f s after %llu snapshots; %llu requests "
		 "(%llu /metrics, %llu gzip, %llu not found, %llu not allowed)",
		 st.sim_time, (unsigned long long)st.renders, (unsigned long long)st.requests,
		 (unsigned long long)st.metrics, (unsigned long long)st.gzip,
		 (unsigned long long)st.not_found, (unsigned long long)st.not_allowed);
	status = CLI_EXIT_OK;
out:
	exporter_destroy(ex);
	sim_destroy(sim);
	free(faults);
	return status;
}
