#include "store/pgcopy.h"

#include <math.h>
#include <string.h>

const char pgcopy_header[PGCOPY_HEADER_LEN] = {
    'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0', 0, 0, 0, 0, 0, 0, 0, 0};
const char pgcopy_trailer[2] = {'\377', '\377'};

#define PG_EPOCH_OFFSET 946684800.0 /* 2000-01-01T00:00:00Z in Unix seconds */

static void store32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

static void store64(unsigned char *b, uint64_t v)
{
	store32(b, (uint32_t)(v >> 32));
	store32(b + 4, (uint32_t)v);
}

int pgcopy_tuple(struct strbuf *sb, int16_t nfields)
{
	unsigned char b[2] = {(unsigned char)((uint16_t)nfields >> 8), (unsigned char)nfields};
	return strbuf_append_fast(sb, b, 2);
}

int pgcopy_null(struct strbuf *sb)
{
	static const unsigned char b[4] = {0xff, 0xff, 0xff, 0xff};
	return strbuf_append_fast(sb, b, 4);
}

int pgcopy_nulls(struct strbuf *sb, size_t n)
{
	/* a NULL field is a length of -1: four 0xff bytes each, up to 16 fields per append */
	static const unsigned char ff[64] = {
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	if (sb->data && sb->len + 4 * n < sb->cap) { /* the common case: one store */
		memset(sb->data + sb->len, 0xff, 4 * n);
		sb->len += 4 * n;
		sb->data[sb->len] = '\0';
		return 0;
	}
	while (n > 0) {
		size_t k = n < 16 ? n : 16;
		int rc = strbuf_append_fast(sb, ff, 4 * k);
		if (rc)
			return rc;
		n -= k;
	}
	return 0;
}

int pgcopy_int4(struct strbuf *sb, int32_t v)
{
	unsigned char b[8];
	store32(b, 4);
	store32(b + 4, (uint32_t)v);
	return strbuf_append_fast(sb, b, 8);
}

int pgcopy_int8(struct strbuf *sb, int64_t v)
{
	unsigned char b[12];
	store32(b, 8);
	store64(b + 4, (uint64_t)v);
	return strbuf_append_fast(sb, b, 12);
}

int pgcopy_float8(struct strbuf *sb, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	unsigned char b[12];
	store32(b, 8);
	store64(b + 4, bits);
	return strbuf_append_fast(sb, b, 12);
}

int pgcopy_text(struct strbuf *sb, const char *s, size_t len)
{
	unsigned char b[4];
	store32(b, (uint32_t)len);
	size_t at = sb->len;
	int rc = strbuf_append_fast(sb, b, 4);
	if (!rc && (rc = strbuf_append_fast(sb, s, len)) != 0)
		strbuf_truncate(sb, at); /* all or nothing */
	return rc;
}

int pgcopy_jsonb(struct strbuf *sb, const char *json, size_t len)
{
	unsigned char b[5];
	store32(b, (uint32_t)len + 1);
	b[4] = 1; /* jsonb binary format version */
	size_t at = sb->len;
	int rc = strbuf_append_fast(sb, b, 5);
	if (!rc && (rc = strbuf_append_fast(sb, json, len)) != 0)
		strbuf_truncate(sb, at);
	return rc;
}

int pgcopy_timestamptz(struct strbuf *sb, double epoch)
{
	return pgcopy_int8(sb, (int64_t)llround((epoch - PG_EPOCH_OFFSET) * 1e6));
}
