/*
 * fields: the known DCGM fields of the event contract (docs/event-v1.md, the repository's copy of the shared contract), one
 * table for every stage: the DCGM name (and an older alias), the event key, the database
 * column type, and the unit.
 */
#ifndef GPUHEALTH_FIELDS_H
#define GPUHEALTH_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

enum field_kind {
	FIELD_GAUGE,   /* a level; stored as double precision */
	FIELD_COUNTER, /* a monotonic 64-bit integer; stored as bigint, kept exact */
	FIELD_CODE,    /* an integer code or bitmask (xid, clocks_event_reasons, 0/1 flags) */
};

struct field_def {
	const char *dcgm;  /* DCGM_FI_... name as dcgm-exporter prints it */
	const char *alias; /* an older name of the same field, or NULL */
	const char *key;   /* short name in the event's "metrics" and the database column */
	enum field_kind kind;
	const char *unit;
};

/* The table, in the contract's order; *n receives its length. */
const struct field_def *fields_all(size_t *n);
/* Looks a field up by its DCGM name or alias (len bytes, not NUL-terminated); NULL if unknown. */
const struct field_def *fields_by_dcgm(const char *name, size_t len);
/* Looks a field up by its event key; NULL if unknown. */
const struct field_def *fields_by_key(const char *key);
/* The same for a key of len bytes, not NUL-terminated. */
const struct field_def *fields_by_keyn(const char *key, size_t len);
/* Position of a field in the table (for arrays indexed by field). */
size_t fields_index(const struct field_def *f);

#endif
