#include "pipeline/pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/kafka_conf.h"
#include "cli.h"
#include "collect/collector_cmd.h"
#include "collect/discovery.h"
#include "collect/targets.h"
#include "core/log.h"
#include "core/service.h"
#include "core/timeutil.h"
#include "health/scorer_cmd.h"
#include "mock_dcgm.h"
#include "nvml/nvml.h"
#include "pipeline/privpg.h"
#include "sim/inject.h"
#include "sink/sink_cmd.h"
#include "sim/sim.h"
#include "store/pg.h"

#define MOCK_PARTITIONS 8
#define READER_PERIOD_S 2.0
#define RATE_WINDOW_S 10.0 /* scrapes are seconds apart: a shorter window reads in steps */
#define EXACT_COUNT_MAX 1000000.0 /* count(*) below this estimate, else the estimate */
#define PG_START_TIMEOUT_S 30.0
#define PG_STOP_TIMEOUT_S 10.0
#define FLUSH_TIMEOUT_S 5.0
#define FLEET_DB_MAX_ROWS 65536
/* librdkafka's mock cluster (rdkafka_mock.c, 2.0.2 as in Debian 12 and later): each partition
 * log keeps at most this many bytes of record batches, or batches, and destroys its oldest
 * batches past either, committed by the consumers or not. Fixed inside librdkafka. */
#define MOCK_LOG_MAX_BYTES (5u << 20)
#define MOCK_LOG_MAX_SETS 100000
/* Hold new events above this fraction of either limit, and let them go again below the low one,
 * never more at a time than fits under the high one: a grant may be spent twice over before the
 * next look sees it (measured and granted concurrently), which still stays under the limit. */
#define GATE_HIGH 0.4
#define GATE_LOW 0.25
#define GATE_PERIOD_S 0.1
#define GATE_TIMEOUT_MS 2000
/* bytes a record may take in a batch besides its key and value (varint lengths, headers, the
 * batch's own 61 bytes shared by its records); compression only makes a batch smaller */
#define RECORD_OVERHEAD 96
/* the largest event given to the in-process cluster: a batch over its 5 MiB would push every
 * other batch of its partition out */
#define MOCK_MAX_EVENT (1u << 20)

struct pipeline {
	const struct config *cfg; /* borrowed: outlives the pipeline */
	pthread_mutex_t lock;     /* guards parts, the rates, the reader's figures, sink/scorer */
	struct pipeline_part_view parts[PP_COUNT];
	double started;
	double drain_s;
	struct fleet *fleet; /* owned */

	/* simulator */
	const struct sim_model *model;
	struct inject_spec *faults; /* owned */
	size_t nfaults;
	char hostname[256];
	struct exporter *ex;    /* owned by ex_svc once started */
	struct service *ex_svc; /* its service face (core/service.h): started, stopped, destroyed */
	char sim_url[320];

	/* collector */
	struct targets
	    tg; /* the --target / --targets-file set (empty, no discovery: the simulator) */
	/* --file-sd, --http-sd, --dns-sd (NULL: none): polled by the discovery thread, which owns
	 * disc and merged once started (start_collector reads them before) */
	struct discovery *disc;
	struct collector_merged merged; /* tg + the discovered targets */
	bool scrapes; /* static or discovered targets (no simulator): set once at create, read by
	                 every thread, unlike tg, which the discovery thread replaces */
	pthread_t sd_thread;
	bool sd_started;
	atomic_bool sd_stop;
	atomic_bool sd_force; /* SIGHUP: every source again */
	const char **props; /* owned array of borrowed -X strings */
	size_t nprops;
	const char **cprops; /* consumers: props + mock settings */
	size_t ncprops;
	struct collector *col; /* owned by col_svc once started */
	struct service *col_svc;

	/* broker */
	rd_kafka_t *mock_rk;   /* owned: holds the mock cluster */
	rd_kafka_mock_cluster_t *mock;
	char brokers[512];

	/* the in-process cluster's gate (see pipeline.h) */
	rd_kafka_t *gate_rk; /* owned: a consumer handle that only reads the sink's committed offsets */
	pthread_t gate_thread;
	bool gate_started;
	atomic_bool gate_stop;
	int64_t lost_upto[MOCK_PARTITIONS]; /* gate thread: offsets below are counted as lost */
	int64_t last_hi[MOCK_PARTITIONS];   /* gate thread: the log ends seen (they only grow) */
	double gate_logged;                 /* gate thread: time_mono() of the last hold logged */
	bool gate_said_held;                /* gate thread: that hold's release not logged yet */
	struct pipeline_gate_view gate;     /* under lock */

	/* database */
	bool fleet_db; /* --db given: read every host's GPUs back */
	atomic_bool table_from_db; /* pipeline_set_table_from_db */
	bool viewer;   /* --db, no local GPUs, no simulation asked: read-only, nothing started
			  that writes (issue #25) */
	char mode[160]; /* what this console does, for the pipeline screen */
	bool want_db;
	char bindir[4096];
	char state_dir[4096];
	char conninfo[4096];
	struct privpg *pg;   /* owned by the db thread until it ends */
	struct sink *sink;   /* owned by sink_svc; created by the db thread */
	struct scorer *scorer; /* owned by scorer_svc; created by the db thread */
	struct service *sink_svc, *scorer_svc;
	pthread_t db_thread;
	bool db_thread_started;
	atomic_bool reader_stop; /* leave the reader loop */
	atomic_bool pg_stop;     /* stop the private server and end the thread */
	atomic_bool reader_done;

	/* figures */
	int64_t db_rows;
	bool db_rows_estimate;
	double db_rows_per_s;
	double rate_t;
	uint64_t rate_scrapes, rate_events;
	double scrapes_per_s, events_per_s;
	size_t rate_ntargets;
	uint64_t rate_target[PIPELINE_MAX_TARGETS];
	double target_rate[PIPELINE_MAX_TARGETS];

	bool stopped;
};

static void nap(double s);

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

