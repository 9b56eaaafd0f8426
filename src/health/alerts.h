/*
 * alerts: when to raise, raise further, and clear an alert, with hysteresis and no I/O.
 *
 * One state per (GPU, kind). A sample worse than the open alert's severity raises (or raises
 * further) after raise_after consecutive such samples, or at once when it carries a
 * fail-class event; an open alert clears after clear_after consecutive healthy (pass)
 * samples. A severity that falls but stays above pass keeps the alert open at its severity.
 * Flap damping: an alert raised again within ALERTS_FLAP_WINDOW times its clear run after it
 * cleared needs ALERTS_FLAP_FACTOR times more healthy samples to clear the next time (up to
 * ALERTS_FLAP_MAX_RUN times clear_after); a raise after that window starts over. So a value
 * that swings across a threshold (and its hysteresis band) settles into one open alert
 * instead of flapping.
 */
#ifndef GPUHEALTH_HEALTH_ALERTS_H
#define GPUHEALTH_HEALTH_ALERTS_H

#include <stdbool.h>
#include <stddef.h>

#include "health/rules.h"

#define ALERTS_RAISE_AFTER 3 /* default: consecutive worse samples */
#define ALERTS_CLEAR_AFTER 6 /* default: consecutive healthy samples */
#define ALERTS_FLAP_WINDOW 10  /* a re-raise within this many clear runs after a clear is a flap */
#define ALERTS_FLAP_FACTOR 4   /* each flap multiplies the clear run by this ... */
#define ALERTS_FLAP_MAX_RUN 256 /* ... up to this many times clear_after */

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
