#include "api/api_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strbuf.h"
#include "store/pg.h"

/* PostgreSQL type OIDs (pg_type.dat) for turning result columns into JSON. */
#define OID_BOOL        16
#define OID_INT8        20
#define OID_INT2        21
#define OID_INT4        23
#define OID_JSON        114
#define OID_FLOAT4      700
#define OID_FLOAT8      701
#define OID_TIMESTAMPTZ 1184
#define OID_NUMERIC     1700
#define OID_JSONB       3802

/* "2026-11-28 15:56:33.123+00" (TimeZone UTC, DateStyle ISO) -> "2026-11-28T15:56:33.123Z" */
json_t *api_json_ts(const char *v)
{
	char buf[64];
	size_t n = strlen(v);
	if (n >= sizeof(buf) || n < 19)
		return json_string(v);
	memcpy(buf, v, n + 1);
	if (buf[10] == ' ')
		buf[10] = 'T';
	if (n >= 3 && strcmp(buf + n - 3, "+00") == 0)
		snprintf(buf + n - 3, sizeof(buf) - (n - 3), "Z");
	return json_string(buf);
}

static json_t *cell_json(const PGresult *r, int row, int col)
{
	if (pg_null(r, row, col))
		return json_null();
	const char *v = pg_text(r, row, col);
	switch (pg_ftype(r, col)) {
	case OID_BOOL: return json_boolean(v[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8: return json_integer((json_int_t)strtoll(v, NULL, 10));
	case OID_FLOAT4:
	case OID_FLOAT8:
	case OID_NUMERIC: {
		double d = strtod(v, NULL);
		return isfinite(d) ? json_real(d) : json_null();
	}
	case OID_JSON:
	case OID_JSONB: {
		json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
		return j ? j : json_string(v);
	}
	case OID_TIMESTAMPTZ: return api_json_ts(v);
	default: return json_string(v);
	}
}

json_t *api_json_row(const PGresult *r, int row)
{
	json_t *o = json_object();
	for (int c = 0; o && c < pg_fields(r); c++)
		json_object_set_new(o, pg_fname(r, c), cell_json(r, row, c));
	return o;
}

json_t *api_json_rows(const PGresult *r)
{
	json_t *a = json_array();
	for (int i = 0; a && i < pg_rows(r); i++)
		json_array_append_new(a, api_json_row(r, i));
	return a;
}

/* Appends s as a JSON string (s: UTF-8, as PostgreSQL returns text from a UTF8 database). */
void api_json_text_str(struct strbuf *sb, const char *s)
{
	strbuf_append(sb, "\"", 1);
	const char *run = s;
	for (const char *c = s;; c++) {
		unsigned char u = (unsigned char)*c;
		if (u >= 0x20 && u != '"' && u != '\\')
			continue;
		strbuf_append(sb, run, (size_t)(c - run));
		if (!u)
			break;
		if (u == '"' || u == '\\')
			strbuf_printf(sb, "\\%c", u);
		else if (u == '\n')
			strbuf_puts(sb, "\\n");
		else if (u == '\t')
			strbuf_puts(sb, "\\t");
		else
			strbuf_printf(sb, "\\u%04x", u);
		run = c + 1;
	}
	strbuf_append(sb, "\"", 1);
}

/* Appends one result row as a JSON object, typed as cell_json types it, without building a
 * jansson tree first (for 500 GPUs that tree was ~80 % of a page's CPU: malloc and free). */
void api_json_text_row(struct strbuf *sb, const PGresult *r, int row)
{
	strbuf_append(sb, "{", 1);
	for (int col = 0; col < pg_fields(r); col++) {
		if (col)
			strbuf_append(sb, ",", 1);
		api_json_text_str(sb, pg_fname(r, col));
		strbuf_append(sb, ":", 1);
		const char *v = pg_text(r, row, col);
		if (pg_null(r, row, col)) {
			strbuf_puts(sb, "null");
			continue;
		}
		switch (pg_ftype(r, col)) {
		case OID_BOOL: strbuf_puts(sb, v[0] == 't' ? "true" : "false"); break;
		case OID_INT2:
		case OID_INT4:
		case OID_INT8: strbuf_printf(sb, "%lld", strtoll(v, NULL, 10)); break;
		case OID_FLOAT4:
		case OID_FLOAT8:
		case OID_NUMERIC: {
			double d = strtod(v, NULL);
			char num[40];
			snprintf(num, sizeof(num), "%.17g", d);
			if (!isfinite(d))
				strbuf_puts(sb, "null");
			else
				strbuf_printf(sb, "%s%s", num, strpbrk(num, ".eE") ? "" : ".0");
			break;
		}
		case OID_TIMESTAMPTZ: {
			json_t *t = api_json_ts(v);
			api_json_text_str(sb, t ? json_string_value(t) : v);
			json_decref(t);
			break;
		}
		case OID_JSON:
		case OID_JSONB: {
			json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
			if (j)
				strbuf_puts(sb, v); /* valid JSON as it is */
			else
				api_json_text_str(sb, v);
			json_decref(j);
			break;
		}
		default: api_json_text_str(sb, v);
		}
	}
	strbuf_append(sb, "}", 1);
}
