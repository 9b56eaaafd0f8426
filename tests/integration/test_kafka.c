/*
 * Against the real Kafka broker (GPUHEALTH_TEST_KAFKA): an idempotent producer writes keyed
 * messages; a consumer in a group reads them all back in order per key and commits; a second
 * consumer in the same group resumes right after the committed offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bus/kafka_conf.h"

#define NKEYS 8
#define PER_KEY 60
#define NPART 4

static const char *brokers;
static char topic[96];
static char group[96];
static int delivered, failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		failed++;
		fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
	} else {
		delivered++;
	}
}

static const char *env_or_fail(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v)
		fail_msg("%s is not set: the integration tests need the real Kafka broker that "
			 "scripts/test.sh starts (run the README's test command)",
			 name);
	return v;
}

/* Fails loudly when the broker does not answer a metadata request. */
static void require_broker(rd_kafka_t *rk)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, 10000);
	if (err)
		fail_msg("Kafka at %s is unreachable (%s): start it with scripts/test.sh or fix "
			 "GPUHEALTH_TEST_KAFKA",
			 brokers, rd_kafka_err2str(err));
	rd_kafka_metadata_destroy(md);
}

static rd_kafka_t *new_producer(void)
{
	char err[512];
	const char *props[] = {"linger.ms=5", "message.timeout.ms=30000"};
	rd_kafka_conf_t *conf = kafka_conf_new(KAFKA_PRODUCER, brokers, props, 2, err, sizeof(err));
	if (!conf)
		fail_msg("%s", err);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk)
		fail_msg("producer: %s", err);
	return rk; /* conf now owned by rk */
}

static void produce_range(int seq_from, int seq_to)
{
	rd_kafka_t *rk = new_producer();
	require_broker(rk);
	delivered = failed = 0;
	int total = 0;
	for (int seq = seq_from; seq < seq_to; seq++) {
		for (int k = 0; k < NKEYS; k++) {
			char key[32], val[64];
			snprintf(key, sizeof(key), "GPU-%02d", k);
			int vl = snprintf(val, sizeof(val), "GPU-%02d:%d", k, seq);
			rd_kafka_resp_err_t e;
			do {
				e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
						      RD_KAFKA_V_VALUE(val, (size_t)vl),
						      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
				if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
					rd_kafka_poll(rk, 100);
			} while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
			assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
			rd_kafka_poll(rk, 0);
			total++;
		}
	}
	assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(rd_kafka_outq_len(rk), 0);
	rd_kafka_destroy(rk);
	assert_int_equal(failed, 0);
	assert_int_equal(delivered, total);
}

static rd_kafka_t *new_consumer(void)
{
	char err[512];
	char grp[160];
	snprintf(grp, sizeof(grp), "group.id=%s", group);
	const char *props[] = {grp, "session.timeout.ms=6000", "enable.auto.commit=false"};
	rd_kafka_conf_t *conf = kafka_conf_new(KAFKA_CONSUMER, brokers, props, 3, err, sizeof(err));
	if (!conf)
		fail_msg("%s", err);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk)
		fail_msg("consumer: %s", err);
	require_broker(rk);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
	assert_int_equal(rd_kafka_subscribe(rk, sub), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(sub);
	return rk;
}

/* Reads until `want` messages arrived (or 60 s passed). Checks order per key: each key's
 * sequence numbers must arrive consecutively from seq_from. Returns the first offset seen per
 * partition in first_off. */
