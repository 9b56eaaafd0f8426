/*
 * status: `gpuhealth status [--json]`, the fleet's latest state and health once, then exit.
 *
 * Sources, in this order:
 *   --target URL (repeatable) or --targets-file: one scrape of every exporter now; health from
 *        the rules over that one sample (counter rates need two samples, so they are not
 *        judged), the recommendation from the same economics the scorer uses;
 *   --nvml: this machine's GPUs read once through NVML (nvml.h), as --target's scrape, with
 *        the processes on each (issue #24);
 *   --db / DATABASE_URL / libpq's PG* variables: every host's latest sample, the scorer's latest
 *        health, prediction and recommendation, each GPU's current workload (gpu_workloads),
 *        and the open alerts.
 * The JSON document (schema "gpuhealth.status/1") has typed numbers, units in the key names,
 * null for what is unknown; it is described in gpuhealth(1), STATUS OUTPUT.
 *
 * Exit status: 0 when the state was read (whatever the GPUs' health), 1 when it could not be
 * (database unreachable, every target failed), 2 on bad usage.
 */
#ifndef GPUHEALTH_STATUS_H
#define GPUHEALTH_STATUS_H

#include <jansson.h>
#include <stddef.h>

#include "core/config.h"
#include "fleet/fleet.h"

int status_cmd_run(struct config *cfg);

/* The JSON document for n GPUs (ordered by host) read from source ("scrape" or "database") at
 * time now; alerts (may be NULL) is an array of open alerts, each with a "gpu_key", stolen.
 * Returns a new reference or NULL (out of memory). */
json_t *status_json(const struct fleet_gpu *gpus, size_t n, const char *source, double now,
		    json_t *alerts);

#endif
