/*
 * consumer (bus/consumer.h): the batch consumer the sink and the scorer share, against
 * librdkafka's in-process mock cluster (a real Kafka protocol peer, no services):
 *   - every message is handed to take() once, in partition order, and a batch is flushed when
 *     due() says so;
 *   - only stored offsets are committed: a consumer that stores the offsets of its first two
 *     batches and not of the third (its "database" refused it) leaves exactly the third to
 *     the next member of the group, which reads it again from the first unstored offset;
 * and the helpers: bus_offsets_note, time_backoff_s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "bus/consumer.h"
#include "core/timeutil.h"

#define TOPIC  "t-consumer"
#define NPARTS 2
#define NMSG   30
#define BATCH  10

static void offsets_note(void **state)
{
	(void)state;
	struct bus_offsets b = {.n = 0};
	assert_true(bus_offsets_note(&b, 3, 10));
	assert_false(bus_offsets_note(&b, 3, 7)); /* an older offset keeps the highest */
	assert_false(bus_offsets_note(&b, 3, 12));
	assert_true(bus_offsets_note(&b, 0, 0));
	assert_int_equal(b.n, 2);
	assert_int_equal(b.o[0].partition, 3);
	assert_int_equal(b.o[0].next, 13);
	assert_int_equal(b.o[1].next, 1);
	for (int p = 2; p < BUS_MAX_PARTS + 10; p++)
		bus_offsets_note(&b, p + 100, 1);
	assert_int_equal(b.n, BUS_MAX_PARTS); /* bounded */
}

static void backoff(void **state)
{
	(void)state;
	assert_true(time_backoff_s(0, 0.5, 30, 0.5) == 0.5);
	assert_true(time_backoff_s(1, 0.5, 30, 0.5) == 1.0);
	assert_true(time_backoff_s(3, 0.5, 30, 0.5) == 4.0);
	assert_true(time_backoff_s(50, 0.5, 30, 0.5) == 30.0); /* capped, no overflow */
	assert_true(time_backoff_s(2, 0.5, 30, 0.0) == 1.0);   /* jitter: 0.5x .. 1.5x */
	assert_true(time_backoff_s(2, 0.5, 30, 1.0) == 3.0);
}

struct run {
	struct consumer *c;
	atomic_bool stop;
	int taken, flushed, store_batches; /* batches whose offsets are stored */
	struct bus_offsets held;
	int nheld;
	int64_t first[NPARTS]; /* the first offset taken per partition, -1 none */
	int64_t last[NPARTS];
	int64_t stored[NPARTS]; /* the offset stored per partition (the next to read), 0 none */
	bool out_of_order;
	double deadline;
	int want;
};

static void take(void *ctx, struct bus_msg *m)
{
	struct run *r = ctx;
	assert_true(m->partition >= 0 && m->partition < NPARTS);
	assert_string_equal(m->topic, TOPIC);
	assert_non_null(m->payload);
	if (r->first[m->partition] < 0)
		r->first[m->partition] = m->offset;
	else if (m->offset != r->last[m->partition] + 1)
		r->out_of_order = true;
	r->last[m->partition] = m->offset;
	bus_offsets_note(&r->held, m->partition, m->offset);
	r->nheld++;
	r->taken++;
	bus_msg_free(m);
}

static void tick(void *ctx, double now)
{
	struct run *r = ctx;
	if (now > r->deadline)
		atomic_store(&r->stop, true); /* the test fails on the counts below */
}

static bool due(void *ctx, double now)
{
	(void)now;
	struct run *r = ctx;
	return r->nheld >= BATCH || (r->nheld && r->taken >= r->want);
}

static void flush(void *ctx)
{
	struct run *r = ctx;
	if (r->flushed < r->store_batches) {
		assert_int_equal(consumer_store(r->c, &r->held), 0);
		for (int i = 0; i < r->held.n; i++)
			r->stored[r->held.o[i].partition] = r->held.o[i].next;
	}
	r->flushed++;
	r->held.n = 0;
	r->nheld = 0;
	if (r->taken >= r->want)
		atomic_store(&r->stop, true);
}

static void run_member(const char *brokers, struct run *r)
{
	char err[512];
	const struct consumer_options o = {.who = "test",
	                                   .brokers = brokers,
	                                   .topic = TOPIC,
	                                   .group = "g-consumer",
	                                   .defaults = (const char *const[]){"auto.offset.reset=earliest"},
	                                   .ndefaults = 1};
	const struct consumer_hooks h = {.ctx = r, .take = take, .tick = tick, .due = due, .flush = flush};
	for (int p = 0; p < NPARTS; p++)
		r->first[p] = r->last[p] = -1;
	r->deadline = time_mono() + 60;
	int rc = consumer_create(&r->c, &o, &h, err, sizeof(err));
	if (rc)
		fail_msg("consumer_create: %s", err);
	consumer_run(r->c, &r->stop);
	consumer_close(r->c);
	consumer_destroy(r->c);
}

static void stored_offsets_only(void **state)
{
	(void)state;
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof(err)),
	                 RD_KAFKA_CONF_OK);
	rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	assert_non_null(prod);
	rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(prod);
	assert_non_null(mc);
	assert_int_equal(rd_kafka_mock_topic_create(mc, TOPIC, NPARTS, 1), 0);
	char brokers[256];
	snprintf(brokers, sizeof(brokers), "%s", rd_kafka_mock_cluster_bootstraps(mc));
	for (int i = 0; i < NMSG; i++) {
		char v[32];
		snprintf(v, sizeof(v), "m%d", i);
		assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(TOPIC),
		                                   RD_KAFKA_V_PARTITION(i % NPARTS),
		                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                   RD_KAFKA_V_VALUE(v, strlen(v)), RD_KAFKA_V_END),
		                 0);
	}
	assert_int_equal(rd_kafka_flush(prod, 10000), 0);

	/* the first member stores two batches of three: 20 of 30 acknowledged */
	struct run a = {.store_batches = 2, .want = NMSG};
	run_member(brokers, &a);
	assert_int_equal(a.taken, NMSG);
	assert_int_equal(a.flushed, 3);
	assert_false(a.out_of_order);
	for (int p = 0; p < NPARTS; p++)
		assert_int_equal(a.first[p], 0);

	/* the next member of the group gets exactly the unacknowledged third batch again */
	struct run b = {.store_batches = 1, .want = NMSG - 2 * BATCH};
	run_member(brokers, &b);
	assert_int_equal(b.taken, NMSG - 2 * BATCH);
	assert_false(b.out_of_order);
	int64_t again = 0;
	for (int p = 0; p < NPARTS; p++) {
		if (a.stored[p] == NMSG / NPARTS) { /* all of it acknowledged: nothing again */
			assert_int_equal(b.first[p], -1);
			continue;
		}
		/* from the first offset not stored, not from the start */
		assert_int_equal(b.first[p], a.stored[p]);
		assert_int_equal(b.last[p], NMSG / NPARTS - 1);
		again += b.last[p] - b.first[p] + 1;
	}
	assert_int_equal(again, NMSG - 2 * BATCH);
	rd_kafka_destroy(prod);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(offsets_note),
	    cmocka_unit_test(backoff),
	    cmocka_unit_test(stored_offsets_only),
	};
	return cmocka_run_group_tests_name("consumer", tests, NULL, NULL);
}
