#include "collect/collector_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "collect/collector.h"
#include "collect/discovery.h"
#include "collect/targets.h"
#include "core/config.h"
#include "core/metrics_http.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/signals.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "nvml/nvml.h"

#define FLUSH_TIMEOUT_S 10.0

/* --target / SCRAPE_TARGETS, then --targets-file. A URL in both is scraped once (warned). */
static int load_targets(const struct config *cfg, struct targets *out, char *err, size_t errlen)
{
	struct targets file;
	targets_init(&file);
	int rc = 0;
	const char *origin = config_source_of(cfg, "target") == CONFIG_SRC_ENV ? "SCRAPE_TARGETS"
									: "--target";
	if (config_source_of(cfg, "target") == CONFIG_SRC_FILE)
		origin = "target (config file)";
	for (size_t i = 0; i < config_list_len(cfg, "target"); i++) {
		const char *u = config_list_at(cfg, "target", i);
		if (!*u)
			continue; /* SCRAPE_TARGETS="a,,b" or a trailing comma */
		rc = targets_add(out, u, origin, err, errlen);
		if (rc)
			goto out;
	}
	const char *path = config_str(cfg, "targets-file");
	if (path) {
		rc = targets_load_file(&file, path, err, errlen);
		if (rc)
			goto out;
		for (size_t i = 0; i < file.n; i++) {
			if (targets_find(out, file.urls[i]) >= 0) {
				log_warn("collector: %s: %s is also given by %s; scraped once",
					 file.origins[i], file.urls[i], origin);
				continue;
			}
			rc = targets_add(out, file.urls[i], file.origins[i], err, errlen);
			if (rc)
				goto out;
		}
	}
out:
	targets_free(&file);
	return rc;
}

/* ------------------------------------------------------------------ own /metrics */

/* --metrics-listen (core/metrics_http.h): the collector's counters and per-target records */
static int render_metrics(void *ud, struct strbuf *out)
{
	return collector_render_metrics(ud, out);
}

/* ------------------------------------------------------------------ the command */

static void log_stats(const struct collector_stats *st, const char *prefix)
{
	char kafka[400] = "";
	if (st->kafka) {
		const struct producer_stats *p = &st->producer;
		snprintf(kafka, sizeof(kafka),
			 " produced=%" PRIu64 " delivered=%" PRIu64 " failed=%" PRIu64
			 " dropped=%" PRIu64 " retried=%" PRIu64 " spooled=%" PRIu64
			 " buffered=%" PRIu64 "/%" PRIu64 "/%" PRIu64 "%s%s",
			 p->produced, p->delivered, p->failed, p->dropped, p->retried, p->spooled,
			 p->in_flight, p->queued, p->spool_events, p->last_error[0] ? " kafka_error=" : "",
			 p->last_error);
	}
	char shard[64] = "";
	if (st->shard.count)
		snprintf(shard, sizeof(shard), " shard=%u/%u listed=%zu", st->shard.index,
			 st->shard.count, st->targets_listed);
	log_info("%s targets=%zu%s down=%zu scrapes_ok=%" PRIu64 " scrapes_failed=%" PRIu64
		 " scrapes_missed=%" PRIu64 " samples=%" PRIu64 " bad_lines=%" PRIu64
		 " unusable=%" PRIu64 " events=%" PRIu64 "%s",
		 prefix, st->targets, shard, st->targets_down, st->scrapes_ok, st->scrapes_failed,
		 st->scrapes_missed, st->samples, st->bad_lines, st->unusable, st->events, kafka);
}

/* --nvml: the local GPUs as the collector's local source, in dcgm-exporter's text. */
struct nvml_local {
	struct nvml *n;
	struct render_opts opts;
	char hostname[256];
	double t0;
};

static int nvml_local_read(void *ud, struct strbuf *body, char *err, size_t errlen)
{
	struct nvml_local *l = ud;
	return nvml_read_exposition(l->n, &l->opts, time_mono() - l->t0, body, err, errlen);
}