static void set_part(struct pipeline *p, enum pipeline_part part, enum part_state st,
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

/* A part that ran is now stopped; one that failed or was off keeps its state and error. */
static void stop_part(struct pipeline *p, enum pipeline_part part)
{
	pthread_mutex_lock(&p->lock);
	struct pipeline_part_view *v = &p->parts[part];
	if (v->state == PART_RUNNING || v->state == PART_DEGRADED || v->state == PART_STARTING ||
	    v->state == PART_STUCK)
		v->state = PART_STOPPED;
	pthread_mutex_unlock(&p->lock);
}

static enum part_state part_state(struct pipeline *p, enum pipeline_part part)
{
	pthread_mutex_lock(&p->lock);
	enum part_state s = p->parts[part].state;
	pthread_mutex_unlock(&p->lock);
	return s;
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
			snprintf(err, errlen, "%s '%s' is not a known GPU model; use one of: %s", who,
				 m ? m : "", sim_model_names());
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
			if (inject_parse(config_list_at(cfg, "inject", i), ngpus, &p->faults[i], err,
					 errlen) != 0) {
				rc = -EINVAL;
				goto fail;
			}
		const char *h = config_str(cfg, "hostname");
		if (h)
			snprintf(p->hostname, sizeof(p->hostname), "%s", h);
		else if (gethostname(p->hostname, sizeof(p->hostname) - 1) != 0)
			snprintf(p->hostname, sizeof(p->hostname), "localhost");
	}
	p->nprops = config_list_len(cfg, "X");
	p->props = calloc(p->nprops + 1, sizeof(*p->props));
	p->cprops = calloc(p->nprops + 2, sizeof(*p->cprops));
	if (!p->props || !p->cprops) {
		rc = -ENOMEM;
		goto fail;
	}
	/* The mock cluster is new on every run and each group joins it once, so its known
	 * trouble with a rejoin under the default session timeout does not arise. */
	for (size_t i = 0; i < p->nprops; i++) {
		p->props[i] = config_list_at(cfg, "X", i);
		p->cprops[p->ncprops++] = p->props[i];
	}
	const char *db = config_str(cfg, "db");
	p->fleet_db = db != NULL;
	if (db)
		snprintf(p->conninfo, sizeof(p->conninfo), "%s", db);
	struct econ_inputs econ;
	struct scorer_options so;
	const char **sprops = NULL;
	if (scorer_cmd_options(cfg, &so, &sprops) != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	free(sprops);
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
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	pipeline_destroy(p);
	return rc;
}

void pipeline_set_drain(struct pipeline *p, double seconds) { p->drain_s = seconds; }

void pipeline_set_table_from_db(struct pipeline *p, bool yes) { atomic_store(&p->table_from_db, yes); }

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

/* Wraps obj in its service face (ops) and starts it through that; on failure both are destroyed
 * and *svc is NULL. Returns 0 or -errno with a message in err. */
static int run_service(struct service **svc, const struct service_ops *ops, void *obj, char *err,
                       size_t errlen)
{
	int rc = service_wrap(svc, ops, obj);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	rc = service_start(*svc, err, errlen);
	if (rc) {
		service_destroy(*svc);
		*svc = NULL;
	}
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
		.poll_interval = config_is_set(cfg, "poll-interval") ? config_double(cfg, "poll-interval")
								    : config_double(cfg, "interval"),
		.render = {.hostname = p->hostname, .host_label = config_str(cfg, "host-label")},
		.http_threads = 2,
	};
	*fallback = false;
	set_part(p, PP_SIM, PART_STARTING, "opening NVML", NULL);
	int rc = nvml_exporter_create(&p->ex, config_str(cfg, "nvml-library"), &ep, procs_seen, p,
	                              err, sizeof(err));
	if (rc && !asked) {
		*fallback = true;
		snprintf(why, whylen, "%s", err);
		return rc;
	}
	if (rc)
		goto fail;
	rc = run_service(&p->ex_svc, &exporter_service_ops, p->ex, err, sizeof(err));
	if (rc) {
		p->ex = NULL; /* destroyed with its service */
		goto fail;
	}
	set_sim_url(p);
	snprintf(detail, sizeof(detail), "this node's GPUs (NVML) on %.150s", p->sim_url);
	set_part(p, PP_SIM, PART_RUNNING, detail, NULL);
	return 0;
fail:
	exporter_destroy(p->ex);
	p->ex = NULL;
	set_part(p, PP_SIM, PART_FAILED, "no GPUs: NVML not available", err);
	return rc ? rc : -EIO;
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
			set_part(p, PP_SIM, PART_OFF,
				 "read-only viewer (no local GPUs; --simulate to simulate and write)",
				 NULL);
			log_info("pipeline: no local GPUs (%s): a read-only viewer of the fleet "
				 "database; nothing is simulated or written (--simulate or --gpus N to "
				 "simulate)",
				 why);
			return 0;
		}
		log_info("pipeline: no real GPUs through NVML (%s); simulating GPUs instead", why);
	}
	set_part(p, PP_SIM, PART_STARTING, "starting", NULL);
	struct sim_params sp = {
		.model = p->model,
		.n_gpus = (unsigned)config_int(cfg, "gpus"),
		.seed = (uint64_t)config_int(cfg, "seed"),
		.poll_interval = config_double(cfg, "poll-interval"),
		.faults = p->faults,
		.n_faults = p->nfaults,
	};
	/* unless given, the simulator updates as often as it is scraped (a 1 s --interval shows
	 * 1 s of change per sample, not the same values ten times) */
	double every = config_double(cfg, "interval");
	if (!config_is_set(cfg, "poll-interval") && every < sp.poll_interval)
		sp.poll_interval = every;
	int rc = sim_create(&sim, &sp);
	if (rc) {
		snprintf(err, sizeof(err), "cannot create the simulated fleet: %s", strerror(-rc));
		goto fail;
	}
	const char *listen = config_str(cfg, "listen");
	struct exporter_params ep = {
		.listen = listen ? listen : "127.0.0.1:0",
		.speed = config_double(cfg, "speed"),
		.poll_interval = sp.poll_interval,
		.render = {.hostname = p->hostname,
			   .host_label = config_str(cfg, "host-label"),
			   .driver_version = p->model->driver_version,
			   .model_name = p->model->model_name},
		.http_threads = 2,
	};
	rc = exporter_create(&p->ex, sim, &ep, err, sizeof(err));
	if (rc)
		goto fail; /* sim owned by the exporter even on failure */
	rc = run_service(&p->ex_svc, &exporter_service_ops, p->ex, err, sizeof(err));
	if (rc) {
		p->ex = NULL; /* destroyed with its service */
		goto fail;
	}
	set_sim_url(p);
	snprintf(detail, sizeof(detail), "%s%u simulated %.30s GPUs on %.120s", fallback ? "no NVML: " : "", sp.n_gpus,
		 p->model->name, p->sim_url);
	set_part(p, PP_SIM, PART_RUNNING, detail, NULL);
	return 0;
fail:
	exporter_destroy(p->ex);
	p->ex = NULL;
	set_part(p, PP_SIM, PART_FAILED, "simulator not running", err);
	return rc ? rc : -EIO;
}

