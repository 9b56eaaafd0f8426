/*
 * alertmanager: the scorer's alerts to Prometheus Alertmanager's v2 API (POST /api/v2/alerts),
 * in Alertmanager's model, from a thread of its own so a slow or dead Alertmanager never blocks
 * scoring.
 *
 * The sender keeps the alerts it knows: every firing one, and every resolved one until each
 * Alertmanager took it. Each Alertmanager (an HA pair gets every alert, as Prometheus does)
 * gets what it has not taken yet as soon as possible, and every firing alert again each
 * resend_s, so a restarted Alertmanager gets them back and none times out there (its
 * resolve_timeout). A failed POST is retried with exponential backoff (0.5 s doubling, at most
 * resend_s); the alerts wait in the table meanwhile. Bounded: past ALERTMANAGER_MAX_ALERTS the
 * oldest resolved alert not yet delivered is dropped (counted); a firing alert past the bound
 * is dropped (counted) rather than growing without end.
 *
 * An alert's identity in Alertmanager is its label set, fixed when it fires: the labels of the
 * GPU (alertmanager_note_event) at that time. An escalation changes the severity label, so it
 * resolves the alert at the old severity and fires one at the new.
 *
 * alertmanager_note_event, alertmanager_alert_new, alertmanager_restore: the scorer thread only.
 * alertmanager_post, alertmanager_stats: any thread.
 */
#ifndef GPUHEALTH_HEALTH_ALERTMANAGER_H
#define GPUHEALTH_HEALTH_ALERTMANAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALERTMANAGER_MAX_URLS   8
#define ALERTMANAGER_MAX_ALERTS 65536 /* alerts held (firing, and resolved not yet delivered) */
#define ALERTMANAGER_BATCH      500   /* alerts per POST */

struct alertmanager_opts {
	const char *const *urls; /* base URLs, http(s)://host:port[/prefix] */
	size_t nurls;
	double resend_s;     /* firing alerts again this often (default 60) */
	double timeout_s;    /* per POST, connection included (default 10) */
	const char *api_url; /* NULL or "": no generatorURL; else base of the API's GPU pages */
};

struct alertmanager_stats {
	uint64_t posts;   /* successful POSTs */
	uint64_t sent;    /* alerts delivered, counted per Alertmanager and POST */
	uint64_t failed;  /* failed POSTs (each retried) */
	uint64_t dropped; /* alerts dropped at the bound */
	size_t firing;    /* firing alerts held */
	size_t pending;   /* alerts some Alertmanager has not taken yet */
};

/* What the scorer knows of one alert change. Strings are copied. */
struct alertmanager_change {
	const char *key;      /* GPU key (UUID, or UUID/GPU_I_ID) */
	const char *kind;     /* "health" or "failure_risk" */
	bool firing;          /* false: cleared */
	bool critical;        /* severity fail (else warn); ignored when cleared */
	double time;          /* epoch s: startsAt when firing, endsAt when cleared */
	const char *hostname; /* fallback when no event of the GPU was noted; may be NULL */
	const char *summary;
	const char *description;
	const char *remedy;             /* the least action that clears the cause */
	const char *recommended_action; /* the economic recommendation; NULL: none */
	double failure_probability;
};

struct alertmanager;
struct alertmanager_alert;

/* The alertname of an alert kind: "GPUHealth" (health), "GPUFailureRisk" (failure_risk). */
const char *alertmanager_alertname(const char *kind);

/* Creates and starts the sender thread. Returns 0 or -EINVAL/-ENOMEM/-errno with err set (a bad
 * URL is named by its position, never printed: it may hold credentials). */
int alertmanager_create(struct alertmanager **out, const struct alertmanager_opts *o, char *err,
                        size_t errlen);

/*
 * Notes the labels of a GPU from one of its event-v1 JSON texts (gpu index and uuid, hostname,
 * cluster, datacenter, rack, workload namespace and pod). force: parse even when the GPU is
 * already known (a fresh look at an alert's sample); else only a GPU seen for the first time is
 * parsed, so a GPU that falls off the bus still has labels. Returns 0 or -ENOMEM (a text that
 * is not an event is ignored).
 */
int alertmanager_note_event(struct alertmanager *am, const char *key, const char *json, size_t len,
                            bool force);

/* Prepares an alert change (its labels from the GPU's noted event). Returns NULL only when out
 * of memory. The caller owns it: alertmanager_post or alertmanager_alert_free. */
struct alertmanager_alert *alertmanager_alert_new(struct alertmanager *am,
                                                  const struct alertmanager_change *c);
void alertmanager_alert_free(struct alertmanager_alert *a);

/*
 * An alert found open in the database at start (details: its JSON from the alerts table, may
 * be NULL): it fires in Alertmanager again, with its startsAt, as soon as an event of the GPU
 * is noted (so it has the GPU's labels), and its clear resolves it there. Scorer thread.
 * Returns 0 or -ENOMEM.
 */
int alertmanager_restore(struct alertmanager *am, const char *key, const char *kind, bool critical,
                         double raised_at, const char *hostname, const char *message,
                         const char *details);

/* Hands a prepared change to the sender (never blocks on the network); takes ownership. */
void alertmanager_post(struct alertmanager *am, struct alertmanager_alert *a);

void alertmanager_stats(struct alertmanager *am, struct alertmanager_stats *out);

/* Stops the thread after one last attempt to deliver what is pending (bounded by the POST
 * timeout); frees everything. */
void alertmanager_destroy(struct alertmanager *am);

#endif
