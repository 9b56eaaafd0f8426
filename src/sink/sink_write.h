/*
 * sink_write: one queued batch written by writer w (private to src/sink/: sink_int.h). Its dead
 * letters go out first (sink_dlq); then one transaction: the partitions ensured, the rollup
 * mark read FOR SHARE, the rows (grouped by GPU) by binary COPY straight into gpu_metrics, or,
 * when a row is already there (a redelivery: unique violation), again through gpuhealth_stage
 * and gpuhealth_ingest_staged(), which leaves out the rows present; the rollups of the rows
 * before the mark (sink_rollups_merge of the batch's own, else the database's from the new
 * rows); the GPUs that need it (sink_gpus); the dead letters the topic refused; the workload
 * runs; COMMIT, after which the batch's rollups at or after the mark join the sink's open
 * minutes. Retried with backoff while the database is away; a batch whose data the database
 * refuses is written row by row, so only the refused rows become dead letters. Offsets are not
 * stored here: sink_queue finishes the batches in queue order.
 */
#ifndef GPUHEALTH_SINK_WRITE_H
#define GPUHEALTH_SINK_WRITE_H

struct sink;
struct batch;

/* Writes batch b on writer w's connection; when stopping, gives up after the stop deadline.
 * Returns 0 (b->ins, dups, dead, dead_db set) or -EIO (given up: not acknowledged, so
 * redelivered). */
int sink_write_batch(struct sink *s, int w, struct batch *b);

#endif