static int start_broker(struct pipeline *p)
{
	char err[512] = "", detail[192];
	const char *b = config_str(p->cfg, "brokers");
	if (b) {
		snprintf(p->brokers, sizeof(p->brokers), "%s", b);
		snprintf(detail, sizeof(detail), "Kafka at %s", b);
		set_part(p, PP_BROKER, PART_RUNNING, detail, NULL);
		return 0;
	}
	set_part(p, PP_BROKER, PART_STARTING, "starting the in-process mock cluster", NULL);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* this handle only holds the cluster: it connects nowhere, so no bootstrap warning */
	if (rd_kafka_conf_set(conf, "client.id", "gpuhealth-mock", err, sizeof(err)) !=
		    RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	p->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!p->mock_rk) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	p->mock = rd_kafka_mock_cluster_new(p->mock_rk, 1);
	if (!p->mock) {
		snprintf(err, sizeof(err), "librdkafka could not create its mock cluster");
		goto fail;
	}
	/* The consumers' fetches wait for data at most 50 ms instead of librdkafka's 500: at a
	 * stop (q, a hangup) the sink and the scorer then take the last scrape's events from the
	 * in-process cluster, whose log dies with the process, within the short drain. */
	bool fetch_wait_set = false;
	for (size_t i = 0; i < p->nprops; i++)
		fetch_wait_set |= strncmp(p->props[i], "fetch.wait.max.ms=", 18) == 0;
	if (!fetch_wait_set && p->ncprops < p->nprops + 2)
		p->cprops[p->ncprops++] = "fetch.wait.max.ms=50"; /* a literal: borrowed for good */
	const char *topics[3] = {config_str(p->cfg, "topic"), config_str(p->cfg, "dlq-topic"),
				 config_str(p->cfg, "alerts-topic")};
	for (int i = 0; i < 3; i++) {
		if (!topics[i] || !*topics[i])
			continue;
		rd_kafka_resp_err_t e =
			rd_kafka_mock_topic_create(p->mock, topics[i], i == 0 ? MOCK_PARTITIONS : 1, 1);
		if (e) {
			snprintf(err, sizeof(err), "mock cluster: cannot create topic %s: %s",
				 topics[i], rd_kafka_err2str(e));
			goto fail;
		}
	}
	snprintf(p->brokers, sizeof(p->brokers), "%s", rd_kafka_mock_cluster_bootstraps(p->mock));
	snprintf(detail, sizeof(detail), "in-process mock cluster %.120s (%d partitions)", p->brokers,
		 MOCK_PARTITIONS);
	set_part(p, PP_BROKER, PART_RUNNING, detail, NULL);
	return 0;
fail:
	if (p->mock)
		rd_kafka_mock_cluster_destroy(p->mock);
	p->mock = NULL;
	if (p->mock_rk)
		rd_kafka_destroy(p->mock_rk);
	p->mock_rk = NULL;
	set_part(p, PP_BROKER, PART_FAILED, "no broker", err);
	return -EIO;
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
		set_part(p, PP_COLLECTOR, PART_FAILED, "nothing to scrape",
			 "the simulator is not running and no --target was given");
		return -EIO;
	}
	if (!p->brokers[0]) {
		set_part(p, PP_COLLECTOR, PART_FAILED, "no broker", "no Kafka broker to produce to");
		return -EIO;
	}
	double every = config_double(cfg, "stats-interval");
	struct collector_options o = {
		.targets = urls,
		.ntargets = n,
		.shard = cli_shard(cfg),
		.interval_s = config_double(cfg, "interval"),
		.timeout_s = config_double(cfg, "scrape-timeout"),
		.max_body = (size_t)config_int(cfg, "max-body"),
		.gzip = cli_scrape_gzip(cfg),
		.threads = (unsigned)config_int(cfg, "scrape-threads"),
		.first_now = true, /* the console shows something at once */
		.enrich = {.cluster = config_str(cfg, "cluster"),
			   .datacenter = config_str(cfg, "datacenter"),
			   .rack = config_str(cfg, "rack")},
		.kafka =
			{
				.brokers = p->brokers,
				.topic = config_str(cfg, "topic"),
				.kafka_props = p->props,
				.nkafka_props = p->nprops,
				.buffer_events = (size_t)config_int(cfg, "buffer-events"),
				.spool_dir = config_str(cfg, "spool-dir"),
				.spool_max_bytes = (uint64_t)config_int(cfg, "spool-max") << 20,
				/* the console must quit within 2 s even with the broker away */
				.flush_timeout_s = p->drain_s < 1.0 ? 0.8 : FLUSH_TIMEOUT_S,
				.drop_log_interval_s = every > 0 ? every : 10,
				.buffer_max_bytes = (uint64_t)config_int(cfg, "buffer-max") << 20,
				.max_event_bytes = p->mock ? MOCK_MAX_EVENT : 0,
			},
		.tap = tap,
		.tap_ud = p,
	};
	if (scraping(p))
		o.target_enrich = p->merged.en;
	if (p->disc && !o.threads) {
		/* discovery's list grows after the start: one thread per CPU, not per target now */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		o.threads = ncpu<1 ? 1 : ncpu>(long) COLLECTOR_THREADS_MAX ? COLLECTOR_THREADS_MAX
		                                                           : (unsigned)ncpu;
	}
	int rc = collector_create(&p->col, &o, err, sizeof(err));
	if (rc == 0) {
		rc = run_service(&p->col_svc, &collector_service_ops, p->col, err, sizeof(err));
		if (rc)
			p->col = NULL; /* destroyed with its service */
	}
	if (rc) {
		collector_destroy(p->col);
		p->col = NULL;
		set_part(p, PP_COLLECTOR, PART_FAILED, "not running", err);
		return rc;
	}
	snprintf(detail, sizeof(detail), "%zu target%s every %g s -> topic %s", n, n == 1 ? "" : "s",
		 o.interval_s, o.kafka.topic);
	set_part(p, PP_COLLECTOR, PART_RUNNING, detail, NULL);
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
		nap(0.1);
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
		set_part(p, PP_COLLECTOR, part_state(p, PP_COLLECTOR), detail, NULL);
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

