#include "sink/sink_write.h"

#include <errno.h>
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
#include "sink/event_row.h"
#include "sink/rollup.h"
#include "sink/sink_db.h"
#include "sink/sink_dlq.h"
#include "sink/sink_gpus.h"
#include "sink/sink_int.h"
#include "sink/sink_rollups.h"
#include "sink/workloads.h"
#include "store/pg.h"

#define STOP_DEADLINE_S 10.0 /* how long a stop waits for the database */
#define RETRY_TELL_S    30.0 /* a batch being retried is told this often */

/*
 * Writes nrows rows [text, text+len) and the identities [ident, ident+ilen) in one
 * transaction: straight into gpu_metrics with COPY; if that meets a row already present (a
 * redelivery), again through the staging table, ignoring the rows present. Then the rollups
 * of the rows this transaction inserted below the rollup mark (share-locked for the
 * transaction; schema/006): when every row was new, from roll (the batch's rollups computed
 * here, staged in roll_copy; or NULL), else the database's from the new rows; then the GPU
 * table. After the COMMIT, roll's groups at or after the mark join the sink's open minutes.
 * Returns 0, -EIO (retry), or -EINVAL (the data is refused).
 */
static int db_write(struct sink *s, int w, const char *text, size_t len, size_t nrows,
                    const char *ident, size_t ilen, const struct rollup *roll,
                    struct strbuf *roll_copy, double tmin, double tmax, long long *inserted,
                    long long *dups, struct batch *dl)
{
	char err[512] = "", state[6] = "", sql[4400];
	PGresult *r = NULL;
	int rc = sink_db_ensure(s, w);
	if (rc)
		return rc;
	char a[40], b[40];
	time_format_rfc3339(tmin, a, sizeof(a));
	time_format_rfc3339(tmax, b, sizeof(b));
	char markv[64] = ""; /* the mark in seconds since 1970 ("-Infinity" too); "": none */
	const char *range[3] = {a, b, markv};
	int64_t mark = INT64_MAX; /* every row is below it: merged now */
	bool staged = false;
	int restaged = 0; /* staged writes run again after a concurrent duplicate */
	double t_begin = time_mono();
again:
	if ((rc = sink_db_exec(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)) ||
	    (rc = sink_db_exec(s, w, "SELECT gpuhealth_ensure_partitions($1, $2)", 2, range, NULL,
	                       err, sizeof(err), state)))
		goto fail;
	markv[0] = '\0';
	mark = INT64_MAX;
	if (atomic_load(&s->has_mark)) {
		/* held until COMMIT: the mark cannot move while this transaction decides by it */
		if ((rc = sink_db_exec(s, w,
		                       "SELECT extract(epoch FROM through)::float8 FROM "
		                       "gpuhealth_rollup_mark FOR SHARE",
		                       0, NULL, &r, err, sizeof(err), state)))
			goto fail;
		if (pg_rows(r) != 1) {
			snprintf(err, sizeof(err),
			         "gpuhealth_rollup_mark holds %d rows, not 1: run 'gpuhealth db "
			         "migrate'",
			         pg_rows(r));
			pg_clear(r);
			r = NULL;
			rc = -EIO;
			goto fail;
		}
		snprintf(markv, sizeof(markv), "%s", pg_text(r, 0, 0));
		pg_clear(r);
		r = NULL;
		mark = rollup_minute(strtod(markv, NULL));
	}
	snprintf(sql, sizeof(sql), "COPY %s %s FROM STDIN (FORMAT binary)",
	         staged ? "gpuhealth_stage" : "gpu_metrics", event_row_columns());
	rc = sink_db_copy_in(s, w, sql, true, text, len, err, sizeof(err), state);
	if (rc && !staged && strcmp(state, "23505") == 0) {
		/* a row is already there: this batch (or part of it) was delivered before */
		char ignore[128], st2[6];
		sink_db_exec(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
		staged = true;
		goto again;
	}
	if (rc)
		goto fail;
	if (staged) {
		rc =
		    sink_db_exec(s, w, "SELECT inserted, duplicates FROM gpuhealth_ingest_staged()",
		                 0, NULL, &r, err, sizeof(err), state);
		if (rc && strcmp(state, "23505") == 0 && restaged++ < 3) {
			/* another writer committed one of these rows after this transaction's
			 * anti-join (schema/011): again, and the anti-join sees it */
			char ignore[128], st2[6];
			sink_db_exec(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
			goto again;
		}
		if (rc)
			goto fail;
		*inserted = pg_int(r, 0, 0);
		*dups = pg_int(r, 0, 1);
		pg_clear(r);
	} else {
		*inserted = (long long)nrows;
		*dups = 0;
	}
	double t_rows = time_mono();
	/* every row new and roll complete: its groups below the mark now, the rest at their close
	 */
	bool mine = roll && !staged;
	if (mine) {
		strbuf_reset(roll_copy);
		mine = rollup_copy_range(roll, INT64_MIN, mark, roll_copy) == 0;
	}
	if (mine) {
		if ((rc = sink_rollups_merge(s, w, roll_copy, err, sizeof(err), state)))
			goto fail;
	} else if ((rc = sink_db_exec(s, w,
	                              markv[0] ? "SELECT gpuhealth_rollup_new($1, $2, "
	                                         "to_timestamp($3::float8))"
	                                       : "SELECT gpuhealth_rollup_new($1, $2)",
	                              markv[0] ? 3 : 2, range, NULL, err, sizeof(err), state))) {
		/* (the rows at or after the mark: the database counts them when they close) */
		goto fail;
	}
	double t_roll = time_mono();
	/* the GPUs that need it (none: no statement) */
	if (ilen && ((rc = sink_db_copy_in(s, w,
	                                   "COPY gpuhealth_ident (" EVENT_ROW_IDENT_COLUMNS
	                                   ", first_seen, last_seen) FROM STDIN",
	                                   false, ident, ilen, err, sizeof(err), state)) ||
	             (rc = sink_db_exec(s, w, "SELECT gpuhealth_merge_gpus()", 0, NULL, NULL, err,
	                                sizeof(err), state)) ||
	             (rc = sink_gpus_fleet_now(s, w, err, sizeof(err), state))))
		goto fail;
	/* the dead letters the dead-letter topic refused: committed with the batch */
	if (dl && (rc = sink_dlq_insert(s, w, dl, err, sizeof(err), state)))
		goto fail;
	/* the batch's workload changes (gpu_workloads; idempotent, so a redelivery merges into
	 * the rows it wrote before) */
	if (dl && dl->wl_json) {
		const char *wp[1] = {dl->wl_json};
		if ((rc = sink_db_exec(s, w, "SELECT gpuhealth_merge_workloads($1::jsonb)", 1, wp,
		                       NULL, err, sizeof(err), state)))
			goto fail;
	}
	double t_gpus = time_mono();
	pthread_mutex_lock(&s->rlock);
	rc = sink_db_exec(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state);
	if (!rc) {
		/* (out of memory: part of them kept; the close sees the count differ and has the
		 * database compute those minutes) */
		if (roll && !staged && markv[0] && rollup_merge(s->open, roll, mark))
			log_warn("sink: out of memory keeping rollups; the database computes them");
		if (tmax > s->newest)
			s->newest = tmax;
		s->last_commit = time_mono();
		if (markv[0] && mark > s->mark)
			s->mark = mark;
	}
	pthread_mutex_unlock(&s->rlock);
	if (rc)
		goto fail;
	log_debug("sink: transaction: rows %.3f s%s, rollups %.3f s, gpus %.3f s, commit %.3f s",
	          t_rows - t_begin, staged ? " (staged)" : "", t_roll - t_rows, t_gpus - t_roll,
	          time_mono() - t_gpus);
	return 0;
fail:;
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	sink_set_error(s, "database: %s", err);
	sink_db_abort(s, w);
	return rc == -EINVAL ? -EINVAL : -EIO;
}

/* The database refused a batch's data: write row by row so only the refused rows become dead
 * letters (with the database's reason) and the rest is stored. */
static int write_row_by_row(struct sink *s, int w, struct batch *b, long long *ins, long long *dups,
                            double deadline)
{
	for (size_t i = 0; i < b->nitems; i++) {
		struct item *it = &b->items[i];
		if (it->reason)
			continue;
		long long n_ins = 0, n_dup = 0;
		int attempt = 0, rc;
		if (sink_gpus_ident_copy(b, it))
			return -ENOMEM;
		while ((rc = db_write(s, w, b->rows.data + it->row_off, it->row_len, 1,
		                      b->ident_copy.data, b->ident_copy.len, NULL, NULL, it->time,
		                      it->time, &n_ins, &n_dup, NULL)) == -EIO) {
			if (!sink_backoff(s, attempt++, deadline))
				return -EIO;
		}
		if (rc == -EINVAL) {
			pthread_mutex_lock(&s->lock);
			it->reason = strdup(s->st.last_error);
			pthread_mutex_unlock(&s->lock);
			if (!it->reason)
				return -ENOMEM;
			continue;
		}
		*ins += n_ins;
		*dups += n_dup;
	}
	return 0;
}

/*
 * The batch's rows grouped by GPU (each GPU's rows in arrival order, the GPUs in order of first
 * appearance) into by_gpu: consecutive rows then go to the same leaf of the (gpu_key, time)
 * index and the same heap pages, instead of a different leaf for every row when a fleet's
 * samples arrive interleaved. PostgreSQL's COPY took ~15 % less time so. Returns the rows to
 * send: by_gpu, or the rows as they came when memory is short.
 */
static const char *group_by_gpu(struct batch *b)
{
	if (b->seen_n > b->gpu_off_cap) {
		size_t *p = realloc(b->gpu_off, b->seen_n * sizeof(*p));
		if (!p)
			return b->rows.data;
		b->gpu_off = p;
		b->gpu_off_cap = b->seen_n;
	}
	if (b->rows.len > b->by_gpu_cap) {
		char *p = realloc(b->by_gpu, b->rows.len);
		if (!p)
			return b->rows.data;
		b->by_gpu = p;
		b->by_gpu_cap = b->rows.len;
	}
	memset(b->gpu_off, 0, b->seen_n * sizeof(*b->gpu_off));
	size_t total = 0;
	for (size_t i = 0; i < b->nitems; i++)
		if (!b->items[i].reason)
			b->gpu_off[b->items[i].gpu] += b->items[i].row_len;
	for (size_t g = 0; g < b->seen_n; g++) { /* sizes -> starts */
		size_t n = b->gpu_off[g];
		b->gpu_off[g] = total;
		total += n;
	}
	if (total != b->rows.len)
		return b->rows.data; /* not only rows in the buffer: send it as it is */
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->reason)
			continue;
		memcpy(b->by_gpu + b->gpu_off[it->gpu], b->rows.data + it->row_off, it->row_len);
		b->gpu_off[it->gpu] += it->row_len;
	}
	return b->by_gpu;
}

