/*
 * pgcopy: PostgreSQL's binary COPY format, written into a strbuf (network byte order):
 * a tuple is an int16 field count, then per field an int32 length (-1 for NULL) and the
 * bytes of the type's binary form. The stream is pgcopy_header, tuples, pgcopy_trailer.
 */
#ifndef GPUHEALTH_PGCOPY_H
#define GPUHEALTH_PGCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "core/strbuf.h"

#define PGCOPY_HEADER_LEN 19
extern const char pgcopy_header[PGCOPY_HEADER_LEN];
extern const char pgcopy_trailer[2];

/* Each returns 0 or the strbuf's -ENOMEM/-ENOSPC. */
int pgcopy_tuple(struct strbuf *sb, int16_t nfields);
int pgcopy_null(struct strbuf *sb);
/* n NULL fields in a row (one append for a run of absent columns). */
int pgcopy_nulls(struct strbuf *sb, size_t n);
int pgcopy_int4(struct strbuf *sb, int32_t v);
int pgcopy_int8(struct strbuf *sb, int64_t v);
int pgcopy_float8(struct strbuf *sb, double v);
int pgcopy_text(struct strbuf *sb, const char *s, size_t len);
/* jsonb: a version byte (1) and the JSON text. */
int pgcopy_jsonb(struct strbuf *sb, const char *json, size_t len);
/* timestamptz: microseconds since 2000-01-01 00:00 UTC, from seconds since the epoch. */
int pgcopy_timestamptz(struct strbuf *sb, double epoch);

#endif
