#include "sink/sink_queue.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/rollup.h"
#include "sink/sink.h"
#include "sink/sink_gpus.h"
#include "sink/sink_int.h"
#include "sink/sink_rollups.h"
#include "sink/sink_upkeep.h"
#include "sink/sink_write.h"
#include "sink/workloads.h"

/* Frees the batch's messages and reasons and empties it (keeps the memory). */
void sink_queue_clear(struct batch *b)
{
	for (size_t i = 0; i < b->nitems; i++) {
		bus_msg_free(&b->items[i].m);
		free(b->items[i].reason);
	}
	b->nitems = 0;
	b->nrows = 0;
	b->offs.n = 0;
	strbuf_reset(&b->rows);
	strbuf_reset(&b->idents);
	sink_gpus_batch_clear(b);
	strbuf_reset(&b->ident_copy);
	if (b->wl_runs)
		workload_runs_clear(b->wl_runs);
	free(b->wl_json);
	b->wl_json = NULL;
	if (b->roll)
		rollup_reset(b->roll);
	b->roll_ok = b->roll != NULL;
	strbuf_reset(&b->roll_copy);
}

static void store_offsets(struct sink *s, struct batch *b)
{
	if (!b->offs.n)
		return;
	int rc = consumer_store(s->consumer, &b->offs);
	pthread_mutex_lock(&s->lock);
	for (int i = 0; !rc && i < b->offs.n; i++)
		sink_acked_set(s, b->offs.o[i].partition, b->offs.o[i].next, true);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Finishes the oldest batch once written, in queue order: a committed batch stores its offsets
 * (only while no earlier batch was given up, so an offset is never stored ahead of rows that
 * are not committed) and adds to the counters; a given-up batch marks the sink abandoned until
 * the next assignment. Called with wlock held; drops it while it works.
 */
static void finish(struct sink *s)
{
	while (!s->finishing) {
		struct batch *b = NULL;
		for (int i = 0; i < NBATCH; i++)
			if (s->batches[i].state == B_DONE && s->batches[i].seq == s->seq_done)
				b = &s->batches[i];
		if (!b)
			return;
		s->finishing = true;
		pthread_mutex_unlock(&s->wlock);
		if (b->rc) {
			if (!atomic_load(&s->abandoned))
				log_warn("sink: giving up an unwritten batch of %zu messages; not "
				         "acknowledged, so Kafka redelivers it",
				         b->nitems);
			atomic_store(&s->abandoned, true);
		} else {
			/* Committed after an earlier batch was given up, its offsets stay behind:
			 * the redelivery finds its rows present. */
			if (!atomic_load(&s->abandoned))
				store_offsets(s, b);
			pthread_mutex_lock(&s->lock);
			s->st.rows_written += (uint64_t)b->ins;
			s->st.duplicates += (uint64_t)b->dups;
			s->st.dead_letters += b->dead;
			s->st.dead_letters_db += b->dead_db;
			s->st.batches++;
			pthread_mutex_unlock(&s->lock);
		}
		sink_queue_clear(b);
		pthread_mutex_lock(&s->wlock);
		b->state = B_FREE;
		s->seq_done++;
		s->finishing = false;
		pthread_cond_broadcast(&s->wcond);
	}
}

/* The oldest queued batch, or NULL. Called with wlock held. */
static struct batch *next_queued(struct sink *s)
{
	struct batch *b = NULL;
	if (s->maint)
		return NULL; /* no batch starts during the partition upkeep */
	for (int i = 0; i < NBATCH; i++)
		if (s->batches[i].state == B_QUEUED && (!b || s->batches[i].seq < b->seq))
			b = &s->batches[i];
	return b;
}

/* Whether a writer is writing a batch. Called with wlock held. */
static bool writing(const struct sink *s)
{
	for (int i = 0; i < NBATCH; i++)
		if (s->batches[i].state == B_WRITING)
			return true;
	return false;
}

/* A writer thread: writes the oldest queued batch on its own connection, then finishes what is
 * written in queue order. Writer 0 also does the partition upkeep and the pipeline_stats rows
 * between batches. Each uses only its own connection. */
static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	struct sink *s = wr->s;
	const int w = wr->w;
	pthread_mutex_lock(&s->wlock);
	for (;;) {
		struct batch *b;
		while (!(b = next_queued(s)) && !s->writer_stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->wcond, &s->wlock, &ts);
			if (w == 0 && !next_queued(s) && !writing(s) &&
			    time_mono() - s->last_maint >= s->maintenance_s) {
				/* Alone: creating and dropping partitions locks gpu_metrics, which
				 * could deadlock with another writer's open COPY. */
				s->maint = true;
				pthread_mutex_unlock(&s->wlock);
				sink_upkeep_partitions(s);
				s->last_maint = time_mono();
				pthread_mutex_lock(&s->wlock);
				s->maint = false;
				pthread_cond_broadcast(&s->wcond);
			}
			if (w == 0 && !next_queued(s) && !s->writer_stop) {
				pthread_mutex_unlock(&s->wlock);
				sink_gpus_refresh(s, w, false);
				sink_rollups_close(s, w, false);
				pthread_mutex_lock(&s->wlock);
			}
			if (w == 0 && !next_queued(s) && !s->writer_stop &&
			    time_mono() - s->last_stats >= SINK_STATS_PERIOD_S) {
				pthread_mutex_unlock(&s->wlock);
				sink_upkeep_stats(s);
				pthread_mutex_lock(&s->wlock);
			}
		}
		if (!b)
			break; /* writer_stop and nothing left */
		b->state = B_WRITING;
		pthread_mutex_unlock(&s->wlock);
		int rc = sink_write_batch(s, w, b);
		pthread_mutex_lock(&s->wlock);
		b->rc = rc;
		b->state = B_DONE;
		finish(s);
		pthread_cond_broadcast(&s->wcond);
		/* Under steady load the writer is never idle: the gpus refresh and the stats row go
		 * between two batches, after this batch's COMMIT, before the next BEGIN. */
		if (w == 0) {
			pthread_mutex_unlock(&s->wlock);
			sink_gpus_refresh(s, w, false);
			sink_rollups_close(s, w, false);
			pthread_mutex_lock(&s->wlock);
		}
		if (w == 0 && time_mono() - s->last_stats >= SINK_STATS_PERIOD_S) {
			pthread_mutex_unlock(&s->wlock);
			sink_upkeep_stats(s);
			pthread_mutex_lock(&s->wlock);
		}
	}
	pthread_mutex_unlock(&s->wlock);
	/* The GPUs' last rows, and the last stats row with the final counters (not when the
	 * database is known to be gone). */
	if (w == 0 && !atomic_load(&s->w.stop_now)) {
		sink_gpus_refresh(s, w, true);
		sink_rollups_close(s, w, true);
		sink_upkeep_stats(s);
	}
	return NULL;
}

