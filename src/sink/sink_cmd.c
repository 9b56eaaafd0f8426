#include "sink/sink_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/service.h"
#include "core/timeutil.h"
#include "sink/sink.h"

/* the running line: "sink: rows_written=... lag=... db=up" */
static int running_line(const struct sink_stats *st, char *buf, size_t len)
{
	char lag[32];
	if (st->lag_total >= 0)
		snprintf(lag, sizeof(lag), "%" PRId64, st->lag_total);
	else
		snprintf(lag, sizeof(lag), "?");
	char stuck[64] = "";
	if (st->retrying)
		snprintf(stuck, sizeof(stuck), " stuck: retrying a batch, oldest held %.0f s",
		         time_mono() - st->retry_since);
	return snprintf(buf, len,
	                "sink: rows_written=%" PRIu64 " rows_per_s=%.0f duplicates=%" PRIu64
	                " dead_letters=%" PRIu64 " dead_letters_db=%" PRIu64 " batches=%" PRIu64
	                " consumed=%" PRIu64 " lag=%s db=%s%s%s%s%s",
	                st->rows_written, st->rows_per_s, st->duplicates, st->dead_letters,
	                st->dead_letters_db, st->batches, st->consumed, lag,
	                st->db_connected ? "up" : "down", st->paused ? " paused" : "", stuck,
	                st->last_error[0] ? " last_error=" : "", st->last_error);
}

static int sink_svc_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	struct sink_stats st;
	sink_stats(impl, &st);
	if (!final)
		return running_line(&st, buf, len);
	double ran = uptime_s;
	return snprintf(buf, len,
	                "sink: stopped after %.0f s; rows_written=%" PRIu64
	                " (%.0f rows/s on average) duplicates=%" PRIu64 " dead_letters=%" PRIu64
	                " batches=%" PRIu64 " consumed=%" PRIu64 " stats_rows=%" PRIu64
	                " stats_errors=%" PRIu64 " rollup_closes=%" PRIu64
	                " rollup_recomputes=%" PRIu64 "%s%s",
	                ran, st.rows_written, ran > 0 ? (double)st.rows_written / ran : 0.0,
	                st.duplicates, st.dead_letters, st.batches, st.consumed, st.stats_rows,
	                st.stats_errors, st.rollup_closes, st.rollup_recomputes,
	                st.last_error[0] ? " last_error=" : "", st.last_error);
}

/* The sink as a service: impl is a struct sink, made here from the configuration (the
 * subcommand) or by the pipeline with sink_create (service_wrap). */
static int sink_svc_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	struct sink_options o;
	sink_cmd_options(cfg, &o);
	struct sink *s = NULL;
	int rc = sink_create(&s, &o, err, errlen);
	*impl = s; /* the host owns it: sink_svc_destroy */
	return rc;
}

/* a clean stop commits the open batch */
SERVICE_FORWARD_STOP(sink_svc_stop, sink_stop, sink_stop_now)
SERVICE_FORWARD(sink_svc_destroy, sink_destroy)

static int sink_svc_start(void *impl, char *err, size_t errlen)
{
	int rc = sink_start(impl);
	if (rc) {
		snprintf(err, errlen, "cannot start the sink thread: %s", strerror(-rc));
		return rc == -EINVAL ? -EIO : rc;
	}
	char what[256];
	sink_describe(impl, true, what, sizeof(what));
	log_info("sink: %s", what);
	return 0;
}

static void sink_svc_status(void *impl, struct service_status *out)
{
	struct sink_stats st;
	sink_stats(impl, &st);
	service_status_db(out, st.failed, st.db_connected, st.last_error);
}

static int sink_svc_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	return ready ? sink_describe(impl, false, buf, len) : 0;
}

const struct service_ops sink_service_ops = {
    SERVICE_OPS_BASE("sink", sink_svc),  .create = sink_svc_create,
    .status = sink_svc_status,           .stats_line = sink_svc_stats_line,
    .notify_text = sink_svc_notify_text,
};

void sink_cmd_options(const struct config *cfg, struct sink_options *o)
{
	*o = (struct sink_options){
	    .brokers = config_str(cfg, "brokers"),
	    .topic = config_str(cfg, "topic"),
	    .group = config_str(cfg, "group"),
	    .dlq_topic = config_str(cfg, "dlq-topic"),
	    .conninfo = config_str(cfg, "db"),
	    .batch_size = (int)config_int(cfg, "batch-size"),
	    .batch_timeout_s = config_double(cfg, "batch-timeout"),
	    .max_future_s = config_double(cfg, "max-clock-skew"),
	    .maintenance_interval_s = config_double(cfg, "maintenance-interval"),
	};
	o->kafka_props = config_list_items(cfg, "X", &o->nkafka_props);
}
