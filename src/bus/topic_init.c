#include "bus/topic_init.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "bus/kafka_conf.h"
#include "core/exitcode.h"
#include "core/log.h"

#define ADMIN_TIMEOUT_MS 30000

struct want {
	int partitions, rf, min_isr;
};

/* What the cluster has for one topic. */
struct found {
	bool exists;
	int partitions, rf; /* rf: the replicas of partition 0 */
	long min_isr;       /* -1: unknown */
};

/* The answer to an admin request sent to q: NULL with err set ("WHAT: no answer", or the
 * request's error) when there is none to read. The caller destroys what it gets. */
static rd_kafka_event_t *admin_answer(rd_kafka_queue_t *q, const char *what, char *err,
                                      size_t errlen)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
	if (!ev) {
		snprintf(err, errlen, "%s: no answer", what);
	} else if (rd_kafka_event_error(ev)) {
		snprintf(err, errlen, "%s: %s", what, rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
		ev = NULL;
	}
	return ev;
}

static int describe_min_isr(rd_kafka_t *rk, const char *topic, long *out, char *err, size_t errlen)
{
	int rc = -EIO;
	*out = -1;
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_ConfigResource_t *res =
	    rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
	rd_kafka_event_t *ev = NULL;
	if (!q || !res)
		goto out;
	rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
	char what[300];
	snprintf(what, sizeof(what), "DescribeConfigs of '%s'", topic);
	if (!(ev = admin_answer(q, what, err, errlen)))
		goto out;
	const rd_kafka_DescribeConfigs_result_t *r = rd_kafka_event_DescribeConfigs_result(ev);
	size_t n = 0;
	const rd_kafka_ConfigResource_t **rs =
	    r ? rd_kafka_DescribeConfigs_result_resources(r, &n) : NULL;
	for (size_t i = 0; i < n; i++) {
		if (rd_kafka_ConfigResource_error(rs[i])) {
			snprintf(err, errlen, "DescribeConfigs of '%s': %s", topic,
			         rd_kafka_ConfigResource_error_string(rs[i]));
			goto out;
		}
		size_t nc = 0;
		const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(rs[i], &nc);
		for (size_t k = 0; k < nc; k++)
			if (strcmp(rd_kafka_ConfigEntry_name(ce[k]), "min.insync.replicas") == 0 &&
			    rd_kafka_ConfigEntry_value(ce[k]))
				*out = strtol(rd_kafka_ConfigEntry_value(ce[k]), NULL, 10);
	}
	rc = 0;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	if (res)
		rd_kafka_ConfigResource_destroy(res);
	if (q)
		rd_kafka_queue_destroy(q);
	return rc;
}

static int find_topic(rd_kafka_t *rk, const char *topic, struct found *f, char *err, size_t errlen)
{
	const struct rd_kafka_metadata *md = NULL;
	/* all topics: asking for one by name could make a broker auto-create it */
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, &md, ADMIN_TIMEOUT_MS);
	memset(f, 0, sizeof(*f));
	f->min_isr = -1;
	if (e) {
		snprintf(err, errlen, "cannot read the cluster's metadata: %s",
		         rd_kafka_err2str(e));
		return -EIO;
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		const rd_kafka_metadata_topic_t *t = &md->topics[i];
		if (strcmp(t->topic, topic) != 0 || t->err)
			continue;
		f->exists = true;
		f->partitions = t->partition_cnt;
		for (int p = 0; p < t->partition_cnt; p++)
			if (t->partitions[p].id == 0)
				f->rf = t->partitions[p].replica_cnt;
	}
	rd_kafka_metadata_destroy(md);
	return f->exists ? describe_min_isr(rk, topic, &f->min_isr, err, errlen) : 0;
}

