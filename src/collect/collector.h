/*
 * collector: the collector service. Scrape threads (threads, by default one per CPU) share the
 * targets: each scrapes its part (scrape.h), parses each body (prom.h), builds one event v1 per
 * GPU (events.h) with one time per scrape, renders them, and writes them either as JSON lines
 * to a stream (--output -) or to Kafka through the one producer (producer.h), keyed by
 * events_key(); the output is shared under a lock, taken once per scrape. A target stays on
 * its thread while it is in the set (its record and schedule live there); a new one goes to
 * the thread with the fewest. The in-flight bounds of scrape.h hold per thread.
 *
 * The service face shared by every service: create, start (its own thread), stop, stats,
 * destroy. The console and `gpuhealth collector` drive it the same way.
 */
#ifndef GPUHEALTH_COLLECTOR_H
#define GPUHEALTH_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "bus/producer.h"
#include "collect/events.h"
#include "collect/scrape.h"
#include "collect/shard.h"
#include "core/strbuf.h"

/* A local source in place of scrape targets (e.g. NVML, nvml.h): read on the collector thread
 * every interval_s; the text it appends goes through the same parse -> events -> output path
 * as a scrape body, and its record is the one target the stats show. */
struct collector_local {
	const char *name; /* where a target URL is shown, e.g. "nvml" (copied) */
	/* Appends Prometheus text to body. Returns 0, or -errno with a message in err (the read
	 * counts as a failed scrape). */
	int (*read)(void *ud, struct strbuf *body, char *err, size_t errlen);
	void *ud; /* not owned; must outlive the collector */
};

/* Most scrape threads a collector runs. */
#define COLLECTOR_THREADS_MAX 64u

struct collector_options {
	const struct collector_local *local; /* non-NULL: no targets (ntargets 0); copied; one
	                                        thread */
	unsigned threads; /* scrape threads; 0: one per online CPU, at most ntargets */
	const char *const *targets; /* URLs (copied) */
	/* NULL, or each target's enrichment (discovery labels), parallel to targets (copied);
	 * its non-empty members replace `enrich`'s for that target's events */
	const struct events_enrich *target_enrich;
	size_t ntargets;
	/* --shard I/N: of every target set given (here and by collector_set_targets*), keep only
	 * the targets of this shard (shard.h); count 0: all of them */
	struct shard shard;
	double interval_s;
	double timeout_s;
	size_t max_body;
	enum scrape_gzip gzip;       /* when to ask for gzip bodies */
	bool once;                   /* every target once, then the thread ends */
	bool first_now;              /* first scrape of each target at once (scrape_options) */
	struct events_enrich enrich; /* copied */
	FILE *out;                   /* non-NULL: JSON lines here, no Kafka */
	struct producer_options kafka; /* used when out is NULL */
	/* optional in-process tap: called on a scrape thread, one call at a time, with every
	 * event built (the object is borrowed for the call), before it is written or produced */
	void (*tap)(const json_t *event, void *ud);
	void *tap_ud;
};

struct collector_stats {
	uint64_t scrapes_ok, scrapes_failed;
	uint64_t scrapes_missed; /* intervals skipped by a late collector (scrape_target_stats) */
	uint64_t samples;        /* parsed */
	uint64_t bad_lines;      /* skipped by the parser */
	uint64_t unusable;       /* samples the event builder could not place (no UUID, ...) */
	uint64_t events;         /* events built and handed on */
	uint64_t bytes;          /* decoded scrape bodies */
	uint64_t output_errors;  /* failed writes to --output */
	size_t targets;          /* in the current set (this shard's) */
	size_t targets_listed;   /* in the list given, before the shard's split */
	struct shard shard;      /* as given (count 0: not sharded) */
	size_t targets_down;     /* whose last attempt failed */
	unsigned threads;        /* scrape threads */
	bool kafka;              /* events go to Kafka (then `producer` is valid) */
	struct producer_stats producer;
	bool running;            /* the thread is running */
	bool done;               /* the thread has ended (once: all tried; or stopped) */
	bool failed;             /* ended by a fatal error (see last_error) */
	char last_error[256];
};

struct collector;

/* Validates the options, creates the scraper and the producer (when out is NULL). Returns 0,
 * -EINVAL (message in err) or -ENOMEM. *out is owned by the caller (collector_destroy). */
int collector_create(struct collector **out, const struct collector_options *opts, char *err,
		     size_t errlen);
/* Starts the threads. Returns 0 or -errno. */
int collector_start(struct collector *c);
/* Hands a new target set to the threads (copied; each applies its part on its next loop),
 * keeping only the shard's targets when the collector is sharded (a URL that stays in the
 * shard keeps its thread and schedule). Returns 0, -ENOMEM (the old set is kept) or -EINVAL (a collector of a local source). */
int collector_set_targets(struct collector *c, const char *const *urls, size_t n);
/* collector_set_targets() with each target's enrichment (en parallel to urls, copied; NULL:
 * none), as collector_options.target_enrich. */
int collector_set_targets_enrich(struct collector *c, const char *const *urls,
                                 const struct events_enrich *en, size_t n);
/* Stops the threads: running scrapes are abandoned, the producer flushes and spools what is
 * pending (producer_close). Blocks until the threads have ended. Idempotent. */
void collector_stop(struct collector *c);
void collector_stats(struct collector *c, struct collector_stats *out);
/* The collector's producer (borrowed: valid until collector_destroy), NULL with --output. Only
 * its thread-safe calls (producer_hold, producer_set_buffer, producer_stats) may be used. */
struct producer *collector_producer(struct collector *c);
/* Copies the per-target records (see scrape_target_stats). Returns the number of targets. */
size_t collector_targets(struct collector *c, struct scrape_target_stats *out, size_t max);
/* Appends the collector's own health as Prometheus text 0.0.4. Returns 0 or -ENOMEM/-ENOSPC. */
int collector_render_metrics(struct collector *c, struct strbuf *sb);
void collector_destroy(struct collector *c);

#endif
