/*
 * scorer: the health service. Consumes the sample events (its own consumer group) and keeps
 * per-GPU state (rules.h); for every sample writes a health score, a failure prediction with
 * its economic recommendation, and the alerts it raises or clears (alerts.h) to PostgreSQL in
 * one transaction per batch; Kafka offsets are stored only after COMMIT. Raised and cleared
 * alerts also go to a Kafka topic (idempotent producer) and, optionally, to a webhook from a
 * thread of its own (webhook.h), and to Prometheus Alertmanager (alertmanager.h), so a dead
 * webhook or Alertmanager never blocks scoring.
 *
 * The service face shared by every service: create, start (its own thread), stop, stats,
 * destroy.
 */
#ifndef GPUHEALTH_HEALTH_SCORER_H
#define GPUHEALTH_HEALTH_SCORER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "health/econ.h"

struct scorer_options {
	const char *brokers;
	const char *topic;          /* sample events */
	const char *group;          /* consumer group (default gpuhealth-scorer) */
	const char *alerts_topic;   /* NULL or "": no Kafka alerts */
	const char *const *kafka_props; /* -X overrides */
	size_t nkafka_props;
	const char *conninfo;
	const char *webhook_url;    /* NULL or "": none */
	double webhook_timeout_s;
	int webhook_retries;
	const char *const *alertmanager_urls; /* Alertmanager base URLs (an HA pair: all of them) */
	size_t nalertmanager_urls;
	double alertmanager_resend_s; /* firing alerts re-sent this often */
	const char *api_url;          /* NULL or "": no generatorURL in Alertmanager alerts */
	double interval_s;          /* expected sample period of a GPU */
	int missing_intervals;      /* fell off the bus after this many silent intervals */
	int raise_after, clear_after; /* alert hysteresis, samples */
	double horizon_h;           /* prediction horizon */
	double risk_level;          /* probability that raises a failure_risk alert */
	double health_row_interval_s; /* a GPU's rows when something changes, else at most once
	                               * per this (0: every evaluation) */
	int batch_size;             /* samples per transaction, upper bound */
	double batch_timeout_s;
	double max_skew_s;          /* events further in the future are refused (0: 5 min) */
	double max_age_s;           /* events older are refused (0: 7 days; the database's retention
	                             * once connected) */
	struct econ_inputs econ;
	const char *metrics_listen; /* HOST:PORT, NULL: none: the scorer's own counters and each
	                             * GPU's verdict as Prometheus text (health/health_metrics.h) */
};

struct scorer_stats {
	uint64_t consumed;         /* messages read */
	uint64_t bad_events;       /* refused by the event validator (core/event_check.h, the sink's
	                            * rules): dead letters, skipped (the sink writes them out) */
	uint64_t redelivered;      /* samples not newer than the GPU's last: ignored */
	uint64_t scored;           /* evaluations written (samples and silent GPUs) */
	uint64_t pass, warn, fail; /* ... by status */
	uint64_t predictions;
	uint64_t alerts_raised, alerts_cleared;
	uint64_t alerts_produced, alerts_produce_failed;
	uint64_t webhook_sent, webhook_failed, webhook_dropped;
	uint64_t am_sent, am_failed, am_dropped; /* Alertmanager: alerts delivered, failed POSTs, dropped */
	size_t am_pending;                       /* alerts some Alertmanager has not taken yet */
	uint64_t batches, db_errors;
	size_t gpus, open_alerts;
	bool db_connected, running, failed;
	char last_error[256];
};

struct scorer;

/* Validates the options and creates the Kafka handles. Returns 0 or -EINVAL/-ENOMEM with a
 * message in err. *out is owned by the caller (scorer_destroy). */
int scorer_create(struct scorer **out, const struct scorer_options *o, char *err, size_t errlen);
/* Starts the thread, and the metrics listener first when asked. 0 or -errno with a message
 * in err (-EINVAL: bad --metrics-listen). */
int scorer_start(struct scorer *s, char *err, size_t errlen);
/* What it consumes and where its alerts go, for log lines and the service's status text:
 * "consuming TOPIC as group GROUP", with detail the alert targets, horizon and risk level.
 * Returns snprintf's. */
int scorer_describe(const struct scorer *s, bool detail, char *buf, size_t len);
/* Commits the open batch if the database answers, flushes the alert producer, leaves the
 * group; blocks until the thread has ended. */
void scorer_stop(struct scorer *s);
/* The same, but a batch the database does not take at once is abandoned at once (it is
 * redelivered) instead of retried: for a database known to be gone. */
void scorer_stop_now(struct scorer *s);
void scorer_stats(struct scorer *s, struct scorer_stats *out);
void scorer_destroy(struct scorer *s);

#endif