static int create_topic(rd_kafka_t *rk, const char *topic, const struct want *w, char *err,
                        size_t errlen)
{
	int rc = -EIO;
	char why[512] = "", isr[16];
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_NewTopic_t *nt =
	    rd_kafka_NewTopic_new(topic, w->partitions, w->rf, why, sizeof(why));
	rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
	rd_kafka_event_t *ev = NULL;
	if (!q || !nt || !ao) {
		snprintf(err, errlen, "cannot create topic '%s': %s", topic,
		         why[0] ? why : "no memory");
		goto out;
	}
	snprintf(isr, sizeof(isr), "%d", w->min_isr);
	rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", isr);
	rd_kafka_AdminOptions_set_operation_timeout(ao, ADMIN_TIMEOUT_MS, why, sizeof(why));
	rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
	char what[300];
	snprintf(what, sizeof(what), "cannot create topic '%s'", topic);
	if (!(ev = admin_answer(q, what, err, errlen)))
		goto out;
	const rd_kafka_CreateTopics_result_t *r = rd_kafka_event_CreateTopics_result(ev);
	size_t n = 0;
	const rd_kafka_topic_result_t **tr = r ? rd_kafka_CreateTopics_result_topics(r, &n) : NULL;
	for (size_t i = 0; i < n; i++)
		if (rd_kafka_topic_result_error(tr[i]) &&
		    rd_kafka_topic_result_error(tr[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			snprintf(err, errlen, "cannot create topic '%s': %s%s", topic,
			         rd_kafka_topic_result_error_string(tr[i]),
			         rd_kafka_topic_result_error(tr[i]) ==
			                 RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR
			             ? " (the cluster has fewer brokers than --replication-factor: "
			               "give a smaller one)"
			             : "");
			goto out;
		}
	rc = 0;
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	if (ao)
		rd_kafka_AdminOptions_destroy(ao);
	if (nt)
		rd_kafka_NewTopic_destroy(nt);
	if (q)
		rd_kafka_queue_destroy(q);
	return rc;
}

/* Returns 0 (as asked: created or found), 1 (found with other settings), -errno. */
static int init_one(rd_kafka_t *rk, const char *topic, const struct want *w, char *err,
                    size_t errlen)
{
	struct found f;
	int rc = find_topic(rk, topic, &f, err, errlen);
	if (rc)
		return rc;
	if (!f.exists) {
		if ((rc = create_topic(rk, topic, w, err, errlen)) != 0)
			return rc;
		printf("kafka init: topic %s created: %d partitions, replication factor %d, "
		       "min.insync.replicas=%d\n",
		       topic, w->partitions, w->rf, w->min_isr);
		return 0;
	}
	bool same = f.partitions == w->partitions && f.rf == w->rf && f.min_isr == w->min_isr;
	printf("kafka init: topic %s exists: %d partitions, replication factor %d, "
	       "min.insync.replicas=%ld%s\n",
	       topic, f.partitions, f.rf, f.min_isr, same ? " (as asked)" : "");
	if (same)
		return 0;
	char diff[512] = "";
	size_t o = 0;
	if (f.partitions != w->partitions)
		o += (size_t)snprintf(diff + o, sizeof(diff) - o, " partitions %d (asked %d);",
		                      f.partitions, w->partitions);
	if (f.rf != w->rf && o < sizeof(diff))
		o += (size_t)snprintf(diff + o, sizeof(diff) - o,
		                      " replication factor %d (asked %d: a partition reassignment, "
		                      "kafka-reassign-partitions.sh);",
		                      f.rf, w->rf);
	if (f.min_isr != w->min_isr && o < sizeof(diff))
		snprintf(
		    diff + o, sizeof(diff) - o,
		    " min.insync.replicas=%ld (asked %d: kafka-configs.sh --alter --entity-type "
		    "topics --entity-name %s --add-config min.insync.replicas=%d);",
		    f.min_isr, w->min_isr, topic, w->min_isr);
	fprintf(stderr,
	        "gpuhealth: kafka init: topic %s exists with other settings, left as it is:%s "
	        "change it with Kafka's tools, or ask for what it has\n",
	        topic, diff);
	return 1;
}

int topic_init_cmd_run(struct config *cfg)
{
	int status = CLI_EXIT_USAGE;
	const char *brokers = config_str(cfg, "brokers");
	rd_kafka_t *rk = NULL;
	const char **props = NULL;
	char err[1024] = "";
	if (!brokers) {
		log_error("kafka init: no Kafka brokers: give --brokers HOST:PORT "
		          "(KAFKA_BOOTSTRAP_SERVERS)");
		goto out;
	}
	struct want w = {(int)config_int(cfg, "partitions"),
	                 (int)config_int(cfg, "replication-factor"),
	                 (int)config_int(cfg, "min-insync")};
	if (w.min_isr > w.rf) {
		log_error("kafka init: --min-insync %d is more than --replication-factor %d: no "
		          "write could succeed; give at most %d",
		          w.min_isr, w.rf, w.rf);
		goto out;
	}
	/* an admin client: no producer id to ask for; -X may still override */
	size_t nprops = config_list_len(cfg, "X") + 1;
	status = CLI_EXIT_FAILURE;
	props = calloc(nprops, sizeof(*props));
	if (!props)
		goto out;
	props[0] = "enable.idempotence=false";
	for (size_t i = 1; i < nprops; i++)
		props[i] = config_list_at(cfg, "X", i - 1);
	rd_kafka_conf_t *conf =
	    kafka_conf_new(KAFKA_PRODUCER, brokers, props, nprops, err, sizeof(err));
	if (!conf) {
		log_error("%s", err);
		status = CLI_EXIT_USAGE;
		goto out;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		log_error("kafka init: cannot create a Kafka client: %s", err);
		goto out;
	}
	const char *topics[3] = {config_str(cfg, "topic"), config_str(cfg, "dlq-topic"),
	                         config_str(cfg, "alerts-topic")};
	int differ = 0;
	for (int i = 0; i < 3; i++) {
		if (!topics[i] || !*topics[i])
			continue;
		int rc = init_one(rk, topics[i], &w, err, sizeof(err));
		if (rc < 0) {
			log_error("kafka init: %s (brokers %s)", err, brokers);
			goto out;
		}
		differ += rc;
	}
	status = differ ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
out:
	if (rk)
		rd_kafka_destroy(rk);
	free(props);
	return status;
}
