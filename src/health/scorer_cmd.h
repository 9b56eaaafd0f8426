/* scorer_cmd: `gpuhealth scorer`, the health service on its own, headless. */
#ifndef GPUHEALTH_SCORER_CMD_H
#define GPUHEALTH_SCORER_CMD_H

struct config;
struct scorer_options;
struct service_ops;

/* The scorer as a service (impl: a struct scorer): created from the configuration by the
 * subcommand (service_main, with --metrics-listen), or made by the pipeline with
 * scorer_create and wrapped (service_wrap); start, status (failed, or degraded while the
 * database is away), its stats line, stop clean or now, destroy. */
extern const struct service_ops scorer_service_ops;

/* Fills scorer options from a mode's configuration (strings and lists borrowed from cfg). */
void scorer_cmd_options(const struct config *cfg, struct scorer_options *o);

#endif
