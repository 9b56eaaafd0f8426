/*
 * workloads: the sink's side of gpu_workloads (schema/013): which workload (Kubernetes
 * namespace, pod, container) held each GPU over which time, written when a GPU's workload
 * changes and moved forward at most every WORKLOADS_TOUCH_S per GPU, not a row per sample.
 *
 * A batch collects its runs (struct workload_runs: per GPU, consecutive samples with the same
 * workload); workloads_pending_json() says which of them the batch's transaction merges
 * (gpuhealth_merge_workloads(jsonb)): every run of a GPU whose workload changed, that this sink
 * has not merged yet, or whose last sample is WORKLOADS_TOUCH_S past what it merged; after the
 * COMMIT workloads_committed() records them, and how far every committed run went: the rest of
 * a run (its samples after the last merge) is sent with the GPU's next merge, so a run that
 * ends (the workload changed) ends at its last sample; workloads_tails_json() sends those of
 * GPUs that fell silent, or all of them at a stop. The merge is idempotent in the database, so a
 * redelivered batch, or two writers sending the same GPU, write nothing twice.
 * Thread-safe: struct workloads has its own lock; a struct workload_runs belongs to one batch.
 */
#ifndef GPUHEALTH_WORKLOADS_H
#define GPUHEALTH_WORKLOADS_H
#include <stdbool.h>
#include <stddef.h>

struct pg_conn; /* libpq's PGconn */

#define WORKLOADS_TOUCH_S 30.0 /* the longest a GPU's last_seen stays behind its samples */

struct workloads;
struct workload_runs;

/* Returns NULL when out of memory. */
struct workloads *workloads_create(void);
void workloads_destroy(struct workloads *k);
/* Forgets what was merged (a new connection, maybe another server): every GPU merged again. */
void workloads_forget(struct workloads *k);

struct workload_runs *workload_runs_create(void);
void workload_runs_destroy(struct workload_runs *r);
void workload_runs_clear(struct workload_runs *r);
/*
 * Adds one sample of GPU key at time t with workload wl (COPY text "namespace\tpod\tcontainer"
 * from event_row, wl_len 0 = none). Returns 0 or -ENOMEM.
 */
int workload_runs_add(struct workload_runs *r, const char *key, const char *wl, size_t wl_len,
                      double t);
size_t workload_runs_count(const struct workload_runs *r);

/*
 * The runs the batch's transaction should merge, as the JSON argument of
 * gpuhealth_merge_workloads(); *json NULL when none. The caller frees *json. Marks those runs
 * for workloads_committed(). Returns 0 or -ENOMEM.
 */
int workloads_pending_json(struct workloads *k, struct workload_runs *r, char **json);
/* After the batch's COMMIT: its sent runs are in the table. */
void workloads_committed(struct workloads *k, const struct workload_runs *r);

/*
 * The rows whose last_seen is behind their GPU's newest committed sample with that workload,
 * for GPUs whose newest such sample is older than before (epoch seconds; a GPU that fell
 * silent, or every GPU at a stop with before = +inf): *json as for workloads_pending_json(),
 * NULL when none; the caller frees it. After its COMMIT, workloads_tails_committed().
 */
int workloads_tails_json(struct workloads *k, double before, char **json);
void workloads_tails_committed(struct workloads *k);

/* Whether the database has gpuhealth_merge_workloads(jsonb) (schema 013 or later). */
bool workloads_db_ready(struct pg_conn *db);
#endif
