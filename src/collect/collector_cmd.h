/* collector_cmd: `gpuhealth collector`, the collector service on its own, headless. */
#ifndef GPUHEALTH_COLLECTOR_CMD_H
#define GPUHEALTH_COLLECTOR_CMD_H

struct config;

/* Runs until SIGINT/SIGTERM, --duration, or (with --once) one scrape of every target; SIGHUP
 * re-reads --targets-file. Returns the process exit status. */
int collector_cmd_run(struct config *cfg);

#endif
