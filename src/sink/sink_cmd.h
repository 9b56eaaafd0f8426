/* sink_cmd: `gpuhealth sink`, the sink service on its own, headless; and the sink's face as a
 * service (core/service.h) for the pipeline. */
#ifndef GPUHEALTH_SINK_CMD_H
#define GPUHEALTH_SINK_CMD_H

struct config;
struct service_ops;
struct sink_options;

/* The sink as a service (impl: a struct sink): created from the configuration by the
 * subcommand (service_main), or made by the pipeline with sink_create and wrapped
 * (service_wrap); start, status (failed, or degraded while the database is away), its stats
 * line, stop clean (commit the open batch) or now, destroy. */
extern const struct service_ops sink_service_ops;

/* Fills sink options from a mode's configuration (strings and -X borrowed from cfg): the sink
 * command's and the console's pipeline's sink read the same settings. */
void sink_cmd_options(const struct config *cfg, struct sink_options *o);

#endif
