/*
 * The sink's ordering guarantees (sink_queue.c, issue #22), against small in-memory stand-ins
 * of its two neighbours, linked in place of the real ones:
 *   - the Kafka consumer: consumer_store() records each batch's offsets in the order stored,
 *     consumer_pause() the pauses;
 *   - the database: sink_write_batch() is the writers' transaction; each batch's answer
 *     (committed or given up) and when it comes (held until the test lets it go) are scripted.
 * Checked: offsets are stored only after the batch's COMMIT, in queue order even when a later
 * batch commits first on the other writer; a given-up batch stores nothing and no later batch
 * stores its offsets either (Kafka redelivers from the gap); counters count committed batches
 * only; drain waits for every batch; consumption pauses while every batch is busy and resumes.
 * The rest of the sink (the identity cache, rollups, upkeep) is stubbed: not under test here.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "bus/consumer.h"
#include "bus/sender.h"
#include "core/timeutil.h"
#include "sink/rollup.h"
#include "sink/sink_gpus.h"
#include "sink/sink_int.h"
#include "sink/sink_queue.h"
#include "sink/sink_rollups.h"
#include "sink/sink_upkeep.h"
#include "sink/sink_write.h"
#include "sink/workloads.h"

#define MAXB 16

/* ---- the stand-ins' state: a batch is known by its offset (partition 0, next = id) */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t stored[MAXB]; /* consumer_store, in call order */
	int nstored;
	int64_t committed[MAXB]; /* sink_write_batch's COMMITs, in order */
	int ncommitted;
	bool committed_before_store[MAXB]; /* per stored entry: its COMMIT came first */
	int64_t fail_id[MAXB];             /* these batches are given up */
	int nfail;
	int64_t hold_id; /* this batch's write waits until released (0: none) */
	bool released;
	int64_t writing[MAXB]; /* batches inside sink_write_batch now */
	int nwriting;
	int pauses, resumes;
} st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void reset(void)
{
	pthread_mutex_lock(&st.mu);
	st.nstored = st.ncommitted = st.nfail = st.nwriting = 0;
	st.hold_id = 0;
	st.released = false;
	st.pauses = st.resumes = 0;
	pthread_mutex_unlock(&st.mu);
}

static bool is_committed(int64_t id)
{
	for (int i = 0; i < st.ncommitted; i++)
		if (st.committed[i] == id)
			return true;
	return false;
}

/* the consumer */
int consumer_store(struct consumer *c, const struct bus_offsets *offs)
{
	(void)c;
	pthread_mutex_lock(&st.mu);
	for (int i = 0; i < offs->n && st.nstored < MAXB; i++) {
		st.committed_before_store[st.nstored] = is_committed(offs->o[i].next);
		st.stored[st.nstored++] = offs->o[i].next;
	}
	pthread_mutex_unlock(&st.mu);
	return 0;
}

