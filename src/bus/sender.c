#include "bus/sender.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "bus/consumer.h"
#include "bus/kafka_conf.h"
#include "core/errmsg.h"
#include "core/log.h"

struct sender {
	rd_kafka_t *rk; /* owned */
	char who[32];
	void *ctx;
	void (*delivered)(void *ctx, void *opaque, int err);
	void (*error)(void *ctx, bool fatal, const char *text);
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct sender *p = opaque;
	if (m->err)
		log_debug("%s: message to %s not delivered: %s", p->who,
		          m->rkt ? rd_kafka_topic_name(m->rkt) : "?", rd_kafka_err2str(m->err));
	if (p->delivered)
		p->delivered(p->ctx, m->_private, (int)m->err);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct sender *p = opaque;
	char text[320];
	bool fatal;
	if (kafka_conf_error_text(rk, err, reason, p->who, text, sizeof(text), &fatal) && p->error)
		p->error(p->ctx, fatal, text);
}

void sender_destroy(struct sender *p)
{
	if (!p)
		return;
	if (p->rk)
		rd_kafka_destroy(p->rk);
	free(p);
}

int sender_create(struct sender **out, const struct sender_options *o, char *err,
                  size_t errlen)
{
	int rc = -ENOMEM;
	struct sender *p = calloc(1, sizeof(*p));
	if (!p)
		goto fail;
	snprintf(p->who, sizeof(p->who), "%s", o->who ? o->who : "sender");
	p->ctx = o->ctx;
	p->delivered = o->delivered;
	p->error = o->error;
	/* a delivery timeout of its own unless -X gives one (the later list wins) */
	char timeout[48];
	snprintf(timeout, sizeof(timeout), "message.timeout.ms=%d", o->message_timeout_ms);
	const char *defaults[] = {timeout};
	const struct kafka_client k = {
	    .role = KAFKA_PRODUCER,
	    .what = "producer",
	    .brokers = o->brokers,
	    .props = {defaults, o->kafka_props},
	    .nprops = {o->message_timeout_ms > 0 ? 1 : 0, o->nkafka_props},
	    .opaque = p,
	    .dr_msg_cb = dr_cb,
	    .error_cb = error_cb,
	};
	if ((rc = kafka_client_new(&p->rk, &k, err, errlen)) != 0)
		goto fail;
	*out = p; /* the caller's */
	return 0;
fail:
	sender_destroy(p);
	return errmsg_oom(rc, err, errlen, "the Kafka producer");
}

int sender_create_beside(struct sender **out, const struct consumer_options *co,
                         const struct consumer_hooks *h, int message_timeout_ms,
                         void (*delivered)(void *ctx, void *opaque, int err), char *err,
                         size_t errlen)
{
	const struct sender_options so = {.who = co->who,
	                                  .brokers = co->brokers,
	                                  .kafka_props = co->kafka_props,
	                                  .nkafka_props = co->nkafka_props,
	                                  .message_timeout_ms = message_timeout_ms,
	                                  .ctx = h->ctx,
	                                  .delivered = delivered,
	                                  .error = h->error};
	return sender_create(out, &so, err, errlen);
}

int sender_send(struct sender *p, const char *topic, const void *key, size_t klen,
                const void *value, size_t vlen, const struct bus_header *h, size_t nh,
                void *opaque, int wait_ms, int *code)
{
	for (int waited = 0;; waited += 100) {
		rd_kafka_headers_t *hdrs = NULL;
		if (nh) {
			hdrs = rd_kafka_headers_new(nh);
			for (size_t i = 0; i < nh; i++)
				rd_kafka_header_add(hdrs, h[i].name, -1, h[i].value, -1);
		}
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_KEY(key, key ? klen : 0), RD_KAFKA_V_VALUE((void *)value, vlen),
		    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
			return 0; /* the headers are the message's now */
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		if (code)
			*code = (int)e;
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			return -EIO;
		if (wait_ms >= 0 && waited >= wait_ms)
			return -EAGAIN;
		rd_kafka_poll(p->rk, 100);
	}
}

void sender_poll(struct sender *p, int ms)
{
	if (p)
		rd_kafka_poll(p->rk, ms);
}

int sender_flush(struct sender *p, int ms)
{
	if (!p)
		return 0;
	rd_kafka_flush(p->rk, ms);
	return rd_kafka_outq_len(p->rk);
}

void sender_purge(struct sender *p)
{
	if (p)
		rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

const char *sender_err_str(int code)
{
	return rd_kafka_err2str((rd_kafka_resp_err_t)code);
}

bool sender_err_permanent(int code)
{
	switch ((rd_kafka_resp_err_t)code) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT: /* already waited message_timeout_ms */
		return true;
	default:
		return false;
	}
}
