/* api_cmd: the `gpuhealth api` command: the read-only HTTP API as a service (core/service.h). */
#ifndef GPUHEALTH_API_CMD_H
#define GPUHEALTH_API_CMD_H

struct config;
struct service_ops;

/* The api as a service: create from the configuration (--listen, --db,
 * --max-client-connections), start (listen), its stats line, stop, destroy. */
extern const struct service_ops api_service_ops;

#endif