static int consume(rd_kafka_t *rk, int want, int seq_from, int64_t first_off[NPART])
{
	int next[NKEYS];
	for (int k = 0; k < NKEYS; k++)
		next[k] = seq_from;
	for (int p = 0; p < NPART; p++)
		first_off[p] = -1;
	int got = 0;
	time_t deadline = time(NULL) + 60;
	while (got < want && time(NULL) < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				fprintf(stderr, "consumer: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		int k, seq;
		char buf[64];
		size_t l = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
		memcpy(buf, m->payload, l);
		buf[l] = '\0';
		assert_int_equal(sscanf(buf, "GPU-%d:%d", &k, &seq), 2);
		assert_true(k >= 0 && k < NKEYS);
		assert_memory_equal(m->key, buf, 6); /* the key is the GPU */
		if (seq != next[k])
			fail_msg("key GPU-%02d: got seq %d, expected %d (out of order or duplicated)", k, seq,
				 next[k]);
		next[k]++;
		if (m->partition < NPART && first_off[m->partition] < 0)
			first_off[m->partition] = m->offset;
		got++;
		/* "processed": store the offset, as the sink does after its COMMIT */
		rd_kafka_topic_partition_list_t *st = rd_kafka_topic_partition_list_new(1);
		rd_kafka_topic_partition_list_add(st, topic, m->partition)->offset = m->offset + 1;
		assert_int_equal(rd_kafka_offsets_store(rk, st), RD_KAFKA_RESP_ERR_NO_ERROR);
		rd_kafka_topic_partition_list_destroy(st);
		rd_kafka_message_destroy(m);
	}
	return got;
}

static void test_produce_consume_resume(void **state)
{
	(void)state;
	brokers = env_or_fail("GPUHEALTH_TEST_KAFKA");
	snprintf(topic, sizeof(topic), "gh-it-%ld-%ld", (long)getpid(), (long)time(NULL));
	snprintf(group, sizeof(group), "gh-it-group-%ld-%ld", (long)getpid(), (long)time(NULL));

	produce_range(0, PER_KEY);

	/* First consumer: everything, in order per key, then a synchronous commit. */
	rd_kafka_t *c1 = new_consumer();
	int64_t first[NPART];
	int got = consume(c1, NKEYS * PER_KEY, 0, first);
	assert_int_equal(got, NKEYS * PER_KEY);
	assert_int_equal(rd_kafka_commit(c1, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_t *committed = NULL;
	assert_int_equal(rd_kafka_assignment(c1, &committed), RD_KAFKA_RESP_ERR_NO_ERROR);
	assert_int_equal(rd_kafka_committed(c1, committed, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	int64_t committed_off[NPART] = {0};
	int64_t sum = 0;
	for (int i = 0; i < committed->cnt; i++) {
		if (committed->elems[i].partition < NPART)
			committed_off[committed->elems[i].partition] = committed->elems[i].offset;
		sum += committed->elems[i].offset;
	}
	assert_int_equal(sum, NKEYS * PER_KEY);
	rd_kafka_topic_partition_list_destroy(committed);
	assert_int_equal(rd_kafka_consumer_close(c1), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_destroy(c1);

	/* More messages; the second consumer of the same group must see only those. */
	produce_range(PER_KEY, PER_KEY + 10);
	rd_kafka_t *c2 = new_consumer();
	got = consume(c2, NKEYS * 10, PER_KEY, first);
	assert_int_equal(got, NKEYS * 10);
	for (int p = 0; p < NPART; p++)
		if (first[p] >= 0)
			assert_int_equal(first[p], committed_off[p]);
	/* Nothing beyond: no redelivery of the first batch. */
	rd_kafka_message_t *m = rd_kafka_consumer_poll(c2, 1500);
	if (m && !m->err)
		fail_msg("unexpected extra message at offset %lld", (long long)m->offset);
	if (m)
		rd_kafka_message_destroy(m);
	rd_kafka_consumer_close(c2);
	rd_kafka_destroy(c2);
}

static void test_bad_property_is_named(void **state)
{
	(void)state;
	char err[512];
	const char *props[] = {"no-equals-sign"};
	assert_null(kafka_conf_new(KAFKA_PRODUCER, "127.0.0.1:1", props, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "no-equals-sign"));
	const char *props2[] = {"not.a.property=1"};
	assert_null(kafka_conf_new(KAFKA_PRODUCER, "127.0.0.1:1", props2, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "not.a.property"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_property_is_named),
		cmocka_unit_test(test_produce_consume_resume),
	};
	return cmocka_run_group_tests_name("kafka (real broker)", tests, NULL, NULL);
}
