/*
 * sink_dlq: the sink's dead letters (private to src/sink/: sink_int.h). Before a batch's
 * transaction, sink_dlq_deliver produces each of its dead letters (items with a reason) to the
 * dead-letter topic through the sink's idempotent sender (bus/sender.h): the payload cut to
 * EVENT_CHECK_DLQ_PAYLOAD_MAX and the key to 1,024 bytes, headers with the reason, the source
 * topic, partition and offset, the original size and hash; tried up to 3 times. What the topic
 * still refuses, or refuses for good, is marked DLQ_TABLE and inserted into the dead_letters
 * table in the batch's transaction (sink_dlq_insert) or in one of its own (sink_dlq_write).
 * The sender's delivery reports (sink_dlq_delivered) write into the batch's items: a batch given
 * up purges its dead letters in flight and serves their reports before it is cleared.
 */
#ifndef GPUHEALTH_SINK_DLQ_H
#define GPUHEALTH_SINK_DLQ_H

#include <stddef.h>

#define DLQ_TIMEOUT_MS 30000 /* the dead-letter producer's message.timeout.ms */

struct sink;
struct batch;

/* The dead-letter sender's delivery report: the report's item (the message's opaque) DONE or
 * FAILED with its error. */
void sink_dlq_delivered(void *ctx, void *opaque, int err);
/* Sends every dead letter of the batch out (topic, else marked for the table). Returns 0, or
 * -EIO when stopping past the deadline (time_mono()). */
int sink_dlq_deliver(struct sink *s, struct batch *b, double deadline);
/* The dead letters marked DLQ_TABLE, inserted into dead_letters in writer w's open
 * transaction. Returns 0 or -EIO (never a data error: the dead letter must stay). */
int sink_dlq_insert(struct sink *s, int w, struct batch *b, char *err, size_t errlen,
                    char state[6]);
/* The same in a transaction of their own (a batch without a row transaction). 0 or -EIO. */
int sink_dlq_write(struct sink *s, int w, struct batch *b);
/* The number of the batch's dead letters marked DLQ_TABLE. */
size_t sink_dlq_count(const struct batch *b);

#endif
