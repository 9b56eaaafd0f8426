#include "pipeline/daemon.h"

#include <errno.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core/config.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"
#include "pipeline/privpg.h"

#define DAEMON_DRAIN_S 10.0

static void log_summary(const struct pipeline_view *v, const char *prefix)
{
	char lag[32] = "-", rows[40] = "-";
	if (v->have_sink && v->sink.lag_total >= 0)
		snprintf(lag, sizeof(lag), "%" PRId64, v->sink.lag_total);
	if (v->db_rows >= 0)
		snprintf(rows, sizeof(rows), "%s%" PRId64, v->db_rows_estimate ? "~" : "", v->db_rows);
	const struct producer_stats *pr = &v->collector.producer;
	char gate[160] = "";
	if (v->gate.active) /* the in-process broker's gate (pipeline.h) */
		snprintf(gate, sizeof(gate),
			 " held=%d backlog=%" PRId64 " backlog_mib=%.1f holds=%" PRIu64
			 " broker_lost=%" PRIu64,
			 v->gate.held, v->gate.backlog, (double)v->gate.backlog_bytes / 1048576.0,
			 v->gate.holds, v->gate.lost);
	log_info("%s gpus=%zu hosts=%zu scrapes_ok=%" PRIu64 " scrapes_failed=%" PRIu64
		 " scrapes_per_s=%.1f events=%" PRIu64 " produced=%" PRIu64 " delivered=%" PRIu64
		 " buffered=%" PRIu64 " dropped=%" PRIu64 " refused=%" PRIu64
		 " failed=%" PRIu64 "%s lag=%s sink_rows=%" PRIu64
		 " db_rows=%s db_rows_per_s=%.1f dlq=%" PRIu64 " scored=%" PRIu64
		 " warn=%" PRIu64 " fail=%" PRIu64,
		 prefix, v->fleet.gpus, v->fleet.hosts, v->collector.scrapes_ok,
		 v->collector.scrapes_failed, v->scrapes_per_s, v->collector.events, pr->produced,
		 pr->delivered, pr->in_flight + pr->queued + pr->spool_events, pr->dropped,
		 pr->refused, pr->failed, gate, lag,
		 v->sink.rows_written, rows, v->db_rows_per_s, v->sink.dead_letters, v->scorer.scored,
		 v->scorer.warn, v->scorer.fail);
}

/* mkdir -p for the state directory (0700: it is the user's own). */
static void make_dirs(const char *dir)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *c = p + 1; *c; c++)
		if (*c == '/') {
			*c = '\0';
			mkdir(p, 0700);
			*c = '/';
		}
	mkdir(p, 0700);
}

/*
 * Writes the pipeline's counters and losses to STATE/pipeline.json (the state directory of the
 * private PostgreSQL, $XDG_STATE_HOME/gpuhealth) for `gpuhealth status --json`, replacing it
 * atomically. Best effort: a failure is logged once.
 */
static void write_state(const struct pipeline_view *v, bool running)
{
	static bool warned;
	char dir[4096], path[4200], tmp[4220];
	if (privpg_state_dir(dir, sizeof(dir)) != 0)
		return;
	make_dirs(dir); /* with --db no private server made it */
	snprintf(path, sizeof(path), "%s/pipeline.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	const struct producer_stats *pr = &v->collector.producer;
	const struct pipeline_gate_view *g = &v->gate;
	char when[40] = "";
	time_format_rfc3339(v->now, when, sizeof(when));
	json_t *doc = json_pack(
		"{s:s, s:s, s:I, s:b, s:{s:I, s:I, s:I, s:I, s:I},"
		" s:{s:I, s:I, s:I, s:I, s:I}, s:{s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:s}}",
		"schema", "gpuhealth.pipeline/1", "updated_at", when, "pid", (json_int_t)getpid(),
		"running", running, "events", "produced", (json_int_t)pr->produced, "delivered",
		(json_int_t)pr->delivered, "buffered",
		(json_int_t)(pr->in_flight + pr->queued + pr->spool_events), "sink_rows",
		(json_int_t)v->sink.rows_written, "dead_letters", (json_int_t)v->sink.dead_letters,
		"lost", "total", (json_int_t)(pr->dropped + pr->refused + pr->failed + g->lost),
		"dropped", (json_int_t)pr->dropped, "refused", (json_int_t)pr->refused, "failed",
		(json_int_t)pr->failed, "broker_lost", (json_int_t)g->lost, "broker_gate", "active",
		g->active, "held", g->held, "backlog_events", (json_int_t)g->backlog,
		"backlog_bytes", (json_int_t)g->backlog_bytes, "high_water_events",
		(json_int_t)g->high_events, "high_water_bytes", (json_int_t)g->high_bytes, "holds",
		(json_int_t)g->holds, "buffer_events", (json_int_t)g->buffer_events, "error",
		g->error);
	int rc = doc ? json_dump_file(doc, tmp, JSON_INDENT(2)) : -1;
	json_decref(doc);
	if (rc == 0 && rename(tmp, path) == 0)
		return;
	int e = errno;
	unlink(tmp);
	if (!warned)
		log_warn("daemon: cannot write %s (for `gpuhealth status --json`): %s", path,
			 strerror(e));
	warned = true;
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
			write_state(&v, true);
			last = now;
		}
	}
	pipeline_stop(p);
	pipeline_view(p, &v);
	log_changes(&v, seen);
	log_summary(&v, "daemon: stopped;");
	write_state(&v, false);
	for (int i = 0; i < PP_COUNT; i++)
		if (v.parts[i].state == PART_FAILED) {
			log_error("daemon: %s failed: %s", pipeline_part_name((enum pipeline_part)i),
				  v.parts[i].last_error);
			status = CLI_EXIT_FAILURE;
		}
	/* every loss, with its reason, fails the run */
	if (v.have_collector && v.collector.producer.dropped) {
		log_error("daemon: %" PRIu64 " events were dropped: past the memory bounds "
			  "(--buffer-hours, --buffer-max) and the spool's, or undelivered at stop "
			  "without --spool-dir",
			  v.collector.producer.dropped);
		status = CLI_EXIT_FAILURE;
	}
	if (v.have_collector && v.collector.producer.refused) {
		log_error("daemon: %" PRIu64 " events were refused: larger than the broker takes (%s)",
			  v.collector.producer.refused, v.collector.producer.last_error);
		status = CLI_EXIT_FAILURE;
	}
	if (v.have_collector && v.collector.producer.failed) {
		log_error("daemon: %" PRIu64 " events failed delivery for good (%s)",
			  v.collector.producer.failed, v.collector.producer.last_error);
		status = CLI_EXIT_FAILURE;
	}
	if (v.gate.lost) {
		log_error("daemon: the in-process broker's log forgot %" PRIu64
			  " events before the sink committed them",
			  v.gate.lost);
		status = CLI_EXIT_FAILURE;
	}
out:
	pipeline_destroy(p);
	return status;
}
