/*
 * health_engine: the one evaluation of a GPU's samples, whose verdicts the scorer stores and
 * the console and `status` show, so that they agree by construction. Per sample: the rules
 * (rules.h: score, status, reasons), the failure prediction (predict.h), the recommended
 * action from the expected costs (econ.h), and the alert state of the two alert kinds,
 * "health" and "failure_risk" (alerts.h); then "fell off the bus" for the GPUs of the sample's
 * host that went silent (rules_missing), each judged the same way.
 *
 * No I/O, no clock of its own (the caller passes "now"), no lock: one thread at a time (the
 * scorer's thread; the fleet's mutex).
 */
#ifndef GPUHEALTH_HEALTH_ENGINE_H
#define GPUHEALTH_HEALTH_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "health/alerts.h"
#include "health/econ.h"
#include "health/predict.h"
#include "health/rules.h"
#include "health/sample.h"

/* The alert kinds (the alerts table's `kind`). */
#define HEALTH_KIND_HEALTH "health"
#define HEALTH_KIND_RISK   "failure_risk"

/* An alert's text after "GPU KEY on HOST: ": "fail: <reason>", "62 % probability of failure
 * within 24 h", "healthy again", "failure risk back to normal". */
#define HEALTH_ALERT_SUMMARY 160

struct health_engine_opts {
	double interval_s;              /* expected time between samples of a GPU (0: 10 s) */
	int missing_intervals;          /* fell off the bus after K silent intervals (0: 3) */
	double horizon_h;               /* prediction horizon (0: 24 h) */
	double risk_level;              /* probability that raises failure_risk (0: 0.5) */
	const struct econ_inputs *econ; /* the recommendation's inputs (NULL: econ_defaults);
	                                  copied, horizon_h set from the horizon above */
	int raise_after, clear_after;   /* alert hysteresis in samples (0: alerts.h defaults) */
};

/* One change of an alert of the GPU in this evaluation. */
struct health_alert_change {
	enum alert_action action;    /* ALERT_RAISE, ALERT_ESCALATE or ALERT_CLEAR */
	const char *kind;            /* HEALTH_KIND_HEALTH or HEALTH_KIND_RISK (static) */
	enum health_status severity; /* the open alert's after the step; HEALTH_PASS on a clear */
	char summary[HEALTH_ALERT_SUMMARY];
};

/* Everything one evaluation decides for a GPU. */
struct health_verdict {
	struct health_result r; /* score, status, reasons, remedy; r.missing: fell off the bus */
	struct prediction p;    /* failure probability within the horizon */
	enum health_action required; /* the least action that clears the cause */
	bool recommended;            /* not healthy or at risk, and the costs were evaluated */
	struct econ_result e;        /* the costs, when recommended (zero otherwise) */
	enum health_action action;   /* e.best when recommended, else ACT_KEEP */
	size_t nalerts;
	struct health_alert_change alerts[2]; /* health first, then failure_risk */
};

/* Called for each verdict; a non-zero return stops the evaluation and is returned. */
typedef int (*health_verdict_cb)(const struct health_verdict *v, void *ud);

struct health_engine;

/* opts may be NULL (defaults). Returns 0 or -ENOMEM.
 * *out owned by the caller (health_engine_destroy). */
int health_engine_create(struct health_engine **out, const struct health_engine_opts *opts);
void health_engine_destroy(struct health_engine *e);

/*
 * Evaluates sample s (now: this host's clock, epoch seconds): its verdict to cb; then, when
 * the sample is live (no older than (missing_intervals + 1) intervals: while a backlog is
 * replayed GPUs are read unevenly and would look silent when only behind), the verdict of each
 * GPU of its host that fell silent, judged at the sample's time (at now when the sample is
 * ahead of this host's clock). Returns 0, -EALREADY (not newer than the GPU's last sample: a
 * redelivery, no verdict), -ENOMEM, or cb's non-zero return.
 */
int health_engine_sample(struct health_engine *e, const struct health_sample *s, double now,
                         health_verdict_cb cb, void *ud);

/* Marks (key, kind) open at sev: an alert found open in the database at start. */
int health_engine_restore_alert(struct health_engine *e, const char *key, const char *kind,
                                enum health_status sev);

/* GPUs known; alerts open. */
size_t health_engine_gpu_count(const struct health_engine *e);
size_t health_engine_open_alerts(const struct health_engine *e);

/* The alert's message as the alerts table stores it: "GPU KEY[ on HOST]: SUMMARY". Returns
 * snprintf's count. */
int health_engine_alert_message(char *buf, size_t len, const char *key, const char *host,
                                const char *summary);

#endif
