#include "collect/collector_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect/scrape.h"
#include "collect/shard.h"
#include "collect/collector.h"
#include "collect/discovery.h"
#include "collect/targets.h"
#include "core/config.h"
#include "core/metrics_http.h"
#include "core/log.h"
#include "core/service.h"
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
	const char *origin =
	    config_source_of(cfg, "target") == CONFIG_SRC_ENV ? "SCRAPE_TARGETS" : "--target";
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

static int stats_line(const struct collector_stats *st, const char *prefix, char *buf, size_t len)
{
	char kafka[400] = "";
	if (st->kafka) {
		const struct producer_stats *p = &st->producer;
		snprintf(kafka, sizeof(kafka),
		         " produced=%" PRIu64 " delivered=%" PRIu64 " failed=%" PRIu64
		         " dropped=%" PRIu64 " retried=%" PRIu64 " spooled=%" PRIu64
		         " buffered=%" PRIu64 "/%" PRIu64 "/%" PRIu64 "%s%s",
		         p->produced, p->delivered, p->failed, p->dropped, p->retried, p->spooled,
		         p->in_flight, p->queued, p->spool_events,
		         p->last_error[0] ? " kafka_error=" : "", p->last_error);
	}
	char shard[64] = "";
	if (st->shard.count)
		snprintf(shard, sizeof(shard), " shard=%u/%u listed=%zu", st->shard.index,
		         st->shard.count, st->targets_listed);
	return snprintf(buf, len,
	                "%s targets=%zu%s down=%zu scrapes_ok=%" PRIu64 " scrapes_failed=%" PRIu64
	                " scrapes_missed=%" PRIu64 " samples=%" PRIu64 " bad_lines=%" PRIu64
	                " unusable=%" PRIu64 " events=%" PRIu64 "%s",
	                prefix, st->targets, shard, st->targets_down, st->scrapes_ok,
	                st->scrapes_failed, st->scrapes_missed, st->samples, st->bad_lines,
	                st->unusable, st->events, kafka);
}

/* ------------------------------------------------------------------ the collector as a service */

/* the flush is bounded by flush_timeout_s either way */
SERVICE_FORWARD_STOP(collector_svc_stop, collector_stop, collector_stop)
SERVICE_FORWARD(collector_svc_destroy, collector_destroy)

/* impl: a struct collector from collector_create (the pipeline's) */
static int collector_svc_start(void *impl, char *err, size_t errlen)
{
	int rc = collector_start(impl);
	if (rc)
		snprintf(err, errlen, "cannot start the collector thread: %s", strerror(-rc));
	return rc == -EINVAL ? -EIO : rc;
}

static void collector_svc_status(void *impl, struct service_status *out)
{
	struct collector_stats st;
	collector_stats(impl, &st);
	out->state = st.failed                                    ? SERVICE_FAILED
	             : st.done                                    ? SERVICE_DONE
	             : (st.targets_down > 0 || st.producer.fatal) ? SERVICE_DEGRADED
	                                                          : SERVICE_RUNNING;
	snprintf(out->last_error, sizeof(out->last_error), "%s",
	         st.last_error[0] ? st.last_error : st.producer.last_error);
}

static int collector_svc_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	(void)uptime_s;
	struct collector_stats st;
	collector_stats(impl, &st);
	return stats_line(&st, final ? "collector: stopped;" : "collector:", buf, len);
}

const struct service_ops collector_service_ops = {
    SERVICE_OPS_BASE("collector", collector_svc),
    .status = collector_svc_status,
    .stats_line = collector_svc_stats_line,
};

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
	         *n_now, time_mono() - t0);
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
		log_error(
		    "collector: SIGHUP: the new target list is empty; keeping the %zu targets "
		    "in use",
		    *n_now);
	} else if (collector_set_targets(c, (const char *const *)tg.urls, tg.n) != 0) {
		log_error("collector: SIGHUP: out of memory; keeping the %zu targets in use",
		          *n_now);
	} else {
		log_info("collector: SIGHUP: %zu targets (were %zu)", tg.n, *n_now);
		*n_now = tg.n;
	}
	targets_free(&tg);
}

