/* scorer_cmd: `gpuhealth scorer`, the health service on its own, headless. */
#ifndef GPUHEALTH_SCORER_CMD_H
#define GPUHEALTH_SCORER_CMD_H

struct config;
struct scorer_options;

/* Fills scorer options from a mode's configuration (strings borrowed from cfg; *props is
 * allocated for the -X list and owned by the caller, free()). Returns 0 or -ENOMEM. */
int scorer_cmd_options(const struct config *cfg, struct scorer_options *o, const char ***props);

/* Runs until SIGINT/SIGTERM or --duration; returns the process exit status. */
int scorer_cmd_run(struct config *cfg);

#endif
