#include "bus/mockcluster.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus/kafka_conf.h"

struct mockcluster {
	rd_kafka_t *rk; /* owned: holds the mock cluster */
	rd_kafka_mock_cluster_t *mock;
	rd_kafka_t *watch; /* owned: a consumer handle that only reads a group's commits */
};

void mockcluster_destroy(struct mockcluster *mc)
{
	if (!mc)
		return;
	if (mc->watch)
		rd_kafka_destroy(mc->watch);
	if (mc->mock)
		rd_kafka_mock_cluster_destroy(mc->mock);
	if (mc->rk)
		rd_kafka_destroy(mc->rk);
	free(mc);
}

int mockcluster_create(struct mockcluster **out, const char *const *topics, size_t ntopics,
                       int partitions, char *err, size_t errlen)
{
	*out = NULL;
	struct mockcluster *mc = calloc(1, sizeof(*mc));
	if (!mc) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* this handle only holds the cluster: it connects nowhere, so no bootstrap warning */
	if (rd_kafka_conf_set(conf, "client.id", "gpuhealth-mock", err, errlen) !=
	        RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, errlen) != RD_KAFKA_CONF_OK) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	mc->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
	if (!mc->rk) {
		rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
		goto fail;
	}
	mc->mock = rd_kafka_mock_cluster_new(mc->rk, 1);
	if (!mc->mock) {
		snprintf(err, errlen, "librdkafka could not create its mock cluster");
		goto fail;
	}
	for (size_t i = 0; i < ntopics; i++) {
		if (!topics[i] || !*topics[i])
			continue;
		rd_kafka_resp_err_t e =
		    rd_kafka_mock_topic_create(mc->mock, topics[i], i == 0 ? partitions : 1, 1);
		if (e) {
			snprintf(err, errlen, "mock cluster: cannot create topic %s: %s", topics[i],
			         rd_kafka_err2str(e));
			goto fail;
		}
	}
	*out = mc; /* caller owns */
	return 0;
fail:
	mockcluster_destroy(mc);
	return -EIO;
}

const char *mockcluster_bootstraps(const struct mockcluster *mc)
{
	return rd_kafka_mock_cluster_bootstraps(mc->mock);
}

int mockcluster_watch(struct mockcluster *mc, const char *group, char *err, size_t errlen)
{
	char gid[300];
	snprintf(gid, sizeof(gid), "group.id=%s", group);
	const char *props[] = {gid, "enable.auto.commit=false", "client.id=gpuhealth-gate",
	                       "log_level=3"};
	const struct kafka_client k = {.role = KAFKA_CONSUMER,
	                               .what = "gate's handle",
	                               .brokers = mockcluster_bootstraps(mc),
	                               .props = {props},
	                               .nprops = {sizeof(props) / sizeof(props[0])}};
	return kafka_client_new(&mc->watch, &k, err, errlen) ? -EIO : 0;
}

int mockcluster_positions(struct mockcluster *mc, const char *topic, int n,
                          struct mockcluster_pos *out, int timeout_ms, char *err, size_t errlen)
{
	int rc = -EIO;
	rd_kafka_poll(mc->watch, 0); /* serves the handle's own events (errors, logs) */
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	rd_kafka_resp_err_t e = rd_kafka_committed(mc->watch, l, timeout_ms);
	if (e) {
		snprintf(err, errlen, "reading the sink's committed offsets: %s",
		         rd_kafka_err2str(e));
		goto out;
	}
	for (int i = 0; i < n; i++) {
		int64_t lo = -1, hi = -1;
		e = rd_kafka_query_watermark_offsets(mc->watch, topic, i, &lo, &hi, timeout_ms);
		if (!e)
			e = l->elems[i].err;
		if (e) {
			snprintf(err, errlen, "reading partition %d's offsets: %s", i,
			         rd_kafka_err2str(e));
			goto out;
		}
		out[i] =
		    (struct mockcluster_pos){.committed = l->elems[i].offset, .lo = lo, .hi = hi};
	}
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(l);
	return rc;
}