/* ------------------------------------------------------------------ `gpuhealth collector` */

/* The collector made from the configuration: its targets (--target, --targets-file, the
 * discovery sources, or --nvml), --metrics-listen, SIGHUP, and the checks at the stop. */
struct collector_cmd {
	const struct config *cfg; /* borrowed */
	struct targets tg;
	struct collector *c;
	struct metrics_http *http;
	struct nvml_local nl;
	struct collector_local local;
	struct discovery *disc;
	struct collector_merged m;
	bool nvml, once, to_stdout;
	double interval_s, timeout_s;
	const char *topic;
	size_t n_now;
	double last_sd;
	uint64_t dropped_before; /* the producer's drops before the stop */
};

static void cmd_destroy(void *impl)
{
	struct collector_cmd *k = impl;
	metrics_http_stop(k->http); /* before the collector it renders */
	collector_destroy(k->c);
	nvml_close(k->nl.n); /* after the collector: its thread reads through nl */
	collector_merged_free(&k->m);
	discovery_destroy(k->disc);
	targets_free(&k->tg);
	free(k);
}

/* Bad usage: the message, and -EINVAL (exit status 2). */
static int usage(char *err, size_t errlen, const char *msg)
{
	snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

static int cmd_build(struct collector_cmd *k, const struct config *cfg, char *err, size_t errlen)
{
	int rc = load_targets(cfg, &k->tg, err, errlen);
	if (rc) /* a file that is not a targets list (a directory, too big) is bad usage too */
		return rc == -EINVAL || rc == -EEXIST || rc == -E2BIG || rc == -EISDIR ||
		               rc == -EFBIG
		           ? -EINVAL
		           : rc;
	k->nvml = config_bool(cfg, "nvml");
	rc = collector_cmd_discovery(cfg, signals_stop_requested, &k->disc, err, errlen);
	if (rc) {
		if (rc == -ENOMEM)
			snprintf(err, errlen, "out of memory");
		return rc;
	}
	if (k->disc) {
		bool changed;
		discovery_poll(k->disc, time_mono(), true,
		               &changed); /* errors logged; lists kept */
	}
	if (collector_merge_targets(&k->tg, k->disc, &k->m) != 0) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (k->nvml && k->m.n)
		return usage(err, errlen,
		             "--nvml reads this machine's GPUs; --target and --targets-file scrape "
		             "exporters: give one or the other");
	if (k->nvml && config_str(cfg, "shard"))
		return usage(
		    err, errlen,
		    "--shard splits a list of scrape targets among collectors; --nvml reads "
		    "this machine's GPUs and has none: drop --shard");
	if (k->m.n == 0 && !k->nvml && !k->disc)
		return usage(
		    err, errlen,
		    "no scrape targets: give --target URL (SCRAPE_TARGETS, comma-separated), "
		    "--targets-file FILE (SCRAPE_TARGETS_FILE), --file-sd, --http-sd or "
		    "--dns-sd");
	if (k->m.n == 0 && k->disc && config_bool(cfg, "once"))
		return usage(err, errlen, "no scrape targets: discovery found none (see above)");
	k->to_stdout = config_str(cfg, "output") != NULL;
	if (!k->to_stdout && !config_str(cfg, "brokers"))
		return usage(
		    err, errlen,
		    "no Kafka brokers: give --brokers HOST:PORT (KAFKA_BOOTSTRAP_SERVERS), or "
		    "--output - to write the events to standard output");
	k->local = (struct collector_local){"nvml", nvml_local_read, &k->nl};
	if (k->nvml) {
		char nerr[900] = "";
		rc = nvml_open(&k->nl.n, config_str(cfg, "nvml-library"), nerr, sizeof(nerr));
		if (rc) {
			snprintf(err, errlen, "--nvml: %s", nerr);
			return rc == -EINVAL ? -EIO : rc;
		}
		if (gethostname(k->nl.hostname, sizeof(k->nl.hostname) - 1) != 0)
			snprintf(k->nl.hostname, sizeof(k->nl.hostname), "localhost");
		k->nl.opts =
		    (struct render_opts){.hostname = k->nl.hostname, .host_label = "hostname"};
		k->nl.t0 = time_mono();
	}
	k->once = config_bool(cfg, "once");
	struct collector_options o;
	collector_cmd_options(cfg, &o);
	o.local = k->nvml ? &k->local : NULL;
	o.targets = k->m.urls;
	o.target_enrich = k->m.en;
	o.ntargets = k->m.n;
	o.once = k->once;
	o.out = k->to_stdout ? stdout : NULL;
	o.kafka.brokers = config_str(cfg, "brokers");
	o.kafka.kafka_props = config_list_items(cfg, "X", &o.kafka.nkafka_props);
	o.kafka.flush_timeout_s = FLUSH_TIMEOUT_S;
	if (k->disc && !o.threads) {
		/* discovery's list grows after the start: one thread per CPU, not per target now */
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		o.threads = ncpu < 1                             ? 1
		            : ncpu > (long)COLLECTOR_THREADS_MAX ? COLLECTOR_THREADS_MAX
		                                                 : (unsigned)ncpu;
	}
	k->interval_s = o.interval_s;
	k->timeout_s = o.timeout_s;
	k->topic = o.kafka.topic;
	return collector_create(&k->c, &o, err, errlen);
}

void collector_cmd_options(const struct config *cfg, struct collector_options *o)
{
	double every = config_double(cfg, "stats-interval");
	*o = (struct collector_options){
	    .shard = shard_from_config(cfg),
	    .interval_s = config_double(cfg, "interval"),
	    .timeout_s = config_double(cfg, "scrape-timeout"),
	    .max_body = (size_t)config_int(cfg, "max-body"),
	    .gzip = scrape_gzip_from_config(cfg),
	    .threads = (unsigned)config_int(cfg, "scrape-threads"),
	    .enrich = {.cluster = config_str(cfg, "cluster"),
	               .datacenter = config_str(cfg, "datacenter"),
	               .rack = config_str(cfg, "rack")},
	    .kafka =
	        {
	            .topic = config_str(cfg, "topic"),
	            .buffer_events = (size_t)config_int(cfg, "buffer-events"),
	            .spool_dir = config_str(cfg, "spool-dir"),
	            .spool_max_bytes = (uint64_t)config_int(cfg, "spool-max") << 20,
	            .drop_log_interval_s = every > 0 ? every : 10,
	        },
	};
}

static int cmd_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	struct collector_cmd *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	k->cfg = cfg;
	targets_init(&k->tg);
	int rc = cmd_build(k, cfg, err, errlen);
	if (rc) {
		cmd_destroy(k);
		return rc;
	}
	*impl = k;
	return 0;
}

