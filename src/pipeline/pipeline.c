#include "pipeline/pipeline.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "collect/collector_cmd.h"
#include "collect/discovery.h"
#include "collect/targets.h"
#include "core/errmsg.h"
#include "core/log.h"
#include "core/service.h"
#include "core/timeutil.h"
#include "health/scorer_cmd.h"
#include "nvml/nvml.h"
#include "pipeline/fleetdb.h"
#include "pipeline/mockbroker.h"
#include "pipeline/pipeline_int.h"
#include "sim/inject.h"
#include "sim/sim.h"

#define RATE_WINDOW_S   10.0 /* scrapes are seconds apart: a shorter window reads in steps */
#define FLUSH_TIMEOUT_S 5.0

/* The pipeline scrapes exporters (static or discovered targets) instead of simulating or
 * reading NVML. */
static bool scraping(const struct pipeline *p)
{
	return p->scrapes;
}

/* A stop asked of any pipeline: an http_sd request in flight gives up (one pipeline per
 * process: the console or --daemon). */
static atomic_bool sd_cancel;
static bool sd_cancelled(void)
{
	return atomic_load(&sd_cancel);
}

static const char *part_names[PP_COUNT] = {"simulator", "collector", "broker",
                                           "database",  "sink",      "scorer"};
static const char *state_names[] = {"off",    "starting", "running", "degraded",
                                    "failed", "stopped",  "stuck"};

const char *pipeline_part_name(enum pipeline_part p)
{
	return (unsigned)p < PP_COUNT ? part_names[p] : "?";
}

