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
