/*
 * event_row: one sample event (event-v1 JSON) -> one validated row for the sink: a tuple of
 * PostgreSQL's binary COPY format in event_row_columns() order (the sink COPYs a batch of them
 * straight into gpu_metrics, or into gpuhealth_stage when a row is already there), the GPU's
 * identity as COPY text (for gpuhealth_ident) and, when asked, the event's workload; or the
 * reason it is rejected (for the dead-letter topic). A single-pass fast path builds the rows of
 * the events a collector writes; anything doubtful goes to the general path, which is
 * event_check, so every reason comes from one place and both paths write the same row.
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
	/* optional output: the event's workload as COPY text "namespace\tpod\tcontainer" (\N for
	 * a member absent, null or empty), or left empty when the event has none (workload null or
	 * absent, or every member absent, null or empty). Reset by each call; may be NULL. */
	struct strbuf *workload;
};

struct event_row_info {
	double time;       /* the sample's time, seconds since the epoch */
	char gpu_key[192]; /* uuid, or uuid/mig_instance */
	bool fast;         /* the single-pass fast path built the row (tests and benchmarks) */
};

/* The columns before the known fields: time, gpu_key, uuid, mig_instance, hostname, gpu_index;
 * after the fields comes extra. */
#define EVENT_ROW_FIXED_COLUMNS 6

/* "(time, gpu_key, ...)": the gpu_metrics columns in the order event_row_append writes them
 * (for COPY gpu_metrics or COPY gpuhealth_stage ... (FORMAT binary)). */
const char *event_row_columns(void);

/* The identity text event_row_append writes to ident: these columns of gpuhealth_ident (before
 * first_seen/last_seen), tab-separated, COPY-escaped text format, no newline. */
#define EVENT_ROW_IDENT_COLUMNS                                                                    \
	"gpu_key, uuid, mig_instance, mig_profile, gpu_index, hostname, model, pci_bus_id, "       \
	"device, driver_version, cluster, datacenter, rack"

/*
 * Validates payload (len bytes, not NUL-terminated), appends one tuple of PostgreSQL's binary
 * COPY format (see store/pgcopy.h) to out and the GPU's identity (EVENT_ROW_IDENT_COLUMNS) to
 * ident.
 * Returns 0; -EINVAL with a reason naming the field and the problem (out unchanged); or
 * -ENOSPC/-ENOMEM when out cannot grow.
 */
int event_row_append(const char *payload, size_t len, const struct event_row_opts *opts,
                     struct strbuf *out, struct strbuf *ident, struct event_row_info *info,
                     char *reason, size_t rlen);

#endif
