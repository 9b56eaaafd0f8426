/*
 * fleetdb: reads a gpuhealth database back for the console and `gpuhealth status`: every GPU's
 * newest sample, stored health, newest prediction (v_latest_gpu_metrics, v_latest_health,
 * gpu_failure_predictions) and current workload (gpu_workloads, schema 013; none from an older
 * database) into a fleet (fleet.h), and the number of rows in gpu_metrics. Only SELECTs, on
 * the caller's connection, in the caller's thread. Used by the pipeline's reader thread, and,
 * as pipeline_read_fleet_db/pipeline_read_fleet_keys (pipeline.h), by `gpuhealth status` and
 * the viewer's fleet table (viewdb).
 */
#ifndef GPUHEALTH_FLEETDB_H
#define GPUHEALTH_FLEETDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/fleet.h"

struct pg_conn; /* libpq's PGconn */

/* Reads every GPU's latest sample, stored health, latest prediction and workload (at most
 * 65,536 GPUs) into f. Returns 0, or -EIO / -ENOMEM with a message in err. */
int fleetdb_read(struct pg_conn *c, struct fleet *f, char *err, size_t errlen);

/* The same for the GPUs keys[0..n) only (the fleet table's rows on screen, one GPU's detail):
 * a GPU without a sample is ingested with its identity. Returns 0, or -EIO / -ENOMEM with a
 * message in err. */
int fleetdb_read_keys(struct pg_conn *c, struct fleet *f, const char *const *keys, size_t n,
                      char *err, size_t errlen);

/* Rows in gpu_metrics: exact (count(*)) below 1,000,000, else the planner's estimate (*estimate
 * set). Returns -1 when the database does not say. */
int64_t fleetdb_count_rows(struct pg_conn *c, bool *estimate);

#endif