static void start_sink(struct pipeline *p)
{
	char err[512] = "", detail[192];
	const struct config *cfg = p->cfg;
	struct sink_options o = {
		.brokers = p->brokers,
		.topic = config_str(cfg, "topic"),
		.group = config_str(cfg, "group"),
		.dlq_topic = config_str(cfg, "dlq-topic"),
		.kafka_props = p->cprops,
		.nkafka_props = p->ncprops,
		.conninfo = p->conninfo,
		.batch_size = (int)config_int(cfg, "batch-size"),
		.batch_timeout_s = config_double(cfg, "batch-timeout"),
		.max_future_s = config_double(cfg, "max-clock-skew"),
		.maintenance_interval_s = config_double(cfg, "maintenance-interval"),
	};
	struct sink *s = NULL;
	struct service *svc = NULL;
	int rc = sink_create(&s, &o, err, sizeof(err));
	if (rc == 0)
		rc = run_service(&svc, &sink_service_ops, s, err, sizeof(err));
	if (rc) {
		set_part(p, PP_SINK, PART_FAILED, "not running", err);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->sink = s; /* owned by p, through its service */
	p->sink_svc = svc;
	pthread_mutex_unlock(&p->lock);
	snprintf(detail, sizeof(detail), "topic %s -> gpu_metrics, group %s", o.topic, o.group);
	set_part(p, PP_SINK, PART_RUNNING, detail, NULL);
}

static void start_scorer(struct pipeline *p)
{
	char err[512] = "", detail[192];
	struct scorer_options o;
	const char **sprops = NULL;
	if (scorer_cmd_options(p->cfg, &o, &sprops) != 0) {
		set_part(p, PP_SCORER, PART_FAILED, "not running", "out of memory");
		return;
	}
	o.brokers = p->brokers;
	o.conninfo = p->conninfo;
	o.kafka_props = p->cprops;
	o.nkafka_props = p->ncprops;
	struct scorer *s = NULL;
	struct service *svc = NULL;
	int rc = scorer_create(&s, &o, err, sizeof(err));
	free(sprops);
	if (rc == 0)
		rc = run_service(&svc, &scorer_service_ops, s, err, sizeof(err));
	if (rc) {
		set_part(p, PP_SCORER, PART_FAILED, "not running", err);
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->scorer = s; /* owned by p, through its service */
	p->scorer_svc = svc;
	pthread_mutex_unlock(&p->lock);
	snprintf(detail, sizeof(detail), "group %s, health into the database", o.group);
	set_part(p, PP_SCORER, PART_RUNNING, detail, NULL);
}

/* ------------------------------------------------------------------ the database thread */

static void nap(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

static double getd(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NAN : strtod(PQgetvalue(r, row, col), NULL);
}

/* Rows in gpu_metrics: exact below EXACT_COUNT_MAX, else the planner's estimate. */
/* The last RATE_SAMPLES row counts: rows/s is the growth over them (about 16 s at the
 * reader's period), so batches committed every few seconds read as a steady rate, not as
 * bursts between zeros. */
#define RATE_SAMPLES 8
struct rate_window {
	double t[RATE_SAMPLES];
	int64_t v[RATE_SAMPLES];
	size_t n, next; /* samples held, slot of the next one */
};

/* Adds a sample; returns the rate over the window, or NAN with fewer than two samples. */
static double rate_add(struct rate_window *w, double t, int64_t v)
{
	w->t[w->next] = t;
	w->v[w->next] = v;
	w->next = (w->next + 1) % RATE_SAMPLES;
	if (w->n < RATE_SAMPLES)
		w->n++;
	size_t oldest = (w->next + RATE_SAMPLES - w->n) % RATE_SAMPLES;
	if (w->n < 2 || t <= w->t[oldest])
		return NAN;
	return (double)(v - w->v[oldest]) / (t - w->t[oldest]);
}

static void count_rows(struct pipeline *p, PGconn *c, struct rate_window *win)
{
	double est = NAN;
	PGresult *r = PQexecParams(
		c,
		"SELECT coalesce((SELECT sum(greatest(c.reltuples, 0)) FROM pg_inherits i "
		"JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass($1)), "
		"(SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass($1)))",
		1, NULL, (const char *const[]){"gpu_metrics"}, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		est = getd(r, 0, 0);
	PQclear(r);
	int64_t rows = -1;
	bool estimate = false;
	if (!isnan(est) && est >= EXACT_COUNT_MAX) {
		rows = (int64_t)est;
		estimate = true;
	} else {
		r = PQexecParams(c, "SELECT count(*) FROM gpu_metrics", 0, NULL, NULL, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
			rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
	}
	double rate = rows >= 0 ? rate_add(win, time_mono(), rows) : NAN;
	pthread_mutex_lock(&p->lock);
	p->db_rows = rows;
	p->db_rows_estimate = estimate;
	if (!isnan(rate))
		p->db_rows_per_s = rate;
	pthread_mutex_unlock(&p->lock);
}

static const struct {
	enum hs_field f;
	int col;
} fleet_cols[] = {
	{HS_GPU_TEMP, 5},	{HS_MEMORY_TEMP, 6},	 {HS_SLOWDOWN_TEMP, 7},
	{HS_SHUTDOWN_TEMP, 8},	{HS_POWER, 9},		 {HS_POWER_LIMIT, 10},
	{HS_GPU_UTIL, 11},	{HS_PCIE_REPLAY, 12},	 {HS_XID, 13},
	{HS_SBE_VOL, 14},	{HS_DBE_VOL, 15},	 {HS_SBE_AGG, 16},
	{HS_DBE_AGG, 17},	{HS_UNCORR_ROWS, 18},	 {HS_CORR_ROWS, 19},
	{HS_REMAP_FAILURE, 20}, {HS_REMAP_PENDING, 21},	 {HS_CLOCK_REASONS, 22},
	{HS_POWER_VIOLATION, 23}, {HS_THERMAL_VIOLATION, 24},
};

static enum health_status status_of(const char *s)
{
	return strcmp(s, "fail") == 0 ? HEALTH_FAIL : strcmp(s, "warn") == 0 ? HEALTH_WARN : HEALTH_PASS;
}

static enum health_action action_of(const char *s)
{
	for (int a = 0; a < ACT_COUNT; a++)
		if (strcmp(s, health_action_name((enum health_action)a)) == 0)
			return (enum health_action)a;
	return ACT_KEEP;
}

static void reasons_of(const char *text, struct health_result *h)
{
	json_t *a = json_loads(text, 0, NULL);
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x)
	{
		if (h->nreasons >= HEALTH_MAX_REASONS)
			break;
		struct health_reason *r = &h->reasons[h->nreasons++];
		const char *code = json_string_value(json_object_get(x, "code"));
		const char *t = json_string_value(json_object_get(x, "text"));
		const char *sev = json_string_value(json_object_get(x, "severity"));
		const char *rem = json_string_value(json_object_get(x, "remedy"));
		const char *comp = json_string_value(json_object_get(x, "component"));
		r->comp = HC_THERMAL;
		for (int c = 0; comp && c < HC_COUNT; c++)
			if (strcmp(comp, health_component_name((enum health_component)c)) == 0)
				r->comp = (enum health_component)c;
		snprintf(r->code, sizeof(r->code), "%s", code ? code : "?");
		snprintf(r->text, sizeof(r->text), "%s", t ? t : "");
		r->sev = sev ? status_of(sev) : HEALTH_PASS;
		r->remedy = rem ? action_of(rem) : ACT_KEEP;
		r->event = json_is_true(json_object_get(x, "event"));
	}
	json_decref(a);
}

/* Every host's newest sample and health from a fleet database. */
/* Each GPU's current workload: its newest gpu_workloads row (schema 013; nothing to read from
 * an older database). */
static int read_workloads(struct pg_conn *c, struct fleet *f, const char *lim, char *err,
                          size_t errlen)
{
	PGresult *r = PQexecParams(
	    c,
	    "SELECT m.gpu_key, w.namespace, w.pod, w.container FROM v_latest_gpu_metrics m "
	    "CROSS JOIN LATERAL (SELECT namespace, pod, container FROM gpu_workloads x "
	    "  WHERE x.gpu_key = m.gpu_key ORDER BY x.first_seen DESC LIMIT 1) w LIMIT $1::int",
	    1, NULL, (const char *const[]){lim}, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		/* an older schema: no such table */
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "42P01") == 0)
			goto out;
		snprintf(err, errlen, "reading the GPUs' workloads: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		rc = -EIO;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++)
		fleet_set_workload(f, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
		                   PQgetvalue(r, i, 3));
out:
	PQclear(r);
	return rc;
}

/* The columns after the identity (key, host, index, model): the newest sample m, health row h
 * and prediction pr of a GPU; ingest_rows() reads them by position. */
#define FLEET_VALUE_COLS                                                                          \
	"extract(epoch FROM m.time), m.gpu_temp, m.memory_temp, "                                  \
	"m.slowdown_temp, m.shutdown_temp, m.power_usage, m.power_limit, m.gpu_util, "             \
	"m.pcie_replay, m.xid, m.ecc_sbe_volatile, m.ecc_dbe_volatile, m.ecc_sbe_aggregate, "      \
	"m.ecc_dbe_aggregate, m.uncorrectable_remapped_rows, m.correctable_remapped_rows, "        \
	"m.row_remap_failure, m.row_remap_pending, m.clocks_event_reasons, m.power_violation, "    \
	"m.thermal_violation, h.score, h.status, h.reasons::text, extract(epoch FROM h.time), "    \
	"pr.probability, pr.recommendation, h.thermal, h.memory, h.power, h.interconnect, h.xid, " \
	"m.fb_used, m.fb_used + m.fb_free + coalesce(m.fb_reserved, 0), m.sm_clock, m.mem_clock, " \
	"pr.reasons -> 'costs' "

/* Ingests the rows of a fleet query (identity, then FLEET_VALUE_COLS) into f. */
static int ingest_rows(PGresult *r, struct fleet *f, char *err, size_t errlen)
{
	for (int i = 0; i < PQntuples(r); i++) {
		struct health_sample s;
		memset(&s, 0, sizeof(s));
		snprintf(s.key, sizeof(s.key), "%s", PQgetvalue(r, i, 0));
		snprintf(s.host, sizeof(s.host), "%s", PQgetvalue(r, i, 1));
		s.index = atoi(PQgetvalue(r, i, 2));
		snprintf(s.model, sizeof(s.model), "%s", PQgetvalue(r, i, 3));
		s.time = getd(r, i, 4);
		if (isnan(s.time))
			s.time = 0; /* a GPU without a sample (the table's rows): its identity only */
		for (size_t k = 0; k < sizeof(fleet_cols) / sizeof(fleet_cols[0]); k++) {
			double v = getd(r, i, fleet_cols[k].col);
			if (!isnan(v))
				health_sample_set(&s, fleet_cols[k].f, v);
		}
		bool have = !PQgetisnull(r, i, 25);
		struct health_result h;
		memset(&h, 0, sizeof(h));
		if (have) {
			snprintf(h.key, sizeof(h.key), "%s", s.key);
			snprintf(h.host, sizeof(h.host), "%s", s.host);
			h.score = atoi(PQgetvalue(r, i, 25));
			h.status = status_of(PQgetvalue(r, i, 26));
			if (!PQgetisnull(r, i, 27))
				reasons_of(PQgetvalue(r, i, 27), &h);
			h.time = getd(r, i, 28);
			for (int k = 0; k < HC_COUNT; k++)
				h.comp[k] = PQgetisnull(r, i, 31 + k) ? 100 : atoi(PQgetvalue(r, i, 31 + k));
			h.trends.temp_margin_c = NAN;
		}
		double pf = getd(r, i, 29);
		enum health_action act =
			PQgetisnull(r, i, 30) ? ACT_KEEP : action_of(PQgetvalue(r, i, 30));
		if (fleet_ingest_health(f, &s, have, &h, act, pf) != 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		fleet_set_extra(f, s.key, getd(r, i, 36), getd(r, i, 37), getd(r, i, 38),
				getd(r, i, 39));
		if (!PQgetisnull(r, i, 40)) { /* {"keep": 75.0, "drain": ...} */
			json_t *cj = json_loads(PQgetvalue(r, i, 40), 0, NULL);
			double cost[ACT_COUNT];
			for (int a = 0; a < ACT_COUNT; a++) {
				json_t *v = json_object_get(cj, health_action_name((enum health_action)a));
				cost[a] = json_is_number(v) ? json_number_value(v) : NAN;
			}
			fleet_set_costs(f, s.key, cost);
			json_decref(cj);
		}
	}
	return 0;
}

int pipeline_read_fleet_db(struct pg_conn *c, struct fleet *f, char *err, size_t errlen)
{
	char lim[16];
	snprintf(lim, sizeof(lim), "%d", FLEET_DB_MAX_ROWS);
	PGresult *r = PQexecParams(
		c,
		"SELECT m.gpu_key, coalesce(m.hostname, ''), coalesce(m.gpu_index, -1), "
		"coalesce(m.model, ''), " FLEET_VALUE_COLS
		"FROM v_latest_gpu_metrics m "
		"LEFT JOIN v_latest_health h ON h.gpu_key = m.gpu_key "
		"LEFT JOIN LATERAL (SELECT probability, recommendation, reasons FROM gpu_failure_predictions f "
		"  WHERE f.gpu_key = m.gpu_key ORDER BY f.time DESC LIMIT 1) pr ON true "
		"LIMIT $1::int",
		1, NULL, (const char *const[]){lim}, NULL, NULL, 0);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading the fleet: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		rc = -EIO;
		goto out;
	}
	if ((rc = ingest_rows(r, f, err, errlen)) != 0)
		goto out;
	PQclear(r);
	r = NULL;
	rc = read_workloads(c, f, lim, err, errlen);
out:
	PQclear(r);
	return rc;
}

int pipeline_read_fleet_keys(struct pg_conn *c, struct fleet *f, const char *const *keys, size_t n,
			     char *err, size_t errlen)
{
	PGresult *r = NULL;
	int rc = 0;
	size_t len = 16;
	for (size_t i = 0; i < n; i++)
		len += 2 * strlen(keys[i]) + 3;
	char *lit = malloc(len);
	if (!lit) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = pg_text_array(keys, n, lit, len)) != 0) {
		snprintf(err, errlen, "the GPUs' keys do not fit");
		goto out;
	}
	/* the identity from gpus (a GPU without a sample still has one), the newest sample,
	 * health row and prediction of each key: three index probes a GPU */
	r = PQexecParams(
		c,
		"SELECT g.gpu_key, coalesce(m.hostname, g.hostname, ''), "
		"coalesce(m.gpu_index, g.gpu_index, -1), coalesce(g.model, ''), " FLEET_VALUE_COLS
		"FROM unnest($1::text[]) AS k(key) JOIN gpus g ON g.gpu_key = k.key "
		"LEFT JOIN LATERAL (SELECT * FROM gpu_metrics x WHERE x.gpu_key = g.gpu_key "
		"  ORDER BY x.time DESC LIMIT 1) m ON true "
		"LEFT JOIN LATERAL (SELECT * FROM gpu_health_scores x WHERE x.gpu_key = g.gpu_key "
		"  ORDER BY x.time DESC LIMIT 1) h ON true "
		"LEFT JOIN LATERAL (SELECT probability, recommendation, reasons "
		"  FROM gpu_failure_predictions x WHERE x.gpu_key = g.gpu_key "
		"  ORDER BY x.time DESC LIMIT 1) pr ON true",
		1, NULL, (const char *const[]){lit}, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "reading the GPUs: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		rc = -EIO;
		goto out;
	}
	if ((rc = ingest_rows(r, f, err, errlen)) != 0)
		goto out;
	PQclear(r);
	r = PQexecParams(
		c,
		"SELECT k.key, w.namespace, w.pod, w.container FROM unnest($1::text[]) AS k(key) "
		"CROSS JOIN LATERAL (SELECT namespace, pod, container FROM gpu_workloads x "
		"  WHERE x.gpu_key = k.key ORDER BY x.first_seen DESC LIMIT 1) w",
		1, NULL, (const char *const[]){lit}, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (state && strcmp(state, "42P01") == 0)
			goto out; /* an older schema: no workloads */
		snprintf(err, errlen, "reading the GPUs' workloads: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		rc = -EIO;
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++)
		fleet_set_workload(f, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2),
				   PQgetvalue(r, i, 3));
out:
	PQclear(r);
	free(lit);
	return rc;
}

static void db_error(struct pipeline *p, const char *e)
{
	pthread_mutex_lock(&p->lock);
	struct pipeline_part_view *v = &p->parts[PP_DATABASE];
	bool changed = strcmp(v->last_error, e) != 0;
	snprintf(v->last_error, sizeof(v->last_error), "%s", e);
	v->last_error_time = time_now();
	if (v->state == PART_RUNNING)
		v->state = PART_DEGRADED;
	pthread_mutex_unlock(&p->lock);
	if (changed)
		log_warn("database: %s", e);
}

static void reader_loop(struct pipeline *p)
{
	PGconn *c = NULL;
	double next = 0;
	struct rate_window win = {0};
	char err[512];
	while (!atomic_load(&p->reader_stop)) {
		if (p->pg && privpg_check(p->pg, err, sizeof(err)) != 0) {
			set_part(p, PP_DATABASE, PART_FAILED, NULL, err);
			break;
		}
		if (time_mono() < next) {
			nap(0.05);
			continue;
		}
		next = time_mono() + READER_PERIOD_S;
		if (!c || PQstatus(c) != CONNECTION_OK) {
			if (c)
				PQfinish(c);
			c = pg_connect(p->conninfo, "gpuhealth-console", err, sizeof(err));
			if (!c) {
				db_error(p, err);
				continue;
			}
			pg_exec(c, "SET statement_timeout = '1500ms'", err, sizeof(err));
			/* the reader only reads; a viewer's session cannot write even by mistake */
			if (p->viewer &&
			    pg_exec(c, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", err,
				    sizeof(err)) != 0) {
				db_error(p, err);
				PQfinish(c);
				c = NULL;
				continue;
			}
		}
		count_rows(p, c, &win);
		/* a read-only viewer whose console reads its fleet table from the database itself
		 * (src/viewdb, paged in SQL) leaves the fleet empty: every host's GPUs in memory
		 * every 2 s was 1.4 s a read and 1.1 GB at 200,704 GPUs */
		bool table_elsewhere = p->viewer && atomic_load(&p->table_from_db);
		int rc = p->fleet_db && !table_elsewhere
			     ? pipeline_read_fleet_db(c, p->fleet, err, sizeof(err))
			     : 0;
		if (rc)
			db_error(p, err);
		else if (part_state(p, PP_DATABASE) == PART_DEGRADED)
			set_part(p, PP_DATABASE, PART_RUNNING, NULL, NULL);
	}
	if (c)
		PQfinish(c);
}

static void *db_main(void *arg)
{
	struct pipeline *p = arg;
	char err[1024] = "";
	if (!p->fleet_db) {
		char detail[192];
		snprintf(detail, sizeof(detail), "starting private PostgreSQL in %.150s/pg", p->state_dir);
		set_part(p, PP_DATABASE, PART_STARTING, detail, NULL);
		struct privpg *pg = NULL;
		int rc = privpg_start(&pg, p->bindir, p->state_dir, PG_START_TIMEOUT_S,
				      &p->reader_stop, err, sizeof(err));
		if (rc == -ECANCELED) {
			set_part(p, PP_DATABASE, PART_STOPPED, "stopped while it started", NULL);
			goto wait;
		} else if (rc) {
			set_part(p, PP_DATABASE, PART_FAILED, "private PostgreSQL not running", err);
			set_part(p, PP_SINK, PART_OFF, "no database (see the database's error)", NULL);
			set_part(p, PP_SCORER, PART_OFF, "no database (see the database's error)", NULL);
			goto wait;
		}
		p->pg = pg; /* owned by this thread until it ends */
		snprintf(p->conninfo, sizeof(p->conninfo), "%s", privpg_conninfo(pg));
		set_part(p, PP_DATABASE, PART_RUNNING, privpg_describe(pg), NULL);
	} else {
		char red[sizeof(p->conninfo)], detail[192];
		pg_redact(p->conninfo, red, sizeof(red));
		snprintf(detail, sizeof(detail), "fleet database %.170s", red);
		set_part(p, PP_DATABASE, PART_RUNNING, detail, NULL);
	}
	if (p->viewer) {
		set_part(p, PP_SINK, PART_OFF, "read-only viewer: writes nothing", NULL);
		set_part(p, PP_SCORER, PART_OFF, "read-only viewer: writes nothing", NULL);
	} else if (!atomic_load(&p->reader_stop) && part_state(p, PP_BROKER) == PART_RUNNING) {
		start_sink(p);
		start_scorer(p);
	} else if (part_state(p, PP_BROKER) != PART_RUNNING) {
		set_part(p, PP_SINK, PART_OFF, "no broker", NULL);
		set_part(p, PP_SCORER, PART_OFF, "no broker", NULL);
	}
	reader_loop(p);
wait:
	atomic_store(&p->reader_done, true);
	/* the server is this thread's child (its parent-death signal follows this thread): stay
	 * until the sink and the scorer have committed, then stop it */
	while (!atomic_load(&p->pg_stop))
		nap(0.02);
	if (p->conninfo[0] && part_state(p, PP_DATABASE) == PART_RUNNING) {
		/* the last count, after the sink's final commit */
		PGconn *c = pg_connect(p->conninfo, "gpuhealth-console", err, sizeof(err));
		if (c) {
			struct rate_window once = {0}; /* one sample: the rate is left as it was */
			count_rows(p, c, &once);
			PQfinish(c);
		}
	}
	if (p->pg) {
		privpg_stop(p->pg, PG_STOP_TIMEOUT_S);
		privpg_destroy(p->pg);
		p->pg = NULL;
		stop_part(p, PP_DATABASE);
	}
	return NULL;
}

static void start_database(struct pipeline *p)
{
	if (!p->fleet_db) {
		if (privpg_find_bindir(p->bindir, sizeof(p->bindir)) != 0) {
			set_part(p, PP_DATABASE, PART_OFF,
				 "none: PostgreSQL server binaries not found (install postgresql, or "
				 "give --db)",
				 NULL);
			set_part(p, PP_SINK, PART_OFF, "no database", NULL);
			set_part(p, PP_SCORER, PART_OFF, "no database", NULL);
			return;
		}
		if (privpg_state_dir(p->state_dir, sizeof(p->state_dir)) != 0) {
			set_part(p, PP_DATABASE, PART_FAILED, "no state directory",
				 "neither XDG_STATE_HOME nor HOME is set; set one, or give --db");
			return;
		}
	}
	int rc = pthread_create(&p->db_thread, NULL, db_main, p);
	if (rc) {
		set_part(p, PP_DATABASE, PART_FAILED, NULL, "cannot start the database thread");
		return;
	}
	p->db_thread_started = true;
}

/* ------------------------------------------------------------------ gate */

/* The consumer handle that reads the sink group's committed offsets: it never subscribes, so
 * it never joins the group. Returns 0 or -EIO (message in err). */
static int gate_open(struct pipeline *p, char *err, size_t errlen)
{
	char gid[300];
	snprintf(gid, sizeof(gid), "group.id=%s", config_str(p->cfg, "group"));
	const char *props[] = {gid, "enable.auto.commit=false", "client.id=gpuhealth-gate",
			       "log_level=3"};
	rd_kafka_conf_t *conf = kafka_conf_new(KAFKA_CONSUMER, p->brokers, props,
					       sizeof(props) / sizeof(props[0]), err, errlen);
	if (!conf)
		return -EIO;
	char why[512];
	p->gate_rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!p->gate_rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(err, errlen, "cannot create the gate's Kafka handle: %.300s", why);
		return -EIO;
	}
	return 0;
}

/* The memory queue's bounds: --buffer-hours of the fleet's events (simulated GPUs per
 * interval, or the rate seen so far), at least --buffer-events; --buffer-max bytes. */
static void gate_buffer(struct pipeline *p, const struct collector_stats *cs, double elapsed,
			uint64_t *events, uint64_t *bytes)
{
	const struct config *cfg = p->cfg;
	double rate = 0, every = config_double(cfg, "interval");
	if (!scraping(p) && every > 0)
		rate = (double)config_int(cfg, "gpus") / every;
	if (elapsed >= RATE_WINDOW_S && (double)cs->events / elapsed > rate)
		rate = (double)cs->events / elapsed;
	double want = config_double(cfg, "buffer-hours") * 3600.0 * rate;
	uint64_t least = (uint64_t)config_int(cfg, "buffer-events");
	*events = want > (double)least ? (uint64_t)want : least;
	*bytes = (uint64_t)config_int(cfg, "buffer-max") << 20;
}

/* One look: the backlog of each partition, the gate's state, what the log forgot. */
static void gate_step(struct pipeline *p, struct producer *prod, double started)
{
	const char *topic = config_str(p->cfg, "topic");
	struct collector_stats cs;
	collector_stats(p->col, &cs);
	const struct producer_stats *ps = &cs.producer;
	char err[160] = "";
	int64_t most = 0, room = INT64_MAX, np[MOCK_PARTITIONS], ends = 0;
	uint64_t nb[MOCK_PARTITIONS];
	uint64_t most_bytes = 0, lost_now = 0;
	uint64_t bev, bby;
	gate_buffer(p, &cs, time_mono() - started, &bev, &bby);
	producer_set_buffer(prod, (size_t)bev, bby);

	rd_kafka_poll(p->gate_rk, 0); /* serves the handle's own events (errors, logs) */
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(MOCK_PARTITIONS);
	for (int i = 0; i < MOCK_PARTITIONS; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	rd_kafka_resp_err_t e = rd_kafka_committed(p->gate_rk, l, GATE_TIMEOUT_MS);
	if (e) {
		snprintf(err, sizeof(err), "reading the sink's committed offsets: %s", rd_kafka_err2str(e));
		goto out;
	}
	/* uncompressed bytes per record: compression only makes the log smaller */
	uint64_t seen = ps->delivered + ps->in_flight + ps->queued;
	double per = seen ? (double)(ps->delivered_bytes + ps->in_flight_bytes + ps->queued_bytes) /
				    (double)seen
			  : (double)(MOCK_MAX_EVENT / 16); /* none yet: a cautious guess */
	for (int i = 0; i < MOCK_PARTITIONS; i++) {
		int64_t lo = -1, hi = -1;
		e = rd_kafka_query_watermark_offsets(p->gate_rk, topic, i, &lo, &hi, GATE_TIMEOUT_MS);
		if (!e)
			e = l->elems[i].err;
		if (e) {
			snprintf(err, sizeof(err), "reading partition %d's offsets: %s", i,
				 rd_kafka_err2str(e));
			goto out;
		}
		/* a log end never moves back; a committed offset is never past it */
		if (hi < p->last_hi[i] || lo < 0 || lo > hi || l->elems[i].offset > hi) {
			snprintf(err, sizeof(err),
				 "partition %d: implausible offsets (log %" PRId64 "..%" PRId64
				 ", committed %" PRId64 ", end seen %" PRId64 ")",
				 i, lo, hi, l->elems[i].offset, p->last_hi[i]);
			goto out;
		}
		p->last_hi[i] = hi;
		/* nothing committed yet: the sink reads the new cluster's log from its start, 0 */
		int64_t base = l->elems[i].offset >= 0 ? l->elems[i].offset : 0;
		if (lo > base && lo > p->lost_upto[i]) {
			lost_now += (uint64_t)(lo - (base > p->lost_upto[i] ? base : p->lost_upto[i]));
			p->lost_upto[i] = lo;
		}
		int64_t n = hi > base ? hi - base : 0;
		/* what is in flight may all land in this partition */
		uint64_t bytes = (uint64_t)((double)n * (per + RECORD_OVERHEAD)) +
				 ps->in_flight_bytes + ps->in_flight * RECORD_OVERHEAD;
		n += (int64_t)ps->in_flight;
		if (n > most)
			most = n;
		if (bytes > most_bytes)
			most_bytes = bytes;
		np[i] = n;
		nb[i] = bytes;
		ends += hi;
	}
	/* What may still be handed over: for each partition its room under the high-water
	 * mark, divided by its share of the events so far (GPU keys keep their partition),
	 * raised by half and by 2 points for safety; until 2,000 events have gone, as if all
	 * went to one partition. The least of these. */
	{
		pthread_mutex_lock(&p->lock);
		int64_t he = p->gate.high_events;
		uint64_t hb = p->gate.high_bytes;
		pthread_mutex_unlock(&p->lock);
		for (int i = 0; i < MOCK_PARTITIONS; i++) {
			int64_t re = he - np[i];
			int64_t rb = nb[i] < hb ? (int64_t)((double)(hb - nb[i]) / (per + RECORD_OVERHEAD))
						: 0;
			int64_t r = re < rb ? re : rb;
			double share = 1.0;
			if (ends >= 2000) {
				share = 1.5 * (double)p->last_hi[i] / (double)ends + 0.02;
				share = share > 1.0 ? 1.0 : share;
			}
			r = r > 0 ? (int64_t)((double)r / share) : 0;
			if (r < room)
				room = r;
		}
	}
out:
	rd_kafka_topic_partition_list_destroy(l);
	pthread_mutex_lock(&p->lock);
	struct pipeline_gate_view *g = &p->gate;
	bool was = g->held;
	if (!err[0]) {
		g->backlog = most;
		g->backlog_bytes = most_bytes;
		if (!g->held && (most > g->high_events || most_bytes > g->high_bytes)) {
			g->held = true;
			g->holds++;
		} else if (g->held && most < (int64_t)((double)g->high_events * GATE_LOW / GATE_HIGH) &&
			   most_bytes < (uint64_t)((double)g->high_bytes * GATE_LOW / GATE_HIGH)) {
			g->held = false;
		}
	}
	g->lost += lost_now;
	g->buffer_events = bev;
	g->buffer_bytes = bby;
	bool newerr = strcmp(g->error, err) != 0;
	snprintf(g->error, sizeof(g->error), "%s", err);
	bool held = g->held;
	uint64_t lost = g->lost;
	pthread_mutex_unlock(&p->lock);
	/* unmeasured: hold what is not yet handed over (the last figures stand) */
	producer_set_credit(prod, held || err[0] ? 0 : room);
	/* while the sink catches up the gate closes and opens often: one line per 30 s */
	bool say = held && !was ? time_mono() - p->gate_logged >= 30.0
				: !held && was && p->gate_said_held;
	if (say) {
		p->gate_said_held = held;
		if (held)
			p->gate_logged = time_mono();
	}
	if (held && !was && !say)
		log_debug("broker: holding again (%" PRId64 " events behind)", most);
	else if (!held && was && !say)
		log_debug("broker: flowing again (%" PRId64 " events behind)", most);
	else if (held && !was)
		log_warn("broker: a partition of the in-process cluster holds %" PRId64
			 " events (~%.1f MiB) the sink has not committed: new events wait in the "
			 "collector's memory queue%s (up to %" PRIu64 " events, %" PRIu64
			 " MiB) until it catches up",
			 most, (double)most_bytes / 1048576.0,
			 config_str(p->cfg, "spool-dir") ? " and spool" : "", bev, bby >> 20);
	else if (!held && was && say)
		log_info("broker: the sink caught up (%" PRId64 " events behind): events flow again",
			 most);
	if (lost_now)
		log_error("broker: the in-process cluster's log forgot %" PRIu64
			  " events the sink had not committed (%" PRIu64 " in all): lost",
			  lost_now, lost);
	if (newerr && err[0])
		log_warn("broker: gate: %s", err);
}

static void *gate_main(void *arg)
{
	struct pipeline *p = arg;
	struct producer *prod = collector_producer(p->col);
	double started = time_mono();
	while (!atomic_load(&p->gate_stop)) {
		/* no sink will ever read the topic (no database, or the sink could not start): the
		 * events only feed the console's fleet, and holding them would only fill memory */
		pthread_mutex_lock(&p->lock);
		enum part_state db = p->parts[PP_DATABASE].state, sk = p->parts[PP_SINK].state;
		bool none = !p->sink && (db == PART_OFF || db == PART_FAILED || db == PART_STOPPED ||
					 sk == PART_FAILED);
		if (none) {
			p->gate.held = false;
			snprintf(p->gate.error, sizeof(p->gate.error), "no sink: nothing to keep for");
		}
		pthread_mutex_unlock(&p->lock);
		if (none)
			producer_set_credit(prod, -1);
		else
			gate_step(p, prod, started);
		nap(GATE_PERIOD_S);
	}
	return NULL;
}

/* With the in-process cluster: starts the gate's thread (the collector must be running). */
static void start_gate(struct pipeline *p)
{
	if (!p->mock || !p->col || !collector_producer(p->col))
		return;
	char err[512] = "";
	pthread_mutex_lock(&p->lock);
	p->gate.active = true;
	p->gate.high_events = (int64_t)(MOCK_LOG_MAX_SETS * GATE_HIGH);
	p->gate.high_bytes = (uint64_t)(MOCK_LOG_MAX_BYTES * GATE_HIGH);
	pthread_mutex_unlock(&p->lock);
	if (gate_open(p, err, sizeof(err)) != 0 ||
	    pthread_create(&p->gate_thread, NULL, gate_main, p) != 0) {
		/* without the gate the in-process log may forget events: say so loudly */
		pthread_mutex_lock(&p->lock);
		snprintf(p->gate.error, sizeof(p->gate.error), "no gate: %.140s",
			 err[0] ? err : "cannot start its thread");
		pthread_mutex_unlock(&p->lock);
		set_part(p, PP_BROKER, PART_DEGRADED, NULL, p->gate.error);
		return;
	}
	p->gate_started = true;
}

static void stop_gate(struct pipeline *p)
{
	if (!p->gate_started)
		return;
	atomic_store(&p->gate_stop, true);
	pthread_join(p->gate_thread, NULL);
	p->gate_started = false;
}

int pipeline_start(struct pipeline *p, char *err, size_t errlen)
{
	p->started = time_now();
	p->stopped = false;
	p->rate_t = time_mono();
	if (!scraping(p))
		start_sim(p);
	else
		set_part(p, PP_SIM, PART_OFF,
		         p->disc ? "scraping the discovered targets" : "scraping --target URLs",
		         NULL);
	const char *mode;
	if (p->viewer) {
		static const char why[] = "read-only viewer: nothing to collect";
		set_part(p, PP_BROKER, PART_OFF, why, NULL);
		set_part(p, PP_COLLECTOR, PART_OFF, why, NULL);
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
	start_database(p);
	if (part_state(p, PP_COLLECTOR) == PART_FAILED) {
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
		set_part(p, PP_COLLECTOR, part_state(p, PP_COLLECTOR), NULL, err[0] ? err : "reload failed");
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
				    (!p->mock && st.lag_total == 0 && st.consumed > 0);
		}
		if (p->scorer) {
			scorer_stats(p->scorer, &sc);
			scorer_done = sc.failed || !sc.db_connected || sc.consumed >= delivered;
		}
		if (sink_done && (scorer_done || !p->mock))
			break;
		taken = (p->sink ? st.consumed : 0) + (p->scorer ? sc.consumed : 0);
		if (taken != seen) {
			seen = taken;
			progress = time_mono();
		} else if (time_mono() - progress > 0.3) {
			break; /* nothing taken for 0.3 s (a consumer still joining its group): not
			        * catching up within the drain; what is left is counted at the stop */
		}
		nap(0.02);
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
		stop_part(p, PP_COLLECTOR);
	}
	stop_gate(p); /* after the collector's flush, which it may have let through */
	atomic_store(&p->reader_stop, true);
	/* the db thread creates sink and scorer: wait until it is past that */
	while (p->db_thread_started && !atomic_load(&p->reader_done))
		nap(0.01);
	drain(p, delivered);
	/* a private server that died, or a database the sink cannot reach now, takes no more
	 * batches: do not hold the stop up retrying (the batch stays in Kafka, uncommitted) */
	bool db_gone = p->pg && part_state(p, PP_DATABASE) == PART_FAILED;
	if (p->sink && !db_gone) {
		struct sink_stats st;
		sink_stats(p->sink, &st);
		db_gone = !st.db_connected && st.db_errors > 0;
	}
	enum service_stop how = db_gone ? SERVICE_STOP_NOW : SERVICE_STOP_CLEAN;
	if (p->sink) {
		service_stop(p->sink_svc, how); /* clean: commits the open batch */
		stop_part(p, PP_SINK);
	}
	if (p->scorer) {
		service_stop(p->scorer_svc, how);
		stop_part(p, PP_SCORER);
	}
	atomic_store(&p->pg_stop, true);
	if (p->db_thread_started) {
		pthread_join(p->db_thread, NULL);
		p->db_thread_started = false;
	}
	/* the mock cluster goes in pipeline_destroy, after the Kafka handles that talk to it */
	stop_part(p, PP_BROKER);
	log_debug("pipeline: stopping the simulator");
	if (p->ex) {
		service_stop(p->ex_svc, SERVICE_STOP_CLEAN);
		stop_part(p, PP_SIM);
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
	v->state = failed ? PART_FAILED : stuck ? PART_STUCK : degraded ? PART_DEGRADED : PART_RUNNING;
}

void pipeline_view(struct pipeline *p, struct pipeline_view *out)
{
	memset(out, 0, sizeof(*out));
	out->now = time_now();
	out->started = p->started;
	if (p->ex) {
		out->have_exporter = true;
		exporter_get_stats(p->ex, &out->exporter);
	}
	if (p->col) {
		out->have_collector = true;
		collector_stats(p->col, &out->collector);
		out->ntargets = collector_targets(p->col, out->targets, PIPELINE_MAX_TARGETS);
		if (out->ntargets > PIPELINE_MAX_TARGETS)
			out->ntargets = PIPELINE_MAX_TARGETS;
	}
	fleet_stats(p->fleet, &out->fleet);
	out->fleet_db = p->fleet_db;
	out->in_process_broker = p->mock != NULL;
	pthread_mutex_lock(&p->lock);
	out->read_only = p->viewer; /* both set under the lock by pipeline_start */
	snprintf(out->mode, sizeof(out->mode), "%s", p->mode);
	if (p->sink) {
		out->have_sink = true;
		sink_stats(p->sink, &out->sink);
	}
	if (p->scorer) {
		out->have_scorer = true;
		scorer_stats(p->scorer, &out->scorer);
	}
	if (out->have_collector) {
		const struct collector_stats *c = &out->collector;
		const char *e = c->last_error[0] ? c->last_error : c->producer.last_error;
		const char *te = NULL;
		for (size_t i = 0; i < out->ntargets; i++)
			if (out->targets[i].consecutive_failures && out->targets[i].last_error[0])
				te = out->targets[i].last_error;
		fold(&p->parts[PP_COLLECTOR], c->failed, c->targets_down > 0 || c->producer.fatal, false,
		     te ? te : e);
		uint64_t scrapes = c->scrapes_ok + c->scrapes_failed;
		double now = time_mono();
		if (now - p->rate_t >= RATE_WINDOW_S) {
			p->scrapes_per_s = (double)(scrapes - p->rate_scrapes) / (now - p->rate_t);
			p->events_per_s = (double)(c->events - p->rate_events) / (now - p->rate_t);
			for (size_t i = 0; i < out->ntargets; i++) {
				uint64_t n = out->targets[i].ok + out->targets[i].failed;
				/* a changed target set (SIGHUP) starts the per-target window over */
				p->target_rate[i] = p->rate_ntargets == out->ntargets && n >= p->rate_target[i]
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
		fold(&p->parts[PP_SINK], out->sink.failed, !out->sink.db_connected && out->sink.last_error[0],
		     out->sink.retrying, out->sink.last_error);
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
	out->gate = p->gate;
	pthread_mutex_unlock(&p->lock);
}

struct fleet *pipeline_fleet(struct pipeline *p) { return p->fleet; }

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
	stop_gate(p);
	if (p->gate_rk)
		rd_kafka_destroy(p->gate_rk);
	log_debug("pipeline: sink and scorer destroyed");
	if (p->mock)
		rd_kafka_mock_cluster_destroy(p->mock);
	if (p->mock_rk)
		rd_kafka_destroy(p->mock_rk);
	log_debug("pipeline: mock cluster destroyed");
	service_destroy(p->ex_svc);
	log_debug("pipeline: exporter destroyed");
	fleet_destroy(p->fleet);
	stop_discovery(p);
	collector_merged_free(&p->merged);
	discovery_destroy(p->disc);
	targets_free(&p->tg);
	free(p->faults);
	free(p->props);
	free(p->cprops);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
