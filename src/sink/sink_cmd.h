/* sink_cmd: `gpuhealth sink`, the sink service on its own, headless. */
#ifndef GPUHEALTH_SINK_CMD_H
#define GPUHEALTH_SINK_CMD_H

struct config;

/* Runs until SIGINT/SIGTERM or --duration; returns the process exit status. */
int sink_cmd_run(struct config *cfg);

#endif
