/* collector_cmd: `gpuhealth collector`, the collector service on its own, headless. */
#ifndef GPUHEALTH_COLLECTOR_CMD_H
#define GPUHEALTH_COLLECTOR_CMD_H

#include <stdbool.h>
#include <stddef.h>

struct collector_options;
struct config;
struct discovery;
struct events_enrich;
struct service_ops;
struct targets;

/* The collector as a service over a struct collector made by collector_create (service_wrap):
 * start, status (failed, done after --once, degraded with targets down), its stats line,
 * stop (flush, spool what is pending), destroy. */
extern const struct service_ops collector_service_ops;

/* Fills the collector options every mode reads the same way from its configuration (the
 * shard, interval, timeouts, body limit, gzip, threads, enrichment, the topic and the buffer
 * and spool bounds; strings borrowed from cfg); the rest (targets, brokers, -X, output) is
 * the caller's. */
void collector_cmd_options(const struct config *cfg, struct collector_options *o);

/* `gpuhealth collector` (service_main): created from the configuration (targets, discovery,
 * --nvml, --metrics-listen); runs until SIGINT/SIGTERM, --duration, or (with --once) one
 * scrape of every target; SIGHUP re-reads --targets-file; its verdict fails the run when
 * targets failed or events were not delivered. */
extern const struct service_ops collector_cmd_service_ops;

/* The discovery sources of --file-sd, --http-sd and --dns-sd (with --dns-sd-port, --dns-server,
 * --sd-refresh), as the collector, the console and --daemon take them: *out NULL when none is
 * given. cancel: see discovery_options. Returns 0, -EINVAL (bad options, message in err) or
 * -ENOMEM. Nothing is read yet (discovery_poll). */
int collector_cmd_discovery(const struct config *cfg, bool (*cancel)(void), struct discovery **out,
                            char *err, size_t errlen);

/* The static targets followed by the discovered ones (a URL in both: the static one). */
struct collector_merged {
	const char **urls;        /* borrowed from tg and the discovery */
	struct events_enrich *en; /* borrowed members */
	size_t n;
};
/* Builds m from tg and d (d may be NULL), replacing what m held. Returns 0 or -ENOMEM. */
int collector_merge_targets(const struct targets *tg, struct discovery *d,
                            struct collector_merged *m);
void collector_merged_free(struct collector_merged *m);

#endif
