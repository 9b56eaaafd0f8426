/*
 * sink_gpus: the sink's side of the gpus table and of the fleet overview (private to
 * src/sink/: sink_int.h). A batch collects its GPUs as its rows are parsed (first and last
 * sample time, newest identity: sink_gpus_seen_add, in the batch); the GPUs this sink knows to
 * be in gpus (struct gpu_known, shared by the writers under s->glock) decide which of them the
 * batch's transaction merges (sink_gpus_copy: new to the sink, a changed identity or an
 * earlier sample; gpuhealth_merge_gpus(), then gpuhealth_fleet_now_sink() for the overview:
 * sink_gpus_fleet_now), and sink_gpus_committed records them after the COMMIT. Writer 0 brings
 * gpus up to the committed rows every GPUS_MERGE_S (sink_gpus_refresh: the GPUs that still
 * need a merge, then last_seen of the others in one UPDATE, then the tails of gpu_workloads
 * runs), each in a transaction of its own. The keys and identities are copied in; the sets are
 * freed by sink_gpus_batch_clear / sink_gpus_forget and the sink's destroy.
 */
#ifndef GPUHEALTH_SINK_GPUS_H
#define GPUHEALTH_SINK_GPUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sink;
struct batch;
struct item;

/* The COPY-escaped gpu_key of an identity text (event_row's ident): its first column, cut to
 * keylen - 1 bytes. */
void sink_gpus_ident_key(const char *ident, size_t len, char *key, size_t keylen);
/* Records a row's GPU (key, sample time t, its identity at [ident_off, +ident_len) of the
 * batch's idents) in the batch's set; *ord is the GPU's ordinal in the batch. Returns 0 or
 * -ENOMEM. */
int sink_gpus_seen_add(struct batch *b, const char *key, double t, size_t ident_off,
                       size_t ident_len, uint32_t *ord);
/* The batch's gpuhealth_ident COPY text (b->ident_copy): one line per GPU of the batch, or of
 * the one row only (not NULL). Returns 0 or the strbuf's -ENOMEM/-ENOSPC. */
int sink_gpus_ident_copy(struct batch *b, const struct item *only);
/* Empties the batch's set of GPUs and its list of GPUs sent (keeps the memory). */
void sink_gpus_batch_clear(struct batch *b);

/* The batch's gpuhealth_ident COPY text (b->ident_copy) for its GPUs that are new to the sink,
 * changed identity or brought an earlier sample. Returns 0 or -ENOMEM. */
int sink_gpus_copy(struct sink *s, struct batch *b);
/* After the batch's COMMIT: its rows are committed and its gpus merge is in the table. */
void sink_gpus_committed(struct sink *s, struct batch *b);
/* Forgets every GPU known: each is merged again (a new connection, maybe another server). */
void sink_gpus_forget(struct sink *s);
/* After gpuhealth_merge_gpus() in writer w's transaction: gpuhealth_fleet_now_sink() when the
 * schema has it (17), else nothing. Returns 0 or what sink_db_exec returns. */
int sink_gpus_fleet_now(struct sink *s, int w, char *err, size_t errlen, char state[6]);
/* Writer w (0), between batches, when idle and at stop (force): gpus brought up to the
 * committed rows once GPUS_MERGE_S passed since the last time, or always when force. */
void sink_gpus_refresh(struct sink *s, int w, bool force);

#endif
