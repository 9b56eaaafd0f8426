#include "bus/consumer.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/kafka_conf.h"
#include "core/errmsg.h"
#include "core/log.h"
#include "core/timeutil.h"

#define POLL_MS 100

struct consumer {
	rd_kafka_t *rk; /* owned */
	char *topic;    /* owned */
	char who[32];
	struct consumer_hooks h;
};

void bus_msg_free(struct bus_msg *m)
{
	if (m && m->impl) {
		rd_kafka_message_destroy(m->impl);
		m->impl = NULL;
	}
}

bool bus_offsets_note(struct bus_offsets *b, int32_t p, int64_t off)
{
	for (int i = 0; i < b->n; i++)
		if (b->o[i].partition == p) {
			if (off + 1 > b->o[i].next)
				b->o[i].next = off + 1;
			return false;
		}
	if (b->n < BUS_MAX_PARTS) {
		b->o[b->n].partition = p;
		b->o[b->n].next = off + 1;
		b->n++;
	}
	return true;
}

static void report(struct consumer *c, bool fatal, const char *text)
{
	if (c->h.error)
		c->h.error(c->h.ctx, fatal, text);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct consumer *c = opaque;
	char text[320];
	bool fatal;
	if (kafka_conf_error_text(rk, err, reason, c->who, text, sizeof(text), &fatal))
		report(c, fatal, text);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct consumer *c = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		int32_t ids[BUS_MAX_PARTS];
		char list[256] = "";
		size_t o = 0;
		int n = 0;
		for (int i = 0; i < parts->cnt; i++) {
			if (n < BUS_MAX_PARTS)
				ids[n++] = parts->elems[i].partition;
			if (o < sizeof(list))
				o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%d", i ? "," : "",
				                      (int)parts->elems[i].partition);
		}
		log_info("%s: assigned partitions %s of %s", c->who, parts->cnt ? list : "(none)",
		         c->topic);
		if (c->h.assigned)
			c->h.assigned(c->h.ctx, ids, n);
		rd_kafka_assign(rk, parts);
	} else {
		/* what is held for these partitions is finished before they move on */
		if (c->h.revoked)
			c->h.revoked(c->h.ctx);
		log_info("%s: partitions revoked", c->who);
		rd_kafka_assign(rk, NULL);
	}
}

void consumer_destroy(struct consumer *c)
{
	if (!c)
		return;
	if (c->rk)
		rd_kafka_destroy(c->rk);
	free(c->topic);
	free(c);
}

int consumer_create(struct consumer **out, const struct consumer_options *o,
                    const struct consumer_hooks *h, char *err, size_t errlen)
{
	int rc = -ENOMEM;
	struct consumer *c = calloc(1, sizeof(*c));
	if (!c || !(c->topic = strdup(o->topic)))
		goto fail;
	snprintf(c->who, sizeof(c->who), "%s", o->who ? o->who : "consumer");
	c->h = *h;
	char grp[300];
	snprintf(grp, sizeof(grp), "group.id=%s", o->group);
	/* the group, the loop's needs, the service's defaults, then -X */
	const char *base[] = {grp, "max.poll.interval.ms=3600000", "enable.partition.eof=false",
	                      "statistics.interval.ms=0"};
	const struct kafka_client k = {
	    .role = KAFKA_CONSUMER,
	    .what = "consumer",
	    .brokers = o->brokers,
	    .props = {base, o->defaults, o->kafka_props},
	    .nprops = {sizeof(base) / sizeof(base[0]), o->ndefaults, o->nkafka_props},
	    .opaque = c,
	    .rebalance_cb = rebalance_cb,
	    .error_cb = error_cb,
	};
	if ((rc = kafka_client_new(&c->rk, &k, err, errlen)) != 0)
		goto fail;
	rc = -EINVAL;
	rd_kafka_poll_set_consumer(c->rk);
	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, c->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e) {
		snprintf(err, errlen, "cannot subscribe to %s: %s", c->topic, rd_kafka_err2str(e));
		goto fail;
	}
	*out = c; /* the caller's */
	return 0;
fail:
	consumer_destroy(c);
	return errmsg_oom(rc, err, errlen, "the Kafka consumer");
}

void consumer_run(struct consumer *c, atomic_bool *stop)
{
	while (!atomic_load(stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, POLL_MS);
		if (m && m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				char text[320];
				snprintf(text, sizeof(text), "kafka: %s", rd_kafka_message_errstr(m));
				log_warn("%s: consumer: %s", c->who, rd_kafka_message_errstr(m));
				report(c, false, text);
			}
			rd_kafka_message_destroy(m);
		} else if (m) {
			struct bus_msg bm = {.payload = m->payload,
			                     .len = m->len,
			                     .key = m->key,
			                     .key_len = m->key ? m->key_len : 0,
			                     .topic = m->rkt ? rd_kafka_topic_name(m->rkt) : c->topic,
			                     .partition = m->partition,
			                     .offset = m->offset,
			                     .impl = m};
			c->h.take(c->h.ctx, &bm); /* the service's now */
		}
		double now = time_mono();
		if (c->h.tick)
			c->h.tick(c->h.ctx, now);
		if (c->h.due(c->h.ctx, now))
			c->h.flush(c->h.ctx);
	}
}

int consumer_store(struct consumer *c, const struct bus_offsets *offs)
{
	if (!offs->n)
		return 0;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(offs->n);
	for (int i = 0; i < offs->n; i++)
		rd_kafka_topic_partition_list_add(l, c->topic, offs->o[i].partition)->offset =
		    offs->o[i].next;
	rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e) { /* revoked meanwhile: the new owner reads again; rows are idempotent */
		log_debug("%s: offsets not stored: %s", c->who, rd_kafka_err2str(e));
		return -ESRCH;
	}
	return 0;
}

void consumer_pause(struct consumer *c, bool paused)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(c->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
		if (paused)
			rd_kafka_pause_partitions(c->rk, parts);
		else
			rd_kafka_resume_partitions(c->rk, parts);
		rd_kafka_topic_partition_list_destroy(parts);
	}
}

int consumer_positions(struct consumer *c, struct bus_position *out, int max)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
		return -EIO;
	rd_kafka_position(c->rk, parts);
	int n = 0;
	for (int i = 0; i < parts->cnt && n < max; i++, n++) {
		int64_t lo = -1, hi = -1;
		rd_kafka_get_watermark_offsets(c->rk, parts->elems[i].topic,
		                               parts->elems[i].partition, &lo, &hi);
		out[n].partition = parts->elems[i].partition;
		out[n].position = parts->elems[i].offset >= 0 ? parts->elems[i].offset : -1;
		out[n].low = lo;
		out[n].high = hi;
	}
	rd_kafka_topic_partition_list_destroy(parts);
	return n;
}

void consumer_close(struct consumer *c)
{
	if (!c || !c->rk)
		return;
	rd_kafka_resp_err_t e = rd_kafka_commit(c->rk, NULL, 0);
	if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn("%s: final offset commit: %s", c->who, rd_kafka_err2str(e));
	rd_kafka_consumer_close(c->rk);
}
