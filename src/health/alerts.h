/*
 * alerts: when to raise, raise further, and clear an alert, with hysteresis and no I/O.
 *
 * One state per (GPU, kind). A sample worse than the open alert's severity raises (or raises
 * further) after raise_after consecutive such samples, or at once when it carries a
 * fail-class event; an open alert clears after clear_after consecutive healthy (pass)
 * samples. A severity that falls but stays above pass keeps the alert open at its severity.
 * So a value oscillating around a threshold raises at most once and never flaps.
 */
#ifndef GPUHEALTH_HEALTH_ALERTS_H
#define GPUHEALTH_HEALTH_ALERTS_H

#include <stdbool.h>
#include <stddef.h>

#include "health/rules.h"

#define ALERTS_RAISE_AFTER 3 /* default: consecutive worse samples */
#define ALERTS_CLEAR_AFTER 6 /* default: consecutive healthy samples */

enum alert_action { ALERT_NONE = 0, ALERT_RAISE, ALERT_ESCALATE, ALERT_CLEAR };

const char *alert_action_name(enum alert_action a);

struct alerts_opts {
	int raise_after;
	int clear_after;
};

struct alerts;

/* opts may be NULL (defaults). Returns 0 or -ENOMEM. */
int alerts_create(struct alerts **out, const struct alerts_opts *opts);
void alerts_destroy(struct alerts *a);

/*
 * Feeds one evaluation of (key, kind) at severity sev; immediate when it carries a fail-class
 * event. *action gets what to do; *open_sev the severity of the open alert after the step
 * (HEALTH_PASS when none). Returns 0 or -ENOMEM.
 */
int alerts_step(struct alerts *a, const char *key, const char *kind, enum health_status sev,
		bool immediate, enum alert_action *action, enum health_status *open_sev);

/* Marks (key, kind) as open at sev (an alert found open in the database at start). */
int alerts_restore(struct alerts *a, const char *key, const char *kind, enum health_status sev);

/* The severity of the open alert of (key, kind), HEALTH_PASS when none. */
enum health_status alerts_open(const struct alerts *a, const char *key, const char *kind);

/* Open alerts in all. */
size_t alerts_open_count(const struct alerts *a);

#endif
