#include "sink/sink_upkeep.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/timeutil.h"
#include "sink/sink.h"
#include "sink/sink_db.h"
#include "sink/sink_int.h"
#include "store/pg.h"

void sink_upkeep_partitions(struct sink *s)
{
	const int w = 0; /* writer 0 (the sink thread before the writers start) */
	if (sink_db_ensure(s, w))
		return;
	char err[512];
	PGresult *r = pg_exec_simple(
	    pgconn_db(s->pg[w]),
	    "SELECT gpuhealth_ensure_partitions(now() - interval '1 day', now() + "
	    "(SELECT value::int FROM gpuhealth_settings WHERE key = "
	    "'partitions_ahead_days') * interval '1 day'), gpuhealth_drop_expired()");
	if (pg_tuples_ok(r)) {
		int made = atoi(pg_text(r, 0, 0));
		int dropped = atoi(pg_text(r, 0, 1));
		if (made || dropped)
			log_info("sink: partitions: %d created, %d expired dropped", made, dropped);
		pthread_mutex_lock(&s->lock);
		s->st.partitions_dropped += (uint64_t)dropped;
		pthread_mutex_unlock(&s->lock);
	} else {
		snprintf(err, sizeof(err), "%s", pg_result_error(r));
		sink_set_error(s, "maintenance: %s", err);
		log_warn("sink: partition maintenance failed: %s", err);
	}
	pg_clear(r);
	/* the health tables' partitions on plain PostgreSQL (schema/012; no-op on TimescaleDB) */
	r = pg_exec_simple(pgconn_db(s->pg[w]), "SELECT gpuhealth_health_upkeep()");
	if (pg_tuples_ok(r)) {
		if (atoi(pg_text(r, 0, 0)))
			log_info("sink: health partitions: %s expired dropped", pg_text(r, 0, 0));
	} else {
		snprintf(err, sizeof(err), "%s", pg_result_error(r));
		sink_set_error(s, "maintenance: %s", err);
		log_warn("sink: health partition maintenance failed: %s", err);
	}
	pg_clear(r);
}

/*
 * Inserts one pipeline_stats row: the counters since start and the consumer lag (NULL when
 * unknown), one statement in its own transaction. Runs on the writer thread between batches,
 * only on a connection that is up and idle (no reconnect here: the batches do that). A failure
 * is logged and counted, never fatal; a missing table (a database at an older schema) is told
 * once with the fix.
 */
void sink_upkeep_stats(struct sink *s)
{
	const int w = 0; /* writer 0 writes the stats rows */
	s->last_stats = time_mono();
	if (!pgconn_up(s->pg[w]) || !pg_idle(pgconn_db(s->pg[w])))
		return;
	struct sink_stats st;
	sink_stats(s, &st);
	char at[40], lag[24], consumed[24], rows[24], dead[24], errs[24];
	time_format_rfc3339(time_now(), at, sizeof(at));
	snprintf(lag, sizeof(lag), "%lld", (long long)st.lag_total);
	snprintf(consumed, sizeof(consumed), "%llu", (unsigned long long)st.consumed);
	snprintf(rows, sizeof(rows), "%llu", (unsigned long long)st.rows_written);
	snprintf(dead, sizeof(dead), "%llu", (unsigned long long)st.dead_letters);
	snprintf(errs, sizeof(errs), "%llu", (unsigned long long)st.db_errors);
	const char *lag_p = st.lag_total >= 0 ? lag : NULL; /* NULL: unknown */
	const char *params[9] = {at,       s->instance, s->group, s->topic, lag_p,
	                         consumed, rows,        dead,     errs};
	PGresult *r = pg_exec_params(pgconn_db(s->pg[w]),
	                             "INSERT INTO pipeline_stats (time, service, instance, "
	                             "consumer_group, topic, lag, consumed, rows_written, "
	                             "dead_letters, db_errors) "
	                             "VALUES ($1, 'sink', $2, $3, $4, $5, $6, $7, $8, $9)",
	                             9, params);
	if (pg_command_ok(r)) {
		if (s->stats_failing)
			log_info("sink: pipeline_stats rows are written again");
		s->stats_failing = false;
		pthread_mutex_lock(&s->lock);
		s->st.stats_rows++;
		pthread_mutex_unlock(&s->lock);
		pg_clear(r);
		return;
	}
	const char *code = pg_sqlstate(r);
	bool missing = code && strcmp(code, "42P01") == 0; /* undefined_table */
	if (pg_sqlstate_reconnect(code)) /* the next batch of this writer connects again */
		pgconn_mark(s->pg[w]);
	char err[256];
	snprintf(err, sizeof(err), "%s", pg_result_error(r));
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	pg_clear(r);
	pthread_mutex_lock(&s->lock);
	s->st.stats_errors++;
	pthread_mutex_unlock(&s->lock);
	if (missing) {
		if (!s->stats_missing_told)
			log_warn("sink: the database has no table pipeline_stats (its schema "
			         "is older than this sink): run 'gpuhealth db migrate'; until then "
			         "the lag and dead letters are only in the stats line");
		s->stats_missing_told = true;
	} else if (!s->stats_failing) {
		log_warn("sink: cannot write pipeline_stats (retried every %.0f s): %s",
		         SINK_STATS_PERIOD_S, err);
	} else {
		log_debug("sink: cannot write pipeline_stats: %s", err);
	}
	s->stats_failing = true;
	if (!pg_connected(pgconn_db(s->pg[w])))
		sink_db_close(s, w);
}