/* Starts the writer threads. Returns true when every one runs (else those that started run
 * until sink_queue_stop). */
bool sink_queue_start(struct sink *s)
{
	bool all = true;
	for (int i = 0; i < WRITERS && all; i++) {
		struct writer *wr = &s->writers[i];
		wr->s = s;
		wr->w = i;
		wr->started = pthread_create(&wr->thread, NULL, writer_main, wr) == 0;
		all = wr->started;
	}
	return all;
}

/* Asks the writer threads to stop once the queue is empty and joins them. */
void sink_queue_stop(struct sink *s)
{
	pthread_mutex_lock(&s->wlock);
	s->writer_stop = true;
	pthread_cond_broadcast(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
	for (int i = 0; i < WRITERS; i++)
		if (s->writers[i].started) {
			pthread_join(s->writers[i].thread, NULL);
			s->writers[i].started = false;
		}
}

static void set_paused(struct sink *s, bool paused)
{
	consumer_pause(s->consumer, paused);
	pthread_mutex_lock(&s->lock);
	s->st.paused = paused;
	pthread_mutex_unlock(&s->lock);
}

/* A free batch, or NULL. Called with wlock held. */
static struct batch *free_batch(struct sink *s)
{
	for (int i = 0; i < NBATCH; i++)
		if (s->batches[i].state == B_FREE)
			return &s->batches[i];
	return NULL;
}

/* Queues the filling batch for the writers and starts filling a free one (waiting while every
 * batch is queued or being written). Consumption pauses while the writers are behind. */
void sink_queue_handoff(struct sink *s)
{
	if (!s->fill->nitems)
		return;
	double start = time_mono();
	bool paused = false;
	pthread_mutex_lock(&s->wlock);
	s->fill->seq = s->seq_next++;
	s->fill->state = B_QUEUED;
	pthread_cond_broadcast(&s->wcond);
	struct batch *next;
	while (!(next = free_batch(s))) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->wcond, &s->wlock, &ts);
		if (!free_batch(s) && !paused && time_mono() - start > 1.0) {
			pthread_mutex_unlock(&s->wlock);
			set_paused(s, true); /* the database is behind or away: stop fetching */
			paused = true;
			pthread_mutex_lock(&s->wlock);
		}
		sender_poll(s->dlq, 0);
	}
	next->state = B_FILLING;
	s->fill = next;
	pthread_mutex_unlock(&s->wlock);
	if (paused)
		set_paused(s, false);
}

/* Queues what is filled and waits until the writers have finished all of it. */
void sink_queue_drain(struct sink *s)
{
	sink_queue_handoff(s);
	pthread_mutex_lock(&s->wlock);
	while (s->seq_done != s->seq_next)
		pthread_cond_wait(&s->wcond, &s->wlock);
	pthread_mutex_unlock(&s->wlock);
}
