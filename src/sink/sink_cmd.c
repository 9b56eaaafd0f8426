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

/* The sink as the pipeline makes it (impl: a struct sink from sink_create). */
static int sink_svc_start(void *impl, char *err, size_t errlen)
{
	int rc = sink_start(impl);
	if (rc)
		snprintf(err, errlen, "cannot start the sink thread: %s", strerror(-rc));
	return rc == -EINVAL ? -EIO : rc;
}

static void sink_svc_status(void *impl, struct service_status *out)
{
	struct sink_stats st;
	sink_stats(impl, &st);
	out->state = st.failed                                ? SERVICE_FAILED
	             : (!st.db_connected && st.last_error[0]) ? SERVICE_DEGRADED
	                                                      : SERVICE_RUNNING;
	snprintf(out->last_error, sizeof(out->last_error), "%s", st.last_error);
}

static void sink_svc_stop(void *impl, enum service_stop how)
{
	if (how == SERVICE_STOP_NOW)
		sink_stop_now(impl);
	else
		sink_stop(impl); /* commits the open batch */
}

static void sink_svc_destroy(void *impl)
{
	sink_destroy(impl);
}

const struct service_ops sink_service_ops = {
    .name = "sink",
    .start = sink_svc_start,
    .status = sink_svc_status,
    .stats_line = sink_svc_stats_line,
    .stop = sink_svc_stop,
    .destroy = sink_svc_destroy,
};

/* `gpuhealth sink`: the same service made from the configuration, with its log lines */
struct sink_cmd {
	struct sink *s;
	const char *topic, *group; /* borrowed from the configuration */
	int batch_size;
	double batch_timeout_s;
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
}

static int cmd_create(void **impl, const struct config *cfg, char *err, size_t errlen)
{
	struct sink_cmd *c = calloc(1, sizeof(*c));
	size_t nprops = config_list_len(cfg, "X");
	const char **props = calloc(nprops ? nprops : 1, sizeof(*props));
	if (!c || !props) {
		free(c);
		free(props);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < nprops; i++)
		props[i] = config_list_at(cfg, "X", i);
	struct sink_options o;
	sink_cmd_options(cfg, &o);
	o.kafka_props = props;
	o.nkafka_props = nprops;
	int rc = sink_create(&c->s, &o, err, errlen);
	free(props); /* sink_create copied what it keeps */
	if (rc) {
		free(c);
		return rc;
	}
	c->topic = o.topic;
	c->group = o.group;
	c->batch_size = o.batch_size;
	c->batch_timeout_s = o.batch_timeout_s;
	*impl = c;
	return 0;
}

static int cmd_start(void *impl, char *err, size_t errlen)
{
	struct sink_cmd *c = impl;
	int rc = sink_svc_start(c->s, err, errlen);
	if (rc == 0)
		log_info("sink: consuming %s as group %s, batches of up to %d rows or %.1f s",
		         c->topic, c->group, c->batch_size, c->batch_timeout_s);
	return rc;
}

static void cmd_status(void *impl, struct service_status *out)
{
	struct sink_cmd *c = impl;
	sink_svc_status(c->s, out);
}

static int cmd_stats_line(void *impl, bool final, double uptime_s, char *buf, size_t len)
{
	struct sink_cmd *c = impl;
	return sink_svc_stats_line(c->s, final, uptime_s, buf, len);
}

static int cmd_notify_text(void *impl, bool ready, char *buf, size_t len)
{
	struct sink_cmd *c = impl;
	return ready ? snprintf(buf, len, "consuming %s as group %s", c->topic, c->group) : 0;
}

static void cmd_stop(void *impl, enum service_stop how)
{
	struct sink_cmd *c = impl;
	sink_svc_stop(c->s, how);
}

static void cmd_destroy(void *impl)
{
	struct sink_cmd *c = impl;
	sink_destroy(c->s);
	free(c);
}

static const struct service_ops sink_cmd_ops = {
    .name = "sink",
    .create = cmd_create,
    .start = cmd_start,
    .status = cmd_status,
    .stats_line = cmd_stats_line,
    .notify_text = cmd_notify_text,
    .stop = cmd_stop,
    .destroy = cmd_destroy,
};

int sink_cmd_run(struct config *cfg)
{
	log_set_timestamps(1);
	return service_main(&sink_cmd_ops, cfg);
}
