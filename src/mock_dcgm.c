#include "mock_dcgm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/service.h"
#include "exporter/exporter.h"
#include "nvml/nvml.h"
#include "sim/inject.h"
#include "sim/sim.h"

/* ------------------------------------------------------------------ `gpuhealth mock-dcgm` */

struct mock_cmd {
	struct exporter *ex;
	bool nvml, listen_flag;
	char who[96]; /* how --listen was given, for its errors */
	unsigned n_gpus;
	size_t n_faults;
	const char *model_name;
	long long seed;
	double speed, poll_interval;
};

static void cmd_destroy(void *impl)
{
	struct mock_cmd *m = impl;
	exporter_destroy(m->ex);
	free(m);
}

/* Says what is wrong on stderr itself (err stays ""): "gpuhealth: ..." as before the
 * services had one face. */
static int cmd_build(struct mock_cmd *m, const struct config *cfg)
{
	struct inject_spec *faults = NULL;
	struct sim *sim = NULL;
	char err[1024] = "";
	int rc = -EINVAL;
	bool failure = false; /* false: bad usage (exit status 2) */

	char who[96];
	const char *model_arg = config_str(cfg, "model");
	const struct sim_model *model = sim_model_find(model_arg);
	if (!model) {
		config_describe(cfg, "model", who, sizeof(who));
		fprintf(stderr, "gpuhealth: %s '%s' is not a known GPU model; use one of: %s\n",
		        who, model_arg ? model_arg : "", sim_model_names());
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
			rc = -ENOMEM;
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
		fprintf(stderr,
		        "gpuhealth: %s injects faults into simulated GPUs; it cannot be used "
		        "with --nvml\n",
		        who);
		goto out;
	}
	if (nvml) {
		static const char *const sim_only[] = {"gpus", "model", "seed", "speed", "k8s"};
		for (size_t i = 0; i < sizeof(sim_only) / sizeof(sim_only[0]); i++)
			if (config_is_set(cfg, sim_only[i])) {
				config_describe(cfg, sim_only[i], who, sizeof(who));
				log_warn("mock-dcgm: %s is for simulated GPUs; ignored with --nvml",
				         who);
			}
	}

	failure = true; /* from here on an error is a runtime failure (exit status 1) */
	struct sim_params sp = {
	    .model = model,
	    .n_gpus = n_gpus,
	    .seed = (uint64_t)config_int(cfg, "seed"),
	    .poll_interval = config_double(cfg, "poll-interval"),
	    .faults = faults,
	    .n_faults = n_faults,
	    .k8s = config_bool(cfg, "k8s"),
	};
	rc = nvml ? 0 : sim_create(&sim, &sp);
	if (rc) {
		fprintf(stderr, "gpuhealth: cannot create the simulated fleet: %s\n",
		        strerror(-rc));
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
	               .model_name = model->model_name,
	               .k8s = sp.k8s && !nvml},
	};
	if (nvml) {
		ep.render.driver_version = NULL; /* from NVML */
		ep.render.model_name = NULL;
		rc = nvml_exporter_create(&m->ex, config_str(cfg, "nvml-library"), &ep, NULL, NULL,
		                          err, sizeof(err));
		if (rc == -ENOENT || rc == -ENOSYS || rc == -ENODEV) {
			fprintf(stderr, "gpuhealth: --nvml: %s\n", err);
			goto out;
		}
	} else {
		rc = exporter_create(&m->ex, sim, &ep, err, sizeof(err));
	}
	sim = NULL; /* owned by the exporter, even on failure */
	config_describe(cfg, "listen", m->who, sizeof(m->who));
	m->listen_flag = strcmp(m->who, "--listen") == 0;
	if (rc) {
		fprintf(stderr, "gpuhealth: %s%s%s\n", m->listen_flag ? "" : m->who,
		        m->listen_flag ? "" : ": ", err);
		goto out;
	}
	m->nvml = nvml;
	m->n_gpus = n_gpus;
	m->n_faults = n_faults;
	m->model_name = model->name;
	m->seed = (long long)config_int(cfg, "seed");
	m->speed = ep.speed;
	m->poll_interval = ep.poll_interval;
out:
	sim_destroy(sim);
	free(faults);
	/* a runtime failure (the port in use, NVML gone) is exit status 1, bad usage 2 */
	if (rc && failure && rc == -EINVAL)
		rc = -EIO;
	return rc;
}

static int cmd_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct mock_cmd *m = calloc(1, sizeof(*m));
	if (!m) {
		fprintf(stderr, "gpuhealth: out of memory\n");
		return -ENOMEM;
	}
	int rc = cmd_build(m, cfg);
	if (rc) {
		cmd_destroy(m);
		return rc;
	}
	*impl = m;
	return 0;
}

static int cmd_start(void *impl, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	struct mock_cmd *m = impl;
	char serr[1024] = "";
	int rc = exporter_service_ops.start(m->ex, serr, sizeof(serr));
	if (rc) {
		fprintf(stderr, "gpuhealth: %s%s%s\n", m->listen_flag ? "" : m->who,
		        m->listen_flag ? "" : ": ", serr);
		return rc; /* -EINVAL: --listen not understood, bad usage */
	}
	if (m->nvml)
		log_info("mock-dcgm: serving this machine's GPUs (NVML) on http://%s/metrics, read "
		         "every %g s",
		         exporter_address(m->ex), m->poll_interval);
	else
		log_info("mock-dcgm: serving %u simulated %s GPUs on http://%s/metrics (seed %lld, "
		         "speed %g, poll interval %g s, %zu injected faults)",
		         m->n_gpus, m->model_name, exporter_address(m->ex), m->seed, m->speed,
		         m->poll_interval, m->n_faults);
	return 0;
}

static int cmd_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	struct mock_cmd *m = impl;
	return exporter_service_ops.stats_line(m->ex, final, uptime_s, buf, len);
}

static int cmd_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	struct mock_cmd *m = impl;
	return ready
	           ? snprintf(buf, len, "serving %u GPUs on %s", m->n_gpus, exporter_address(m->ex))
	           : 0;
}

static void cmd_stop(void *impl, enum service_stop how)
{
	struct mock_cmd *m = impl;
	exporter_service_ops.stop(m->ex, how);
}

const struct service_ops mock_dcgm_service_ops = {
    SERVICE_OPS_BASE("mock-dcgm", cmd),
    /* woken by a signal at once: a fleet of exporters on one machine (the benchmarks) would
     * otherwise spend ~4 % of a core waking each other 20 times a second */
    .tick_s = 0.5,
    .create = cmd_create,
    .stats_line = cmd_stats_line,
    .notify_text = cmd_notify_text,
};
