#include "health/scorer_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/metrics_http.h"
#include "core/service.h"
#include "core/timeutil.h"
#include "health/health_metrics.h"
#include "health/scorer.h"

static int stats_line(const struct scorer_stats *st, const char *prefix, char *buf, size_t len)
{
	return snprintf(buf, len,
	                "%s consumed=%" PRIu64 " scored=%" PRIu64 " pass=%" PRIu64 " warn=%" PRIu64
	                " fail=%" PRIu64 " gpus=%zu alerts_raised=%" PRIu64
	                " alerts_cleared=%" PRIu64 " open_alerts=%zu alerts_produced=%" PRIu64
	                " webhook_sent=%" PRIu64 " webhook_failed=%" PRIu64 " am_sent=%" PRIu64
	                " am_failed=%" PRIu64 " am_dropped=%" PRIu64
	                " am_pending=%zu bad_events=%" PRIu64 " redelivered=%" PRIu64
	                " batches=%" PRIu64 " db=%s%s%s",
	                prefix, st->consumed, st->scored, st->pass, st->warn, st->fail, st->gpus,
	                st->alerts_raised, st->alerts_cleared, st->open_alerts, st->alerts_produced,
	                st->webhook_sent, st->webhook_failed, st->am_sent, st->am_failed,
	                st->am_dropped, st->am_pending, st->bad_events, st->redelivered,
	                st->batches, st->db_connected ? "up" : "down",
	                st->last_error[0] ? " last_error=" : "", st->last_error);
}

/* ------------------------------------------------------------------ the scorer as a service */

/* impl: a struct scorer from scorer_create (the pipeline's) */
static int scorer_svc_start(void *impl, char *err, size_t errlen)
{
	int rc = scorer_start(impl);
	if (rc)
		snprintf(err, errlen, "cannot start the scorer thread: %s", strerror(-rc));
	return rc == -EINVAL ? -EIO : rc;
}

static void scorer_svc_status(void *impl, struct service_status *out)
{
	struct scorer_stats st;
	scorer_stats(impl, &st);
	out->state = st.failed                                ? SERVICE_FAILED
	             : (!st.db_connected && st.last_error[0]) ? SERVICE_DEGRADED
	                                                      : SERVICE_RUNNING;
	snprintf(out->last_error, sizeof(out->last_error), "%s", st.last_error);
}

static int scorer_svc_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	(void)uptime_s;
	struct scorer_stats st;
	scorer_stats(impl, &st);
	return stats_line(&st, final ? "scorer: stopped;" : "scorer:", buf, len);
}

static void scorer_svc_stop(void *impl, enum service_stop how)
{
	if (how == SERVICE_STOP_NOW)
		scorer_stop_now(impl);
	else
		scorer_stop(impl);
}

static void scorer_svc_destroy(void *impl)
{
	scorer_destroy(impl);
}

const struct service_ops scorer_service_ops = {
    .name = "scorer",
    .start = scorer_svc_start,
    .status = scorer_svc_status,
    .stats_line = scorer_svc_stats_line,
    .stop = scorer_svc_stop,
    .destroy = scorer_svc_destroy,
};

/* --metrics-listen: the scorer's own counters, then each GPU's verdict (health_metrics.h) */
struct scorer_metrics {
	struct scorer *s;
	struct health_metrics *hm;
};

