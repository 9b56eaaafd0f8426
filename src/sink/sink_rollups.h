/*
 * sink_rollups: the sink's 1-minute rollups in the database (private to src/sink/:
 * sink_int.h). sink_rollups_merge merges groups (rollup_copy's binary COPY tuples) into
 * gpu_metrics_1min inside writer w's transaction: a batch's rows before the rollup mark (late
 * rows). The groups at or after the mark are kept in memory (s->open, under s->rlock, joined
 * after each batch's COMMIT) until sink_rollups_close (writer 0, between batches, when idle and
 * at stop) closes their minutes, CLOSE_GRACE_S after the newest committed sample: the kept
 * groups written once per (GPU, minute) when the database holds exactly the rows this sink
 * kept, else computed by the database (gpuhealth_rollup_recompute()); the mark moves on.
 */
#ifndef GPUHEALTH_SINK_ROLLUPS_H
#define GPUHEALTH_SINK_ROLLUPS_H

#include <stdbool.h>
#include <stddef.h>

struct sink;
struct strbuf;

/* Merges copy into gpu_metrics_1min through the session's gpuhealth_rollup_stage; nothing when
 * copy is empty. Returns 0 or what sink_db_copy_in/sink_db_exec return. */
int sink_rollups_merge(struct sink *s, int w, const struct strbuf *copy, char *err, size_t errlen,
                       char state[6]);
/* Closes the minutes that are due (every minute up to the newest sample when final); a
 * failure is logged and tried again later. Nothing when the schema has no rollup mark. */
void sink_rollups_close(struct sink *s, int w, bool final);

#endif