/*
 * Writes a queued batch on writer w's connection: rows committed (retrying while the database
 * is away; the consumer pauses when every batch is taken), dead letters delivered. When
 * stopping, gives up after the stop deadline. Offsets are not stored here but by sink_queue's
 * finish(), in queue order. Returns 0 or -EIO (given up: not acknowledged, so redelivered).
 */
int sink_write_batch(struct sink *s, int w, struct batch *b)
{
	b->ins = b->dups = 0;
	b->dead = b->dead_db = 0;
	/* a batch before this one was given up: its offsets must stay behind */
	if (atomic_load(&s->abandoned))
		goto abandon;
	double deadline = time_mono() + STOP_DEADLINE_S;
	long long ins = 0, dups = 0;
	int rc = 0, attempt = 0;
	double t0 = time_mono(), told = 0;
	/* dead letters first: what the topic refuses rides in the batch's transaction */
	if (sink_dlq_deliver(s, b, deadline))
		goto abandon;
	size_t ntable = sink_dlq_count(b);
	if (b->nrows && atomic_load(&s->has_workloads) && b->wl_runs &&
	    workloads_pending_json(s->workloads, b->wl_runs, &b->wl_json)) {
		log_error("sink: out of memory building a batch");
		goto abandon;
	}
	if (b->nrows && sink_gpus_copy(s, b)) {
		log_error("sink: out of memory building a batch");
		goto abandon;
	}
	if (b->nrows || ntable) {
		const char *rows = b->nrows ? group_by_gpu(b) : NULL;
		while ((rc = b->nrows
		                 ? db_write(s, w, rows, b->rows.len, b->nrows, b->ident_copy.data,
		                            b->ident_copy.len, b->roll_ok ? b->roll : NULL,
		                            &b->roll_copy, b->tmin, b->tmax, &ins, &dups, b)
		                 : sink_dlq_write(s, w, b)) == -EIO) {
			pthread_mutex_lock(&s->lock);
			s->st.db_errors++;
			s->st.retrying = true;
			s->st.retry_since = b->batch_started;
			pthread_mutex_unlock(&s->lock);
			/* told at warning level once per RETRY_TELL_S, with the count and the age
			 * of the oldest message held */
			if (time_mono() - told >= RETRY_TELL_S) {
				told = time_mono();
				log_warn(
				    "sink: retrying a batch of %zu messages (%zu rows, %zu dead "
				    "letters for the table), the oldest held %.0f s, attempt %d: "
				    "%s; "
				    "consumption paused",
				    b->nitems, b->nrows, ntable, time_mono() - b->batch_started,
				    attempt + 1, s->st.last_error);
			}
			if (!sink_backoff(s, attempt++, deadline) || atomic_load(&s->abandoned))
				goto abandon;
		}
		if (rc == 0 && b->nrows) {
			sink_gpus_committed(s, b);
			/* also when it merged nothing: how far its runs went is kept */
			if (atomic_load(&s->has_workloads) && b->wl_runs)
				workloads_committed(s->workloads, b->wl_runs);
		}
		if (rc == -EINVAL) {
			/* each row merges its own GPU; the known GPUs are left as they were */
			log_warn("sink: the database refused a batch (%s); writing it row by row",
			         s->st.last_error);
			if (write_row_by_row(s, w, b, &ins, &dups, deadline))
				goto abandon;
			/* the rows it refused are dead letters too; the table's in a transaction of
			 * their own (the rows' were one each) */
			if (sink_dlq_deliver(s, b, deadline))
				goto abandon;
			ntable = sink_dlq_count(b);
			while (ntable && sink_dlq_write(s, w, b))
				if (!sink_backoff(s, attempt++, deadline) ||
				    atomic_load(&s->abandoned))
					goto abandon;
		}
		if (attempt)
			log_info("sink: database back after %d attempts", attempt);
		pthread_mutex_lock(&s->lock);
		s->st.retrying = false;
		pthread_mutex_unlock(&s->lock);
	}
	log_debug(
	    "sink: batch of %zu rows (%zu bytes of binary COPY) written in %.3f s: %lld new, %lld "
	    "duplicates",
	    b->nrows, b->rows.len, time_mono() - t0, ins, dups);
	for (size_t i = 0; i < b->nitems; i++)
		if (b->items[i].reason) {
			b->dead++;
			b->dead_db += atomic_load(&b->items[i].dlq) == DLQ_TABLE;
		}
	b->ins = ins;
	b->dups = dups;
	return 0;
abandon:
	pthread_mutex_lock(&s->lock);
	s->st.retrying = false;
	pthread_mutex_unlock(&s->lock);
	/* Dead letters still in flight point into this batch: purge them and serve their
	 * reports before the batch goes away. (Another writer's dead letters purged with them
	 * fail and are produced again by its own retry loop.) */
	sender_purge(s->dlq);
	sender_flush(s->dlq, 5000);
	return -EIO;
}