static int render_metrics(void *ud, struct strbuf *b)
{
	struct scorer_metrics *m = ud;
	struct scorer_stats st;
	scorer_stats(m->s, &st);
	const struct {
		const char *name, *type, *help;
		double v;
	} c[] = {
	    {"consumed_total", "counter", "Messages read from the sample topic.",
	     (double)st.consumed},
	    {"bad_events_total", "counter", "Events refused by the event validator (dead letters).",
	     (double)st.bad_events},
	    {"redelivered_total", "counter", "Samples not newer than the GPU's last: ignored.",
	     (double)st.redelivered},
	    {"alerts_raised_total", "counter", "Alerts raised.", (double)st.alerts_raised},
	    {"alerts_cleared_total", "counter", "Alerts cleared.", (double)st.alerts_cleared},
	    {"alerts_produced_total", "counter", "Alerts delivered to the Kafka alerts topic.",
	     (double)st.alerts_produced},
	    {"webhook_sent_total", "counter", "Alerts delivered to the webhook.",
	     (double)st.webhook_sent},
	    {"webhook_failed_total", "counter", "Failed webhook deliveries.",
	     (double)st.webhook_failed},
	    {"alertmanager_sent_total", "counter", "Alerts delivered to Alertmanager.",
	     (double)st.am_sent},
	    {"alertmanager_failed_total", "counter", "Failed POSTs to Alertmanager.",
	     (double)st.am_failed},
	    {"alertmanager_dropped_total", "counter", "Alerts dropped from the Alertmanager queue.",
	     (double)st.am_dropped},
	    {"batches_total", "counter", "Database transactions committed.", (double)st.batches},
	    {"db_errors_total", "counter", "Database errors.", (double)st.db_errors},
	    {"gpus", "gauge", "GPUs the scorer knows.", (double)st.gpus},
	    {"open_alerts", "gauge", "Alerts open.", (double)st.open_alerts},
	    {"db_connected", "gauge", "1 while the database connection is up.",
	     st.db_connected ? 1.0 : 0.0},
	};
	int rc = 0;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]) && !rc; i++)
		rc = strbuf_printf(b,
		                   "# HELP gpuhealth_scorer_%s %s\n# TYPE gpuhealth_scorer_%s %s\n"
		                   "gpuhealth_scorer_%s %.17g\n",
		                   c[i].name, c[i].help, c[i].name, c[i].type, c[i].name, c[i].v);
	rc = rc ? rc
	        : strbuf_printf(b,
	                        "# HELP gpuhealth_scorer_evaluations_total Evaluations written, by "
	                        "status.\n# TYPE gpuhealth_scorer_evaluations_total counter\n"
	                        "gpuhealth_scorer_evaluations_total{status=\"pass\"} %" PRIu64 "\n"
	                        "gpuhealth_scorer_evaluations_total{status=\"warn\"} %" PRIu64 "\n"
	                        "gpuhealth_scorer_evaluations_total{status=\"fail\"} %" PRIu64 "\n",
	                        st.pass, st.warn, st.fail);
	return rc ? rc : health_metrics_render(m->hm, b, time_mono());
}

int scorer_cmd_options(const struct config *cfg, struct scorer_options *o, const char ***props)
{
	size_t nprops = config_list_len(cfg, "X");
	size_t nam = config_list_len(cfg, "alertmanager");
	const char **p =
	    calloc(nprops + nam + 1, sizeof(*p)); /* the -X properties, then the URLs */
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < nprops; i++)
		p[i] = config_list_at(cfg, "X", i);
	for (size_t i = 0; i < nam; i++)
		p[nprops + i] = config_list_at(cfg, "alertmanager", i);
	memset(o, 0, sizeof(*o));
	o->brokers = config_str(cfg, "brokers");
	o->topic = config_str(cfg, "topic");
	o->group = config_str(cfg, "scorer-group");
	o->alerts_topic = config_str(cfg, "alerts-topic");
	o->kafka_props = p;
	o->nkafka_props = nprops;
	o->conninfo = config_str(cfg, "db");
	o->webhook_url = config_str(cfg, "webhook");
	o->webhook_timeout_s = config_double(cfg, "webhook-timeout");
	o->webhook_retries = (int)config_int(cfg, "webhook-retries");
	o->alertmanager_urls = p + nprops;
	o->nalertmanager_urls = nam;
	o->alertmanager_resend_s = config_double(cfg, "alertmanager-resend");
	o->api_url = config_str(cfg, "api-url");
	o->interval_s = config_double(cfg, "interval");
	o->missing_intervals = (int)config_int(cfg, "missing-intervals");
	o->raise_after = (int)config_int(cfg, "alert-raise-after");
	o->clear_after = (int)config_int(cfg, "alert-clear-after");
	o->horizon_h = config_double(cfg, "horizon") / 3600.0;
	o->risk_level = config_double(cfg, "risk-alert");
	o->health_row_interval_s = config_double(cfg, "health-row-interval");
	o->batch_size = (int)config_int(cfg, "batch-size");
	o->batch_timeout_s = config_double(cfg, "batch-timeout");
	o->max_skew_s = config_double(cfg, "max-clock-skew");
	econ_defaults(&o->econ);
	o->econ.gpu_hour_value = config_double(cfg, "gpu-hour-value");
	o->econ.rma_cost = config_double(cfg, "rma-cost");
	o->econ.checkpoint_interval_h = config_double(cfg, "checkpoint-interval") / 3600.0;
	o->econ.restart_h = config_double(cfg, "restart-time") / 3600.0;
	o->econ.job_gpus = (double)config_int(cfg, "job-gpus");
	o->econ.gpus_per_node = (double)config_int(cfg, "gpus-per-node");
	o->econ.downtime_h[ACT_DRAIN] = config_double(cfg, "drain-downtime") / 3600.0;
	o->econ.downtime_h[ACT_RESET] = config_double(cfg, "reset-downtime") / 3600.0;
	o->econ.downtime_h[ACT_REBOOT] = config_double(cfg, "reboot-downtime") / 3600.0;
	o->econ.downtime_h[ACT_RMA] = config_double(cfg, "rma-downtime") / 3600.0;
	o->econ.service_life_h = config_double(cfg, "service-life") / 3600.0;
	o->econ.residual_risk = config_double(cfg, "residual-risk");
	o->econ.horizon_h = o->horizon_h;
	*props = p; /* caller owns */
	return 0;
}