const char *pipeline_state_name(enum part_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

void pipeline_set_part(struct pipeline *p, enum pipeline_part part, enum part_state st,
                       const char *detail, const char *error)
{
	pthread_mutex_lock(&p->lock);
	struct pipeline_part_view *v = &p->parts[part];
	v->state = st;
	if (detail)
		snprintf(v->detail, sizeof(v->detail), "%s", detail);
	if (error && *error) {
		snprintf(v->last_error, sizeof(v->last_error), "%s", error);
		v->last_error_time = time_now();
	}
	pthread_mutex_unlock(&p->lock);
	if (st == PART_FAILED)
		log_error("%s: %s", part_names[part], error ? error : "failed");
	else if (st == PART_OFF && detail)
		log_info("%s: off: %s", part_names[part], detail);
	else if (st == PART_RUNNING && detail)
		log_info("%s: %s", part_names[part], detail);
}

void pipeline_stop_part(struct pipeline *p, enum pipeline_part part)
{
	pthread_mutex_lock(&p->lock);
	struct pipeline_part_view *v = &p->parts[part];
	if (v->state == PART_RUNNING || v->state == PART_DEGRADED || v->state == PART_STARTING ||
	    v->state == PART_STUCK)
		v->state = PART_STOPPED;
	pthread_mutex_unlock(&p->lock);
}

enum part_state pipeline_part_state(struct pipeline *p, enum pipeline_part part)
{
	pthread_mutex_lock(&p->lock);
	enum part_state s = p->parts[part].state;
	pthread_mutex_unlock(&p->lock);
	return s;
}

void pipeline_nap(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ create */

static int load_targets(const struct config *cfg, struct targets *out, char *err, size_t errlen)
{
	int rc = 0;
	for (size_t i = 0; i < config_list_len(cfg, "target"); i++) {
		const char *u = config_list_at(cfg, "target", i);
		if (!*u)
			continue;
		if ((rc = targets_add(out, u, "--target", err, errlen)) != 0)
			return rc;
	}
	const char *path = config_str(cfg, "targets-file");
	if (path) {
		struct targets file;
		targets_init(&file);
		rc = targets_load_file(&file, path, err, errlen);
		for (size_t i = 0; rc == 0 && i < file.n; i++)
			if (targets_find(out, file.urls[i]) < 0)
				rc = targets_add(out, file.urls[i], file.origins[i], err, errlen);
		targets_free(&file);
	}
	return rc;
}

int pipeline_create(struct pipeline **out, const struct config *cfg, char *err, size_t errlen)
{
	*out = NULL;
	int rc = -ENOMEM;
	struct pipeline *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&p->lock, NULL);
	targets_init(&p->tg);
	p->cfg = cfg;
	p->drain_s = 0.75; /* the console: q must exit within 2 s */
	p->db_rows = -1;
	p->stopped = true; /* until started */
	char who[96];

	if ((rc = load_targets(cfg, &p->tg, err, errlen)) != 0) {
		rc = rc == -ENOMEM ? rc : -EINVAL;
		goto fail;
	}
	/* discovery: the same options as the collector's; read once now, so the collector starts
	 * with what the sources list */
	atomic_store(&sd_cancel, false);
	if ((rc = collector_cmd_discovery(cfg, sd_cancelled, &p->disc, err, errlen)) != 0)
		goto fail;
	if (p->disc) {
		if (config_bool(cfg, "nvml")) {
			snprintf(err, errlen,
			         "--nvml reads this machine's GPUs; --file-sd, --http-sd and "
			         "--dns-sd find exporters to scrape: give one or the other");
			rc = -EINVAL;
			goto fail;
		}
		bool changed;
		discovery_poll(p->disc, time_mono(), true,
		               &changed); /* errors logged; lists kept */
	}
	if ((rc = collector_merge_targets(&p->tg, p->disc, &p->merged)) != 0)
		goto fail;
	p->scrapes = p->tg.n || p->disc;
	if (!scraping(p)) {
		const char *m = config_str(cfg, "model");
		if (!(p->model = sim_model_find(m))) {
			config_describe(cfg, "model", who, sizeof(who));
			snprintf(err, errlen, "%s '%s' is not a known GPU model; use one of: %s",
			         who, m ? m : "", sim_model_names());
			rc = -EINVAL;
			goto fail;
		}
		const char *hl = config_str(cfg, "host-label");
		if (strcmp(hl, "hostname") != 0 && strcmp(hl, "Hostname") != 0) {
			config_describe(cfg, "host-label", who, sizeof(who));
			snprintf(err, errlen, "%s '%s': use 'hostname' or 'Hostname'", who, hl);
			rc = -EINVAL;
			goto fail;
		}
		unsigned ngpus = (unsigned)config_int(cfg, "gpus");
		p->nfaults = config_list_len(cfg, "inject");
		if (p->nfaults && !(p->faults = calloc(p->nfaults, sizeof(*p->faults)))) {
			rc = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < p->nfaults; i++)
			if (inject_parse(config_list_at(cfg, "inject", i), ngpus, &p->faults[i],
			                 err, errlen) != 0) {
				rc = -EINVAL;
				goto fail;
			}
		const char *h = config_str(cfg, "hostname");
		if (h)
			snprintf(p->hostname, sizeof(p->hostname), "%s", h);
		else if (gethostname(p->hostname, sizeof(p->hostname) - 1) != 0)
			snprintf(p->hostname, sizeof(p->hostname), "localhost");
	}
	/* The consumers' properties leave room for fetch.wait.max.ms. The mock cluster is new on
	 * every run and each group joins it once, so its known trouble with a rejoin under the
	 * default session timeout does not arise. */
	p->props = config_list_items(cfg, "X", &p->nprops);
	p->cprops = config_list_array(cfg, "X", 1, &p->ncprops);
	if (!p->cprops) {
		rc = -ENOMEM;
		goto fail;
	}
	const char *db = config_str(cfg, "db");
	p->fleet_db = db != NULL;
	if (db)
		snprintf(p->conninfo, sizeof(p->conninfo), "%s", db);
	struct econ_inputs econ;
	struct scorer_options so;
	scorer_cmd_options(cfg, &so);
	econ = so.econ;
	struct fleet_opts fo = {
	    .interval_s = config_double(cfg, "interval"),
	    .horizon_h = so.horizon_h,
	    .econ = &econ,
	    .risk_level = so.risk_level,
	    .raise_after = so.raise_after,
	    .clear_after = so.clear_after,
	    .missing_intervals = so.missing_intervals,
	};
	if ((rc = fleet_create(&p->fleet, &fo)) != 0) {
		snprintf(err, errlen, "cannot create the fleet: %s", strerror(-rc));
		goto fail;
	}
	for (int i = 0; i < PP_COUNT; i++)
		p->parts[i].state = PART_OFF;
	*out = p; /* caller owns */
	return 0;
fail:
	pipeline_destroy(p);
	return errmsg_oom(rc, err, errlen, "the pipeline");
}

void pipeline_set_drain(struct pipeline *p, double seconds)
{
	p->drain_s = seconds;
}

void pipeline_set_table_from_db(struct pipeline *p, bool yes)
{
	atomic_store(&p->table_from_db, yes);
}

/* ------------------------------------------------------------------ parts */

/* Publishes the exporter's URL for the collector. */
static void set_sim_url(struct pipeline *p)
{
	const char *addr = exporter_address(p->ex);
	if (strncmp(addr, "0.0.0.0:", 8) == 0) /* --listen :PORT: scrape over loopback */
		snprintf(p->sim_url, sizeof(p->sim_url), "http://127.0.0.1:%s/metrics", addr + 8);
	else
		snprintf(p->sim_url, sizeof(p->sim_url), "http://%s/metrics", addr);
}

/* True when the user chose anything about the simulation: then the console simulates and does
 * not look for real GPUs first. */
static bool sim_requested(const struct config *cfg)
{
	if (config_bool(cfg, "simulate"))
		return true;
	static const char *const sim_opts[] = {"gpus", "model", "seed", "speed", "inject"};
	for (size_t i = 0; i < sizeof(sim_opts) / sizeof(sim_opts[0]); i++)
		if (config_is_set(cfg, sim_opts[i]))
			return true;
	return false;
}

/*
 * The local GPUs through NVML (nvml.h) behind the same exporter the simulator uses. With
 * --nvml a failure is the part's error; with no source asked for, a node without NVML falls
 * back to the simulator (*fallback set, the reason in why).
 */
/* The exporter's update thread: each local GPU's processes into the fleet (a GPU the fleet
 * does not know yet gets them at the next update, after its first event). */
static void procs_seen(void *ud, const char *uuid, const struct fleet_process *procs, int n)
{
	struct pipeline *p = ud;
	fleet_set_processes(p->fleet, uuid, procs, n);
}

int pipeline_run_part(struct pipeline *p, enum pipeline_part part, const char *failed, int made,
                      const struct service_ops *ops, void *obj, struct service **svc, char *err,
                      size_t errlen)
{
	int rc = made;
	*svc = NULL;
	if (rc) {
		if (obj)
			ops->destroy(obj);
	} else if ((rc = service_wrap(svc, ops, obj)) != 0) { /* obj destroyed */
		snprintf(err, errlen, "out of memory");
	} else if ((rc = service_start(*svc, err, errlen)) != 0) {
		service_destroy(*svc);
		*svc = NULL;
	}
	if (rc)
		pipeline_set_part(p, part, PART_FAILED, failed, err);
	return rc;
}

static int start_nvml(struct pipeline *p, bool asked, bool *fallback, char *why, size_t whylen)
{
	char err[512] = "", detail[192];
	const struct config *cfg = p->cfg;
	const char *listen = config_str(cfg, "listen");
	struct exporter_params ep = {
	    .listen = listen ? listen : "127.0.0.1:0",
	    .speed = 1.0,
	    .poll_interval = config_is_set(cfg, "poll-interval")
	                         ? config_double(cfg, "poll-interval")
	                         : config_double(cfg, "interval"),
	    .render = {.hostname = p->hostname, .host_label = config_str(cfg, "host-label")},
	    .http_threads = 2,
	};
	*fallback = false;
	pipeline_set_part(p, PP_SIM, PART_STARTING, "opening NVML", NULL);
	int rc = nvml_exporter_create(&p->ex, config_str(cfg, "nvml-library"), &ep, procs_seen, p,
	                              err, sizeof(err));
	if (rc && !asked) {
		*fallback = true;
		snprintf(why, whylen, "%s", err);
		return rc;
	}
	rc = pipeline_run_part(p, PP_SIM, "no GPUs: NVML not available", rc, &exporter_service_ops,
	                       p->ex, &p->ex_svc, err, sizeof(err));
	if (rc) {
		p->ex = NULL;
		return rc;
	}
	set_sim_url(p);
	snprintf(detail, sizeof(detail), "this node's GPUs (NVML) on %.150s", p->sim_url);
	pipeline_set_part(p, PP_SIM, PART_RUNNING, detail, NULL);
	return 0;
}

static int start_sim(struct pipeline *p)
{
	char err[512] = "", detail[192], why[512] = "";
	struct sim *sim = NULL;
	const struct config *cfg = p->cfg;
	bool asked = config_bool(cfg, "nvml"), fallback = false;
	if (asked || !sim_requested(cfg)) {
		int nrc = start_nvml(p, asked, &fallback, why, sizeof(why));
		if (!fallback)
			return nrc;
		if (p->fleet_db) {
			/* a viewer of the fleet's database must not put simulated GPUs into it */
			pthread_mutex_lock(&p->lock); /* pipeline_view reads it from the UI */
			p->viewer = true;
			pthread_mutex_unlock(&p->lock);
			pipeline_set_part(
			    p, PP_SIM, PART_OFF,
			    "read-only viewer (no local GPUs; --simulate to simulate and write)",
			    NULL);
			log_info(
			    "pipeline: no local GPUs (%s): a read-only viewer of the fleet "
			    "database; nothing is simulated or written (--simulate or --gpus N to "
			    "simulate)",
			    why);
			return 0;
		}
		log_info("pipeline: no real GPUs through NVML (%s); simulating GPUs instead", why);
	}
	pipeline_set_part(p, PP_SIM, PART_STARTING, "starting", NULL);
	struct sim_params sp = {
	    .model = p->model,
	    .n_gpus = (unsigned)config_int(cfg, "gpus"),
	    .seed = (uint64_t)config_int(cfg, "seed"),
	    .poll_interval = config_double(cfg, "poll-interval"),
	    .faults = p->faults,
	    .n_faults = p->nfaults,
	    .k8s = config_bool(cfg, "k8s"),
	};
	/* unless given, the simulator updates as often as it is scraped (a 1 s --interval shows
	 * 1 s of change per sample, not the same values ten times) */
	double every = config_double(cfg, "interval");
	if (!config_is_set(cfg, "poll-interval") && every < sp.poll_interval)
		sp.poll_interval = every;
	int rc = sim_create(&sim, &sp);
	if (rc) {
		snprintf(err, sizeof(err), "cannot create the simulated fleet: %s", strerror(-rc));
		pipeline_set_part(p, PP_SIM, PART_FAILED, "simulator not running", err);
		return rc;
	}
	const char *listen = config_str(cfg, "listen");
	struct exporter_params ep = {
	    .listen = listen ? listen : "127.0.0.1:0",
	    .speed = config_double(cfg, "speed"),
	    .poll_interval = sp.poll_interval,
	    .render = {.hostname = p->hostname,
	               .host_label = config_str(cfg, "host-label"),
	               .driver_version = p->model->driver_version,
	               .model_name = p->model->model_name,
	               .k8s = sp.k8s},
	    .http_threads = 2,
	};
	rc = exporter_create(&p->ex, sim, &ep, err, sizeof(err)); /* owns sim even on failure */
	rc = pipeline_run_part(p, PP_SIM, "simulator not running", rc, &exporter_service_ops, p->ex,
	                       &p->ex_svc, err, sizeof(err));
	if (rc) {
		p->ex = NULL;
		return rc;
	}
	set_sim_url(p);
	snprintf(detail, sizeof(detail), "%s%u simulated %.30s GPUs on %.120s",
	         fallback ? "no NVML: " : "", sp.n_gpus, p->model->name, p->sim_url);
	pipeline_set_part(p, PP_SIM, PART_RUNNING, detail, NULL);
	return 0;
}

static int start_broker(struct pipeline *p)
{
	char err[512] = "", detail[192];
	const char *b = config_str(p->cfg, "brokers");
	if (b) {
		snprintf(p->brokers, sizeof(p->brokers), "%s", b);
		snprintf(detail, sizeof(detail), "Kafka at %s", b);
		pipeline_set_part(p, PP_BROKER, PART_RUNNING, detail, NULL);
		return 0;
	}
	pipeline_set_part(p, PP_BROKER, PART_STARTING, "starting the in-process mock cluster",
	                  NULL);
	const char *topics[3] = {config_str(p->cfg, "topic"), config_str(p->cfg, "dlq-topic"),
	                         config_str(p->cfg, "alerts-topic")};
	if (mockbroker_create(&p->mb, topics, 3, err, sizeof(err)) != 0) {
		pipeline_set_part(p, PP_BROKER, PART_FAILED, "no broker", err);
		return -EIO;
	}
	/* The consumers' fetches wait for data at most 50 ms instead of librdkafka's 500: at a
	 * stop (q, a hangup) the sink and the scorer then take the last scrape's events from the
	 * in-process cluster, whose log dies with the process, within the short drain. */
	bool fetch_wait_set = false;
	for (size_t i = 0; i < p->nprops; i++)
		fetch_wait_set |= strncmp(p->props[i], "fetch.wait.max.ms=", 18) == 0;
	if (!fetch_wait_set && p->ncprops < p->nprops + 2)
		p->cprops[p->ncprops++] = "fetch.wait.max.ms=50"; /* a literal: borrowed for good */
	snprintf(p->brokers, sizeof(p->brokers), "%s", mockbroker_bootstraps(p->mb));
	snprintf(detail, sizeof(detail), "in-process mock cluster %.120s (%d partitions)",
	         p->brokers, MOCKBROKER_PARTITIONS);
	pipeline_set_part(p, PP_BROKER, PART_RUNNING, detail, NULL);
	return 0;
}

static void tap(const json_t *event, void *ud)
{
	struct pipeline *p = ud;
	fleet_ingest_event(p->fleet, event);
}

static int start_collector(struct pipeline *p)
{
	char err[512] = "", detail[192];
	const struct config *cfg = p->cfg;
	const char *sim_url[1] = {p->sim_url};
	const char *const *urls = scraping(p) ? p->merged.urls : sim_url;
	size_t n = scraping(p) ? p->merged.n : 1;
	if (!scraping(p) && !p->ex) {
		pipeline_set_part(p, PP_COLLECTOR, PART_FAILED, "nothing to scrape",
		                  "the simulator is not running and no --target was given");
		return -EIO;
	}
	if (!p->brokers[0]) {
		pipeline_set_part(p, PP_COLLECTOR, PART_FAILED, "no broker",
		                  "no Kafka broker to produce to");
		return -EIO;
	}
	struct collector_options o;
	collector_cmd_options(cfg, &o);
	o.targets = urls;
	o.ntargets = n;
	o.first_now = true; /* the console shows something at once */
	o.kafka.brokers = p->brokers;
	o.kafka.kafka_props = p->props;
	o.kafka.nkafka_props = p->nprops;
	/* the console must quit within 2 s even with the broker away */
	o.kafka.flush_timeout_s = p->drain_s < 1.0 ? 0.8 : FLUSH_TIMEOUT_S;
	o.kafka.buffer_max_bytes = (uint64_t)config_int(cfg, "buffer-max") << 20;
	o.kafka.max_event_bytes = p->mb ? MOCKBROKER_MAX_EVENT : 0;
	o.tap = tap;
	o.tap_ud = p;
	if (scraping(p))
		o.target_enrich = p->merged.en;
	if (p->disc && !o.threads) {
		/* discovery's list grows after the start: one thread per CPU, not per target now */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		o.threads = ncpu < 1                             ? 1
		            : ncpu > (long)COLLECTOR_THREADS_MAX ? COLLECTOR_THREADS_MAX
		                                                 : (unsigned)ncpu;
	}
	int rc = collector_create(&p->col, &o, err, sizeof(err));
	rc = pipeline_run_part(p, PP_COLLECTOR, "not running", rc, &collector_service_ops, p->col,
	                       &p->col_svc, err, sizeof(err));
	if (rc) {
		p->col = NULL;
		return rc;
	}
	snprintf(detail, sizeof(detail), "%zu target%s every %g s -> topic %s", n,
	         n == 1 ? "" : "s", o.interval_s, o.kafka.topic);
	pipeline_set_part(p, PP_COLLECTOR, PART_RUNNING, detail, NULL);
	return 0;
}

/* The discovery thread: files each second, the other sources when due, every source on a
 * SIGHUP (pipeline_reload, which re-reads the static targets here too); a changed list goes to
 * the collector. */
static void *sd_main(void *arg)
{
	struct pipeline *p = arg;
	double last = time_mono();
	while (!atomic_load(&p->sd_stop)) {
		pipeline_nap(0.1);
		double now = time_mono();
		bool force = atomic_exchange(&p->sd_force, false);
		if (!force && now - last < 1.0)
			continue;
		last = now;
		if (force) {
			struct targets tg;
			targets_init(&tg);
			char err[1024] = "";
			if (load_targets(p->cfg, &tg, err, sizeof(err)) != 0) {
				log_error(
				    "collector: SIGHUP: %s; keeping the static targets in use",
				    err);
				targets_free(&tg);
			} else {
				targets_free(&p->tg);
				p->tg = tg; /* ours now */
			}
		}
		bool changed = false;
		discovery_poll(p->disc, now, force, &changed);
		if (!changed && !force)
			continue;
		size_t before = p->merged.n;
		if (collector_merge_targets(&p->tg, p->disc, &p->merged) != 0 ||
		    collector_set_targets_enrich(p->col, p->merged.urls, p->merged.en,
		                                 p->merged.n) != 0) {
			log_error(
			    "collector: discovery: out of memory; keeping the targets in use");
			continue;
		}
		log_info("collector: discovery: %zu targets (were %zu; read and applied in %.3f s)",
		         p->merged.n, before, time_mono() - now);
		char detail[192];
		snprintf(detail, sizeof(detail), "%zu target%s (discovered) every %g s",
		         p->merged.n, p->merged.n == 1 ? "" : "s",
		         config_double(p->cfg, "interval"));
		pipeline_set_part(p, PP_COLLECTOR, pipeline_part_state(p, PP_COLLECTOR), detail,
		                  NULL);
	}
	return NULL;
}

static void start_discovery(struct pipeline *p)
{
	if (!p->disc || !p->col)
		return;
	int rc = pthread_create(&p->sd_thread, NULL, sd_main, p);
	if (rc) {
		log_error("collector: cannot start the discovery thread: %s; the targets found at "
		          "the start stay",
		          strerror(rc));
		return;
	}
	p->sd_started = true;
}

static void stop_discovery(struct pipeline *p)
{
	if (!p->sd_started)
		return;
	atomic_store(&p->sd_stop, true);
	atomic_store(&sd_cancel, true);
	pthread_join(p->sd_thread, NULL);
	p->sd_started = false;
}

/* ------------------------------------------------------------------ gate */

/* The gate's question (mockbroker.h): will no sink ever read the topic? */
static bool gate_no_sink(void *ud)
{
	struct pipeline *p = ud;
	pthread_mutex_lock(&p->lock);
	enum part_state db = p->parts[PP_DATABASE].state, sk = p->parts[PP_SINK].state;
	bool none = !p->sink && (db == PART_OFF || db == PART_FAILED || db == PART_STOPPED ||
	                         sk == PART_FAILED);
	pthread_mutex_unlock(&p->lock);
	return none;
}

/* With the in-process cluster: starts the gate's thread (the collector must be running). */
static void start_gate(struct pipeline *p)
{
	if (!p->mb || !p->col || !collector_producer(p->col))
		return;
	char err[512] = "";
	struct mockbroker_gate_params gp = {
	    .cfg = p->cfg,
	    .scraping = scraping(p),
	    .rate_window_s = RATE_WINDOW_S,
	    .col = p->col,
	    .no_sink = gate_no_sink,
	    .ud = p,
	};
	if (mockbroker_gate_start(p->mb, &gp, err, sizeof(err)) != 0)
		pipeline_set_part(p, PP_BROKER, PART_DEGRADED, NULL, err);
}

int pipeline_start(struct pipeline *p, char *err, size_t errlen)
{
	p->started = time_now();
	p->stopped = false;
	p->rate_t = time_mono();
	if (!scraping(p))
		start_sim(p);
	else
		pipeline_set_part(
		    p, PP_SIM, PART_OFF,
		    p->disc ? "scraping the discovered targets" : "scraping --target URLs", NULL);
	const char *mode;
	if (p->viewer) {
		static const char why[] = "read-only viewer: nothing to collect";
		pipeline_set_part(p, PP_BROKER, PART_OFF, why, NULL);
		pipeline_set_part(p, PP_COLLECTOR, PART_OFF, why, NULL);
		mode = "read-only viewer of the fleet database (no local GPUs; writes nothing)";
	} else {
		start_broker(p);
		start_collector(p);
		start_discovery(p);
		start_gate(p);
		mode = p->disc   ? "collecting the discovered exporters (writes their samples)"
		       : p->tg.n ? "collecting the --target exporters (writes their samples)"
		       : !p->ex  ? "collecting nothing (see the simulator's error)"
		       : sim_requested(p->cfg)
		           ? "simulating GPUs (writes simulated samples)"
		           : "collecting this node's GPUs (writes their samples)";
	}
	pthread_mutex_lock(&p->lock);
	snprintf(p->mode, sizeof(p->mode), "%s", mode);
	pthread_mutex_unlock(&p->lock);
	pipeline_db_start(p);
	if (pipeline_part_state(p, PP_COLLECTOR) == PART_FAILED) {
		pthread_mutex_lock(&p->lock);
		snprintf(err, errlen, "collector: %s", p->parts[PP_COLLECTOR].last_error);
		pthread_mutex_unlock(&p->lock);
		return -EIO;
	}
	return 0;
}

int pipeline_conninfo(struct pipeline *p, char *buf, size_t len)
{
	int rc = -EAGAIN;
	pthread_mutex_lock(&p->lock);
	enum part_state st = p->parts[PP_DATABASE].state;
	/* conninfo is written before the part is set running (under this lock) */
	if ((st == PART_RUNNING || st == PART_DEGRADED) && p->conninfo[0]) {
		snprintf(buf, len, "%s", p->conninfo);
		rc = 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

int pipeline_reload(struct pipeline *p)
{
	if (!p->col)
		return -ENODEV;
	if (p->disc) { /* the discovery thread reads every source and the static targets again */
		atomic_store(&p->sd_force, true);
		return 0;
	}
	if (!p->tg.n && !config_str(p->cfg, "targets-file")) {
		log_info("collector: SIGHUP: scraping the simulator; no --targets-file to re-read");
		return 0;
	}
	struct targets tg;
	targets_init(&tg);
	char err[1024] = "";
	int rc = load_targets(p->cfg, &tg, err, sizeof(err));
	if (rc == 0 && tg.n == 0) {
		snprintf(err, sizeof(err), "the new target list is empty");
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = collector_set_targets(p->col, (const char *const *)tg.urls, tg.n);
	if (rc) {
		log_error("collector: SIGHUP: %s; keeping the %zu targets in use",
		          err[0] ? err : strerror(-rc), p->tg.n);
		pipeline_set_part(p, PP_COLLECTOR, pipeline_part_state(p, PP_COLLECTOR), NULL,
		                  err[0] ? err : "reload failed");
		targets_free(&tg);
		return rc;
	}
	log_info("collector: SIGHUP: %zu targets (were %zu)", tg.n, p->tg.n);
	targets_free(&p->tg);
	p->tg = tg; /* ours now */
	return 0;
}

/* Lets the sink and the scorer catch up with the events the collector delivered (bounded by
 * drain_s): with the mock cluster every delivered event is consumed once by each group; with a
 * real broker, a lag of 0 says the same for topics other producers write too. */
static void drain(struct pipeline *p, uint64_t delivered)
{
	if ((!p->sink && !p->scorer) || delivered == 0)
		return;
	double until = time_mono() + p->drain_s, progress = time_mono();
	uint64_t seen = UINT64_MAX;
	struct sink_stats st;
	struct scorer_stats sc;
	while (time_mono() < until) {
		bool sink_done = true, scorer_done = true;
		uint64_t taken = 0;
		if (p->sink) {
			sink_stats(p->sink, &st);
			/* with the database away nothing more gets written: do not wait */
			sink_done = st.failed || !st.db_connected || st.paused ||
			            st.consumed >= delivered ||
			            (!p->mb && st.lag_total == 0 && st.consumed > 0);
		}
		if (p->scorer) {
			scorer_stats(p->scorer, &sc);
			scorer_done = sc.failed || !sc.db_connected || sc.consumed >= delivered;
		}
		if (sink_done && (scorer_done || !p->mb))
			break;
		taken = (p->sink ? st.consumed : 0) + (p->scorer ? sc.consumed : 0);
		if (taken != seen) {
			seen = taken;
			progress = time_mono();
		} else if (time_mono() - progress > 0.3) {
			break; /* nothing taken for 0.3 s (a consumer still joining its group): not
			        * catching up within the drain; what is left is counted at the stop
			        */
		}
		pipeline_nap(0.02);
	}
}

void pipeline_stop(struct pipeline *p)
{
	if (!p || p->stopped)
		return;
	p->stopped = true;
	uint64_t delivered = 0;
	stop_discovery(p); /* before the collector it hands targets to */
	if (p->col) {
		service_stop(p->col_svc, SERVICE_STOP_CLEAN); /* flushes to the broker */
		struct collector_stats cs;
		collector_stats(p->col, &cs);
		delivered = cs.producer.delivered;
		pipeline_stop_part(p, PP_COLLECTOR);
	}
	if (p->mb) /* after the collector's flush, which it may have let through */
		mockbroker_gate_stop(p->mb);
	atomic_store(&p->reader_stop, true);
	/* the db thread creates sink and scorer: wait until it is past that */
	while (p->db_thread_started && !atomic_load(&p->reader_done))
		pipeline_nap(0.01);
	drain(p, delivered);
	/* a private server that died, or a database the sink cannot reach now, takes no more
	 * batches: do not hold the stop up retrying (the batch stays in Kafka, uncommitted) */
	bool db_gone = p->pg && pipeline_part_state(p, PP_DATABASE) == PART_FAILED;
	if (p->sink && !db_gone) {
		struct sink_stats st;
		sink_stats(p->sink, &st);
		db_gone = !st.db_connected && st.db_errors > 0;
	}
	enum service_stop how = db_gone ? SERVICE_STOP_NOW : SERVICE_STOP_CLEAN;
	if (p->sink) {
		service_stop(p->sink_svc, how); /* clean: commits the open batch */
		pipeline_stop_part(p, PP_SINK);
	}
	if (p->scorer) {
		service_stop(p->scorer_svc, how);
		pipeline_stop_part(p, PP_SCORER);
	}
	atomic_store(&p->pg_stop, true);
	if (p->db_thread_started) {
		pthread_join(p->db_thread, NULL);
		p->db_thread_started = false;
	}
	/* the mock cluster goes in pipeline_destroy, after the Kafka handles that talk to it */
	pipeline_stop_part(p, PP_BROKER);
	log_debug("pipeline: stopping the simulator");
	if (p->ex) {
		service_stop(p->ex_svc, SERVICE_STOP_CLEAN);
		pipeline_stop_part(p, PP_SIM);
	}
	log_debug("pipeline: every part stopped");
}

/* Fold a service's own state into its part (called with p->lock held). */
static void fold(struct pipeline_part_view *v, bool failed, bool degraded, bool stuck,
                 const char *error)
{
	if (v->state != PART_RUNNING && v->state != PART_DEGRADED && v->state != PART_STUCK)
		return;
	if (error && *error && strcmp(v->last_error, error) != 0) {
		snprintf(v->last_error, sizeof(v->last_error), "%s", error);
		v->last_error_time = time_now();
	}
	v->state = failed     ? PART_FAILED
	           : stuck    ? PART_STUCK
	           : degraded ? PART_DEGRADED
	                      : PART_RUNNING;
}

void pipeline_view(struct pipeline *p, struct pipeline_view *out)
{
	memset(out, 0, sizeof(*out));
	out->now = time_now();
	out->started = p->started;
	if ((out->have_exporter = p->ex != NULL))
		exporter_get_stats(p->ex, &out->exporter);
	if ((out->have_collector = p->col != NULL)) {
		collector_stats(p->col, &out->collector);
		out->ntargets = collector_targets(p->col, out->targets, PIPELINE_MAX_TARGETS);
		if (out->ntargets > PIPELINE_MAX_TARGETS)
			out->ntargets = PIPELINE_MAX_TARGETS;
	}
	fleet_stats(p->fleet, &out->fleet);
	out->fleet_db = p->fleet_db;
	out->in_process_broker = p->mb != NULL;
	pthread_mutex_lock(&p->lock);
	out->read_only = p->viewer; /* both set under the lock by pipeline_start */
	snprintf(out->mode, sizeof(out->mode), "%s", p->mode);
	if ((out->have_sink = p->sink != NULL))
		sink_stats(p->sink, &out->sink);
	if ((out->have_scorer = p->scorer != NULL))
		scorer_stats(p->scorer, &out->scorer);
	if (out->have_collector) {
		const struct collector_stats *c = &out->collector;
		const char *e = c->last_error[0] ? c->last_error : c->producer.last_error;
		const char *te = NULL;
		for (size_t i = 0; i < out->ntargets; i++)
			if (out->targets[i].consecutive_failures && out->targets[i].last_error[0])
				te = out->targets[i].last_error;
		fold(&p->parts[PP_COLLECTOR], c->failed, c->targets_down > 0 || c->producer.fatal,
		     false, te ? te : e);
		uint64_t scrapes = c->scrapes_ok + c->scrapes_failed;
		double now = time_mono();
		if (now - p->rate_t >= RATE_WINDOW_S) {
			p->scrapes_per_s = (double)(scrapes - p->rate_scrapes) / (now - p->rate_t);
			p->events_per_s = (double)(c->events - p->rate_events) / (now - p->rate_t);
			for (size_t i = 0; i < out->ntargets; i++) {
				uint64_t n = out->targets[i].ok + out->targets[i].failed;
				/* a changed target set (SIGHUP) starts the per-target window over
				 */
				p->target_rate[i] =
				    p->rate_ntargets == out->ntargets && n >= p->rate_target[i]
				        ? (double)(n - p->rate_target[i]) / (now - p->rate_t)
				        : 0;
				p->rate_target[i] = n;
			}
			p->rate_ntargets = out->ntargets;
			p->rate_scrapes = scrapes;
			p->rate_events = c->events;
			p->rate_t = now;
		} else if (now - p->rate_t >= 2.0 && p->scrapes_per_s == 0) {
			/* the first window: a provisional figure rather than zero for 10 s */
			p->scrapes_per_s = (double)(scrapes - p->rate_scrapes) / (now - p->rate_t);
			p->events_per_s = (double)(c->events - p->rate_events) / (now - p->rate_t);
		}
	}
	if (out->have_sink)
		fold(&p->parts[PP_SINK], out->sink.failed,
		     !out->sink.db_connected && out->sink.last_error[0], out->sink.retrying,
		     out->sink.last_error);
	if (out->have_scorer)
		fold(&p->parts[PP_SCORER], out->scorer.failed,
		     !out->scorer.db_connected && out->scorer.last_error[0], false,
		     out->scorer.last_error);
	memcpy(out->parts, p->parts, sizeof(out->parts));
	out->scrapes_per_s = p->scrapes_per_s;
	memcpy(out->target_scrapes_per_s, p->target_rate, sizeof(out->target_scrapes_per_s));
	out->events_per_s = p->events_per_s;
	out->db_rows = p->db_rows;
	out->db_rows_estimate = p->db_rows_estimate;
	out->db_rows_per_s = p->db_rows_per_s;
	pthread_mutex_unlock(&p->lock);
	if (p->mb)
		mockbroker_gate_view(p->mb, &out->gate);
}

struct fleet *pipeline_fleet(struct pipeline *p)
{
	return p->fleet;
}

int pipeline_read_fleet_db(struct pg_conn *c, struct fleet *f, char *err, size_t errlen)
{
	return fleetdb_read(c, f, err, errlen);
}

int pipeline_read_fleet_keys(struct pg_conn *c, struct fleet *f, const char *const *keys, size_t n,
                             char *err, size_t errlen)
{
	return fleetdb_read_keys(c, f, keys, n, err, errlen);
}

void pipeline_destroy(struct pipeline *p)
{
	if (!p)
		return;
	pipeline_stop(p);
	log_debug("pipeline: stopped; destroying");
	service_destroy(p->col_svc); /* and the collector, the sink, the scorer behind them */
	log_debug("pipeline: collector destroyed");
	service_destroy(p->sink_svc);
	service_destroy(p->scorer_svc);
	log_debug("pipeline: sink and scorer destroyed");
	mockbroker_destroy(p->mb); /* the gate, then the cluster */
	log_debug("pipeline: mock cluster destroyed");
	service_destroy(p->ex_svc);
	log_debug("pipeline: exporter destroyed");
	fleet_destroy(p->fleet);
	stop_discovery(p);
	collector_merged_free(&p->merged);
	discovery_destroy(p->disc);
	targets_free(&p->tg);
	free(p->faults);
	free(p->cprops);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
