/*
 * discovery: scrape targets found in Prometheus' own service-discovery formats.
 *
 *   file_sd  (--file-sd PATH, repeatable): a JSON or YAML list of target groups,
 *            [{"targets": ["host:9400", ...], "labels": {"name": "value", ...}}, ...],
 *            re-read when the file changes (its inode, size or modification time, looked at on
 *            every discovery_poll()) and on a forced poll (SIGHUP);
 *   http_sd  (--http-sd URL, repeatable): the same JSON list from an HTTP GET, every refresh_s;
 *   dns_sd   (--dns-sd NAME, repeatable): SRV records of NAME (host:port of each), or with
 *            dns_port A/AAAA records (address:dns_port), again when the shortest TTL ends.
 *
 * Each target becomes a URL: the __scheme__ label (default http), "://", the target, the
 * __metrics_path__ label (default /metrics). Labels cluster, datacenter, rack set those event
 * fields; every other label that does not start with "__" goes into the event's "labels".
 *
 * A source that fails (unreadable, malformed, an HTTP error or timeout, no DNS answer) logs an
 * error naming the source and keeps its last good list. A target listed by two sources (or
 * twice) is kept once, the first.
 *
 * Threads: one (the caller's). discovery_poll() blocks at most the HTTP timeout per endpoint
 * (less when the cancel callback says stop).
 */
#ifndef GPUHEALTH_DISCOVERY_H
#define GPUHEALTH_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "collect/events.h"

struct discovery_options {
	const char *const *files; /* file_sd paths (copied) */
	size_t nfiles;
	const char *const *urls; /* http_sd URLs (copied) */
	size_t nurls;
	const char *const *names; /* dns_sd names (copied) */
	size_t nnames;
	int dns_port;           /* > 0: A/AAAA records with this port; 0: SRV records */
	const char *dns_server; /* "IP:PORT" or "IP" (port 53): the resolver; NULL: the system's */
	double refresh_s;       /* http_sd interval (> 0) */
	double http_timeout_s;  /* one http_sd request (> 0) */
	bool (*cancel)(void);   /* optional: true aborts a running http_sd request (a stop) */
};

struct discovery;

/* Checks the options (message in err: -EINVAL). Nothing is read yet. */
int discovery_create(struct discovery **out, const struct discovery_options *o, char *err,
                     size_t errlen);
void discovery_destroy(struct discovery *d);

/* Reads the sources that are due at now (time_mono() seconds): a changed file, an http_sd
 * refresh, an ended DNS TTL; with force every source. *changed: the merged list differs from
 * the one before. Returns the number of sources that failed this time (each logged). */
int discovery_poll(struct discovery *d, double now, bool force, bool *changed);

/* The merged list: n URLs and their enrichment (parallel), borrowed until the next poll. */
size_t discovery_targets(const struct discovery *d, const char *const **urls,
                         const struct events_enrich **en);

/* Parses the text of a target-group list (JSON, or YAML when yaml) named name into d's
 * format; for tests: returns 0 or -EINVAL with the reason in err; *n targets. */
int discovery_parse_groups(const char *text, size_t len, bool yaml, const char *name, char ***urls,
                           struct events_enrich **en, size_t *n, char *err, size_t errlen);
void discovery_free_list(char **urls, struct events_enrich *en, size_t n);

#endif