int collector_merge_targets(const struct targets *tg, struct discovery *d,
                            struct collector_merged *m)
{
	const char *const *du = NULL;
	const struct events_enrich *de = NULL;
	size_t dn = d ? discovery_targets(d, &du, &de) : 0;
	collector_merged_free(m);
	m->urls = calloc(tg->n + dn + 1, sizeof(*m->urls));
	m->en = calloc(tg->n + dn + 1, sizeof(*m->en));
	if (!m->urls || !m->en)
		return -ENOMEM;
	for (size_t i = 0; i < tg->n; i++)
		m->urls[m->n++] = tg->urls[i];
	for (size_t i = 0; i < dn; i++) {
		if (tg->n && targets_find(tg, du[i]) >= 0)
			continue;
		m->en[m->n] = de[i];
		m->urls[m->n++] = du[i];
	}
	return 0;
}

void collector_merged_free(struct collector_merged *m)
{
	free(m->urls);
	free(m->en);
	m->urls = NULL;
	m->en = NULL;
	m->n = 0;
}

int collector_cmd_discovery(const struct config *cfg, bool (*cancel)(void), struct discovery **out,
                            char *err, size_t errlen)
{
	*out = NULL;
	size_t nfsd = config_list_len(cfg, "file-sd"), nhsd = config_list_len(cfg, "http-sd"),
	       ndsd = config_list_len(cfg, "dns-sd");
	if (nfsd + nhsd + ndsd == 0)
		return 0;
	const char **lists[3] = {calloc(nfsd + 1, sizeof(char *)), calloc(nhsd + 1, sizeof(char *)),
	                         calloc(ndsd + 1, sizeof(char *))};
	const char *keys[3] = {"file-sd", "http-sd", "dns-sd"};
	size_t lens[3] = {nfsd, nhsd, ndsd};
	int rc = lists[0] && lists[1] && lists[2] ? 0 : -ENOMEM;
	for (int k = 0; !rc && k < 3; k++) {
		size_t w = 0;
		for (size_t i = 0; i < lens[k]; i++) {
			const char *v = config_list_at(cfg, keys[k], i);
			if (*v) /* SCRAPE_FILE_SD="a,,b" */
				lists[k][w++] = v;
		}
		lens[k] = w;
	}
	double refresh = config_double(cfg, "sd-refresh");
	struct discovery_options dopt = {
	    .files = lists[0],
	    .nfiles = lens[0],
	    .urls = lists[1],
	    .nurls = lens[1],
	    .names = lists[2],
	    .nnames = lens[2],
	    .dns_port = (int)config_int(cfg, "dns-sd-port"),
	    .dns_server = config_str(cfg, "dns-server"),
	    .refresh_s = refresh,
	    .http_timeout_s = refresh < 10 ? refresh : 10,
	    .cancel = cancel,
	};
	if (!rc)
		rc = discovery_create(out, &dopt, err, errlen);
	else
		snprintf(err, errlen, "out of memory");
	for (int k = 0; k < 3; k++)
		free(lists[k]);
	return rc;
}

/* t0: when the sources began to be read (the log says how long read + apply took) */
static void discovery_apply(struct collector *c, const struct targets *tg, struct discovery *d,
                            struct collector_merged *m, size_t *n_now, double t0)
{
	if (collector_merge_targets(tg, d, m) != 0) {
		log_error("collector: out of memory merging discovered targets; keeping the %zu in "
			  "use",
			  *n_now);
		return;
	}
	if (collector_set_targets_enrich(c, m->urls, m->en, m->n) != 0) {
		log_error("collector: out of memory; keeping the %zu targets in use", *n_now);
		return;
	}
	log_info("collector: discovery: %zu targets (were %zu; read and applied in %.3f s)", m->n,
		 *n_now,
		 time_mono() - t0);
	*n_now = m->n;
}

