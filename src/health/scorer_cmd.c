#include "health/scorer_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/signals.h"
#include "core/timeutil.h"
#include "health/scorer.h"

static void log_stats(const struct scorer_stats *st, const char *prefix)
{
	log_info("%s consumed=%" PRIu64 " scored=%" PRIu64 " pass=%" PRIu64 " warn=%" PRIu64
		 " fail=%" PRIu64 " gpus=%zu alerts_raised=%" PRIu64 " alerts_cleared=%" PRIu64
		 " open_alerts=%zu alerts_produced=%" PRIu64 " webhook_sent=%" PRIu64
		 " webhook_failed=%" PRIu64 " bad_events=%" PRIu64 " redelivered=%" PRIu64
		 " batches=%" PRIu64 " db=%s%s%s",
		 prefix, st->consumed, st->scored, st->pass, st->warn, st->fail, st->gpus,
		 st->alerts_raised, st->alerts_cleared, st->open_alerts, st->alerts_produced,
		 st->webhook_sent, st->webhook_failed, st->bad_events, st->redelivered, st->batches,
		 st->db_connected ? "up" : "down", st->last_error[0] ? " last_error=" : "",
		 st->last_error);
}

int scorer_cmd_options(const struct config *cfg, struct scorer_options *o, const char ***props)
{
	size_t nprops = config_list_len(cfg, "X");
	const char **p = calloc(nprops ? nprops : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < nprops; i++)
		p[i] = config_list_at(cfg, "X", i);
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

int scorer_cmd_run(struct config *cfg)
{
	log_set_timestamps(1);
	signals_install();
	struct scorer_options o;
	const char **props = NULL;
	if (scorer_cmd_options(cfg, &o, &props))
		return CLI_EXIT_FAILURE;
	struct scorer *s = NULL;
	char err[512];
	int rc = scorer_create(&s, &o, err, sizeof(err));
	free(props); /* scorer_create copied what it keeps */
	if (rc) {
		log_error("%s", err);
		return rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
	}
	rc = scorer_start(s);
	if (rc) {
		log_error("cannot start the scorer thread: %s", strerror(-rc));
		scorer_destroy(s);
		return CLI_EXIT_FAILURE;
	}
	log_info("scorer: consuming %s as group %s; alerts to %s%s%s; horizon %g h, risk alert at %.2f",
		 o.topic, o.group, o.alerts_topic && *o.alerts_topic ? o.alerts_topic : "(no topic)",
		 o.webhook_url && *o.webhook_url ? " and a webhook" : "", "", o.horizon_h, o.risk_level);
	notify_status(true, "consuming %s as group %s", o.topic, o.group);
	double start = time_mono(), last = start;
	double duration = config_is_set(cfg, "duration") ? config_double(cfg, "duration") : -1;
	double every = config_double(cfg, "stats-interval");
	int status = CLI_EXIT_OK;
	struct scorer_stats st;
	for (;;) {
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
		if (signals_stop_requested()) {
			log_info("scorer: signal %d, stopping", signals_stop_signal());
			break;
		}
		double now = time_mono();
		notify_watchdog_tick(now);
		if (duration >= 0 && now - start >= duration)
			break;
		scorer_stats(s, &st);
		if (st.failed) {
			log_error("scorer: stopped: %s", st.last_error);
			status = CLI_EXIT_FAILURE;
			break;
		}
		if (every > 0 && now - last >= every) {
			log_stats(&st, "scorer:");
			last = now;
		}
	}
	notify_send("STOPPING=1");
	scorer_stop(s);
	scorer_stats(s, &st);
	log_stats(&st, "scorer: stopped;");
	scorer_destroy(s);
	return status;
}
