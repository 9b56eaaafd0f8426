/*
 * event_row: one sample event (event-v1 JSON) -> one validated row of PostgreSQL COPY text for
 * the sink's staging table, or the reason it is rejected (for the dead-letter topic).
 */
#ifndef GPUHEALTH_EVENT_ROW_H
#define GPUHEALTH_EVENT_ROW_H

#include <stdbool.h>
#include <stddef.h>

#include "core/strbuf.h"

struct event_row_opts {
	double now;          /* seconds since the epoch */
	double max_age_s;    /* reject samples older than now - max_age_s (the retention) */
	double max_future_s; /* reject samples newer than now + max_future_s (clock skew) */
	bool general_only;   /* skip the single-pass fast path (tests compare the two paths) */
};

struct event_row_info {
	double time;       /* the sample's time, seconds since the epoch */
	char gpu_key[192]; /* uuid, or uuid/mig_instance */
};

/* The COPY statement whose column order event_row_append writes. */
const char *event_row_copy_sql(void);

/*
 * Validates payload (len bytes, not NUL-terminated) and appends one COPY text line to out.
 * Returns 0; -EINVAL with a reason naming the field and the problem (out unchanged); or
 * -ENOSPC/-ENOMEM when out cannot grow.
 */
int event_row_append(const char *payload, size_t len, const struct event_row_opts *opts,
		     struct strbuf *out, struct event_row_info *info, char *reason, size_t rlen);

#endif
