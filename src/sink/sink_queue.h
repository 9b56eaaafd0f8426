/*
 * sink_queue: the sink's batch queue and writer threads (private to src/sink/: sink_int.h). The
 * consumer thread hands its filled batch over (sink_queue_handoff) and fills a free one,
 * pausing consumption while every batch is queued or being written. WRITERS writer threads,
 * each on its own connection, take the oldest queued batch (sink_write_batch), then finish the
 * written batches in queue order: offsets stored (never ahead of a batch given up), counters
 * added, the batch cleared and free again. Writer 0 also, between batches, when idle and at
 * stop, refreshes gpus, closes rollup minutes and writes the pipeline_stats rows, and, when
 * idle with no batch being written, keeps the partitions (sink_upkeep).
 * A batch's messages and texts are the batch's until sink_queue_clear.
 */
#ifndef GPUHEALTH_SINK_QUEUE_H
#define GPUHEALTH_SINK_QUEUE_H

#include <stdbool.h>

struct sink;
struct batch;

/* Starts the writer threads. Returns true when every one runs (else those that started run
 * until sink_queue_stop). */
bool sink_queue_start(struct sink *s);
/* Asks the writer threads to stop once the queue is empty and joins them. */
void sink_queue_stop(struct sink *s);
/* Queues the filling batch (nothing when empty) and starts filling a free one. */
void sink_queue_handoff(struct sink *s);
/* Queues what is filled and waits until the writers have finished all of it. */
void sink_queue_drain(struct sink *s);
/* Frees the batch's messages and reasons and empties it (keeps the memory). */
void sink_queue_clear(struct batch *b);

#endif