/* `gpuhealth scorer`: the scorer made from the configuration, with --metrics-listen */
struct scorer_cmd {
	struct scorer *s;
	struct health_metrics *hm;
	struct metrics_http *http;
	struct scorer_metrics sm;
	const char *listen;      /* --metrics-listen, NULL: none */
	struct scorer_options o; /* strings borrowed from the configuration; no -X list */
};

static void cmd_destroy(void *impl)
{
	struct scorer_cmd *c = impl;
	metrics_http_stop(c->http); /* before the scorer and the table it renders */
	scorer_destroy(c->s);
	health_metrics_destroy(c->hm);
	free(c);
}

static int cmd_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	struct scorer_cmd *c = calloc(1, sizeof(*c));
	const char **props = NULL;
	if (!c || scorer_cmd_options(cfg, &c->o, &props)) {
		free(c);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->listen = config_str(cfg, "metrics-listen");
	int rc = c->listen ? health_metrics_create(&c->hm, 0) : 0;
	c->o.metrics = c->hm; /* borrowed by the scorer; destroyed after it */
	if (!rc)
		rc = scorer_create(&c->s, &c->o, err, errlen);
	else
		snprintf(err, errlen, "out of memory");
	free(props); /* scorer_create copied what it keeps */
	c->o.kafka_props = NULL;
	c->o.alertmanager_urls = NULL;
	if (rc) {
		cmd_destroy(c);
		return rc;
	}
	*impl = c;
	return 0;
}

static int cmd_start(void *impl, char *err, size_t errlen)
{
	struct scorer_cmd *c = impl;
	const struct scorer_options *o = &c->o;
	if (c->listen) {
		c->sm = (struct scorer_metrics){.s = c->s, .hm = c->hm};
		int rc = metrics_http_start(&c->http, c->listen, "scorer", render_metrics, &c->sm,
		                            err, errlen);
		if (rc)
			return rc;
		log_info("scorer: own metrics and each GPU's health on http://%s/metrics",
		         metrics_http_address(c->http));
	}
	int rc = scorer_svc_start(c->s, err, errlen);
	if (rc) {
		metrics_http_stop(c->http);
		c->http = NULL;
		return rc;
	}
	char ams[64] = "";
	if (o->nalertmanager_urls)
		snprintf(ams, sizeof(ams), " and %zu Alertmanager(s)", o->nalertmanager_urls);
	log_info(
	    "scorer: consuming %s as group %s; alerts to %s%s%s; horizon %g h, risk alert at %.2f",
	    o->topic, o->group,
	    o->alerts_topic && *o->alerts_topic ? o->alerts_topic : "(no topic)",
	    o->webhook_url && *o->webhook_url ? " and a webhook" : "", ams, o->horizon_h,
	    o->risk_level);
	return 0;
}

static void cmd_status(void *impl, struct service_status *out)
{
	struct scorer_cmd *c = impl;
	scorer_svc_status(c->s, out);
}

static int cmd_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	struct scorer_cmd *c = impl;
	return scorer_svc_stats_line(c->s, final, uptime_s, buf, len);
}

static int cmd_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	struct scorer_cmd *c = impl;
	return ready ? snprintf(buf, len, "consuming %s as group %s", c->o.topic, c->o.group) : 0;
}

static void cmd_stop(void *impl, enum service_stop how)
{
	struct scorer_cmd *c = impl;
	scorer_svc_stop(c->s, how);
}

static const struct service_ops scorer_cmd_ops = {
    .name = "scorer",
    .create = cmd_create,
    .start = cmd_start,
    .status = cmd_status,
    .stats_line = cmd_stats_line,
    .notify_text = cmd_notify_text,
    .stop = cmd_stop,
    .destroy = cmd_destroy,
};

int scorer_cmd_run(struct config *cfg)
{
	log_set_timestamps(1);
	return service_main(&scorer_cmd_ops, cfg);
}
