/*
 * scrape: many HTTP scrape targets from one thread, with libcurl's multi interface.
 *
 * Each target has its own schedule: a first scrape at a phase within the interval derived from
 * its URL (so a thousand targets do not all fire at once), then every interval after the time
 * it was due (no drift; whole intervals are skipped when a scrape overran). A failed scrape
 * (connection, timeout, HTTP status other than 200, a body over max_body bytes, or the
 * callback's verdict) is retried after an exponential backoff with jitter:
 * min(interval * 2^(failures-1), backoff_max) * (0.5 + 0.5 * u), u uniform in [0, 1).
 *
 * Transfers ask for gzip (Accept-Encoding: gzip; libcurl decodes), are bounded by timeout_s
 * from start to end and by max_body decoded bytes (the transfer is aborted past it and
 * counted). Each completed scrape calls the callback with the body and the scrape time: the
 * wall clock when the response had fully arrived.
 *
 * Per target, a record: scrapes ok and failed, aborted for size, consecutive failures, last
 * success and last error (time and text), the last body size and duration, samples and bad
 * lines that the callback reported. scrape_target_stats() copies them for any thread.
 *
 * Threads: scrape_run(), scrape_set_targets() and the callback run on one thread; the stats
 * functions may be called from any thread.
 */
#ifndef GPUHEALTH_SCRAPE_H
#define GPUHEALTH_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What the callback tells about one scrape body. */
struct scrape_result {
	size_t samples;   /* samples parsed */
	size_t bad_lines; /* lines skipped */
	char error[256];  /* set with a non-zero return: why the scrape counts as failed */
};

/* Called once per successful HTTP transfer. body is valid during the call only. Return 0 (the
 * scrape is a success) or a negative errno with res->error set (it counts as a failure). */
typedef int (*scrape_cb)(void *ud, size_t target, const char *url, const char *body, size_t len,
                         const struct timespec *when, struct scrape_result *res);

/* When a scrape asks for a gzip body. AUTO: except from a loopback host (127.0.0.0/8, ::1,
 * localhost), where compression only spends CPU on both sides. */
enum scrape_gzip { SCRAPE_GZIP_AUTO = 0, SCRAPE_GZIP_ALWAYS, SCRAPE_GZIP_NEVER };

/* "auto", "always" or "never" into *out (may be NULL: just check). 0 or -EINVAL. */
int scrape_gzip_parse(const char *text, enum scrape_gzip *out);
/* --scrape-gzip of a loaded configuration (checked when it was loaded: cli_load). */
struct config;
enum scrape_gzip scrape_gzip_from_config(const struct config *cfg);

/* True when the URL's host is a loopback address or name. */
bool scrape_url_is_loopback(const char *url);

struct scrape_options {
	double interval_s;     /* > 0 */
	double timeout_s;      /* whole transfer, > 0 */
	size_t max_body;       /* decoded bytes, > 0 */
	double backoff_max_s;  /* 0: max(interval, 120 s) */
	unsigned max_parallel; /* transfers at once; 0: 256 */
	/* expected body bytes in flight at once, by each target's last body: a due target waits
	 * (unstarted) while it would go past this, unless nothing runs; 0: 32 MiB */
	size_t max_inflight_bytes;
	enum scrape_gzip gzip; /* when to send Accept-Encoding: gzip */
	bool once;             /* scrape every target once, no retries */
	bool first_now;        /* a new target's first scrape at once, not at its phase (the
	                          console: something to show right away) */
	scrape_cb cb;
	void *ud;
	/* Injected for tests; NULL: CLOCK_MONOTONIC and a seeded xorshift. */
	double (*mono)(void *clock_ud);
	void *clock_ud;
	uint64_t seed; /* jitter seed; 0: from the clock */
};

struct scrape_target_stats {
	char url[512]; /* truncated past 511 bytes */
	uint64_t ok, failed;
	uint64_t too_large; /* aborted past max_body (also counted in failed) */
	unsigned consecutive_failures;
	double last_success;    /* wall clock seconds, 0: never */
	double last_attempt;    /* wall clock of the last completed attempt, 0: never */
	double last_error_time; /* 0: never */
	char last_error[256];
	double last_duration_s;
	size_t last_bytes;           /* decoded body of the last successful scrape */
	size_t last_samples;         /* from the callback, last successful scrape */
	uint64_t samples, bad_lines; /* totals from the callback */
	/* intervals skipped because a scrape completed more than an interval after it was due (a
	 * late collector): samples that were never taken, counted */
	uint64_t missed;
	double next_in_s;            /* when the next attempt is due, from now */
	bool running;
};

struct scrape;

/* Returns 0, -EINVAL (bad option, message in err) or -ENOMEM. */
int scrape_create(struct scrape **out, const struct scrape_options *opts, char *err, size_t errlen);
void scrape_destroy(struct scrape *s);

/* Replaces the target set. Targets that stay keep their records and schedule; new ones get a
 * first scrape by their phase (at once with `once`); removed ones are aborted if running.
 * Returns 0 or -ENOMEM (the old set is kept). */
int scrape_set_targets(struct scrape *s, const char *const *urls, size_t n);

/* Starts what is due, moves transfers on, completes what finished (callbacks), and waits for
 * sockets at most max_wait_s (less when a target falls due sooner). Returns 0 or -EIO (libcurl
 * multi failure). */
int scrape_run(struct scrape *s, double max_wait_s);

/* With `once`: true when every target has been tried. */
bool scrape_once_done(const struct scrape *s);

size_t scrape_count(struct scrape *s);
/* Copies the records of up to max targets into out; returns how many targets there are. */
size_t scrape_target_stats(struct scrape *s, struct scrape_target_stats *out, size_t max);

/* The schedule's arithmetic, exposed for tests. */
double scrape_backoff(double interval, double backoff_max, unsigned failures, double u);
/* The next due time after a scrape that was due at `due` and ended at `now`. */
double scrape_next_due(double due, double interval, double now);
/* Phase of a URL's first scrape, in [0, interval). */
double scrape_phase(const char *url, double interval);

#endif
