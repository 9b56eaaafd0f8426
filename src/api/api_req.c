#include "api/api_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/api_pool.h"
#include "core/utf8.h"

#define MAX_VALUE 256 /* bytes in any query parameter's value */

/* Client input to quote in a message: at most max bytes of it, cut on a character boundary,
 * "..." when cut, and every byte of an invalid sequence shown as '?', so that the message is
 * always valid UTF-8 (jansson refuses anything else, and the answer would be lost). */
static const char *clip(const char *in, size_t max, char *buf, size_t buflen)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)(in ? in : "");
	if (max + 4 > buflen)
		max = buflen > 4 ? buflen - 4 : 0;
	while (*p) {
		size_t n = 1;
		char one[2] = {(char)*p, 0};
		if (*p >= 0x80) {
			char tmp[5] = {0};
			n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
			size_t k = 0;
			while (k < n && p[k])
				k++;
			memcpy(tmp, p, k);
			if (k < n || !utf8_valid(tmp)) {
				n = 1;
				one[0] = '?';
			}
		}
		if (o + n > max) {
			memcpy(buf + o, "...", 4);
			return buf;
		}
		if (n == 1) {
			buf[o++] = one[0];
		} else {
			memcpy(buf + o, p, n);
			o += n;
		}
		p += n;
	}
	buf[o] = '\0';
	return buf;
}

bool api_req_valid_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > API_MAX_KEY)
		return false;
	return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-") ==
	       n;
}

/* The error body every non-2xx answer carries: {"error": code, "message": ..., "parameter"?}. */
__attribute__((format(printf, 3, 4))) json_t *api_req_error(const char *code, const char *param,
                                                            const char *fmt, ...)
{
	char msg[512], safe[520], pbuf[API_MAX_KEY + 8];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the message quotes client input: keep it valid UTF-8 whatever came in */
	json_t *o = json_pack("{s:s, s:s}", "error", code, "message",
	                      clip(msg, sizeof(msg), safe, sizeof(safe)));
	if (o && param)
		json_object_set_new(o, "parameter",
		                    json_string(clip(param, API_MAX_KEY, pbuf, sizeof(pbuf))));
	return o;
}

const char *api_req_arg(const struct api_req *rq, const char *key)
{
	for (int i = 0; i < rq->nargs; i++)
		if (strcmp(rq->keys[i], key) == 0)
			return rq->vals[i];
	return NULL;
}

void api_req_set(struct api_req *rq, int status, json_t *body)
{
	json_decref(rq->body);
	rq->status = status;
	rq->body = body;
}

void api_req_ok(struct api_req *rq, bool ok, json_t *body)
{
	if (ok)
		api_req_set(rq, 200, body);
	else
		json_decref(body);
}

const char *api_req_echo(const char *value)
{
	size_t n = 0;
	for (const unsigned char *c = (const unsigned char *)value; *c; c++, n++)
		if (*c < 0x20 || *c > 0x7e || n >= 64)
			return "(the value given)";
	return value;
}

bool api_req_time(struct api_req *rq, const char *name, const char *text, double *t)
{
	if (!text || api_parse_time(text, t) == 0)
		return true;
	api_req_set(rq, 400,
	            api_req_error("bad_parameter", name,
	                          "%s '%s' is not a time from 1970 to 9999: use RFC 3339 "
	                          "(2026-01-02T15:04:05Z) or Unix seconds",
	                          name, api_req_echo(text)));
	return false;
}

/* Every parameter must be one of allowed (NULL-terminated); else a 400 naming it. */
bool api_req_args_allowed(struct api_req *rq, const char *const *allowed)
{
	if (rq->too_many) {
		api_req_set(rq, 400,
		            api_req_error("bad_parameter", NULL, "more than %d query parameters",
		                          API_MAX_ARGS));
		return false;
	}
	if (rq->duplicate) {
		api_req_set(rq, 400,
		            api_req_error("bad_parameter", rq->dup_key,
		                          "parameter '%s' is given more than once: give it once",
		                          rq->dup_key));
		return false;
	}
	for (int i = 0; i < rq->nargs; i++) {
		/* before anything reads them: text a database in UTF-8 takes, and bounded */
		if (!utf8_valid(rq->keys[i])) {
			api_req_set(
			    rq, 400,
			    api_req_error(
			        "bad_parameter", rq->keys[i],
			        "a parameter name ('%s') is not valid UTF-8: percent-encode "
			        "UTF-8 text",
			        rq->keys[i]));
			return false;
		}
		if (!utf8_valid(rq->vals[i])) {
			api_req_set(
			    rq, 400,
			    api_req_error(
			        "bad_parameter", rq->keys[i],
			        "parameter '%s' is not valid UTF-8: percent-encode UTF-8 text",
			        rq->keys[i]));
			return false;
		}
		size_t vlen = strlen(rq->vals[i]);
		if (vlen > MAX_VALUE) {
			api_req_set(rq, 400,
			            api_req_error("bad_parameter", rq->keys[i],
			                          "parameter '%s' is %zu bytes long: at most %d",
			                          rq->keys[i], vlen, MAX_VALUE));
			return false;
		}
	}
	static const char *const none[] = {NULL};
	if (!allowed)
		allowed = none;
	for (int i = 0; i < rq->nargs; i++) {
		bool ok = false;
		for (size_t j = 0; allowed[j]; j++)
			ok = ok || strcmp(rq->keys[i], allowed[j]) == 0;
		if (!ok) {
			char list[256] = "";
			size_t off = 0;
			for (size_t j = 0; allowed[j] && off < sizeof(list); j++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
				                        j ? ", " : "", allowed[j]);
			api_req_set(rq, 400,
			            api_req_error("bad_parameter", rq->keys[i],
			                          "unknown parameter '%s'%s%s", rq->keys[i],
			                          allowed[0] ? ": this endpoint takes "
			                                     : ": this endpoint takes none",
			                          list));
			return false;
		}
	}
	return true;
}

/* Runs a query for the request; on failure sets the answer by the cause (never the database's
 * text) and returns NULL. */
struct pg_result *api_req_query(struct api_req *rq, const char *sql, int n,
                                const char *const *params)
{
	enum api_dbfail why;
	char state[6];
	if (!rq->pc)
		rq->pc = api_pool_get(rq->pool);
	struct pg_result *r = api_pool_query(rq->pool, rq->pc, sql, n, params, &why, state);
	if (r)
		return r;
	switch (why) {
	case API_DB_UNREACHABLE:
		api_req_set(
		    rq, 503,
		    api_req_error(
		        "database_unavailable", NULL,
		        "the database is unreachable: try again later (the API's log has the "
		        "cause)"));
		break;
	case API_DB_CLIENT:
		api_req_set(
		    rq, 400,
		    api_req_error("bad_parameter", NULL,
		                  "a parameter's value is out of the range the database accepts "
		                  "(SQLSTATE %s): check the parameters against docs/openapi.yaml",
		                  state));
		break;
	default:
		api_req_set(
		    rq, 500,
		    api_req_error(
		        "internal", NULL,
		        "the query failed on the server's side (SQLSTATE %s); the API's log "
		        "has the cause",
		        state[0] ? state : "none"));
	}
	return NULL;
}
