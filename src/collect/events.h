/*
 * events: the samples of one dcgm-exporter scrape -> one event per GPU (or MIG instance), in
 * the shape of docs/event-v1.md (the repository's copy of the shared contract).
 *
 * Use per scrape:
 *   events_begin(ev, time);                      scrape time, same for every event
 *   prom_parse(body, len, NULL, events_prom_cb, ev, &pst);   or prom_parse_cached(): a
 *   sample whose label set the cache recognised goes to the GPU of that set without looking
 *   for i < events_count(ev): events_key(ev, i), events_render(ev, i, buf, size, &len)
 * The builder keeps compact values per GPU and writes the JSON itself (no jansson objects,
 * no allocation per value; buffers are reused from scrape to scrape); the parser allocates
 * nothing.
 *
 * Which samples go where:
 *   - a name that does not start with DCGM_FI_ (DCGM_EXP_*, go_*, ...) is not part of event
 *     v1: counted in stats.not_dcgm;
 *   - a DCGM_FI_ sample is put on the GPU named by its UUID label (gpu_uuid on NVLink
 *     series), with "/<GPU_I_ID>" appended under MIG; one without a UUID cannot be put on any
 *     GPU: counted in stats.no_uuid and recorded in stats.skipped[];
 *   - a known field goes under metrics.<short name>, any other under extra.<full name>;
 *     a second series of the same field for one GPU is counted (stats.duplicates) and
 *     recorded; the first one is kept.
 * Values: integer-form text becomes a JSON integer (exact to 64 bits), float-form a JSON real;
 * dcgm-exporter's blank sentinels (integer 9223372036854775792..807, float >= 2^47) and NaN
 * or infinities (JSON has none) become null and are counted.
 */
#ifndef GPUHEALTH_EVENTS_H
#define GPUHEALTH_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "prom/prom.h"

#define EVENTS_SCHEMA_VERSION 1
/* GPUs (MIG instances count one each) per scrape; more are counted in stats.too_many_gpus. */
#define EVENTS_MAX_GPUS 1024
/* Longest Kafka key, UUID + "/" + GPU_I_ID, with its NUL. */
#define EVENTS_KEY_MAX 160
/* "2026-11-28T12:00:10.000Z" and its NUL. */
#define EVENTS_TIME_LEN 25
/* Skipped samples recorded with their line in stats.skipped[] (all are counted). */
#define EVENTS_SKIPPED_RECORDED 16

/* Enrichment from --cluster, --datacenter, --rack; NULL or "" writes null. Copied. */
struct events_enrich {
	const char *cluster;
	const char *datacenter;
	const char *rack;
	/* the target's discovery labels as the compact text of a JSON object of strings
	 * ({"team":"vision"}), written as the event's "labels"; NULL or "": no "labels" */
	const char *labels;
};

/* An owned deep copy of from in *to (whose old strings are not freed): "" and NULL become
 * NULL. Returns 0 or -ENOMEM (*to then empty). */
int events_enrich_copy(struct events_enrich *to, const struct events_enrich *from);
/* Frees what events_enrich_copy made and empties e. */
void events_enrich_clear(struct events_enrich *e);

enum events_skip {
	EVENTS_SKIP_NO_UUID = 1, /* DCGM_FI_ sample without a UUID / gpu_uuid label */
	EVENTS_SKIP_BAD_KEY,     /* UUID or GPU_I_ID unusable (too long, not UTF-8) */
	EVENTS_SKIP_DUPLICATE,   /* same field twice for one GPU; the first is kept */
	EVENTS_SKIP_TOO_MANY_GPUS,
};

const char *events_skip_str(enum events_skip why);

struct events_skipped {
	size_t line; /* line in the scrape body */
	enum events_skip reason;
	char name[64]; /* metric name, truncated */
};

struct events_stats {
	size_t samples;       /* samples offered */
	size_t metrics;       /* values set under metrics */
	size_t extra;         /* values set under extra */
	size_t blank;         /* blank sentinels written as null */
	size_t nonfinite;     /* NaN / Inf written as null */
	size_t inexact;       /* integers above INT64_MAX written as reals */
	size_t not_dcgm;      /* names outside DCGM_FI_*: not part of event v1 */
	size_t no_uuid;       /* skipped: no UUID */
	size_t bad_key;       /* skipped: unusable UUID / GPU_I_ID */
	size_t duplicates;    /* skipped: field already set for that GPU */
	size_t too_many_gpus; /* skipped: over EVENTS_MAX_GPUS */
	size_t bad_labels;    /* identity label unusable (not UTF-8, not a number): null */
	size_t nskipped;      /* entries used in skipped[] */
	struct events_skipped skipped[EVENTS_SKIPPED_RECORDED];
};

struct events; /* opaque: the events of one scrape */

/* Returns 0 or -ENOMEM. en may be NULL (all null). */
int events_create(struct events **out, const struct events_enrich *en);
void events_destroy(struct events *ev);

/* The enrichment of the target of the next scrapes (discovery labels): each non-empty
 * member replaces the one given to events_create(); NULL: back to those. Borrowed: the strings
 * must stay valid until the next call, events_destroy(), or the last render of a scrape. */
void events_set_target(struct events *ev, const struct events_enrich *en);

/* Starts a scrape: drops the previous events and stats. time must be RFC 3339 UTC with
 * milliseconds ("2026-11-28T12:00:10.000Z"). Returns 0 or -EINVAL. */
int events_begin(struct events *ev, const char *time);

/* Formats ts as RFC 3339 UTC with milliseconds into out[EVENTS_TIME_LEN]. Returns 0 or -EINVAL. */
int events_format_time(const struct timespec *ts, char out[EVENTS_TIME_LEN]);

/* Adds one sample. Returns 0 (a sample that is not used is counted, not an error) or
 * -ENOMEM. Call events_begin() first (else -EINVAL). */
int events_add(struct events *ev, const struct prom_sample *s);
/* events_add() as a prom_sample_cb; ud is the struct events. */
int events_prom_cb(const struct prom_sample *s, void *ud);

size_t events_count(const struct events *ev);
/* The Kafka key of event i: the UUID, with "/<GPU_I_ID>" for a MIG instance. */
const char *events_key(const struct events *ev, size_t i);
/* Event i as a jansson object, borrowed: valid until the next events_begin()/destroy. Made
 * on the first call (from the rendered text); NULL when out of memory. */
const json_t *events_json(struct events *ev, size_t i);
const struct events_stats *events_stats(const struct events *ev);

/*
 * Writes event i as one line of compact JSON (no newline) into buf and NUL-terminates it.
 * Reals are written in the shortest form that reads back to the same double, always with a
 * '.' or an exponent. *len gets the length without the NUL (also when buf is too small: the
 * size needed is *len + 1). Returns 0, -ENOSPC, or -EINVAL.
 */
int events_render(const struct events *ev, size_t i, char *buf, size_t size, size_t *len);

/* The same for any jansson value (tests, other event kinds). */
int events_render_json(const json_t *j, char *buf, size_t size, size_t *len);

#endif
