/*
 * rollup: the 1-minute rollups (gpu_metrics_1min) of a batch's rows, computed from the rows'
 * binary COPY tuples (event_row_append's output) so the database need not scan the rows again.
 * The result is a binary COPY stream for gpuhealth_rollup_stage, merged into gpu_metrics_1min by
 * gpuhealth_merge_rollups() (schema/003): min/max by LEAST/GREATEST, sums and counts added.
 */
#ifndef GPUHEALTH_ROLLUP_H
#define GPUHEALTH_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

struct rollup;

/* Returns 0 or -ENOMEM. */
int rollup_create(struct rollup **out);
void rollup_destroy(struct rollup *r);
/* Forgets every group (keeps the memory). */
void rollup_reset(struct rollup *r);

/*
 * Adds the tuples in [rows, rows+len) (binary COPY tuples in event_row_columns() order, no
 * header or trailer). Returns 0; -ENOMEM; or -EINVAL when a tuple is not in that layout.
 */
int rollup_add(struct rollup *r, const char *rows, size_t len);

/* Number of (GPU, minute) groups held. */
size_t rollup_groups(const struct rollup *r);

/* Appends one binary COPY tuple per group, in rollup_columns() order (no header/trailer),
 * sorted by (GPU, minute). Returns 0 or the strbuf's -ENOMEM/-ENOSPC. */
int rollup_copy(const struct rollup *r, struct strbuf *out);
/* The same for the groups whose minute is in [from, to) (microseconds since 2000-01-01 UTC). */
int rollup_copy_range(const struct rollup *r, int64_t from, int64_t to, struct strbuf *out);

/* Adds src's groups whose minute is >= from into dst (the same merge as the database's).
 * Returns 0 or -ENOMEM (dst then holds part of them). */
int rollup_merge(struct rollup *dst, const struct rollup *src, int64_t from);
/* The samples counted by the groups whose minute is in [from, to). */
uint64_t rollup_samples(const struct rollup *r, int64_t from, int64_t to);
/* Forgets the groups whose minute is before to. Returns 0, or -ENOMEM (nothing forgotten). */
int rollup_drop_below(struct rollup *r, int64_t to);
/* The minute of t (seconds since 1970, may be +-infinity) in microseconds since 2000-01-01 UTC,
 * floored as date_trunc('minute') does; INT64_MIN/INT64_MAX beyond the range. */
int64_t rollup_minute(double t);

/* "(gpu_key, minute, samples, ...)": the gpu_metrics_1min columns rollup_copy writes. */
const char *rollup_columns(void);

#endif
