#include "sink/sink_cmd.h"

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
#include "sink/sink.h"

static void log_stats(const struct sink_stats *st, const char *prefix)
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
	log_info("%s rows_written=%" PRIu64 " rows_per_s=%.0f duplicates=%" PRIu64
		 " dead_letters=%" PRIu64 " dead_letters_db=%" PRIu64 " batches=%" PRIu64
		 " consumed=%" PRIu64 " lag=%s db=%s%s%s%s%s",
		 prefix, st->rows_written, st->rows_per_s, st->duplicates, st->dead_letters,
		 st->dead_letters_db, st->batches, st->consumed, lag, st->db_connected ? "up" : "down",
		 st->paused ? " paused" : "", stuck, st->last_error[0] ? " last_error=" : "",
		 st->last_error);
}

int sink_cmd_run(struct config *cfg)
{
	log_set_timestamps(1);
	signals_install();
	size_t nprops = config_list_len(cfg, "X");
	const char **props = calloc(nprops ? nprops : 1, sizeof(*props));
	if (!props)
		return CLI_EXIT_FAILURE;
	for (size_t i = 0; i < nprops; i++)
		props[i] = config_list_at(cfg, "X", i);
	struct sink_options o = {
		.brokers = config_str(cfg, "brokers"),
		.topic = config_str(cfg, "topic"),
		.group = config_str(cfg, "group"),
		.dlq_topic = config_str(cfg, "dlq-topic"),
		.kafka_props = props,
		.nkafka_props = nprops,
		.conninfo = config_str(cfg, "db"),
		.batch_size = (int)config_int(cfg, "batch-size"),
		.batch_timeout_s = config_double(cfg, "batch-timeout"),
		.max_future_s = config_double(cfg, "max-clock-skew"),
		.maintenance_interval_s = config_double(cfg, "maintenance-interval"),
	};
	struct sink *s = NULL;
	char err[512];
	int rc = sink_create(&s, &o, err, sizeof(err));
	free(props); /* sink_create copied what it keeps */
	if (rc) {
		log_error("%s", err);
		return rc == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
	}
	rc = sink_start(s);
	if (rc) {
		log_error("cannot start the sink thread: %s", strerror(-rc));
		sink_destroy(s);
		return CLI_EXIT_FAILURE;
	}
	log_info("sink: consuming %s as group %s, batches of up to %d rows or %.1f s", o.topic, o.group,
		 o.batch_size, o.batch_timeout_s);
	notify_status(true, "consuming %s as group %s", o.topic, o.group);
	double start = time_mono(), last = start;
	double duration = config_is_set(cfg, "duration") ? config_double(cfg, "duration") : -1;
	double every = config_double(cfg, "stats-interval");
	int status = CLI_EXIT_OK;
	struct sink_stats st;
	for (;;) {
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
		if (signals_stop_requested()) {
			log_info("sink: signal %d, stopping", signals_stop_signal());
			break;
		}
		double now = time_mono();
		notify_watchdog_tick(now);
		if (duration >= 0 && now - start >= duration)
			break;
		sink_stats(s, &st);
		if (st.failed) {
			log_error("sink: stopped: %s", st.last_error);
			status = CLI_EXIT_FAILURE;
			break;
		}
		if (every > 0 && now - last >= every) {
			log_stats(&st, "sink:");
			last = now;
		}
	}
	notify_send("STOPPING=1");
	sink_stop(s);
	sink_stats(s, &st);
	double ran = time_mono() - start;
	log_info("sink: stopped after %.0f s; rows_written=%" PRIu64 " (%.0f rows/s on average) "
		 "duplicates=%" PRIu64 " dead_letters=%" PRIu64 " batches=%" PRIu64
		 " consumed=%" PRIu64 " stats_rows=%" PRIu64 " stats_errors=%" PRIu64
		 " rollup_closes=%" PRIu64 " rollup_recomputes=%" PRIu64 "%s%s",
		 ran, st.rows_written, ran > 0 ? (double)st.rows_written / ran : 0.0, st.duplicates,
		 st.dead_letters, st.batches, st.consumed, st.stats_rows, st.stats_errors,
		 st.rollup_closes, st.rollup_recomputes,
		 st.last_error[0] ? " last_error=" : "", st.last_error);
	sink_destroy(s);
	return status;
}