void consumer_pause(struct consumer *c, bool paused)
{
	(void)c;
	pthread_mutex_lock(&st.mu);
	if (paused)
		st.pauses++;
	else
		st.resumes++;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

void bus_msg_free(struct bus_msg *m)
{
	memset(m, 0, sizeof(*m));
}

void sender_poll(struct sender *p, int ms)
{
	(void)p;
	(void)ms;
}

/* the database: the writer's transaction */
int sink_write_batch(struct sink *s, int w, struct batch *b)
{
	(void)s;
	(void)w;
	int64_t id = b->offs.o[0].next;
	pthread_mutex_lock(&st.mu);
	st.writing[st.nwriting++] = id;
	pthread_cond_broadcast(&st.cv);
	while (id == st.hold_id && !st.released)
		pthread_cond_wait(&st.cv, &st.mu);
	bool fail = false;
	for (int i = 0; i < st.nfail; i++)
		fail = fail || st.fail_id[i] == id;
	if (!fail && st.ncommitted < MAXB)
		st.committed[st.ncommitted++] = id;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
	if (fail)
		return -EIO;
	b->ins = (long long)b->nitems;
	return 0;
}

/* not under test */
void sink_acked_set(struct sink *s, int32_t p, int64_t off, bool store)
{
	(void)s;
	(void)p;
	(void)off;
	(void)store;
}
void sink_gpus_batch_clear(struct batch *b)
{
	(void)b;
}
void sink_gpus_refresh(struct sink *s, int w, bool force)
{
	(void)s;
	(void)w;
	(void)force;
}
void sink_rollups_close(struct sink *s, int w, bool final)
{
	(void)s;
	(void)w;
	(void) final;
}
void sink_upkeep_partitions(struct sink *s)
{
	(void)s;
}
void sink_upkeep_stats(struct sink *s)
{
	(void)s;
}
void rollup_reset(struct rollup *r)
{
	(void)r;
}
void workload_runs_clear(struct workload_runs *r)
{
	(void)r;
}

/* ---- a sink with only what the queue uses */
static struct sink *new_sink(void)
{
	struct sink *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_cond_init(&s->wcond, NULL);
	s->maintenance_s = 1e9; /* no upkeep */
	s->last_maint = s->last_stats = time_mono();
	s->fill = &s->batches[0];
	s->fill->state = B_FILLING;
	for (int i = 0; i < NBATCH; i++) {
		s->batches[i].capitems = 4;
		s->batches[i].items = calloc(4, sizeof(struct item));
		assert_non_null(s->batches[i].items);
	}
	assert_true(sink_queue_start(s));
	return s;
}

static void free_sink(struct sink *s)
{
	sink_queue_stop(s);
	for (int i = 0; i < NBATCH; i++) {
		free(s->batches[i].items);
		strbuf_free(&s->batches[i].rows);
		strbuf_free(&s->batches[i].idents);
		strbuf_free(&s->batches[i].ident_copy);
		strbuf_free(&s->batches[i].roll_copy);
	}
	pthread_cond_destroy(&s->wcond);
	pthread_mutex_destroy(&s->wlock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* The consumer thread's part: a batch of one message at offset id - 1, handed to the writers. */
static void queue_batch(struct sink *s, int64_t id)
{
	struct batch *b = s->fill;
	b->nitems = 1;
	b->offs.n = 1;
	b->offs.o[0].partition = 0;
	b->offs.o[0].next = id;
	sink_queue_handoff(s);
}

/* Waits (bounded) until the stand-in database is writing batch id. */
static void wait_writing(int64_t id)
{
	double until = time_mono() + 10;
	pthread_mutex_lock(&st.mu);
	for (;;) {
		bool in = false;
		for (int i = 0; i < st.nwriting; i++)
			in = in || st.writing[i] == id;
		if (in || time_mono() > until)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&st.cv, &st.mu, &ts);
	}
	pthread_mutex_unlock(&st.mu);
}

/* Waits (bounded) until the queue holds batch id written and not finished (B_DONE: its
 * writer has been through finish(), which had to leave it for the earlier one). */
static bool wait_done(struct sink *s, int64_t id)
{
	double until = time_mono() + 10;
	bool done = false;
	pthread_mutex_lock(&s->wlock);
	while (!done && time_mono() < until) {
		for (int i = 0; i < NBATCH; i++)
			done = done || (s->batches[i].state == B_DONE && s->batches[i].offs.n &&
			                s->batches[i].offs.o[0].next == id);
		if (!done) {
			pthread_mutex_unlock(&s->wlock);
			struct timespec ts = {0, 5000000L};
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&s->wlock);
		}
	}
	pthread_mutex_unlock(&s->wlock);
	return done;
}

static void release(void)
{
	pthread_mutex_lock(&st.mu);
	st.released = true;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
}

static uint64_t batches_counted(struct sink *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t n = s->st.batches;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* A sink whose first batch, id, is held in its transaction on one writer. */
static struct sink *start_held(int64_t id)
{
	reset();
	st.hold_id = id;
	struct sink *s = new_sink();
	queue_batch(s, id);
	wait_writing(id);
	return s;
}

/* Two writers: the first batch is held in its transaction while the second commits on the
 * other writer. The second's offsets must wait for the first's COMMIT, then both are stored
 * in queue order, each after its own COMMIT. */
static void test_offsets_in_queue_order(void **state)
{
	(void)state;
	struct sink *s = start_held(10);
	queue_batch(s, 20);
	wait_writing(20);
	/* batch 20 committed while 10 is held, and its writer went on to finish it: nothing may
	 * be stored yet */
	assert_true(wait_done(s, 20));
	pthread_mutex_lock(&st.mu);
	assert_true(is_committed(20));
	assert_false(is_committed(10));
	assert_int_equal(st.nstored, 0);
	pthread_mutex_unlock(&st.mu);
	release();
	sink_queue_drain(s);
	pthread_mutex_lock(&st.mu);
	assert_int_equal(st.ncommitted, 2);
	assert_int_equal(st.committed[0], 20); /* the database committed them out of order */
	assert_int_equal(st.committed[1], 10);
	assert_int_equal(st.nstored, 2); /* the consumer stored them in order */
	assert_int_equal(st.stored[0], 10);
	assert_int_equal(st.stored[1], 20);
	assert_true(st.committed_before_store[0]);
	assert_true(st.committed_before_store[1]);
	pthread_mutex_unlock(&st.mu);
	assert_int_equal(batches_counted(s), 2);
	free_sink(s);
}

/* A batch given up (the database refused it for good) stores nothing, and a later batch that
 * committed stores nothing either: the group's position stays before the gap, so Kafka
 * redelivers both (the committed one's rows are found present). Only committed batches count. */
static void test_given_up_batch_stops_later_offsets(void **state)
{
	(void)state;
	reset();
	st.fail_id[st.nfail++] = 20;
	struct sink *s = new_sink();
	queue_batch(s, 10);
	sink_queue_drain(s);
	queue_batch(s, 20);
	queue_batch(s, 30);
	queue_batch(s, 40);
	sink_queue_drain(s);
	pthread_mutex_lock(&st.mu);
	assert_int_equal(st.nstored, 1); /* 10 only */
	assert_int_equal(st.stored[0], 10);
	assert_true(st.committed_before_store[0]);
	assert_false(is_committed(20));
	assert_true(is_committed(30));
	assert_true(is_committed(40));
	pthread_mutex_unlock(&st.mu);
	assert_true(atomic_load(&s->abandoned));
	assert_int_equal(batches_counted(s), 3); /* 10, 30, 40 committed; 20 given up */
	free_sink(s);
}

/* Lets the held batch go once the consumer has paused (or after 30 s: the test then fails on
 * the pause count). */
static void *release_after_pause(void *arg)
{
	(void)arg;
	double until = time_mono() + 30;
	pthread_mutex_lock(&st.mu);
	while (!st.pauses && time_mono() < until) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&st.cv, &st.mu, &ts);
	}
	pthread_mutex_unlock(&st.mu);
	release();
	return NULL;
}

