#include "store/pgcopy.h"

#include <arpa/inet.h>
#include <math.h>
#include <string.h>

const char pgcopy_header[PGCOPY_HEADER_LEN] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n',
					       '\0', 0, 0, 0, 0, 0, 0, 0, 0};
const char pgcopy_trailer[2] = {'\377', '\377'};

#define PG_EPOCH_OFFSET 946684800.0 /* 2000-01-01T00:00:00Z in Unix seconds */

static int be16(struct strbuf *sb, uint16_t v)
{
	uint16_t n = htons(v);
	return strbuf_append(sb, &n, 2);
}

static int be32(struct strbuf *sb, uint32_t v)
{
	uint32_t n = htonl(v);
	return strbuf_append(sb, &n, 4);
}

static int be64(struct strbuf *sb, uint64_t v)
{
	unsigned char b[8];
	for (int i = 7; i >= 0; i--) {
		b[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	return strbuf_append(sb, b, 8);
}

int pgcopy_tuple(struct strbuf *sb, int16_t nfields) { return be16(sb, (uint16_t)nfields); }
int pgcopy_null(struct strbuf *sb) { return be32(sb, 0xffffffffu); }

int pgcopy_int4(struct strbuf *sb, int32_t v)
{
	int rc = be32(sb, 4);
	return rc ? rc : be32(sb, (uint32_t)v);
}

int pgcopy_int8(struct strbuf *sb, int64_t v)
{
	int rc = be32(sb, 8);
	return rc ? rc : be64(sb, (uint64_t)v);
}

int pgcopy_float8(struct strbuf *sb, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	int rc = be32(sb, 8);
	return rc ? rc : be64(sb, bits);
}

int pgcopy_text(struct strbuf *sb, const char *s, size_t len)
{
	int rc = be32(sb, (uint32_t)len);
	return rc ? rc : strbuf_append(sb, s, len);
}

int pgcopy_jsonb(struct strbuf *sb, const char *json, size_t len)
{
	int rc = be32(sb, (uint32_t)len + 1);
	if (!rc)
		rc = strbuf_append(sb, "\1", 1);
	return rc ? rc : strbuf_append(sb, json, len);
}

int pgcopy_timestamptz(struct strbuf *sb, double epoch)
{
	return pgcopy_int8(sb, (int64_t)llround((epoch - PG_EPOCH_OFFSET) * 1e6));
}
