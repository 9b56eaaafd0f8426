/*
 * scorer_int: private to the scorer's files in src/health (scorer.c, scorer_alerts.c,
 * scorer_db.c); nothing else includes it. struct scorer: the options and the handles it owns,
 * the scorer thread's connection and open batch (only that thread uses them once started), and
 * the stats (st, under lock). The batch is the rows' COPY text (scorer_rows.h), the alert
 * changes (struct alert_op, scorer_alerts.h) and the Kafka offsets they came from, written in
 * one transaction (scorer_db.h) before the offsets are stored.
 */
#ifndef GPUHEALTH_HEALTH_SCORER_INT_H
#define GPUHEALTH_HEALTH_SCORER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/consumer.h"
#include "bus/sender.h"
#include "core/strbuf.h"
#include "core/worker.h"
#include "store/pgconn.h"
#include "health/alerts.h"
#include "health/health_engine.h"
#include "health/sample.h"
#include "health/scorer.h"

/* The kinds of the alerts the scorer raises; an alert_op's kind is one of them (set and
 * compared by pointer in scorer_alerts.c). */
static const char *const KIND_HEALTH = HEALTH_KIND_HEALTH;
static const char *const KIND_RISK = HEALTH_KIND_RISK;

struct alertmanager;
struct alertmanager_alert;
struct webhook;
struct health_metrics;
struct metrics_http;

/* One alert change of the open batch: written in the transaction, then announced. */
struct alert_op {
	enum alert_action action;
	char key[HS_KEY_MAX];
	char host[HS_HOST_MAX];
	const char *kind;
	enum health_status sev;
	char *message; /* owned */
	char *details; /* owned, JSON */
	char *body;    /* owned, the JSON for Kafka and the webhook */
	char *wl[3];   /* owned: the workload's namespace, pod, container when raised; NULL none */
	struct alertmanager_alert *am; /* owned; NULL without Alertmanager */
	double time;
};

/* The last health row written for a GPU: a new one is written when one of these changes or
 * health_row_interval_s has passed (issue #21: the health tables grew by a row per sample). */
struct written {
	char *key; /* owned; NULL: free slot */
	enum health_status status;
	const char *rec; /* a static action name, or NULL */
	int band;        /* score / 10 */
	double time;     /* sample time of the row */
};

struct scorer {
	struct scorer_options o; /* strings below are owned copies */
	char *brokers, *topic, *group, *alerts_topic, *conninfo, *webhook_url;

	struct consumer *consumer; /* owned */
	struct sender *producer;   /* owned; NULL without an alerts topic */
	struct webhook *hook;    /* owned; NULL without a webhook */
	struct alertmanager *am; /* owned; NULL without --alertmanager */
	struct health_metrics *hm; /* owned; NULL without --metrics-listen */
	struct metrics_http *http; /* owned; its listener, between start and stop */
	char *metrics_listen;      /* NULL: none */
	bool has_alert_workload; /* alerts has namespace/pod/container (schema 013) */
	bool has_fleet_now;      /* gpuhealth_fleet_now_merge (schema 014) */
	const char *cur_event; /* the event being judged (take() only), for Alertmanager's labels */
	size_t cur_len;
	struct pgconn *pg;            /* the scorer thread's session (store/pgconn.h) */
	struct health_engine *engine; /* the verdicts (the console's fleet runs the same) */
	bool alerts_loaded;
	bool curl_inited;
	double max_age_s;        /* the retention: the event validator's oldest time */
	double bad_told_at;      /* time_now() of the last dead-letter warning */
	uint64_t bad_since_told; /* dead letters since */

	struct worker w; /* the consumer thread, its stop and stop-now flags */

	/* the open batch (scorer thread only) */
	struct strbuf scores, preds;
	size_t nrows;
	struct alert_op *ops;
	size_t nops, capops;
	struct bus_offsets offs; /* what the batch acknowledges once committed */
	double batch_started;
	double last_stats; /* scorer thread: when the senders' stats were last read */
	double last_poll;  /* scorer thread: when the alert producer was last polled */

	/* what was last written for each GPU (scorer thread only): an open-addressing table */
	struct written *written;
	size_t nwritten, capwritten;

	pthread_mutex_t lock; /* guards st */
	struct scorer_stats st;
};

/* The last error, for stats (scorer.c). */
void scorer_set_error(struct scorer *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define STAT_ADD(s, field, n)                                                                      \
	do {                                                                                       \
		pthread_mutex_lock(&(s)->lock);                                                    \
		(s)->st.field += (n);                                                              \
		pthread_mutex_unlock(&(s)->lock);                                                  \
	} while (0)

#endif
