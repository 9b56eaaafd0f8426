#include "api/api_int.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/api_json.h"
#include "api/api_pool.h"
#include "core/strbuf.h"
#include "store/pg.h"

/* ---- GET /api/v1/gpus, page by page (keyset paging on schema/008's gpus_page_idx) */

#define GPUS_DEFAULT_LIMIT 500
#define GPUS_MAX_LIMIT     5000
#define GPUS_MAX_FILTER    256  /* bytes of a host or cluster filter */
#define GPUS_MAX_CURSOR    4096 /* characters of a cursor (a host name of up to ~3,000 bytes) */
#define GPUS_MAX_BODY      (8u << 20) /* a page ends early past this many bytes */

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding (RFC 4648 section 5) of in[0..n) appended to sb. */
static int b64url_encode(struct strbuf *sb, const unsigned char *in, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		size_t k = n - i < 3 ? n - i : 3;
		if (k > 1)
			v |= (unsigned)in[i + 1] << 8;
		if (k > 2)
			v |= in[i + 2];
		char out[4];
		for (int j = 0; j < 4; j++)
			out[j] = b64url_chars[(v >> (18 - 6 * j)) & 63];
		int rc = strbuf_append(sb, out, k + 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* Decodes base64url without padding into out (at least strlen(text) bytes); *n: the length.
 * Returns false on a character outside the alphabet, a length no encoding has, or bits set
 * past the end (every input has one encoding). */
static bool b64url_decode(const char *text, unsigned char *out, size_t *n)
{
	size_t len = strlen(text), o = 0;
	if (len % 4 == 1)
		return false;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		const char *c = memchr(b64url_chars, text[i], 64);
		if (!c || !text[i])
			return false;
		acc = (acc << 6) | (unsigned)(c - b64url_chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return false;
	*n = o;
	return true;
}

/* A page cursor: base64url of the compact JSON array a (taken: freed here). Returns a malloc'd
 * string (the caller frees) or NULL. */
static char *cursor_encode(json_t *a)
{
	char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	if (!text)
		return NULL;
	struct strbuf sb;
	strbuf_init(&sb, 0);
	int rc = b64url_encode(&sb, (const unsigned char *)text, strlen(text));
	free(text);
	if (rc || sb.overflow || !sb.data) {
		strbuf_free(&sb);
		return NULL;
	}
	return sb.data;
}

/* The cursor after a row: base64url of [1, host, index, key] (COALESCE(hostname, ''),
 * COALESCE(gpu_index, -1), gpu_key: the page order). Returns a malloc'd string or NULL. */
static char *gpus_cursor_make(const PGresult *r, int row)
{
	const char *host = pg_null(r, row, 5) ? "" : pg_text(r, row, 5);
	long long idx = pg_null(r, row, 4) ? -1 : strtoll(pg_text(r, row, 4), NULL, 10);
	json_t *a = json_pack("[i, s, I, s]", 1, host, (json_int_t)idx, pg_text(r, row, 0));
	return cursor_encode(a);
}

/* The JSON array of n members a cursor's text encodes (cursor_encode), or NULL when it is not
 * one (the caller json_decrefs it). */
static json_t *cursor_decode(const char *text, size_t n)
{
	size_t len = strlen(text), got = 0;
	if (len == 0 || len > GPUS_MAX_CURSOR)
		return NULL;
	unsigned char buf[GPUS_MAX_CURSOR];
	if (!b64url_decode(text, buf, &got))
		return NULL;
	json_t *a = json_loadb((const char *)buf, got, 0, NULL); /* rejects \u0000, bad UTF-8 */
	if (a && (!json_is_array(a) || json_array_size(a) != n)) {
		json_decref(a);
		a = NULL;
	}
	return a;
}

/* Reads a cursor that gpus_cursor_make wrote; host and key point into *owner (caller
 * json_decref). Returns false when it is not one. */
static bool gpus_cursor_parse(const char *text, json_t **owner, const char **host, char *idx,
                              size_t idxlen, const char **key)
{
	json_t *a = cursor_decode(text, 4);
	if (!a || !json_is_integer(json_array_get(a, 0)) ||
	    json_integer_value(json_array_get(a, 0)) != 1 ||
	    !json_is_string(json_array_get(a, 1)) || !json_is_integer(json_array_get(a, 2)) ||
	    json_integer_value(json_array_get(a, 2)) < -1 ||
	    json_integer_value(json_array_get(a, 2)) > 2147483647 ||
	    !json_is_string(json_array_get(a, 3)) ||
	    json_string_length(json_array_get(a, 3)) == 0) {
		json_decref(a);
		return false;
	}
	*host = json_string_value(json_array_get(a, 1));
	*key = json_string_value(json_array_get(a, 3));
	snprintf(idx, idxlen, "%lld", (long long)json_integer_value(json_array_get(a, 2)));
	*owner = a; /* caller owns */
	return true;
}

/* Appends "&name=value" (value percent-encoded) to sb when value is set. */
static void url_param(struct strbuf *sb, const char *name, const char *value)
{
	if (!value)
		return;
	strbuf_printf(sb, "&%s=", name);
	for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
		    (*c >= '0' && *c <= '9') || strchr("-._~", *c))
			strbuf_append(sb, c, 1);
		else
			strbuf_printf(sb, "%%%02X", *c);
	}
}

/* The next page's link: path?limit=L, then each filter given (name and value; one with a NULL
 * value left out) and the cursor, values percent-encoded. NULL when out of memory (the caller
 * frees the string). */
static char *next_url(const char *path, long limit, const char *const filters[][2], size_t n,
                      const char *cursor)
{
	struct strbuf url;
	strbuf_init(&url, 0);
	strbuf_printf(&url, "%s?limit=%ld", path, limit);
	for (size_t i = 0; i < n; i++)
		url_param(&url, filters[i][0], filters[i][1]);
	url_param(&url, "cursor", cursor);
	if (url.overflow || !url.data) {
		strbuf_free(&url);
		return NULL;
	}
	return url.data; /* the caller's */
}

/* value itself when it can be quoted in an error message as it is (printable ASCII, short),
 * else a placeholder: an answer must stay valid UTF-8 JSON whatever a client sent. */
/* A host or cluster filter: text PostgreSQL takes (UTF-8, no longer than GPUS_MAX_FILTER). */
/* The paged lists' `limit` (1 to GPUS_MAX_LIMIT, default GPUS_DEFAULT_LIMIT) into *out; false
 * after answering 400 with the parameter named. */
static bool page_limit(struct api_req *rq, const char *lim, long *out)
{
	*out = GPUS_DEFAULT_LIMIT;
	if (!lim)
		return true;
	size_t n = strlen(lim);
	bool digits = n >= 1 && n <= 4 && strspn(lim, "0123456789") == n;
	*out = digits ? strtol(lim, NULL, 10) : 0;
	if (*out >= 1 && *out <= GPUS_MAX_LIMIT)
		return true;
	api_req_set(rq, 400,
	            api_req_error("bad_parameter", "limit",
	                          "limit '%s' is not a whole number from 1 to %d (default %d)",
	                          api_req_echo(lim), GPUS_MAX_LIMIT, GPUS_DEFAULT_LIMIT));
	return false;
}

static bool gpus_filter_ok(struct api_req *rq, const char *name, const char *value)
{
	if (!value)
		return true;
	json_t *s = json_string(value); /* NULL when value is not UTF-8 */
	bool ok = s && strlen(value) <= GPUS_MAX_FILTER;
	json_decref(s);
	if (!ok)
		api_req_set(
		    rq, 400,
		    api_req_error("bad_parameter", name,
		                  "%s is not UTF-8 text of at most %d bytes: give the %s's name as "
		                  "listed in GET /api/v1/gpus",
		                  name, GPUS_MAX_FILTER, name));
	return ok;
}

/* Pages are built at most GPUS_BUSY_MAX(threads) at a time, whatever the number of clients:
 * the others wait here, holding no database connection, so /healthz and the other endpoints
 * always find one free and the CPU is not split 32 ways (bench/api.sh). One gate for the
 * process: a process runs one API. */
#define GPUS_BUSY_MAX(threads) ((threads) > 2 ? (threads) / 2 : 1)
static pthread_mutex_t gpus_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gpus_gate_cv = PTHREAD_COND_INITIALIZER;
static unsigned gpus_busy;

static void gpus_gate_enter(unsigned threads)
{
	pthread_mutex_lock(&gpus_gate_mu);
	while (gpus_busy >= GPUS_BUSY_MAX(threads))
		pthread_cond_wait(&gpus_gate_cv, &gpus_gate_mu);
	gpus_busy++;
	pthread_mutex_unlock(&gpus_gate_mu);
}

static void gpus_gate_leave(void)
{
	pthread_mutex_lock(&gpus_gate_mu);
	gpus_busy--;
	pthread_cond_signal(&gpus_gate_cv);
	pthread_mutex_unlock(&gpus_gate_mu);
}

static void gpus_page(struct api_req *rq, const char *host, const char *status, const char *cluster,
                      const char *ns, const char *pod, const char *c_host, const char *c_idx,
                      const char *c_key, long limit);

/* ok, or for a cursor this API did not give (or one of another list): 400, naming the fix,
 * and false. */
static bool cursor_ok(struct api_req *rq, bool ok)
{
	if (ok)
		return true;
	api_req_set(rq, 400,
	            api_req_error("bad_parameter", "cursor",
	                          "cursor is not one this API gave: pass the next_cursor of the "
	                          "previous page unchanged (or follow its next), or leave cursor "
	                          "out for the first page"));
	return false;
}

void api_page_gpus(struct api_req *rq)
{
	static const char *const allowed[] = {"host",   "status",    "cluster", "limit",
	                                      "cursor", "namespace", "pod",     NULL};
	if (!api_req_args_allowed(rq, allowed))
		return;
	const char *ns = api_req_arg(rq, "namespace"), *pod = api_req_arg(rq, "pod");
	const char *host = api_req_arg(rq, "host"), *status = api_req_arg(rq, "status");
	const char *cluster = api_req_arg(rq, "cluster"), *lim = api_req_arg(rq, "limit");
	const char *cursor = api_req_arg(rq, "cursor");
	if (status && strcmp(status, "pass") && strcmp(status, "warn") && strcmp(status, "fail")) {
		api_req_set(
		    rq, 400,
		    api_req_error("bad_parameter", "status",
		                  "status '%s' is not a health status: use pass, warn or fail",
		                  api_req_echo(status)));
		return;
	}
	if (!gpus_filter_ok(rq, "host", host) || !gpus_filter_ok(rq, "cluster", cluster) ||
	    !gpus_filter_ok(rq, "namespace", ns) || !gpus_filter_ok(rq, "pod", pod))
		return;
	long limit;
	json_t *cur = NULL;
	const char *c_host = NULL, *c_key = NULL;
	char c_idx[24] = "";
	if (!page_limit(rq, lim, &limit) ||
	    !cursor_ok(rq, !cursor || gpus_cursor_parse(cursor, &cur, &c_host, c_idx, sizeof(c_idx),
	                                                &c_key)))
		return;
	gpus_gate_enter(api_pool_size(rq->pool));
	gpus_page(rq, host, status, cluster, ns, pod, cursor ? c_host : NULL, c_idx, c_key, limit);
	gpus_gate_leave();
	json_decref(cur);
}

/* One page: the query, then the answer as JSON text in rq->text. */
static void gpus_page(struct api_req *rq, const char *host, const char *status, const char *cluster,
                      const char *ns, const char *pod, const char *c_host, const char *c_idx,
                      const char *c_key, long limit)
{
	char lbuf[24];
	snprintf(lbuf, sizeof(lbuf), "%ld", limit + 1); /* one more: is there a next page? */
	const char *p[9] = {host,  status, cluster, c_host, c_host ? c_idx : NULL,
	                    c_key, lbuf,   ns,      pod};
	/* the filters and the position in SQL: one index range scan of limit + 1 rows; the
	 * workload is the GPU's newest gpu_workloads row (schema/013) */
	PGresult *r = api_req_query(
	    rq,
	    "SELECT " API_GPU_COLS ", h.score AS health_score, h.status AS health_status, "
	    "wl.namespace, wl.pod, wl.container "
	    "FROM gpus g LEFT JOIN LATERAL (SELECT score, status FROM gpu_health_scores s "
	    "WHERE s.gpu_key = g.gpu_key ORDER BY s.time DESC LIMIT 1) h ON true "
	    "LEFT JOIN LATERAL (SELECT namespace, pod, container FROM gpu_workloads w "
	    "WHERE w.gpu_key = g.gpu_key ORDER BY w.first_seen DESC LIMIT 1) wl ON true "
	    "WHERE ($1::text IS NULL OR g.hostname = $1) AND ($2::text IS NULL OR h.status = $2) "
	    "AND ($3::text IS NULL OR g.cluster = $3) "
	    "AND ($8::text IS NULL OR wl.namespace = $8) AND ($9::text IS NULL OR wl.pod = $9) "
	    "AND ($4::text IS NULL OR (COALESCE(g.hostname, ''), COALESCE(g.gpu_index, -1), "
	    "g.gpu_key) > ($4::text, $5::int, $6::text)) "
	    "ORDER BY COALESCE(g.hostname, ''), COALESCE(g.gpu_index, -1), g.gpu_key "
	    "LIMIT $7::int",
	    9, p);
	if (rq->pc) { /* the rows are here: the connection is free for others while we render */
		api_pool_put(rq->pool, rq->pc);
		rq->pc = NULL;
	}
	if (!r)
		return;
	struct strbuf sb; /* the answer */
	strbuf_init(&sb, 0);
	int n = pg_rows(r), rows = n > limit ? (int)limit : n, i = 0;
	strbuf_reserve(&sb, (size_t)rows * 480 + 512); /* ~460 bytes a GPU: one allocation */
	strbuf_puts(&sb, "{\"count\":");
	size_t count_at = sb.len;
	strbuf_printf(&sb, "%-10s,\"limit\":%ld,\"gpus\":[", "", limit);
	for (; i < rows && (i == 0 || sb.len < GPUS_MAX_BODY); i++) {
		if (i)
			strbuf_append(&sb, ",", 1);
		api_json_text_row(&sb, r, i);
	}
	/* a next page when rows were left: past limit, or past the body bound */
	char *c = i < n ? gpus_cursor_make(r, i - 1) : NULL;
	strbuf_puts(&sb, "],\"next\":");
	if (c) {
		const char *const filters[][2] = {{"host", host},
		                                  {"status", status},
		                                  {"cluster", cluster},
		                                  {"namespace", ns},
		                                  {"pod", pod}};
		char *url = next_url("/api/v1/gpus", limit, filters, 5, c);
		api_json_text_str(&sb, url ? url : "");
		if (!url)
			sb.overflow = true;
		free(url);
		strbuf_puts(&sb, ",\"next_cursor\":");
		api_json_text_str(&sb, c);
	} else {
		strbuf_puts(&sb, "null,\"next_cursor\":null");
	}
	strbuf_puts(&sb, "}");
	bool failed = (i < n && !c) || sb.overflow || !sb.data;
	free(c);
	pg_clear(r);
	if (failed) {
		strbuf_free(&sb);
		api_req_set(rq, 500, api_req_error("internal", NULL, "out of memory"));
		return;
	}
	/* the count, known now, over the first of the 10 characters left for it; the blanks
	 * after it move the rest of the answer left, once */
	char cnt[16];
	int w = snprintf(cnt, sizeof(cnt), "%d", i);
	memcpy(sb.data + count_at, cnt, (size_t)w);
	memmove(sb.data + count_at + w, sb.data + count_at + 10, sb.len - count_at - 10 + 1);
	rq->status = 200;
	rq->text = sb.data; /* owned by rq */
}

/* ---- GET /api/v1/workloads: which GPUs a pod (or a namespace) used between from and to */

/* The cursor after a row: base64url of [2, first_seen (RFC 3339, to the microsecond), gpu_key],
 * the page order. Returns a malloc'd string or NULL. */
static char *wl_cursor_make(const PGresult *r, int row)
{
	json_t *a = json_pack("[i, o, s]", 2, api_json_ts(pg_text(r, row, 7)), pg_text(r, row, 0));
	return cursor_encode(a);
}

static bool wl_cursor_parse(const char *text, json_t **owner, const char **t, const char **key)
{
	json_t *a = cursor_decode(text, 3);
	double ignored;
	if (!a || json_integer_value(json_array_get(a, 0)) != 2 ||
	    !json_is_string(json_array_get(a, 1)) || !json_is_string(json_array_get(a, 2)) ||
	    !api_req_valid_key(json_string_value(json_array_get(a, 2))) ||
	    json_string_length(json_array_get(a, 1)) > 64 ||
	    api_parse_time(json_string_value(json_array_get(a, 1)), &ignored) != 0) {
		json_decref(a);
		return false;
	}
	*t = json_string_value(json_array_get(a, 1));
	*key = json_string_value(json_array_get(a, 2));
	*owner = a;
	return true;
}

void api_page_workloads(struct api_req *rq)
{
	static const char *const allowed[] = {"namespace", "pod",    "from", "to",
	                                      "limit",     "cursor", NULL};
	if (!api_req_args_allowed(rq, allowed))
		return;
	const char *ns = api_req_arg(rq, "namespace"), *pod = api_req_arg(rq, "pod"),
	           *lim = api_req_arg(rq, "limit");
	const char *from_s = api_req_arg(rq, "from"), *to_s = api_req_arg(rq, "to"),
	           *cursor = api_req_arg(rq, "cursor");
	if (!ns && !pod) {
		api_req_set(rq, 400,
		            api_req_error(
		                "bad_parameter", "pod",
		                "give pod (and/or namespace): the workload whose GPUs are listed"));
		return;
	}
	if (!gpus_filter_ok(rq, "namespace", ns) || !gpus_filter_ok(rq, "pod", pod))
		return;
	double from = 0, to = 0;
	if (!api_req_time(rq, "from", from_s, &from) || !api_req_time(rq, "to", to_s, &to))
		return;
	if (from_s && to_s && !(from <= to)) {
		api_req_set(
		    rq, 400,
		    api_req_error(
		        "bad_parameter", "from",
		        "from must not be after to (got from=%.3f, to=%.3f in Unix seconds)", from,
		        to));
		return;
	}
	long limit;
	json_t *cur = NULL;
	const char *c_t = NULL, *c_key = NULL;
	if (!page_limit(rq, lim, &limit) ||
	    !cursor_ok(rq, !cursor || wl_cursor_parse(cursor, &cur, &c_t, &c_key)))
		return;
	char fbuf[40], tbuf[40], lbuf[24];
	snprintf(fbuf, sizeof(fbuf), "%.6f", from);
	snprintf(tbuf, sizeof(tbuf), "%.6f", to);
	snprintf(lbuf, sizeof(lbuf), "%ld", limit + 1);
	const char *p[7] = {ns, pod, from_s ? fbuf : NULL, to_s ? tbuf : NULL, c_t, c_key, lbuf};
	/* a run overlaps [from, to] when it starts before to and ends after from */
	PGresult *r = api_req_query(
	    rq,
	    "SELECT w.gpu_key, g.uuid, g.mig_instance, g.hostname, g.gpu_index, w.namespace, "
	    "w.pod, "
	    "w.first_seen, w.container, w.last_seen FROM gpu_workloads w "
	    "LEFT JOIN gpus g ON g.gpu_key = w.gpu_key "
	    "WHERE ($1::text IS NULL OR w.namespace = $1) AND ($2::text IS NULL OR w.pod = $2) "
	    "AND ($3::float8 IS NULL OR w.last_seen >= to_timestamp($3::float8)) "
	    "AND ($4::float8 IS NULL OR w.first_seen <= to_timestamp($4::float8)) "
	    "AND ($5::timestamptz IS NULL OR (w.first_seen, w.gpu_key) > ($5::timestamptz, "
	    "$6::text)) ORDER BY w.first_seen, w.gpu_key LIMIT $7::int",
	    7, p);
	if (!r)
		goto out;
	int n = pg_rows(r), rows = n > limit ? (int)limit : n;
	json_t *arr = json_array();
	for (int i = 0; arr && i < rows; i++)
		json_array_append_new(arr, api_json_row(r, i));
	char *c = n > limit ? wl_cursor_make(r, rows - 1) : NULL;
	json_t *next = json_null();
	if (c) {
		const char *const filters[][2] = {
		    {"namespace", ns}, {"pod", pod}, {"from", from_s}, {"to", to_s}};
		char *url = next_url("/api/v1/workloads", limit, filters, 4, c);
		json_decref(next);
		next = url ? json_string(url) : NULL;
		free(url);
	}
	json_t *body = json_pack("{s:i, s:i, s:o, s:o*, s:s?}", "count", rows, "limit", (int)limit,
	                         "workloads", arr, "next", next, "next_cursor", c);
	free(c);
	pg_clear(r);
	if (!body || (n > limit && json_is_null(json_object_get(body, "next")))) {
		json_decref(body);
		api_req_set(rq, 500, api_req_error("internal", NULL, "out of memory"));
		goto out;
	}
	if (!json_object_get(body, "next_cursor"))
		json_object_set_new(body, "next_cursor", json_null());
	api_req_set(rq, 200, body);
out:
	json_decref(cur);
}
