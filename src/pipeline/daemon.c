#include "pipeline/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"

#define DAEMON_DRAIN_S 10.0

static void log_summary(const struct pipeline_view *v, const char *prefix)
{
	char lag[32] = "-", rows[40] = "-";
	if (v->have_sink && v->sink.lag_total >= 0)
		snprintf(lag, sizeof(lag), "%" PRId64, v->sink.lag_total);
	if (v->db_rows >= 0)
		snprintf(rows, sizeof(rows), "%s%" PRId64, v->db_rows_estimate ? "~" : "", v->db_rows);
	const struct producer_stats *pr = &v->collector.producer;
	log_info("%s gpus=%zu hosts=%zu scrapes_ok=%" PRIu64 " scrapes_failed=%" PRIu64
		 " scrapes_per_s=%.1f events=%" PRIu64 " produced=%" PRIu64 " delivered=%" PRIu64
		 " buffered=%" PRIu64 " dropped=%" PRIu64 " lag=%s sink_rows=%" PRIu64
		 " db_rows=%s db_rows_per_s=%.1f dlq=%" PRIu64 " scored=%" PRIu64
		 " warn=%" PRIu64 " fail=%" PRIu64,
		 prefix, v->fleet.gpus, v->fleet.hosts, v->collector.scrapes_ok,
		 v->collector.scrapes_failed, v->scrapes_per_s, v->collector.events, pr->produced,
		 pr->delivered, pr->in_flight + pr->queued + pr->spool_events, pr->dropped, lag,
		 v->sink.rows_written, rows, v->db_rows_per_s, v->sink.dead_letters, v->scorer.scored,
		 v->scorer.warn, v->scorer.fail);
}

/* Logs each part whose state or error changed since the last look. */
static void log_changes(const struct pipeline_view *v, struct pipeline_part_view *seen)
{
	for (int i = 0; i < PP_COUNT; i++) {
		const struct pipeline_part_view *a = &v->parts[i];
		struct pipeline_part_view *b = &seen[i];
		if (a->state != b->state && (a->state == PART_FAILED || a->state == PART_DEGRADED))
			log_msg(a->state == PART_FAILED ? LOG_ERROR : LOG_WARN, "%s: %s: %s",
				pipeline_part_name((enum pipeline_part)i),
				pipeline_state_name(a->state), a->last_error);
		else if (a->last_error[0] && strcmp(a->last_error, b->last_error) != 0)
			log_warn("%s: %s", pipeline_part_name((enum pipeline_part)i), a->last_error);
		else if (a->state != b->state && b->state == PART_DEGRADED && a->state == PART_RUNNING)
			log_info("%s: running again", pipeline_part_name((enum pipeline_part)i));
		*b = *a;
	}
}

int daemon_run(struct config *cfg)
{
	log_set_timestamps(1);
	signals_install();
	struct pipeline *p = NULL;
	char err[1024] = "";
	int rc = pipeline_create(&p, cfg, err, sizeof(err));
	if (rc) {
		log_error("%s", err);
		return rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
	}
	pipeline_set_drain(p, DAEMON_DRAIN_S);
	int status = CLI_EXIT_OK;
	rc = pipeline_start(p, err, sizeof(err));
	if (rc) {
		log_error("daemon: cannot run: %s", err);
		status = CLI_EXIT_FAILURE;
		goto out;
	}
	log_info("daemon: running%s", config_is_set(cfg, "duration") ? " for --duration" : "");
	double start = time_mono(), last = start;
	double duration = config_is_set(cfg, "duration") ? config_double(cfg, "duration") : -1;
	double every = config_double(cfg, "stats-interval");
	struct pipeline_part_view seen[PP_COUNT];
	memset(seen, 0, sizeof(seen));
	static struct pipeline_view v; /* large: not on the stack */
	for (;;) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
		if (signals_stop_requested()) {
			log_info("daemon: signal %d, stopping", signals_stop_signal());
			break;
		}
		double now = time_mono();
		if (duration >= 0 && now - start >= duration) {
			log_info("daemon: --duration reached, stopping");
			break;
		}
		if (signals_take_hup())
			pipeline_reload(p);
		pipeline_view(p, &v);
		log_changes(&v, seen);
		if (v.parts[PP_COLLECTOR].state == PART_FAILED) {
			log_error("daemon: the collector failed: %s", v.parts[PP_COLLECTOR].last_error);
			status = CLI_EXIT_FAILURE;
			break;
		}
		if (every > 0 && now - last >= every) {
			log_summary(&v, "stats:");
			last = now;
		}
	}
	pipeline_stop(p);
	pipeline_view(p, &v);
	log_changes(&v, seen);
	log_summary(&v, "daemon: stopped;");
	for (int i = 0; i < PP_COUNT; i++)
		if (v.parts[i].state == PART_FAILED) {
			log_error("daemon: %s failed: %s", pipeline_part_name((enum pipeline_part)i),
				  v.parts[i].last_error);
			status = CLI_EXIT_FAILURE;
		}
	if (v.have_collector && v.collector.producer.dropped) {
		log_error("daemon: %" PRIu64 " events were dropped", v.collector.producer.dropped);
		status = CLI_EXIT_FAILURE;
	}
out:
	pipeline_destroy(p);
	return status;
}
