/* api_cmd: the `gpuhealth api` command: the read-only HTTP API as a service. */
#ifndef GPUHEALTH_API_CMD_H
#define GPUHEALTH_API_CMD_H

struct config;

/* Runs until SIGINT/SIGTERM or --duration; returns the process exit status. */
int api_cmd_run(struct config *cfg);

#endif
