#include "sink/sink_rollups.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/rollup.h"
#include "sink/sink_db.h"
#include "sink/sink_int.h"
#include "store/pg.h"

/* A minute's rollups are written once the newest committed sample is this far past its end (or
 * the sink has been idle this long); the rows of a minute already closed are merged one batch
 * at a time, as late rows. */
#define CLOSE_GRACE_S 20.0
#define CLOSE_EVERY_S 5.0 /* how often writer 0 looks for minutes to close */
#define MINUTE_US     60000000LL

/* COPYs copy (binary COPY tuples of rollup groups, rollup_copy's output) into table, which has
 * gpu_metrics_1min's columns; nothing when copy is empty. Returns 0 or what sink_db_copy_in
 * returns. */
static int copy_rollups(struct sink *s, int w, const char *table, const struct strbuf *copy,
                        char *err, size_t errlen, char state[6])
{
	char sql[4400];
	if (!copy->len)
		return 0;
	snprintf(sql, sizeof(sql), "COPY %s %s FROM STDIN (FORMAT binary)", table,
	         rollup_columns());
	return sink_db_copy_in(s, w, sql, true, copy->data, copy->len, err, errlen, state);
}

/* Merges copy into gpu_metrics_1min through the session's gpuhealth_rollup_stage; nothing when
 * copy is empty. Returns 0 or what sink_db_copy_in/sink_db_exec return. */
int sink_rollups_merge(struct sink *s, int w, const struct strbuf *copy, char *err, size_t errlen,
                       char state[6])
{
	int rc;
	if (!copy->len)
		return 0;
	if ((rc = copy_rollups(s, w, "gpuhealth_rollup_stage", copy, err, errlen, state)))
		return rc;
	return sink_db_exec(s, w, "SELECT gpuhealth_merge_rollups()", 0, NULL, NULL, err, errlen,
	                    state);
}

/*
 * Closes the minutes [mark, target) in one transaction with the mark locked FOR UPDATE (so every
 * batch that read the old mark has committed, and its rollups are in open): when the database
 * holds exactly the rows this sink kept the rollups of in that range (the counts agree; this
 * sink's rows are a subset of the database's), those rollups are written once per (GPU,
 * minute); else the database computes them from gpu_metrics (rows of another sink, of a batch
 * written the staged way, or from before a restart), at most 5 minutes at a time. *reached is
 * the new mark. Returns 0 or -EIO.
 *
 * optimistic: the rollups are written first, from the mark the batches last read, without the
 * lock (batches go on writing meanwhile; writing 200,000 groups takes seconds), inserted
 * straight (no row of those minutes exists yet), then the lock is
 * taken and the guess checked: the same mark, no sample added to those minutes meanwhile, and
 * the database's rows agreeing. Anything else: ROLLBACK and -EAGAIN (the caller closes again,
 * not optimistic). The batches then wait only for the count.
 */