/* With every batch busy (one held in its transaction, the others committed behind it and
 * waiting for it) for over a second, the consumer pauses; once the held one commits the
 * batches are finished in order, one is free again and consumption resumes. */
static void test_pauses_while_writers_behind(void **state)
{
	(void)state;
	struct sink *s = start_held(10);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, release_after_pause, NULL), 0);
	int64_t id = 20;
	for (int i = 1; i < NBATCH; i++, id += 10)
		queue_batch(s, id); /* the last one waits for a free batch, paused after 1 s */
	pthread_join(t, NULL);
	pthread_mutex_lock(&s->lock);
	bool paused = s->st.paused;
	pthread_mutex_unlock(&s->lock);
	assert_false(paused);
	sink_queue_drain(s);
	pthread_mutex_lock(&st.mu);
	assert_int_equal(st.pauses, 1);
	assert_int_equal(st.resumes, 1);
	assert_int_equal(st.nstored, NBATCH);
	for (int i = 0; i < st.nstored; i++) {
		assert_int_equal(st.stored[i], 10 * (i + 1)); /* in queue order */
		assert_true(st.committed_before_store[i]);
	}
	assert_int_equal(st.committed[st.ncommitted - 1], 10); /* the held one last */
	pthread_mutex_unlock(&st.mu);
	free_sink(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_offsets_in_queue_order),
	    cmocka_unit_test(test_given_up_batch_stops_later_offsets),
	    cmocka_unit_test(test_pauses_while_writers_behind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