static int cmd_start(void *impl, char *err, size_t errlen)
{
	struct collector_cmd *k = impl;
	const char *ml = config_str(k->cfg, "metrics-listen");
	if (ml) {
		int rc = metrics_http_start(&k->http, ml, "collector", render_metrics, k->c, err,
		                            errlen);
		if (rc)
			return rc;
		log_info("collector: own metrics on http://%s/metrics",
		         metrics_http_address(k->http));
	}
	int rc = collector_svc_start(k->c, err, errlen);
	if (rc)
		return rc;
	const char *to = k->to_stdout ? "standard output" : "Kafka topic ";
	if (k->nvml) {
		log_info("collector: %zu local GPUs (NVML, driver %s) every %g s -> %s%s%s",
		         nvml_gpu_devices(k->nl.n), nvml_driver_version(k->nl.n), k->interval_s, to,
		         k->to_stdout ? "" : k->topic, k->once ? ", once" : "");
	} else {
		struct collector_stats st0;
		collector_stats(k->c, &st0);
		log_info("collector: %zu target%s every %g s (timeout %g s, %u scrape thread%s) -> "
		         "%s%s%s",
		         k->m.n, k->m.n == 1 ? "" : "s", k->interval_s, k->timeout_s, st0.threads,
		         st0.threads == 1 ? "" : "s", to, k->to_stdout ? "" : k->topic,
		         k->once ? ", once" : "");
	}
	k->n_now = k->m.n;
	k->last_sd = time_mono();
	return 0;
}