static void reload(const struct config *cfg, struct collector *c, size_t *n_now)
{
	struct targets tg;
	targets_init(&tg);
	char err[1024] = "";
	int rc = load_targets(cfg, &tg, err, sizeof(err));
	if (rc) {
		log_error("collector: SIGHUP: %s; keeping the %zu targets in use", err, *n_now);
	} else if (tg.n == 0) {
		log_error("collector: SIGHUP: the new target list is empty; keeping the %zu targets "
			  "in use",
			  *n_now);
	} else if (collector_set_targets(c, (const char *const *)tg.urls, tg.n) != 0) {
		log_error("collector: SIGHUP: out of memory; keeping the %zu targets in use", *n_now);
	} else {
		log_info("collector: SIGHUP: %zu targets (were %zu)", tg.n, *n_now);
		*n_now = tg.n;
	}
	targets_free(&tg);
}

int collector_cmd_run(struct config *cfg)
{
	int status = CLI_EXIT_USAGE;
	struct targets tg;
	struct collector *c = NULL;
	struct metrics_http *http = NULL;
	struct nvml_local nl = {0};
	struct discovery *disc = NULL;
	struct collector_merged m = {0};
	const char **props = NULL;
	char err[1024] = "";
	targets_init(&tg);
	log_set_timestamps(1);
	signals_install();

	int rc = load_targets(cfg, &tg, err, sizeof(err));
	if (rc) {
		log_error("%s", err);
		/* a file that is not a targets list (a directory, too big) is bad usage too */
		status = rc == -EINVAL || rc == -EEXIST || rc == -E2BIG || rc == -EISDIR ||
		                 rc == -EFBIG
		             ? CLI_EXIT_USAGE
		             : CLI_EXIT_FAILURE;
		goto out;
	}
	bool nvml = config_bool(cfg, "nvml");
	rc = collector_cmd_discovery(cfg, signals_stop_requested, &disc, err, sizeof(err));
	if (rc) {
		log_error("%s", rc == -ENOMEM ? "out of memory" : err);
		status = rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
		goto out;
	}
	if (disc) {
		bool changed;
		discovery_poll(disc, time_mono(), true, &changed); /* errors logged; lists kept */
	}
	if (collector_merge_targets(&tg, disc, &m) != 0) {
		status = CLI_EXIT_FAILURE;
		goto out;
	}
	if (nvml && m.n) {
		log_error("--nvml reads this machine's GPUs; --target and --targets-file scrape "
			  "exporters: give one or the other");
		goto out;
	}
	if (nvml && config_str(cfg, "shard")) {
		log_error("--shard splits a list of scrape targets among collectors; --nvml reads "
			  "this machine's GPUs and has none: drop --shard");
		goto out;
	}
	if (m.n == 0 && !nvml && !disc) {
		log_error("no scrape targets: give --target URL (SCRAPE_TARGETS, comma-separated), "
			  "--targets-file FILE (SCRAPE_TARGETS_FILE), --file-sd, --http-sd or "
			  "--dns-sd");
		goto out;
	}
	if (m.n == 0 && disc && config_bool(cfg, "once")) {
		log_error("no scrape targets: discovery found none (see above)");
		goto out;
	}
	bool to_stdout = config_str(cfg, "output") != NULL;
	if (!to_stdout && !config_str(cfg, "brokers")) {
		log_error("no Kafka brokers: give --brokers HOST:PORT (KAFKA_BOOTSTRAP_SERVERS), or "
			  "--output - to write the events to standard output");
		goto out;
	}
	size_t nprops = config_list_len(cfg, "X");
	props = calloc(nprops ? nprops : 1, sizeof(*props));
	if (!props) {
		status = CLI_EXIT_FAILURE;
		goto out;
	}
	for (size_t i = 0; i < nprops; i++)
		props[i] = config_list_at(cfg, "X", i);
	struct collector_local local = {"nvml", nvml_local_read, &nl};
	if (nvml) {
		rc = nvml_open(&nl.n, config_str(cfg, "nvml-library"), err, sizeof(err));
		if (rc) {
			log_error("--nvml: %s", err);
			status = CLI_EXIT_FAILURE;
			goto out;
		}
		if (gethostname(nl.hostname, sizeof(nl.hostname) - 1) != 0)
			snprintf(nl.hostname, sizeof(nl.hostname), "localhost");
		nl.opts = (struct render_opts){.hostname = nl.hostname, .host_label = "hostname"};
		nl.t0 = time_mono();
	}
	bool once = config_bool(cfg, "once");
	double every = config_double(cfg, "stats-interval");
	struct collector_options o = {
		.local = nvml ? &local : NULL,
		.targets = m.urls,
		.target_enrich = m.en,
		.ntargets = m.n,
		.shard = cli_shard(cfg),
		.interval_s = config_double(cfg, "interval"),
		.timeout_s = config_double(cfg, "scrape-timeout"),
		.max_body = (size_t)config_int(cfg, "max-body"),
		.gzip = cli_scrape_gzip(cfg),
		.threads = (unsigned)config_int(cfg, "scrape-threads"),
		.once = once,
		.enrich = {.cluster = config_str(cfg, "cluster"),
			   .datacenter = config_str(cfg, "datacenter"),
			   .rack = config_str(cfg, "rack")},
		.out = to_stdout ? stdout : NULL,
		.kafka =
			{
				.brokers = config_str(cfg, "brokers"),
				.topic = config_str(cfg, "topic"),
				.kafka_props = props,
				.nkafka_props = nprops,
				.buffer_events = (size_t)config_int(cfg, "buffer-events"),
				.spool_dir = config_str(cfg, "spool-dir"),
				.spool_max_bytes = (uint64_t)config_int(cfg, "spool-max") << 20,
				.flush_timeout_s = FLUSH_TIMEOUT_S,
				.drop_log_interval_s = every > 0 ? every : 10,
			},
	};
	if (disc && !o.threads) {
		/* discovery's list grows after the start: one thread per CPU, not per target now */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		o.threads = ncpu < 1 ? 1
		            : ncpu > (long)COLLECTOR_THREADS_MAX ? COLLECTOR_THREADS_MAX
		                                                 : (unsigned)ncpu;
	}
	rc = collector_create(&c, &o, err, sizeof(err));
	if (rc) {
		log_error("%s", err);
		status = rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
		goto out;
	}
	status = CLI_EXIT_FAILURE;
	const char *ml = config_str(cfg, "metrics-listen");
	if (ml) {
		rc = metrics_http_start(&http, ml, "collector", render_metrics, c, err, sizeof(err));
		if (rc) {
			log_error("%s", err);
			status = rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
			goto out;
		}
		log_info("collector: own metrics on http://%s/metrics", metrics_http_address(http));
	}
	rc = collector_start(c);
	if (rc) {
		log_error("cannot start the collector thread: %s", strerror(-rc));
		goto out;
	}
	if (nvml)
		log_info("collector: %zu local GPUs (NVML, driver %s) every %g s -> %s%s%s",
			 nvml_gpu_devices(nl.n), nvml_driver_version(nl.n), o.interval_s,
			 to_stdout ? "standard output" : "Kafka topic ", to_stdout ? "" : o.kafka.topic,
			 once ? ", once" : "");
	else
	{
		struct collector_stats st0;
		collector_stats(c, &st0);
		log_info("collector: %zu target%s every %g s (timeout %g s, %u scrape thread%s) -> "
			 "%s%s%s",
			 m.n, m.n == 1 ? "" : "s", o.interval_s, o.timeout_s, st0.threads,
			 st0.threads == 1 ? "" : "s",
			 to_stdout ? "standard output" : "Kafka topic ",
			 to_stdout ? "" : o.kafka.topic, once ? ", once" : "");
	}
	notify_status(true, "%zu targets every %g s", m.n, o.interval_s);
	size_t n_now = m.n;
	double start = time_mono(), last = start, last_sd = start;
	double duration = config_is_set(cfg, "duration") ? config_double(cfg, "duration") : -1;
	struct collector_stats st;
	status = CLI_EXIT_OK;
	for (;;) {
		struct timespec nap = {0, 50 * 1000000L};
		nanosleep(&nap, NULL);
		if (signals_stop_requested()) {
			log_info("collector: signal %d, stopping", signals_stop_signal());
			break;
		}
		double now = time_mono();
		notify_watchdog_tick(now);
		if (duration >= 0 && now - start >= duration)
			break;
		collector_stats(c, &st);
		if (st.failed) {
			log_error("collector: stopped: %s", st.last_error);
			status = CLI_EXIT_FAILURE;
			break;
		}
		if (st.done)
			break;
		bool hup = signals_take_hup();
		if (hup && disc) {
			/* the static targets again, then every discovery source */
			struct targets nt;
			targets_init(&nt);
			char herr[1024] = "";
			if (load_targets(cfg, &nt, herr, sizeof(herr)) != 0) {
				log_error("collector: SIGHUP: %s; keeping the static targets in use",
					  herr);
				targets_free(&nt);
			} else {
				targets_free(&tg);
				tg = nt; /* owned by tg */
			}
			bool changed;
			discovery_poll(disc, now, true, &changed);
			discovery_apply(c, &tg, disc, &m, &n_now, now);
			last_sd = now;
		} else if (hup) {
			if (nvml)
				log_info("collector: SIGHUP: --nvml has no targets to re-read");
			else if (config_str(cfg, "targets-file"))
				reload(cfg, c, &n_now);
			else
				log_info("collector: SIGHUP: no --targets-file to re-read");
		}
		if (disc && !once && now - last_sd >= 1.0) { /* files each second; the rest when due */
			bool changed = false;
			discovery_poll(disc, now, false, &changed);
			if (changed)
				discovery_apply(c, &tg, disc, &m, &n_now, now);
			last_sd = now;
		}
		if (every > 0 && now - last >= every) {
			log_stats(&st, "collector:");
			last = now;
		}
	}
	struct collector_stats before;
	collector_stats(c, &before);
	notify_send("STOPPING=1");
	collector_stop(c); /* flushes; spools what is pending */
	collector_stats(c, &st);
	if (st.failed)
		status = CLI_EXIT_FAILURE;
	log_stats(&st, "collector: stopped;");
	if (st.kafka && st.producer.dropped > before.producer.dropped) {
		log_error("collector: %" PRIu64 " events were lost at stop (see above)",
			  st.producer.dropped - before.producer.dropped);
		status = CLI_EXIT_FAILURE;
	}
	if (once) {
		size_t n = collector_targets(c, NULL, 0);
		struct scrape_target_stats *ts = calloc(n ? n : 1, sizeof(*ts));
		size_t bad = 0;
		if (ts) {
			n = collector_targets(c, ts, n);
			for (size_t i = 0; i < n; i++)
				if (ts[i].failed || !ts[i].ok) {
					bad++;
					fprintf(stderr, "gpuhealth: target %s failed: %s\n", ts[i].url,
						ts[i].last_error[0] ? ts[i].last_error : "not scraped");
				}
			free(ts);
		}
		if (bad) {
			fprintf(stderr, "gpuhealth: %zu of %zu targets failed\n", bad, n);
			status = CLI_EXIT_FAILURE;
		}
		if (st.kafka && (st.producer.failed || st.producer.dropped || st.producer.spool_events)) {
			fprintf(stderr,
				"gpuhealth: not every event was delivered: %" PRIu64 " failed, %" PRIu64
				" dropped, %" PRIu64 " kept in the spool for the next run\n",
				st.producer.failed, st.producer.dropped, st.producer.spool_events);
			status = CLI_EXIT_FAILURE;
		}
	}
out:
	metrics_http_stop(http); /* before the collector it renders */
	collector_destroy(c);
	nvml_close(nl.n); /* after the collector: its thread reads through nl */
	free(props);
	collector_merged_free(&m);
	discovery_destroy(disc);
	targets_free(&tg);
	return status;
}
