/*
 * event_check: the one validator of event-v1 events (docs/event-v1.md, the repository's copy of the shared contract) that every
 * consumer applies, the sink and the scorer alike: the same rules, the same reasons, and the same
 * dead-letter shape. A reason names the field, the value as given and the bound it broke.
 *
 * The time window: an event's time must lie in [now - max_age_s, now + max_skew_s] (the
 * retention, and the clock skew allowed between a collector and this host, default
 * EVENT_CHECK_MAX_SKEW_S). "now" is always this host's clock, never an event's time.
 */
#ifndef GPUHEALTH_EVENT_CHECK_H
#define GPUHEALTH_EVENT_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENT_CHECK_MAX_SKEW_S 300.0 /* default allowed clock skew: 5 min */
#define EVENT_CHECK_MAX_TEXT   512   /* longest identity string accepted (uuid, hostname...) */
#define EVENT_CHECK_MAX_LABELS 64    /* most members of an event's labels object */
/* A dead letter carries its payload whole up to this many bytes; past it, the first this many
 * bytes, with the original size and a hash of the whole (event_check_dead_letter). Well below
 * Kafka's default message.max.bytes (1,000,000), so the dead-letter topic takes it. */
#define EVENT_CHECK_DLQ_PAYLOAD_MAX 65536u

struct event_check_opts {
	double now;        /* this host's clock, seconds since the epoch */
	double max_age_s;  /* the retention: older events are refused */
	double max_skew_s; /* events newer than now + this are refused */
};

/* Parses JSON text (len bytes, not NUL-terminated; duplicate keys refused). Returns the document
 * (the caller owns it: json_decref), or NULL with the reason in r. */
json_t *event_check_load(const char *text, size_t len, char *r, size_t rl);

/*
 * Checks a parsed event against every rule of the contract: an object; schema_version 1; time an
 * RFC 3339 string inside the window; gpu an object with a non-empty uuid; identity strings and
 * integers of the right types and sizes; metrics and extra objects (or null); each known
 * metric a number (or null) inside its range, counters whole and not negative; labels absent,
 * null or an object of at most EVENT_CHECK_MAX_LABELS strings (keys and values at most
 * EVENT_CHECK_MAX_TEXT); workload absent, null or an object whose namespace, pod and container
 * are each a string (at most EVENT_CHECK_MAX_TEXT) or null (other members, added by a newer
 * contract, are ignored). Returns 0 with the time in *t, or -EINVAL with the reason in r.
 */
int event_check_json(const json_t *root, const struct event_check_opts *o, double *t, char *r,
                     size_t rl);

/* The time rule alone, for text already extracted ("2026-11-28T12:00:10.000Z"). Returns 0 with
 * *t, or -EINVAL with the reason in r (r may be NULL: the fast path only wants the verdict). */
int event_check_time(const char *text, const struct event_check_opts *o, double *t, char *r,
                     size_t rl);

/* The range rule of the known field at position i of fields_all() (fast path, no reason). */
bool event_check_in_range(size_t i, double v);

/* The range rule of a known field by key; -EINVAL with the reason in r. */
int event_check_range(const char *key, double v, char *r, size_t rl);

/* Writes v the shortest way that reads back as the same double ("100.0001", not "100"). */
void event_check_format_number(double v, char *buf, size_t len);

/* What a dead letter carries of its payload: the shape shared by every dead-letter writer. */
struct event_dead_letter {
	size_t original_size; /* the payload's size as consumed */
	size_t len;           /* bytes carried: min(original_size, the bound) */
	bool cut;             /* len < original_size */
	char hash[17];        /* FNV-1a 64 of the whole payload, 16 hex digits */
};

/* Fills d for payload (len bytes) with bound bytes at most carried (0: the default bound). */
void event_check_dead_letter(const void *payload, size_t len, size_t bound,
                             struct event_dead_letter *d);

#endif