/* discovery: files each second, the other sources when due */
static void cmd_tick(void *impl, double now)
{
	struct collector_cmd *k = impl;
	if (!k->disc || k->once || now - k->last_sd < 1.0)
		return;
	bool changed = false;
	discovery_poll(k->disc, now, false, &changed);
	if (changed)
		discovery_apply(k->c, &k->tg, k->disc, &k->m, &k->n_now, now);
	k->last_sd = now;
}

/* SIGHUP: the static targets again, then every discovery source; without discovery,
 * --targets-file again */
static int cmd_reload(void *impl)
{
	struct collector_cmd *k = impl;
	double now = time_mono();
	if (k->disc) {
		struct targets nt;
		targets_init(&nt);
		char herr[1024] = "";
		if (load_targets(k->cfg, &nt, herr, sizeof(herr)) != 0) {
			log_error("collector: SIGHUP: %s; keeping the static targets in use", herr);
			targets_free(&nt);
		} else {
			targets_free(&k->tg);
			k->tg = nt; /* owned by tg */
		}
		bool changed;
		discovery_poll(k->disc, now, true, &changed);
		discovery_apply(k->c, &k->tg, k->disc, &k->m, &k->n_now, now);
		k->last_sd = now;
	} else if (k->nvml) {
		log_info("collector: SIGHUP: --nvml has no targets to re-read");
	} else if (config_str(k->cfg, "targets-file")) {
		reload(k->cfg, k->c, &k->n_now);
	} else {
		log_info("collector: SIGHUP: no --targets-file to re-read");
	}
	return 0;
}

static void cmd_status(void *impl, struct service_status *out)
{
	struct collector_cmd *k = impl;
	collector_svc_status(k->c, out);
}

static int cmd_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	struct collector_cmd *k = impl;
	return collector_svc_stats_line(k->c, final, uptime_s, buf, len);
}

static int cmd_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	struct collector_cmd *k = impl;
	return ready ? snprintf(buf, len, "%zu targets every %g s", k->m.n, k->interval_s) : 0;
}

static void cmd_stop(void *impl, enum service_stop how)
{
	struct collector_cmd *k = impl;
	struct collector_stats before;
	collector_stats(k->c, &before);
	k->dropped_before = before.producer.dropped;
	collector_svc_stop(k->c, how); /* flushes; spools what is pending */
}

/* Events lost at the stop fail the run; with --once, so does any target not scraped and any
 * event not delivered. */
static int cmd_verdict(void *impl)
{
	struct collector_cmd *k = impl;
	struct collector_stats st;
	collector_stats(k->c, &st);
	int rc = 0;
	if (st.kafka && st.producer.dropped > k->dropped_before) {
		log_error("collector: %" PRIu64 " events were lost at stop (see above)",
		          st.producer.dropped - k->dropped_before);
		rc = -1;
	}
	if (!k->once)
		return rc;
	size_t n = collector_targets(k->c, NULL, 0);
	struct scrape_target_stats *ts = calloc(n ? n : 1, sizeof(*ts));
	size_t bad = 0;
	if (ts) {
		n = collector_targets(k->c, ts, n);
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
		rc = -1;
	}
	if (st.kafka && (st.producer.failed || st.producer.dropped || st.producer.spool_events)) {
		fprintf(stderr,
		        "gpuhealth: not every event was delivered: %" PRIu64 " failed, %" PRIu64
		        " dropped, %" PRIu64 " kept in the spool for the next run\n",
		        st.producer.failed, st.producer.dropped, st.producer.spool_events);
		rc = -1;
	}
	return rc;
}

const struct service_ops collector_cmd_service_ops = {
    SERVICE_OPS_ALL("collector", cmd),
    .tick_s = 0.05,
};