static int close_once(struct sink *s, int w, int64_t target, int64_t *reached, bool optimistic)
{
	char err[512] = "", state[6] = "", tv[64];
	PGresult *r = NULL;
	int rc = sink_db_ensure(s, w);
	if (rc)
		return rc;
	snprintf(tv, sizeof(tv), "%.6f", (double)target / 1e6 + 946684800.0);
	const char *p[1] = {tv};
	bool recompute = false;
	int64_t old, done, guess = INT64_MIN;
	uint64_t dbrows = 0, mine = 0, mine0 = 0;
	if (optimistic) {
		pthread_mutex_lock(&s->rlock);
		guess = s->mark;
		bool ok = guess != INT64_MIN && guess < target;
		if (ok) {
			rollup_drop_below(s->open, guess); /* a mark only moves on */
			mine0 = rollup_samples(s->open, guess, target);
			strbuf_reset(&s->close_copy);
			ok = rollup_copy_range(s->open, guess, target, &s->close_copy) == 0;
		}
		pthread_mutex_unlock(&s->rlock);
		if (!ok)
			return -EAGAIN;
	}
	if ((rc = sink_db_exec(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)))
		goto fail;
	/* groups of minutes at or after the mark: by schema/006's promise gpu_metrics_1min has no
	 * row of them, so one COPY inserts them straight (multi-row inserts; staging and ON
	 * CONFLICT row by row was ~15 % of PostgreSQL's CPU at 200,704 GPUs). A row there anyway
	 * (another sink closed the minute meanwhile) fails it with unique_violation */
	if (optimistic && (rc = copy_rollups(s, w, "gpu_metrics_1min", &s->close_copy, err,
	                                     sizeof(err), state))) {
		if (strcmp(state, "23505") != 0)
			goto fail;
		sink_db_abort(s, w); /* a group already there: the locked way merges instead */
		log_debug("sink: optimistic rollup close met a closed group; closing locked");
		return -EAGAIN;
	}
	if ((rc = sink_db_exec(s, w,
	                       "SELECT extract(epoch FROM through)::float8, rows_between FROM "
	                       "gpuhealth_rollup_lock(to_timestamp($1::float8))",
	                       1, p, &r, err, sizeof(err), state)))
		goto fail;
	old = rollup_minute(pg_double(r, 0, 0));
	dbrows = (uint64_t)pg_int(r, 0, 1);
	pg_clear(r);
	r = NULL;
	done = old;
	if (optimistic) {
		pthread_mutex_lock(&s->rlock);
		mine = rollup_samples(s->open, old, target);
		pthread_mutex_unlock(&s->rlock);
		if (old != guess || mine != mine0 || dbrows != mine0) {
			char ignore[128], st2[6];
			sink_db_exec(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
			log_debug("sink: optimistic rollup close missed (mark %s, samples "
			          "%llu/%llu/%llu)",
			          old == guess ? "same" : "moved", (unsigned long long)mine0,
			          (unsigned long long)mine, (unsigned long long)dbrows);
			return -EAGAIN;
		}
		if ((rc = sink_db_exec(s, w,
		                       "SELECT gpuhealth_rollup_close(to_timestamp($1::float8))", 1,
		                       p, NULL, err, sizeof(err), state)))
			goto fail;
		done = target;
	} else if (old < target) {
		pthread_mutex_lock(&s->rlock);
		rollup_drop_below(s->open, old); /* closed by another sink meanwhile */
		mine = rollup_samples(s->open, old, target);
		strbuf_reset(&s->close_copy);
		recompute =
		    mine != dbrows || rollup_copy_range(s->open, old, target, &s->close_copy) != 0;
		pthread_mutex_unlock(&s->rlock);
		if (!recompute) {
			if ((rc =
			         sink_rollups_merge(s, w, &s->close_copy, err, sizeof(err), state)))
				goto fail;
			if ((rc = sink_db_exec(
			         s, w, "SELECT gpuhealth_rollup_close(to_timestamp($1::float8))", 1,
			         p, NULL, err, sizeof(err), state)))
				goto fail;
			done = target;
		} else {
			if ((rc = sink_db_exec(
			         s, w,
			         "SELECT extract(epoch FROM gpuhealth_rollup_recompute("
			         "to_timestamp($1::float8)))::float8",
			         1, p, &r, err, sizeof(err), state)))
				goto fail;
			done = rollup_minute(pg_double(r, 0, 0));
			pg_clear(r);
			r = NULL;
		}
	}
	if ((rc = sink_db_exec(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state)))
		goto fail;
	pthread_mutex_lock(&s->rlock);
	if (done > s->mark)
		s->mark = done;
	rollup_drop_below(s->open, done);
	pthread_mutex_unlock(&s->rlock);
	if (done > old) {
		pthread_mutex_lock(&s->lock);
		s->st.rollup_closes++;
		if (recompute)
			s->st.rollup_recomputes++;
		pthread_mutex_unlock(&s->lock);
		char ts[40];
		time_format_rfc3339((double)done / 1e6 + 946684800.0, ts, sizeof(ts));
		log_debug("sink: 1-minute rollups closed up to %s: %llu rows, %s", ts,
		          (unsigned long long)dbrows,
		          recompute ? "computed by the database" : "from this sink's memory");
	}
	*reached = done;
	return 0;
fail:
	if (r)
		pg_clear(r);
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	sink_set_error(s, "database: %s", err);
	log_warn("sink: cannot close the 1-minute rollups (%s); tried again later", err);
	sink_db_abort(s, w);
	return -EIO;
}

/*
 * Writer 0, between batches, when idle and at stop: closes the minutes that end CLOSE_GRACE_S
 * before the newest committed sample (not after this host's clock), every CLOSE_EVERY_S; when
 * idle that long or at stop (final), every minute up to the newest sample.
 */
void sink_rollups_close(struct sink *s, int w, bool final)
{
	if (!atomic_load(&s->has_mark))
		return;
	for (int round = 0; round < 10000; round++) {
		pthread_mutex_lock(&s->rlock);
		double newest = s->newest, idle = time_mono() - s->last_commit;
		int64_t known = s->mark;
		bool due = final || time_mono() - s->closed_at >= CLOSE_EVERY_S;
		pthread_mutex_unlock(&s->rlock);
		if (!due || newest == -INFINITY)
			return;
		double now = time_now(), t = newest < now ? newest : now;
		int64_t target = final || idle >= CLOSE_GRACE_S ? rollup_minute(t) + MINUTE_US
		                                                : rollup_minute(t - CLOSE_GRACE_S);
		if (target <= known)
			return;
		int64_t reached = INT64_MIN;
		int rc = close_once(s, w, target, &reached, true);
		if (rc == -EAGAIN)
			rc = close_once(s, w, target, &reached, false);
		pthread_mutex_lock(&s->rlock);
		s->closed_at = time_mono();
		pthread_mutex_unlock(&s->rlock);
		if (rc || reached >= target || !final || atomic_load(&s->w.stop_now))
			return;
	}
}
