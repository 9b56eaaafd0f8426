#include "pipeline/daemon.h"

#include <errno.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/service.h"
#include "core/timeutil.h"
#include "pipeline/pipeline.h"
#include "pipeline/privpg.h"

#define DAEMON_DRAIN_S 10.0

static int summary(const struct pipeline_view *v, const char *prefix, char *buf, size_t len)
{
	char lag[32] = "-", rows[40] = "-";
	if (v->have_sink && v->sink.lag_total >= 0)
		snprintf(lag, sizeof(lag), "%" PRId64, v->sink.lag_total);
	if (v->db_rows >= 0)
		snprintf(rows, sizeof(rows), "%s%" PRId64, v->db_rows_estimate ? "~" : "",
		         v->db_rows);
	const struct producer_stats *pr = &v->collector.producer;
	char gate[160] = "";
	if (v->gate.active) /* the in-process broker's gate (pipeline.h) */
		snprintf(gate, sizeof(gate),
		         " held=%d backlog=%" PRId64 " backlog_mib=%.1f holds=%" PRIu64
		         " broker_lost=%" PRIu64,
		         v->gate.held, v->gate.backlog, (double)v->gate.backlog_bytes / 1048576.0,
		         v->gate.holds, v->gate.lost);
	return snprintf(
	    buf, len,
	    "%s gpus=%zu hosts=%zu scrapes_ok=%" PRIu64 " scrapes_failed=%" PRIu64
	    " scrapes_per_s=%.1f events=%" PRIu64 " produced=%" PRIu64 " delivered=%" PRIu64
	    " buffered=%" PRIu64 " dropped=%" PRIu64 " refused=%" PRIu64 " failed=%" PRIu64
	    "%s lag=%s sink_rows=%" PRIu64 " db_rows=%s db_rows_per_s=%.1f dlq=%" PRIu64
	    " scored=%" PRIu64 " warn=%" PRIu64 " fail=%" PRIu64,
	    prefix, v->fleet.gpus, v->fleet.hosts, v->collector.scrapes_ok,
	    v->collector.scrapes_failed, v->scrapes_per_s, v->collector.events, pr->produced,
	    pr->delivered, pr->in_flight + pr->queued + pr->spool_events, pr->dropped, pr->refused,
	    pr->failed, gate, lag, v->sink.rows_written, rows, v->db_rows_per_s,
	    v->sink.dead_letters, v->scorer.scored, v->scorer.warn, v->scorer.fail);
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
	    g->active, "held", g->held, "backlog_events", (json_int_t)g->backlog, "backlog_bytes",
	    (json_int_t)g->backlog_bytes, "high_water_events", (json_int_t)g->high_events,
	    "high_water_bytes", (json_int_t)g->high_bytes, "holds", (json_int_t)g->holds,
	    "buffer_events", (json_int_t)g->buffer_events, "error", g->error);
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
			log_warn("%s: %s", pipeline_part_name((enum pipeline_part)i),
			         a->last_error);
		else if (a->state != b->state && b->state == PART_DEGRADED &&
		         a->state == PART_RUNNING)
			log_info("%s: running again", pipeline_part_name((enum pipeline_part)i));
		*b = *a;
	}
}

/* ------------------------------------------------------------------ the pipeline as a service */

struct daemon {
	struct pipeline *p;
	struct pipeline_part_view seen[PP_COUNT];
	struct pipeline_view v; /* large: on the heap, with the daemon */
	bool duration;          /* --duration given: said in the log */
};

static void daemon_svc_destroy(void *impl)
{
	struct daemon *d = impl;
	pipeline_destroy(d->p);
	free(d);
}

static int daemon_svc_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	struct daemon *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	int rc = pipeline_create(&d->p, cfg, err, errlen);
	if (rc) {
		free(d);
		return rc;
	}
	pipeline_set_drain(d->p, DAEMON_DRAIN_S);
	d->duration = config_is_set(cfg, "duration");
	*impl = d;
	return 0;
}

