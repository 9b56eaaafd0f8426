#include "bus/kafka_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

/* librdkafka's own log lines go through gpuhealth's log, with its levels (syslog 0..7). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum log_level l = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;
	/* brokers going down is reported once through error callbacks; keep the rest quiet */
	if (l == LOG_ERROR && (strcmp(fac, "FAIL") == 0 || strcmp(fac, "ERROR") == 0))
		l = LOG_DEBUG;
	log_msg(l, "kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static bool contains(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);
	for (size_t i = 0; i + w <= n; i++)
		if (strncasecmp(s + i, word, w) == 0)
			return true;
	return false;
}

bool kafka_conf_secret_key(const char *key, size_t keylen)
{
	return contains(key, keylen, "password") || contains(key, keylen, "secret") ||
	       (keylen == 11 && strncmp(key, "ssl.key.pem", 11) == 0) ||
	       (keylen == 23 && strncmp(key, "sasl.oauthbearer.config", 23) == 0);
}

static int set(rd_kafka_conf_t *conf, const char *key, const char *val, char *err, size_t errlen)
{
	char why[512];
	if (rd_kafka_conf_set(conf, key, val, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		if (!kafka_conf_secret_key(key, strlen(key))) {
			snprintf(err, errlen, "Kafka property '%s=%s' rejected: %s", key, val, why);
			return -1;
		}
		/* a secret: not in the message, not even where librdkafka's reason quotes it */
		char safe[512];
		size_t o = 0, vl = strlen(val);
		for (const char *w = why; *w && o + 4 < sizeof(safe);) {
			if (vl && strncmp(w, val, vl) == 0) {
				memcpy(safe + o, "***", 3);
				o += 3;
				w += vl;
			} else {
				safe[o++] = *w++;
			}
		}
		safe[o] = '\0';
		snprintf(err, errlen, "Kafka property '%s=***' rejected: %s", key, safe);
		return -1;
	}
	return 0;
}

rd_kafka_conf_t *kafka_conf_new(enum kafka_role role, const char *brokers, const char *const *props,
				size_t nprops, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (!conf) {
		snprintf(err, errlen, "out of memory creating a Kafka configuration");
		return NULL;
	}
	if (brokers && set(conf, "bootstrap.servers", brokers, err, errlen))
		goto fail;
	if (set(conf, "client.id", "gpuhealth", err, errlen))
		goto fail;
	rd_kafka_conf_set_log_cb(conf, log_cb);
	if (role == KAFKA_PRODUCER) {
		if (set(conf, "enable.idempotence", "true", err, errlen) ||
		    set(conf, "acks", "all", err, errlen))
			goto fail;
	} else {
		if (set(conf, "enable.auto.offset.store", "false", err, errlen) ||
		    set(conf, "enable.auto.commit", "true", err, errlen) ||
		    /* stored offsets committed within a second, not librdkafka's 5: the
		     * embedded pipeline's broker gate (pipeline.c) lets events through as the
		     * sink commits, and a restart replays less */
		    set(conf, "auto.commit.interval.ms", "1000", err, errlen) ||
		    set(conf, "auto.offset.reset", "earliest", err, errlen))
			goto fail;
	}
	for (size_t i = 0; i < nprops; i++) {
		const char *kv = props[i];
		const char *eq = strchr(kv, '=');
		if (!eq || eq == kv) {
			/* "=VALUE" with no key: VALUE may be a secret, so it is not shown */
			snprintf(err, errlen, "-X '%s': expected KEY=VALUE, e.g. -X security.protocol=SSL",
				 eq ? "=..." : kv);
			goto fail;
		}
		char key[256];
		size_t klen = (size_t)(eq - kv);
		if (klen >= sizeof(key)) {
			snprintf(err, errlen, "-X '%.40s...': property name longer than %zu characters", kv,
				 sizeof(key) - 1);
			goto fail;
		}
		memcpy(key, kv, klen);
		key[klen] = '\0';
		if (set(conf, key, eq + 1, err, errlen))
			goto fail;
	}
	return conf; /* caller owns */
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

bool kafka_conf_error_text(rd_kafka_t *rk, int err, const char *reason, const char *who,
			   char *text, size_t len, bool *fatal)
{
	*fatal = err == RD_KAFKA_RESP_ERR__FATAL;
	if (*fatal) {
		char buf[256];
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		log_error("%s: kafka fatal error: %s", who, buf);
		snprintf(text, len, "kafka fatal: %s", buf);
		return true;
	}
	log_debug("%s: kafka: %s", who, reason);
	snprintf(text, len, "kafka: %s", reason);
	return err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT;
}

int kafka_client_new(rd_kafka_t **out, const struct kafka_client *k, char *err, size_t errlen)
{
	*out = NULL;
	size_t n = 0;
	for (size_t l = 0; l < 3; l++)
		n += k->nprops[l];
	const char **all = calloc(n ? n : 1, sizeof(*all));
	if (!all) {
		snprintf(err, errlen, "out of memory creating the Kafka %s", k->what);
		return -ENOMEM;
	}
	n = 0;
	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < k->nprops[l]; i++)
			all[n++] = k->props[l][i];
	rd_kafka_conf_t *conf = kafka_conf_new(k->role, k->brokers, all, n, err, errlen);
	free(all);
	if (!conf)
		return -EINVAL;
	rd_kafka_conf_set_opaque(conf, k->opaque);
	if (k->dr_msg_cb)
		rd_kafka_conf_set_dr_msg_cb(conf, k->dr_msg_cb);
	if (k->error_cb)
		rd_kafka_conf_set_error_cb(conf, k->error_cb);
	if (k->rebalance_cb)
		rd_kafka_conf_set_rebalance_cb(conf, k->rebalance_cb);
	if (k->log_cb)
		rd_kafka_conf_set_log_cb(conf, k->log_cb);
	char why[512];
	rd_kafka_t *rk =
	    rd_kafka_new(k->role == KAFKA_PRODUCER ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf,
	                 why, sizeof(why));
	if (!rk) {
		rd_kafka_conf_destroy(conf); /* still ours when rd_kafka_new fails */
		snprintf(err, errlen, "cannot create the Kafka %s: %s", k->what, why);
		return -EINVAL;
	}
	*out = rk; /* the caller's; conf is rk's now */
	return 0;
}
