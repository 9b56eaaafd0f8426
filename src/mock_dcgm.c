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
#include "core/notify.h"
#include "exporter/exporter.h"
#include "nvml/nvml.h"
#include "core/signals.h"
#include "sim/inject.h"
#include "sim/sim.h"

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

	char who[96];
	const char *model_arg = config_str(cfg, "model");
	const struct sim_model *model = sim_model_find(model_arg);
	if (!model) {
		config_describe(cfg, "model", who, sizeof(who));
		fprintf(stderr, "gpuhealth: %s '%s' is not a known GPU model; use one of: %s\n", who,
			model_arg ? model_arg : "", sim_model_names());
		goto out;
	}
	const char *host_label = config_str(cfg, "host-label");
	if (strcmp(host_label, "hostname") != 0 && strcmp(host_label, "Hostname") != 0) {
		config_describe(cfg, "host-label", who, sizeof(who));
		fprintf(stderr,
			"gpuhealth: %s '%s': use 'hostname' (current dcgm-exporter) or "
			"'Hostname' (releases before 2026-05)\n",
			who, host_label);
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
			config_describe(cfg, "inject", who, sizeof(who));
			if (strcmp(who, "--inject") == 0)
				fprintf(stderr, "gpuhealth: %s\n", err);
			else /* say where the spec came from: the environment or the config file */
				fprintf(stderr, "gpuhealth: %s: %s\n", who, err);
			goto out;
		}
	char hostname[256] = "";
	const char *host_arg = config_str(cfg, "hostname");
	if (host_arg)
		snprintf(hostname, sizeof(hostname), "%s", host_arg);
	else if (gethostname(hostname, sizeof(hostname) - 1) != 0)
		snprintf(hostname, sizeof(hostname), "localhost");

	bool nvml = config_bool(cfg, "nvml");
	if (nvml && n_faults) {
		config_describe(cfg, "inject", who, sizeof(who));
		fprintf(stderr, "gpuhealth: %s injects faults into simulated GPUs; it cannot be used "
				"with --nvml\n", who);
		goto out;
	}
	if (nvml) {
		static const char *const sim_only[] = {"gpus", "model", "seed", "speed"};
		for (size_t i = 0; i < sizeof(sim_only) / sizeof(sim_only[0]); i++)
			if (config_is_set(cfg, sim_only[i])) {
				config_describe(cfg, sim_only[i], who, sizeof(who));
				log_warn("mock-dcgm: %s is for simulated GPUs; ignored with --nvml", who);
			}
	}

	status = CLI_EXIT_FAILURE;
	struct sim_params sp = {
		.model = model,
		.n_gpus = n_gpus,
		.seed = (uint64_t)config_int(cfg, "seed"),
		.poll_interval = config_double(cfg, "poll-interval"),
		.faults = faults,
		.n_faults = n_faults,
	};
	int rc = nvml ? 0 : sim_create(&sim, &sp);
	if (rc) {
		fprintf(stderr, "gpuhealth: cannot create the simulated fleet: %s\n", strerror(-rc));
		goto out;
	}
	const char *listen = config_str(cfg, "listen");
	struct exporter_params ep = {
		.listen = listen ? listen : ":9400",
		.speed = nvml ? 1.0 : config_double(cfg, "speed"),
		.poll_interval = sp.poll_interval,
		.render = {.hostname = hostname,
			   .host_label = host_label,
			   .driver_version = model->driver_version,
			   .model_name = model->model_name},
	};
	if (nvml) {
		ep.render.driver_version = NULL; /* from NVML */
		ep.render.model_name = NULL;
		rc = nvml_exporter_create(&ex, config_str(cfg, "nvml-library"), &ep, NULL, NULL,
		                          err, sizeof(err));
		if (rc == -ENOENT || rc == -ENOSYS || rc == -ENODEV) {
			fprintf(stderr, "gpuhealth: --nvml: %s\n", err);
			goto out;
		}
	} else {
		rc = exporter_create(&ex, sim, &ep, err, sizeof(err));
	}
	sim = NULL; /* owned by the exporter, even on failure */
	config_describe(cfg, "listen", who, sizeof(who));
	bool listen_flag = strcmp(who, "--listen") == 0;
	if (rc) {
		fprintf(stderr, "gpuhealth: %s%s%s\n", listen_flag ? "" : who, listen_flag ? "" : ": ",
			err);
		goto out;
	}

	signals_install(); /* SIGINT/SIGTERM stop; SIGHUP has nothing to reload here */

	rc = exporter_start(ex, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "gpuhealth: %s%s%s\n", listen_flag ? "" : who, listen_flag ? "" : ": ",
			err);
		if (rc == -EINVAL) /* --listen not understood: bad usage */
			status = CLI_EXIT_USAGE;
		goto out;
	}
	if (nvml)
		log_info("mock-dcgm: serving this machine's GPUs (NVML) on http://%s/metrics, read "
			 "every %g s",
			 exporter_address(ex), ep.poll_interval);
	else
		log_info("mock-dcgm: serving %u simulated %s GPUs on http://%s/metrics (seed %lld, speed "
		 "%g, poll interval %g s, %zu injected faults)",
		 n_gpus, model->name, exporter_address(ex), (long long)config_int(cfg, "seed"),
		 ep.speed, ep.poll_interval, n_faults);

	notify_status(true, "serving %u GPUs on %s", n_gpus, exporter_address(ex));
	bool timed = config_is_set(cfg, "duration");
	double until = mono_s() + (timed ? config_double(cfg, "duration") : 0);
	double every = config_double(cfg, "stats-interval"), last = mono_s();
	struct exporter_stats st;
	while (!signals_stop_requested() && (!timed || mono_s() < until)) {
		/* woken by a signal at once: a fleet of exporters on one machine (the benchmarks)
		 * would otherwise spend ~4 % of a core waking each other 20 times a second */
		double nap = timed && until - mono_s() < 0.5 ? until - mono_s() : 0.5;
		signals_wait(nap);
		signals_take_hup(); /* nothing to re-read */
		notify_watchdog_tick(mono_s());
		if (every > 0 && mono_s() - last >= every) {
			exporter_get_stats(ex, &st);
			log_info("mock-dcgm: simulated time %.0f s, %llu snapshots (last %.1f ms, %zu bytes, "
				 "%zu gzip); %llu requests (%llu /metrics, %llu gzip)",
				 st.sim_time, (unsigned long long)st.renders, st.last_render_ms, st.body_bytes,
				 st.gzip_bytes, (unsigned long long)st.requests,
				 (unsigned long long)st.metrics, (unsigned long long)st.gzip);
			last = mono_s();
		}
	}
	notify_send("STOPPING=1");
	exporter_stop(ex);
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