static int daemon_svc_start(void *impl, char *err, size_t errlen)
{
	struct daemon *d = impl;
	char perr[900] = "";
	int rc = pipeline_start(d->p, perr, sizeof(perr));
	if (rc) {
		snprintf(err, errlen, "daemon: cannot run: %s", perr);
		/* pipeline_stop (in service_destroy's pipeline_destroy) stops what did start */
		return rc == -EINVAL ? -EIO : rc;
	}
	log_info("daemon: running%s", d->duration ? " for --duration" : "");
	return 0;
}

/* Each tick: log the parts whose state or error changed; a failed collector stops the daemon
 * (the other parts going down leave it running, shown in the stats line). */
static void daemon_svc_tick(void *impl, double now)
{
	(void)now;
	struct daemon *d = impl;
	pipeline_view(d->p, &d->v);
	log_changes(&d->v, d->seen);
}

static void daemon_svc_status(void *impl, struct service_status *out)
{
	struct daemon *d = impl; /* d->v: the tick's copy, taken under the pipeline's lock */
	const struct pipeline_part_view *c = &d->v.parts[PP_COLLECTOR];
	out->state = SERVICE_RUNNING;
	if (c->state == PART_FAILED) {
		out->state = SERVICE_FAILED;
		snprintf(out->last_error, sizeof(out->last_error), "the collector failed: %s",
		         c->last_error);
	}
}

static int daemon_svc_reload(void *impl)
{
	struct daemon *d = impl;
	return pipeline_reload(d->p);
}

static int daemon_svc_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	(void)uptime_s;
	struct daemon *d = impl;
	pipeline_view(d->p, &d->v);
	if (final)
		log_changes(&d->v, d->seen);
	write_state(&d->v, !final);
	return summary(&d->v, final ? "daemon: stopped;" : "stats:", buf, len);
}

static int daemon_svc_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	struct daemon *d = impl;
	if (ready)
		return snprintf(buf, len, "running the pipeline");
	return snprintf(buf, len, "%zu GPUs on %zu hosts, %" PRIu64 " rows written",
	                d->v.fleet.gpus, d->v.fleet.hosts, d->v.sink.rows_written);
}

static void daemon_svc_stop(void *impl, enum service_stop how)
{
	(void)how; /* the pipeline decides per part (a database gone: the sink stops at once) */
	struct daemon *d = impl;
	pipeline_stop(d->p);
}

/* Every part that failed, and every loss, with its reason, fails the run. */
static int daemon_svc_verdict(void *impl)
{
	struct daemon *d = impl;
	const struct pipeline_view *v = &d->v; /* the final stats line's copy */
	int rc = 0;
	for (int i = 0; i < PP_COUNT; i++)
		if (v->parts[i].state == PART_FAILED) {
			log_error("daemon: %s failed: %s",
			          pipeline_part_name((enum pipeline_part)i),
			          v->parts[i].last_error);
			rc = -1;
		}
	if (v->have_collector && v->collector.producer.dropped) {
		log_error("daemon: %" PRIu64 " events were dropped: past the memory bounds "
		          "(--buffer-hours, --buffer-max) and the spool's, or undelivered at stop "
		          "without --spool-dir",
		          v->collector.producer.dropped);
		rc = -1;
	}
	if (v->have_collector && v->collector.producer.refused) {
		log_error("daemon: %" PRIu64
		          " events were refused: larger than the broker takes (%s)",
		          v->collector.producer.refused, v->collector.producer.last_error);
		rc = -1;
	}
	if (v->have_collector && v->collector.producer.failed) {
		log_error("daemon: %" PRIu64 " events failed delivery for good (%s)",
		          v->collector.producer.failed, v->collector.producer.last_error);
		rc = -1;
	}
	if (v->gate.lost) {
		log_error("daemon: the in-process broker's log forgot %" PRIu64
		          " events before the sink committed them",
		          v->gate.lost);
		rc = -1;
	}
	return rc;
}

const struct service_ops daemon_service_ops = {
    SERVICE_OPS_ALL("daemon", daemon_svc),
    .tick_s = 0.05,
};
