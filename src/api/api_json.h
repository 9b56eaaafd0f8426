/*
 * api_json: the API's result rows as JSON, each column typed by its PostgreSQL type OID
 * (booleans, integers, numbers (NaN and infinities as null), json/jsonb as they are, timestamps
 * in RFC 3339 UTC, the rest as strings): as jansson trees (api_json_row, api_json_rows), or
 * written straight into a buffer as JSON text (api_json_text_row: a page of GPUs without a tree
 * to build and free). Pure functions of their arguments.
 */
#ifndef GPUHEALTH_API_JSON_H
#define GPUHEALTH_API_JSON_H

#include <jansson.h>

struct pg_result; /* libpq's PGresult */

struct strbuf;

/* "2026-11-28 15:56:33.123+00" (TimeZone UTC, DateStyle ISO) -> "2026-11-28T15:56:33.123Z";
 * any other text as it is. Returns a new reference (caller json_decref) or NULL. */
json_t *api_json_ts(const char *v);
/* Row row of r as an object of its columns by name. Returns a new reference or NULL. */
json_t *api_json_row(const struct pg_result *r, int row);
/* Every row of r as an array of api_json_row objects. Returns a new reference or NULL. */
json_t *api_json_rows(const struct pg_result *r);

/* Appends s as a JSON string (s: UTF-8, as PostgreSQL returns text from a UTF8 database). */
void api_json_text_str(struct strbuf *sb, const char *s);
/* Appends row row of r as a JSON object, typed as api_json_row types it. */
void api_json_text_row(struct strbuf *sb, const struct pg_result *r, int row);

#endif
