/* kafka_conf: builds librdkafka configurations from gpuhealth's settings (--brokers, -X). */
#ifndef GPUHEALTH_KAFKA_CONF_H
#define GPUHEALTH_KAFKA_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

enum kafka_role { KAFKA_PRODUCER, KAFKA_CONSUMER };

/*
 * Returns a new configuration (caller owns; rd_kafka_new takes it over) with the brokers, the
 * role's safe defaults (producer: idempotent, acks=all; consumer: offsets stored by the caller
 * after its work is durable, auto commit of stored offsets), then each "key=value" of props so
 * that -X can override any default. On error returns NULL and writes a message naming the
 * property and the fix into err.
 */
rd_kafka_conf_t *kafka_conf_new(enum kafka_role role, const char *brokers, const char *const *props,
				size_t nprops, char *err, size_t errlen);

/* A librdkafka client to make (kafka_client_new). */
struct kafka_client {
	enum kafka_role role;
	const char *what; /* for messages: "consumer", "producer" */
	const char *brokers;
	/* "key=value" property lists, applied in order after the role's defaults, so a later
	 * one overrides an earlier one: the client's needs, the service's defaults, then -X */
	const char *const *props[3];
	size_t nprops[3];
	void *opaque;
	/* each optional */
	void (*dr_msg_cb)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
	void (*error_cb)(rd_kafka_t *rk, int err, const char *reason, void *opaque);
	void (*rebalance_cb)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
	                     rd_kafka_topic_partition_list_t *parts, void *opaque);
	void (*log_cb)(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
};

/* kafka_conf_new from k's lists, its opaque and callbacks, then rd_kafka_new. Returns 0 (*out
 * the caller's: rd_kafka_destroy), -ENOMEM, or -EINVAL with a message in err naming the
 * property or librdkafka's reason. */
int kafka_client_new(rd_kafka_t **out, const struct kafka_client *k, char *err, size_t errlen);

/* An error_cb's error as a service reports it: *fatal for librdkafka's fatal error (its text
 * fetched, logged at error level with who), text "kafka fatal: ..." or "kafka: reason". Returns
 * true when the service should hear of it (fatal, all brokers down, transport), false for the
 * rest (logged at debug level). */
bool kafka_conf_error_text(rd_kafka_t *rk, int err, const char *reason, const char *who,
			   char *text, size_t len, bool *fatal);

/* True for a librdkafka property whose value is a secret and never shown: any *password*,
 * *secret*, ssl.key.pem, sasl.oauthbearer.config (it holds client secrets). key need not be
 * terminated: keylen bytes are read. */
bool kafka_conf_secret_key(const char *key, size_t keylen);

#endif
