#include "health/scorer_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/service.h"
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

/* impl: a struct scorer, made here from the configuration (the subcommand) or by the pipeline
 * with scorer_create (service_wrap) */
static int scorer_svc_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	struct scorer_options o;
	scorer_cmd_options(cfg, &o);
	o.metrics_listen = config_str(cfg, "metrics-listen");
	struct scorer *s = NULL;
	int rc = scorer_create(&s, &o, err, errlen);
	*impl = s; /* the host owns it: scorer_svc_destroy */
	return rc;
}

SERVICE_FORWARD_STOP(scorer_svc_stop, scorer_stop, scorer_stop_now)
SERVICE_FORWARD(scorer_svc_destroy, scorer_destroy)

static int scorer_svc_start(void *impl, char *err, size_t errlen)
{
	int rc = scorer_start(impl, err, errlen);
	if (rc)
		return rc;
	char what[384];
	scorer_describe(impl, true, what, sizeof(what));
	log_info("scorer: %s", what);
	return 0;
}

static void scorer_svc_status(void *impl, struct service_status *out)
{
	struct scorer_stats st;
	scorer_stats(impl, &st);
	service_status_db(out, st.failed, st.db_connected, st.last_error);
}

static int scorer_svc_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	(void)uptime_s;
	struct scorer_stats st;
	scorer_stats(impl, &st);
	return stats_line(&st, final ? "scorer: stopped;" : "scorer:", buf, len);
}

static int scorer_svc_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	return ready ? scorer_describe(impl, false, buf, len) : 0;
}

const struct service_ops scorer_service_ops = {
    SERVICE_OPS_BASE("scorer", scorer_svc),
    .create = scorer_svc_create,
    .status = scorer_svc_status,
    .stats_line = scorer_svc_stats_line,
    .notify_text = scorer_svc_notify_text,
};

void scorer_cmd_options(const struct config *cfg, struct scorer_options *o)
{
	memset(o, 0, sizeof(*o));
	o->brokers = config_str(cfg, "brokers");
	o->topic = config_str(cfg, "topic");
	o->group = config_str(cfg, "scorer-group");
	o->alerts_topic = config_str(cfg, "alerts-topic");
	o->kafka_props = config_list_items(cfg, "X", &o->nkafka_props);
	o->conninfo = config_str(cfg, "db");
	o->webhook_url = config_str(cfg, "webhook");
	o->webhook_timeout_s = config_double(cfg, "webhook-timeout");
	o->webhook_retries = (int)config_int(cfg, "webhook-retries");
	o->alertmanager_urls = config_list_items(cfg, "alertmanager", &o->nalertmanager_urls);
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
}
