#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/httpd_limits.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "store/pg.h"

/* connection limits and deadlines, enforced by httpd_limits */
#define CONN_LIMIT      256 /* all clients together */
#define PER_CLIENT_DEF  32  /* one client address (--max-client-connections) */
#define CONN_TIMEOUT_S  10  /* a connection silent this long is closed; also the keep-alive wait */
#define HEAD_DEADLINE_S 10  /* a request head may take this long (after the keep-alive wait) */
#define MAX_ARGS        16
#define MAX_KEY         128
#define MAX_POINTS      10000
#define RAW_MAX_RANGE_S (6 * 3600.0)
#define DEFAULT_RANGE_S 3600.0
#define MAX_VALUE       256            /* bytes in any query parameter's value */
#define MAX_PATH        512            /* bytes in the (decoded) path */
#define MAX_STEP_S      31536000.0     /* step: at most 365 days */
#define TIME_MAX_S      253402300799.0 /* 9999-12-31T23:59:59Z: the last RFC 3339 second */

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

enum endpoint {
	EP_GPUS,
	EP_GPU,
	EP_GPU_METRICS,
	EP_GPU_HEALTH,
	EP_FLEET,
	EP_ALERTS,
	EP_WORKLOADS,
	EP_HEALTHZ,
	EP_METRICS,
	EP_OTHER,
	EP_COUNT
};
static const char *const ep_names[EP_COUNT] = {
    "gpus",   "gpu",       "gpu_metrics", "gpu_health", "fleet_summary",
    "alerts", "workloads", "healthz",     "metrics",    "other"};

struct pconn {
	PGconn *conn; /* NULL until first used, or after a failed reconnect */
	bool busy;
};

struct api {
	char *listen, *conninfo;
	unsigned threads, per_client;
	char address[80];
	struct MHD_Daemon *daemon;

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct pconn *pool; /* threads entries */

	/* the per-client and total connection limits and the head deadline; owned, created by
	 * api_start, destroyed by api_stop after the daemon */
	struct httpd_limits *limits;

	atomic_uint_least64_t n_requests[EP_COUNT], n_2xx, n_4xx, n_5xx, n_db_errors;
	atomic_uint_least64_t duration_us[EP_COUNT];
};

/* ---- small helpers */

int api_parse_time(const char *text, double *epoch)
{
	if (!text || !*text)
		return -EINVAL;
	size_t n = strlen(text);
	if (strspn(text, "0123456789.") == n) {
		char *end = NULL;
		double v = strtod(text, &end);
		if (*end || !isfinite(v) || v > TIME_MAX_S)
			return -EINVAL;
		*epoch = v;
		return 0;
	}
	char buf[64];
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, text, n + 1);
	/* "+hh:mm" arrives as " hh:mm" when a client sent '+' unescaped in the query */
	if (n > 6 && buf[n - 6] == ' ' && buf[n - 3] == ':')
		buf[n - 6] = '+';
	double v = 0;
	if (time_parse_rfc3339(buf, &v) != 0 || !isfinite(v) || v < 0 || v > TIME_MAX_S)
		return -EINVAL; /* before 1970 or after 9999: no sample is there, and the database's
		                   to_timestamp() would refuse some of these */
	*epoch = v;
	return 0;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). */
bool api_utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p, n;
		unsigned cp;
		if (c < 0x80) {
			p++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (unsigned i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

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
			if (k < n || !api_utf8_valid(tmp)) {
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

static bool valid_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > MAX_KEY)
		return false;
	return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-") ==
	       n;
}

/* The error body every non-2xx answer carries: {"error": code, "message": ..., "parameter"?}. */
__attribute__((format(printf, 3, 4))) static json_t *err_body(const char *code, const char *param,
                                                              const char *fmt, ...)
{
	char msg[512], safe[520], pbuf[MAX_KEY + 8];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the message quotes client input: keep it valid UTF-8 whatever came in */
	json_t *o = json_pack("{s:s, s:s}", "error", code, "message",
	                      clip(msg, sizeof(msg), safe, sizeof(safe)));
	if (o && param)
		json_object_set_new(o, "parameter",
		                    json_string(clip(param, MAX_KEY, pbuf, sizeof(pbuf))));
	return o;
}

/* "2026-11-28 15:56:33.123+00" (TimeZone UTC, DateStyle ISO) -> "2026-11-28T15:56:33.123Z" */
static json_t *ts_json(const char *v)
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
	if (PQgetisnull(r, row, col))
		return json_null();
	const char *v = PQgetvalue(r, row, col);
	switch (PQftype(r, col)) {
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
	case OID_TIMESTAMPTZ: return ts_json(v);
	default: return json_string(v);
	}
}

static json_t *row_obj(const PGresult *r, int row)
{
	json_t *o = json_object();
	for (int c = 0; o && c < PQnfields(r); c++)
		json_object_set_new(o, PQfname(r, c), cell_json(r, row, c));
	return o;
}

static json_t *rows_array(const PGresult *r)
{
	json_t *a = json_array();
	for (int i = 0; a && i < PQntuples(r); i++)
		json_array_append_new(a, row_obj(r, i));
	return a;
}

/* ---- the connection pool */

static struct pconn *pool_get(struct api *api)
{
	pthread_mutex_lock(&api->pool_mu);
	struct pconn *p = NULL;
	for (;;) {
		for (unsigned i = 0; i < api->threads; i++)
			if (!api->pool[i].busy) {
				p = &api->pool[i];
				break;
			}
		if (p)
			break;
		pthread_cond_wait(&api->pool_cv, &api->pool_mu);
	}
	p->busy = true;
	pthread_mutex_unlock(&api->pool_mu);
	return p;
}

static void pool_put(struct api *api, struct pconn *p)
{
	pthread_mutex_lock(&api->pool_mu);
	p->busy = false;
	pthread_cond_signal(&api->pool_cv);
	pthread_mutex_unlock(&api->pool_mu);
}

/* Makes sure p has a usable connection. Returns 0 or -EIO with a message. */
static int pconn_ready(struct api *api, struct pconn *p, char *err, size_t errlen)
{
	if (p->conn && PQstatus(p->conn) == CONNECTION_OK)
		return 0;
	if (p->conn) {
		PQfinish(p->conn);
		p->conn = NULL;
	}
	PGconn *c = pg_connect(api->conninfo, "gpuhealth-api", err, errlen);
	if (!c)
		return -EIO;
	/* constant session settings: UTC timestamps in ISO form, read-only, bounded queries */
	if (pg_exec(c,
	            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; "
	            "SET default_transaction_read_only = on; SET statement_timeout = '15s'",
	            err, errlen) != 0) {
		PQfinish(c);
		return -EIO;
	}
	p->conn = c;
	return 0;
}

/* Why a query failed, which decides the status a client gets. */
enum dbfail {
	DB_UNREACHABLE, /* no connection, or it broke (08xxx, 57P0x, 53300): 503 */
	DB_CLIENT,      /* the request's values (SQLSTATE class 22, data exception): 400 */
	DB_SERVER,      /* anything else (a timeout, a privilege, a bug): 500 */
};

static enum dbfail classify(const char *sqlstate);

int api_sqlstate_status(const char *sqlstate)
{
	switch (classify(sqlstate)) {
	case DB_UNREACHABLE: return 503;
	case DB_CLIENT: return 400;
	default: return 500;
	}
}

static enum dbfail classify(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return DB_UNREACHABLE; /* libpq's own error: the connection */
	if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P0", 4) == 0 ||
	    strcmp(sqlstate, "53300") == 0)
		return DB_UNREACHABLE; /* connection exception, shutdown, too many connections */
	if (strncmp(sqlstate, "22", 2) == 0)
		return DB_CLIENT;
	return DB_SERVER;
}

/* Runs a parameterized query; one reconnect and retry when the connection was lost.
 * Returns the result (caller PQclear) or NULL with why in *why and SQLSTATE in state (""
 * when there is none). The database's own text goes to the log only: it names hosts, roles,
 * tables and values, none of which a client may see. */
static PGresult *query(struct api *api, struct pconn *p, const char *sql, int n,
                       const char *const *params, enum dbfail *why, char state[6])
{
	char err[512] = "";
	*why = DB_UNREACHABLE;
	state[0] = '\0';
	for (int attempt = 0; attempt < 2; attempt++) {
		if (pconn_ready(api, p, err, sizeof(err)) != 0) {
			*why = DB_UNREACHABLE;
			break;
		}
		PGresult *r = PQexecParams(p->conn, sql, n, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			return r; /* caller owns */
		snprintf(err, sizeof(err), "%s",
		         r ? PQresultErrorMessage(r) : PQerrorMessage(p->conn));
		const char *ss = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		snprintf(state, 6, "%s", ss ? ss : "");
		*why = classify(ss);
		size_t l = strlen(err);
		while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
			err[--l] = '\0';
		PQclear(r);
		if (!pg_connection_lost(p->conn)) {
			if (*why == DB_UNREACHABLE && ss)
				*why = DB_SERVER; /* 53300 on a live session: the server is there */
			break;                    /* a SQL error: retrying changes nothing */
		}
		*why = DB_UNREACHABLE;
		PQfinish(p->conn);
		p->conn = NULL;
	}
	for (char *c = err; *c; c++) /* libpq's messages run over lines: keep one */
		if (*c == '\n' || *c == '\t')
			*c = ' ';
	if (*why != DB_CLIENT)
		atomic_fetch_add(&api->n_db_errors, 1);
	log_warn("api: database%s%s: %s", state[0] ? " SQLSTATE " : "", state, err);
	return NULL;
}

/* ---- requests */

struct req {
	struct api *api;
	struct pconn *pc; /* borrowed from the pool for the request, lazily */
	const char *keys[MAX_ARGS], *vals[MAX_ARGS];
	int nargs;
	bool too_many, duplicate;
	const char *dup_key;
	json_t *body; /* the answer */
	char *text;   /* or the answer already as JSON text (malloc'd; wins over body) */
	int status;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
	struct req *rq = cls;
	for (int i = 0; i < rq->nargs; i++)
		if (strcmp(rq->keys[i], key) == 0) {
			rq->duplicate = true;
			rq->dup_key = rq->keys[i];
			return MHD_YES;
		}
	if (rq->nargs == MAX_ARGS) {
		rq->too_many = true;
		return MHD_NO;
	}
	rq->keys[rq->nargs] = key;
	rq->vals[rq->nargs] = value ? value : "";
	rq->nargs++;
	return MHD_YES;
}

static const char *arg(const struct req *rq, const char *key)
{
	for (int i = 0; i < rq->nargs; i++)
		if (strcmp(rq->keys[i], key) == 0)
			return rq->vals[i];
	return NULL;
}

static void set(struct req *rq, int status, json_t *body)
{
	json_decref(rq->body);
	rq->status = status;
	rq->body = body;
}

/* Every parameter must be one of allowed (NULL-terminated); else a 400 naming it. */
static bool args_allowed(struct req *rq, const char *const *allowed)
{
	if (rq->too_many) {
		set(rq, 400,
		    err_body("bad_parameter", NULL, "more than %d query parameters", MAX_ARGS));
		return false;
	}
	if (rq->duplicate) {
		set(rq, 400,
		    err_body("bad_parameter", rq->dup_key,
		             "parameter '%s' is given more than once: give it once", rq->dup_key));
		return false;
	}
	for (int i = 0; i < rq->nargs; i++) {
		/* before anything reads them: text a database in UTF-8 takes, and bounded */
		if (!api_utf8_valid(rq->keys[i])) {
			set(rq, 400,
			    err_body("bad_parameter", rq->keys[i],
			             "a parameter name ('%s') is not valid UTF-8: percent-encode "
			             "UTF-8 text",
			             rq->keys[i]));
			return false;
		}
		if (!api_utf8_valid(rq->vals[i])) {
			set(rq, 400,
			    err_body("bad_parameter", rq->keys[i],
			             "parameter '%s' is not valid UTF-8: percent-encode UTF-8 text",
			             rq->keys[i]));
			return false;
		}
		size_t vlen = strlen(rq->vals[i]);
		if (vlen > MAX_VALUE) {
			set(rq, 400,
			    err_body("bad_parameter", rq->keys[i],
			             "parameter '%s' is %zu bytes long: at most %d", rq->keys[i],
			             vlen, MAX_VALUE));
			return false;
		}
	}
	for (int i = 0; i < rq->nargs; i++) {
		bool ok = false;
		for (size_t j = 0; allowed[j]; j++)
			ok = ok || strcmp(rq->keys[i], allowed[j]) == 0;
		if (!ok) {
			char list[256] = "";
			size_t off = 0;
			for (size_t j = 0; allowed[j]; j++)
				off += (size_t)snprintf(list + off,
				                        off < sizeof(list) ? sizeof(list) - off : 0,
				                        "%s%s", j ? ", " : "", allowed[j]);
			set(rq, 400,
			    err_body("bad_parameter", rq->keys[i], "unknown parameter '%s'%s%s",
			             rq->keys[i],
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
static PGresult *rq_query(struct req *rq, const char *sql, int n, const char *const *params)
{
	enum dbfail why;
	char state[6];
	if (!rq->pc)
		rq->pc = pool_get(rq->api);
	PGresult *r = query(rq->api, rq->pc, sql, n, params, &why, state);
	if (r)
		return r;
	switch (why) {
	case DB_UNREACHABLE:
		set(rq, 503,
		    err_body("database_unavailable", NULL,
		             "the database is unreachable: try again later (the API's log has the "
		             "cause)"));
		break;
	case DB_CLIENT:
		set(rq, 400,
		    err_body("bad_parameter", NULL,
		             "a parameter's value is out of the range the database accepts "
		             "(SQLSTATE %s): check the parameters against docs/openapi.yaml",
		             state));
		break;
	default:
		set(rq, 500,
		    err_body("internal", NULL,
		             "the query failed on the server's side (SQLSTATE %s); the API's log "
		             "has the cause",
		             state[0] ? state : "none"));
	}
	return NULL;
}

#define GPU_COLS                                                                                   \
	"g.gpu_key, g.uuid, g.mig_instance, g.mig_profile, g.gpu_index, g.hostname, g.model, "     \
	"g.pci_bus_id, g.device, g.driver_version, g.cluster, g.datacenter, g.rack, "              \
	"g.first_seen, "                                                                           \
	"g.last_seen"

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
	const char *host = PQgetisnull(r, row, 5) ? "" : PQgetvalue(r, row, 5);
	long long idx = PQgetisnull(r, row, 4) ? -1 : strtoll(PQgetvalue(r, row, 4), NULL, 10);
	json_t *a = json_pack("[i, s, I, s]", 1, host, (json_int_t)idx, PQgetvalue(r, row, 0));
	return cursor_encode(a);
}

/* Reads a cursor that gpus_cursor_make wrote; host and key point into *owner (caller
 * json_decref). Returns false when it is not one. */
static bool gpus_cursor_parse(const char *text, json_t **owner, const char **host, char *idx,
                              size_t idxlen, const char **key)
{
	size_t len = strlen(text), n = 0;
	if (len == 0 || len > GPUS_MAX_CURSOR)
		return false;
	unsigned char buf[GPUS_MAX_CURSOR];
	if (!b64url_decode(text, buf, &n))
		return false;
	json_t *a = json_loadb((const char *)buf, n, 0, NULL); /* rejects \u0000, bad UTF-8 */
	if (!a || !json_is_array(a) || json_array_size(a) != 4 ||
	    !json_is_integer(json_array_get(a, 0)) ||
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

/* value itself when it can be quoted in an error message as it is (printable ASCII, short),
 * else a placeholder: an answer must stay valid UTF-8 JSON whatever a client sent. */
static const char *echo_safe(const char *value)
{
	size_t n = 0;
	for (const unsigned char *c = (const unsigned char *)value; *c; c++, n++)
		if (*c < 0x20 || *c > 0x7e || n >= 64)
			return "(the value given)";
	return value;
}

/* A host or cluster filter: text PostgreSQL takes (UTF-8, no longer than GPUS_MAX_FILTER). */
/* The paged lists' `limit` (1 to GPUS_MAX_LIMIT, default GPUS_DEFAULT_LIMIT) into *out; false
 * after answering 400 with the parameter named. */
static bool page_limit(struct req *rq, const char *lim, long *out)
{
	*out = GPUS_DEFAULT_LIMIT;
	if (!lim)
		return true;
	size_t n = strlen(lim);
	bool digits = n >= 1 && n <= 4 && strspn(lim, "0123456789") == n;
	*out = digits ? strtol(lim, NULL, 10) : 0;
	if (*out >= 1 && *out <= GPUS_MAX_LIMIT)
		return true;
	set(rq, 400,
	    err_body("bad_parameter", "limit",
	             "limit '%s' is not a whole number from 1 to %d (default %d)", echo_safe(lim),
	             GPUS_MAX_LIMIT, GPUS_DEFAULT_LIMIT));
	return false;
}

static bool gpus_filter_ok(struct req *rq, const char *name, const char *value)
{
	if (!value)
		return true;
	json_t *s = json_string(value); /* NULL when value is not UTF-8 */
	bool ok = s && strlen(value) <= GPUS_MAX_FILTER;
	json_decref(s);
	if (!ok)
		set(rq, 400,
		    err_body("bad_parameter", name,
		             "%s is not UTF-8 text of at most %d bytes: give the %s's name as "
		             "listed in GET /api/v1/gpus",
		             name, GPUS_MAX_FILTER, name));
	return ok;
}

/* Appends s as a JSON string (s: UTF-8, as PostgreSQL returns text from a UTF8 database). */
static void json_text_str(struct strbuf *sb, const char *s)
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
static void json_text_row(struct strbuf *sb, const PGresult *r, int row)
{
	strbuf_append(sb, "{", 1);
	for (int col = 0; col < PQnfields(r); col++) {
		if (col)
			strbuf_append(sb, ",", 1);
		json_text_str(sb, PQfname(r, col));
		strbuf_append(sb, ":", 1);
		const char *v = PQgetvalue(r, row, col);
		if (PQgetisnull(r, row, col)) {
			strbuf_puts(sb, "null");
			continue;
		}
		switch (PQftype(r, col)) {
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
			json_t *t = ts_json(v);
			json_text_str(sb, t ? json_string_value(t) : v);
			json_decref(t);
			break;
		}
		case OID_JSON:
		case OID_JSONB: {
			json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
			if (j)
				strbuf_puts(sb, v); /* valid JSON as it is */
			else
				json_text_str(sb, v);
			json_decref(j);
			break;
		}
		default: json_text_str(sb, v);
		}
	}
	strbuf_append(sb, "}", 1);
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

static void gpus_page(struct req *rq, const char *host, const char *status, const char *cluster,
                      const char *ns, const char *pod, const char *c_host, const char *c_idx,
                      const char *c_key, long limit);

static void ep_gpus(struct req *rq)
{
	static const char *const allowed[] = {"host",   "status",    "cluster", "limit",
	                                      "cursor", "namespace", "pod",     NULL};
	if (!args_allowed(rq, allowed))
		return;
	const char *ns = arg(rq, "namespace"), *pod = arg(rq, "pod");
	const char *host = arg(rq, "host"), *status = arg(rq, "status");
	const char *cluster = arg(rq, "cluster"), *lim = arg(rq, "limit");
	const char *cursor = arg(rq, "cursor");
	if (status && strcmp(status, "pass") && strcmp(status, "warn") && strcmp(status, "fail")) {
		set(rq, 400,
		    err_body("bad_parameter", "status",
		             "status '%s' is not a health status: use pass, warn or fail",
		             echo_safe(status)));
		return;
	}
	if (!gpus_filter_ok(rq, "host", host) || !gpus_filter_ok(rq, "cluster", cluster) ||
	    !gpus_filter_ok(rq, "namespace", ns) || !gpus_filter_ok(rq, "pod", pod))
		return;
	long limit;
	if (!page_limit(rq, lim, &limit))
		return;
	json_t *cur = NULL;
	const char *c_host = NULL, *c_key = NULL;
	char c_idx[24] = "";
	if (cursor && !gpus_cursor_parse(cursor, &cur, &c_host, c_idx, sizeof(c_idx), &c_key)) {
		set(rq, 400,
		    err_body(
		        "bad_parameter", "cursor",
		        "cursor is not one this API gave: pass the next_cursor of the previous "
		        "page unchanged (or follow its next), or leave cursor out for the first "
		        "page"));
		return;
	}
	gpus_gate_enter(rq->api->threads);
	gpus_page(rq, host, status, cluster, ns, pod, cursor ? c_host : NULL, c_idx, c_key, limit);
	gpus_gate_leave();
	json_decref(cur);
}

/* One page: the query, then the answer as JSON text in rq->text. */
static void gpus_page(struct req *rq, const char *host, const char *status, const char *cluster,
                      const char *ns, const char *pod, const char *c_host, const char *c_idx,
                      const char *c_key, long limit)
{
	char lbuf[24];
	snprintf(lbuf, sizeof(lbuf), "%ld", limit + 1); /* one more: is there a next page? */
	const char *p[9] = {host,  status, cluster, c_host, c_host ? c_idx : NULL,
	                    c_key, lbuf,   ns,      pod};
	/* the filters and the position in SQL: one index range scan of limit + 1 rows; the
	 * workload is the GPU's newest gpu_workloads row (schema/013) */
	PGresult *r = rq_query(
	    rq,
	    "SELECT " GPU_COLS ", h.score AS health_score, h.status AS health_status, "
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
		pool_put(rq->api, rq->pc);
		rq->pc = NULL;
	}
	if (!r)
		return;
	struct strbuf sb; /* the answer */
	strbuf_init(&sb, 0);
	int n = PQntuples(r), rows = n > limit ? (int)limit : n, i = 0;
	strbuf_reserve(&sb, (size_t)rows * 480 + 512); /* ~460 bytes a GPU: one allocation */
	strbuf_puts(&sb, "{\"count\":");
	size_t count_at = sb.len;
	strbuf_printf(&sb, "%-10s,\"limit\":%ld,\"gpus\":[", "", limit);
	for (; i < rows && (i == 0 || sb.len < GPUS_MAX_BODY); i++) {
		if (i)
			strbuf_append(&sb, ",", 1);
		json_text_row(&sb, r, i);
	}
	/* a next page when rows were left: past limit, or past the body bound */
	char *c = i < n ? gpus_cursor_make(r, i - 1) : NULL;
	strbuf_puts(&sb, "],\"next\":");
	if (c) {
		struct strbuf url;
		strbuf_init(&url, 0);
		strbuf_printf(&url, "/api/v1/gpus?limit=%ld", limit);
		url_param(&url, "host", host);
		url_param(&url, "status", status);
		url_param(&url, "cluster", cluster);
		url_param(&url, "namespace", ns);
		url_param(&url, "pod", pod);
		url_param(&url, "cursor", c);
		json_text_str(&sb, url.data && !url.overflow ? url.data : "");
		if (url.overflow || !url.data)
			sb.overflow = true;
		strbuf_free(&url);
		strbuf_puts(&sb, ",\"next_cursor\":");
		json_text_str(&sb, c);
	} else {
		strbuf_puts(&sb, "null,\"next_cursor\":null");
	}
	strbuf_puts(&sb, "}");
	bool failed = (i < n && !c) || sb.overflow || !sb.data;
	free(c);
	PQclear(r);
	if (failed) {
		strbuf_free(&sb);
		set(rq, 500, err_body("internal", NULL, "out of memory"));
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

/* Looks the GPU up; sets a 404 (or 503) and returns NULL when it is not there. */
static json_t *find_gpu(struct req *rq, const char *key)
{
	const char *p[1] = {key};
	PGresult *r = rq_query(rq, "SELECT " GPU_COLS " FROM gpus g WHERE g.gpu_key = $1", 1, p);
	if (!r)
		return NULL;
	json_t *g = NULL;
	if (PQntuples(r) == 1)
		g = row_obj(r, 0);
	else
		set(rq, 404,
		    err_body("not_found", "uuid",
		             "no GPU '%s' in the database: list them with GET /api/v1/gpus "
		             "(MIG instances are UUID/GPU_I_ID)",
		             key));
	PQclear(r);
	return g;
}

static void ep_gpu(struct req *rq, const char *key)
{
	static const char *const none[] = {NULL};
	if (!args_allowed(rq, none))
		return;
	json_t *g = find_gpu(rq, key);
	if (!g)
		return;
	const char *p[1] = {key};
	PGresult *r = rq_query(
	    rq,
	    "SELECT time, gpu_temp, memory_temp, power_usage, power_limit, gpu_util, "
	    "mem_copy_util, fb_used, fb_free, sm_clock, mem_clock, xid, ecc_sbe_volatile, "
	    "ecc_dbe_volatile, pcie_replay, uncorrectable_remapped_rows, row_remap_failure, "
	    "clocks_event_reasons FROM gpu_metrics WHERE gpu_key = $1 ORDER BY time DESC LIMIT 1",
	    1, p);
	if (!r)
		goto out;
	json_object_set_new(g, "latest", PQntuples(r) ? row_obj(r, 0) : json_null());
	PQclear(r);
	r = rq_query(rq,
	             "SELECT time, score, status FROM gpu_health_scores WHERE gpu_key = $1 "
	             "ORDER BY time DESC LIMIT 1",
	             1, p);
	if (!r)
		goto out;
	json_object_set_new(g, "health", PQntuples(r) ? row_obj(r, 0) : json_null());
	PQclear(r);
	set(rq, 200, g);
	g = NULL; /* owned by rq */
out:
	json_decref(g);
}

static void ep_gpu_metrics(struct req *rq, const char *key)
{
	static const char *const allowed[] = {"from", "to", "step", NULL};
	if (!args_allowed(rq, allowed))
		return;
	const char *from_s = arg(rq, "from"), *to_s = arg(rq, "to"), *step_s = arg(rq, "step");
	double to = time_now(), from = 0, step = 0;
	if (to_s && api_parse_time(to_s, &to) != 0) {
		set(rq, 400,
		    err_body("bad_parameter", "to",
		             "to '%s' is not a time from 1970 to 9999: use RFC 3339 "
		             "(2026-01-02T15:04:05Z) or Unix seconds",
		             to_s));
		return;
	}
	from = to - DEFAULT_RANGE_S;
	if (from_s && api_parse_time(from_s, &from) != 0) {
		set(rq, 400,
		    err_body("bad_parameter", "from",
		             "from '%s' is not a time from 1970 to 9999: use RFC 3339 "
		             "(2026-01-02T15:04:05Z) or Unix seconds",
		             from_s));
		return;
	}
	if (!(from < to)) {
		set(rq, 400,
		    err_body("bad_parameter", "from",
		             "from must be before to (got from=%.3f, to=%.3f in Unix seconds)",
		             from, to));
		return;
	}
	if (step_s &&
	    (config_parse_duration(step_s, &step) != 0 || !(step >= 0) || step > MAX_STEP_S)) {
		set(rq, 400,
		    err_body("bad_parameter", "step",
		             "step '%s' is not a duration up to 365 days: use seconds or 10s, 5m, "
		             "1h (0: every raw sample)",
		             step_s));
		return;
	}
	if (step >= 60 && fmod(step, 60) != 0) {
		set(rq, 400,
		    err_body("bad_parameter", "step",
		             "step %g s is served from the 1-minute rollups and must be a whole "
		             "number of minutes (e.g. 60, 300, 1h)",
		             step));
		return;
	}
	if (step > 0 && (to - from) / step > MAX_POINTS) {
		set(rq, 400,
		    err_body("bad_parameter", "step",
		             "%.0f points (range %.0f s / step %g s) is more than %d: raise step "
		             "or narrow from..to",
		             ceil((to - from) / step), to - from, step, MAX_POINTS));
		return;
	}
	if (step == 0 && to - from > RAW_MAX_RANGE_S) {
		set(rq, 400,
		    err_body("bad_parameter", "step",
		             "raw samples are served for ranges up to %.0f h (this one is %.1f "
		             "h): give step=60 or more to read the 1-minute rollups",
		             RAW_MAX_RANGE_S / 3600, (to - from) / 3600));
		return;
	}
	json_t *g = find_gpu(rq, key);
	if (!g)
		return;
	json_decref(g);
	char f[40], t[40], s[40];
	snprintf(f, sizeof(f), "%.6f", from);
	snprintf(t, sizeof(t), "%.6f", to);
	snprintf(s, sizeof(s), "%.6f", step);
	const char *p[4] = {key, f, t, s};
	const char *source = step >= 60 ? "rollup_1min" : "raw";
	PGresult *r;
	if (step == 0)
		r = rq_query(
		    rq,
		    "SELECT time, 1 AS samples, gpu_temp, gpu_temp AS gpu_temp_max, "
		    "memory_temp, power_usage, gpu_util, mem_copy_util, fb_used, sm_clock "
		    "FROM gpu_metrics WHERE gpu_key = $1 AND time >= to_timestamp($2::float8) "
		    "AND time < to_timestamp($3::float8) ORDER BY time",
		    3, p);
	else if (step < 60)
		r = rq_query(
		    rq,
		    "SELECT to_timestamp(floor(extract(epoch FROM time)::float8 / $4::float8) * "
		    "$4::float8) AS time, count(*)::int AS samples, avg(gpu_temp) AS gpu_temp, "
		    "max(gpu_temp) AS gpu_temp_max, avg(memory_temp) AS memory_temp, "
		    "avg(power_usage) AS power_usage, avg(gpu_util) AS gpu_util, "
		    "avg(mem_copy_util) AS mem_copy_util, avg(fb_used) AS fb_used, "
		    "avg(sm_clock) AS sm_clock FROM gpu_metrics WHERE gpu_key = $1 "
		    "AND time >= to_timestamp($2::float8) AND time < to_timestamp($3::float8) "
		    "GROUP BY 1 ORDER BY 1",
		    4, p);
	else
		r = rq_query(
		    rq,
		    "SELECT to_timestamp(floor(extract(epoch FROM minute)::float8 / $4::float8) * "
		    "$4::float8) AS time, sum(samples)::int AS samples, "
		    "sum(gpu_temp_sum) / NULLIF(sum(gpu_temp_n), 0) AS gpu_temp, "
		    "max(gpu_temp_max) AS gpu_temp_max, "
		    "sum(memory_temp_sum) / NULLIF(sum(memory_temp_n), 0) AS memory_temp, "
		    "sum(power_usage_sum) / NULLIF(sum(power_usage_n), 0) AS power_usage, "
		    "sum(gpu_util_sum) / NULLIF(sum(gpu_util_n), 0) AS gpu_util, "
		    "sum(mem_copy_util_sum) / NULLIF(sum(mem_copy_util_n), 0) AS mem_copy_util, "
		    "sum(fb_used_sum) / NULLIF(sum(fb_used_n), 0) AS fb_used, "
		    "sum(sm_clock_sum) / NULLIF(sum(sm_clock_n), 0) AS sm_clock "
		    "FROM gpu_metrics_1min_current WHERE gpu_key = $1 AND minute >= "
		    "to_timestamp($2::float8) "
		    "AND minute < to_timestamp($3::float8) GROUP BY 1 ORDER BY 1",
		    4, p);
	if (!r)
		return;
	char fb[40], tb[40];
	time_format_rfc3339(from, fb, sizeof(fb));
	time_format_rfc3339(to, tb, sizeof(tb));
	set(rq, 200,
	    json_pack("{s:s, s:s, s:s, s:f, s:s, s:i, s:o}", "gpu_key", key, "from", fb, "to", tb,
	              "step", step, "source", source, "count", PQntuples(r), "points",
	              rows_array(r)));
	PQclear(r);
}

static void ep_gpu_health(struct req *rq, const char *key)
{
	static const char *const none[] = {NULL};
	if (!args_allowed(rq, none))
		return;
	json_t *g = find_gpu(rq, key), *o = NULL;
	if (!g)
		return;
	json_decref(g);
	const char *p[1] = {key};
	o = json_pack("{s:s}", "gpu_key", key);
	PGresult *r =
	    rq_query(rq,
	             "SELECT time, score, status, thermal, memory, power, interconnect, xid, "
	             "reasons FROM gpu_health_scores WHERE gpu_key = $1 "
	             "ORDER BY time DESC LIMIT 1",
	             1, p);
	if (!r)
		goto out;
	json_object_set_new(o, "score", PQntuples(r) ? row_obj(r, 0) : json_null());
	PQclear(r);
	r = rq_query(rq,
	             "SELECT DISTINCT ON (horizon_hours) time, horizon_hours, probability, "
	             "model_version, recommendation, reasons FROM gpu_failure_predictions "
	             "WHERE gpu_key = $1 ORDER BY horizon_hours, time DESC",
	             1, p);
	if (!r)
		goto out;
	json_object_set_new(o, "predictions", rows_array(r));
	PQclear(r);
	r = rq_query(rq,
	             "SELECT id, gpu_key, hostname, kind, severity, message, details, raised_at, "
	             "cleared_at FROM alerts WHERE gpu_key = $1 AND cleared_at IS NULL "
	             "ORDER BY raised_at DESC, id DESC",
	             1, p);
	if (!r)
		goto out;
	json_object_set_new(o, "open_alerts", rows_array(r));
	PQclear(r);
	set(rq, 200, o);
	o = NULL; /* owned by rq */
out:
	json_decref(o);
}

static void ep_fleet(struct req *rq)
{
	static const char *const none[] = {NULL};
	if (!args_allowed(rq, none))
		return;
	PGresult *r = rq_query(rq, "SELECT * FROM v_fleet_summary", 0, NULL);
	if (!r)
		return;
	set(rq, 200, PQntuples(r) == 1 ? row_obj(r, 0) : json_object());
	PQclear(r);
}

static void ep_alerts(struct req *rq)
{
	static const char *const allowed[] = {"state", "severity", "host", "gpu", "limit", NULL};
	if (!args_allowed(rq, allowed))
		return;
	const char *state = arg(rq, "state"), *sev = arg(rq, "severity"), *lim = arg(rq, "limit");
	const char *host = arg(rq, "host"), *gpu = arg(rq, "gpu");
	if (!state)
		state = "open";
	if (strcmp(state, "open") && strcmp(state, "cleared") && strcmp(state, "all")) {
		set(rq, 400,
		    err_body("bad_parameter", "state",
		             "state '%s' is not one of open, cleared, all", state));
		return;
	}
	if (sev && strcmp(sev, "info") && strcmp(sev, "warn") && strcmp(sev, "fail")) {
		set(rq, 400,
		    err_body("bad_parameter", "severity",
		             "severity '%s' is not one of info, warn, fail", sev));
		return;
	}
	if (gpu && !valid_key(gpu)) {
		set(rq, 400,
		    err_body("bad_parameter", "gpu",
		             "gpu '%.64s' is not a GPU key (a UUID such as GPU-1234..., or "
		             "UUID/GPU_I_ID)",
		             gpu));
		return;
	}
	long limit = 100;
	if (lim) {
		char *end = NULL;
		errno = 0;
		limit = strtol(lim, &end, 10);
		if (!*lim || *end || errno || limit < 1 || limit > 1000) {
			set(rq, 400,
			    err_body("bad_parameter", "limit",
			             "limit '%s' is not a whole number from 1 to 1000", lim));
			return;
		}
	}
	char lbuf[24];
	snprintf(lbuf, sizeof(lbuf), "%ld", limit);
	const char *p[5] = {state, sev, host, gpu, lbuf};
	PGresult *r = rq_query(
	    rq,
	    "SELECT id, gpu_key, hostname, kind, severity, message, details, raised_at, "
	    "cleared_at, "
	    "namespace, pod, container FROM alerts WHERE ($1 = 'all' OR ($1 = 'open') = "
	    "(cleared_at IS NULL)) "
	    "AND ($2::text IS NULL OR severity = $2) AND ($3::text IS NULL OR hostname = $3) "
	    "AND ($4::text IS NULL OR gpu_key = $4) ORDER BY raised_at DESC, id DESC LIMIT $5::int",
	    5, p);
	if (!r)
		return;
	set(rq, 200, json_pack("{s:i, s:o}", "count", PQntuples(r), "alerts", rows_array(r)));
	PQclear(r);
}

/* ---- GET /api/v1/workloads: which GPUs a pod (or a namespace) used between from and to */

/* The cursor after a row: base64url of [2, first_seen (RFC 3339, to the microsecond), gpu_key],
 * the page order. Returns a malloc'd string or NULL. */
static char *wl_cursor_make(const PGresult *r, int row)
{
	json_t *a =
	    json_pack("[i, o, s]", 2, ts_json(PQgetvalue(r, row, 7)), PQgetvalue(r, row, 0));
	return cursor_encode(a);
}

static bool wl_cursor_parse(const char *text, json_t **owner, const char **t, const char **key)
{
	size_t len = strlen(text), n = 0;
	if (len == 0 || len > GPUS_MAX_CURSOR)
		return false;
	unsigned char buf[GPUS_MAX_CURSOR];
	if (!b64url_decode(text, buf, &n))
		return false;
	json_t *a = json_loadb((const char *)buf, n, 0, NULL);
	double ignored;
	if (!a || !json_is_array(a) || json_array_size(a) != 3 ||
	    json_integer_value(json_array_get(a, 0)) != 2 ||
	    !json_is_string(json_array_get(a, 1)) || !json_is_string(json_array_get(a, 2)) ||
	    !valid_key(json_string_value(json_array_get(a, 2))) ||
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

static bool wl_time(struct req *rq, const char *name, const char *text, double *t)
{
	if (!text || api_parse_time(text, t) == 0)
		return true;
	set(rq, 400,
	    err_body("bad_parameter", name,
	             "%s '%s' is not a time from 1970 to 9999: use RFC 3339 "
	             "(2026-01-02T15:04:05Z) or Unix seconds",
	             name, echo_safe(text)));
	return false;
}

static void ep_workloads(struct req *rq)
{
	static const char *const allowed[] = {"namespace", "pod",    "from", "to",
	                                      "limit",     "cursor", NULL};
	if (!args_allowed(rq, allowed))
		return;
	const char *ns = arg(rq, "namespace"), *pod = arg(rq, "pod"), *lim = arg(rq, "limit");
	const char *from_s = arg(rq, "from"), *to_s = arg(rq, "to"), *cursor = arg(rq, "cursor");
	if (!ns && !pod) {
		set(rq, 400,
		    err_body("bad_parameter", "pod",
		             "give pod (and/or namespace): the workload whose GPUs are listed"));
		return;
	}
	if (!gpus_filter_ok(rq, "namespace", ns) || !gpus_filter_ok(rq, "pod", pod))
		return;
	double from = 0, to = 0;
	if (!wl_time(rq, "from", from_s, &from) || !wl_time(rq, "to", to_s, &to))
		return;
	if (from_s && to_s && !(from <= to)) {
		set(rq, 400,
		    err_body("bad_parameter", "from",
		             "from must not be after to (got from=%.3f, to=%.3f in Unix seconds)",
		             from, to));
		return;
	}
	long limit;
	if (!page_limit(rq, lim, &limit))
		return;
	json_t *cur = NULL;
	const char *c_t = NULL, *c_key = NULL;
	if (cursor && !wl_cursor_parse(cursor, &cur, &c_t, &c_key)) {
		set(rq, 400,
		    err_body(
		        "bad_parameter", "cursor",
		        "cursor is not one this API gave: pass the next_cursor of the previous "
		        "page unchanged (or follow its next), or leave cursor out for the first "
		        "page"));
		return;
	}
	char fbuf[40], tbuf[40], lbuf[24];
	snprintf(fbuf, sizeof(fbuf), "%.6f", from);
	snprintf(tbuf, sizeof(tbuf), "%.6f", to);
	snprintf(lbuf, sizeof(lbuf), "%ld", limit + 1);
	const char *p[7] = {ns, pod, from_s ? fbuf : NULL, to_s ? tbuf : NULL, c_t, c_key, lbuf};
	/* a run overlaps [from, to] when it starts before to and ends after from */
	PGresult *r = rq_query(
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
	int n = PQntuples(r), rows = n > limit ? (int)limit : n;
	json_t *arr = json_array();
	for (int i = 0; arr && i < rows; i++)
		json_array_append_new(arr, row_obj(r, i));
	char *c = n > limit ? wl_cursor_make(r, rows - 1) : NULL;
	json_t *next = json_null();
	if (c) {
		struct strbuf url;
		strbuf_init(&url, 0);
		strbuf_printf(&url, "/api/v1/workloads?limit=%ld", limit);
		url_param(&url, "namespace", ns);
		url_param(&url, "pod", pod);
		url_param(&url, "from", from_s);
		url_param(&url, "to", to_s);
		url_param(&url, "cursor", c);
		json_decref(next);
		next = url.data && !url.overflow ? json_string(url.data) : NULL;
		strbuf_free(&url);
	}
	json_t *body = json_pack("{s:i, s:i, s:o, s:o*, s:s?}", "count", rows, "limit", (int)limit,
	                         "workloads", arr, "next", next, "next_cursor", c);
	free(c);
	PQclear(r);
	if (!body || (n > limit && json_is_null(json_object_get(body, "next")))) {
		json_decref(body);
		set(rq, 500, err_body("internal", NULL, "out of memory"));
		goto out;
	}
	if (!json_object_get(body, "next_cursor"))
		json_object_set_new(body, "next_cursor", json_null());
	set(rq, 200, body);
out:
	json_decref(cur);
}

static void ep_healthz(struct req *rq)
{
	static const char *const none[] = {NULL};
	if (!args_allowed(rq, none))
		return;
	PGresult *r = rq_query(rq, "SELECT 1", 0, NULL);
	if (!r) {
		/* never the connection string, host, port, role or the server's text */
		set(rq, 503,
		    json_pack("{s:s, s:s, s:s}", "status", "unavailable", "database", "down",
		              "message",
		              "the database is unreachable (the API's log has the cause)"));
		return;
	}
	PQclear(r);
	set(rq, 200, json_pack("{s:s, s:s}", "status", "ok", "database", "up"));
}

/* Prometheus text of the API's own counters; returns a malloc'd string. */
static char *metrics_text(struct api *api)
{
	struct strbuf sb;
	strbuf_init(&sb, 0);
	strbuf_printf(&sb, "# HELP gpuhealth_api_requests_total HTTP requests by endpoint.\n"
	                   "# TYPE gpuhealth_api_requests_total counter\n");
	for (int e = 0; e < EP_COUNT; e++)
		strbuf_printf(&sb, "gpuhealth_api_requests_total{endpoint=\"%s\"} %llu\n",
		              ep_names[e], (unsigned long long)atomic_load(&api->n_requests[e]));
	strbuf_printf(&sb, "# HELP gpuhealth_api_request_seconds_total Time spent answering, by "
	                   "endpoint.\n# TYPE gpuhealth_api_request_seconds_total counter\n");
	for (int e = 0; e < EP_COUNT; e++)
		strbuf_printf(&sb, "gpuhealth_api_request_seconds_total{endpoint=\"%s\"} %.6f\n",
		              ep_names[e], (double)atomic_load(&api->duration_us[e]) / 1e6);
	strbuf_printf(&sb,
	              "# HELP gpuhealth_api_responses_total HTTP responses by status class.\n"
	              "# TYPE gpuhealth_api_responses_total counter\n"
	              "gpuhealth_api_responses_total{class=\"2xx\"} %llu\n"
	              "gpuhealth_api_responses_total{class=\"4xx\"} %llu\n"
	              "gpuhealth_api_responses_total{class=\"5xx\"} %llu\n",
	              (unsigned long long)atomic_load(&api->n_2xx),
	              (unsigned long long)atomic_load(&api->n_4xx),
	              (unsigned long long)atomic_load(&api->n_5xx));
	struct api_stats st;
	api_stats(api, &st);
	strbuf_printf(&sb,
	              "# HELP gpuhealth_api_db_errors_total Failed database connections and "
	              "queries (not those a request's values caused).\n"
	              "# TYPE gpuhealth_api_db_errors_total counter\n"
	              "gpuhealth_api_db_errors_total %llu\n"
	              "# HELP gpuhealth_api_db_connections Open pooled database connections.\n"
	              "# TYPE gpuhealth_api_db_connections gauge\n"
	              "gpuhealth_api_db_connections %u\n"
	              "# HELP gpuhealth_api_head_timeouts_total Connections closed because no "
	              "whole request head came within %d s.\n"
	              "# TYPE gpuhealth_api_head_timeouts_total counter\n"
	              "gpuhealth_api_head_timeouts_total %llu\n",
	              (unsigned long long)st.db_errors, st.db_connections, HEAD_DEADLINE_S,
	              api->limits ? httpd_limits_closed(api->limits) : 0ULL);
	if (sb.overflow || !sb.data) {
		strbuf_free(&sb);
		return NULL;
	}
	return sb.data; /* caller frees */
}

static enum endpoint route(struct req *rq, const char *url, char *key, size_t keylen)
{
	static const char gpus[] = "/api/v1/gpus/";
	bool under_gpus = strncmp(url, gpus, sizeof(gpus) - 1) == 0;
	size_t ulen = strlen(url);
	/* the decoded path: UTF-8 and bounded before anything else looks at it */
	if (!api_utf8_valid(url) || ulen > MAX_PATH) {
		set(rq, 400,
		    err_body("bad_parameter", under_gpus ? "uuid" : "path",
		             ulen > MAX_PATH
		                 ? "the path is %zu bytes long: at most %d"
		                 : "the path is not valid UTF-8 (%zu bytes, at most %d): "
		                   "percent-encode UTF-8 text",
		             ulen, MAX_PATH));
		return under_gpus ? EP_GPU : EP_OTHER;
	}
	if (strcmp(url, "/api/v1/gpus") == 0)
		return EP_GPUS;
	if (strcmp(url, "/api/v1/fleet/summary") == 0)
		return EP_FLEET;
	if (strcmp(url, "/api/v1/alerts") == 0)
		return EP_ALERTS;
	if (strcmp(url, "/api/v1/workloads") == 0)
		return EP_WORKLOADS;
	if (strcmp(url, "/healthz") == 0)
		return EP_HEALTHZ;
	if (strcmp(url, "/metrics") == 0)
		return EP_METRICS;
	if (strncmp(url, gpus, sizeof(gpus) - 1) != 0)
		return EP_OTHER;
	const char *rest = url + sizeof(gpus) - 1;
	size_t n = strlen(rest);
	enum endpoint ep = EP_GPU;
	if (n > 8 && strcmp(rest + n - 8, "/metrics") == 0) {
		ep = EP_GPU_METRICS;
		n -= 8;
	} else if (n > 7 && strcmp(rest + n - 7, "/health") == 0) {
		ep = EP_GPU_HEALTH;
		n -= 7;
	}
	/* the key may hold one '/' (a MIG instance, UUID/GPU_I_ID, escaped or not) */
	snprintf(key, keylen, "%.*s", (int)(n < keylen ? n : keylen - 1), rest);
	if (n >= keylen || !valid_key(key)) {
		set(rq, 400,
		    err_body("bad_parameter", "uuid",
		             "'%.64s' is not a GPU key: use the GPU's UUID (GPU-...) or "
		             "UUID/GPU_I_ID for a MIG instance",
		             n < keylen ? key : "(too long)"));
	}
	return ep;
}

static void count_status(struct api *api, int status)
{
	if (status < 300)
		atomic_fetch_add(&api->n_2xx, 1);
	else if (status < 500)
		atomic_fetch_add(&api->n_4xx, 1);
	else
		atomic_fetch_add(&api->n_5xx, 1);
}

/* Sends body with status, or a 500 when there is no body to send; counts the status sent. */
static enum MHD_Result send_json(struct api *api, struct MHD_Connection *c, int status,
                                 json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (!text) {
		log_error("api: no JSON for a %d answer: out of memory or not UTF-8", status);
		count_status(api, 500);
		static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
		struct MHD_Response *r = MHD_create_response_from_buffer(
		    sizeof(oom) - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "Content-Type", "application/json");
		enum MHD_Result ret = MHD_queue_response(c, 500, r);
		MHD_destroy_response(r);
		return ret;
	}
	size_t n = strlen(text);
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(n, text, free);
	if (!r) {
		free(text);
		count_status(api, 500);
		return MHD_NO;
	}
	count_status(api, status);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == 405)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Sends JSON text rendered by a handler; takes *text (set to NULL); counts the status sent. */
static enum MHD_Result send_text(struct api *api, struct MHD_Connection *c, int status, char **text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer_with_free_callback(strlen(*text), *text, free);
	if (!r) {
		count_status(api, 500);
		return MHD_NO; /* *text is still ours: answer frees it */
	}
	*text = NULL; /* owned by r */
	count_status(api, status);
	MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
	struct api *api = cls;
	double t0 = time_mono();
	struct req rq = {.api = api, .status = 0};
	httpd_limits_answering(c); /* a GET has no body: the request is whole, its deadline ends */
	char key[MAX_KEY + 2] = "";
	enum endpoint ep = route(&rq, url, key, sizeof(key));
	atomic_fetch_add(&api->n_requests[ep], 1);
	enum MHD_Result ret;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		set(&rq, 405,
		    err_body("method_not_allowed", NULL,
		             "%s is not allowed: this API is read-only (use GET)", method));
	} else if (rq.status == 0) {
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &rq);
		switch (ep) {
		case EP_GPUS: ep_gpus(&rq); break;
		case EP_GPU: ep_gpu(&rq, key); break;
		case EP_GPU_METRICS: ep_gpu_metrics(&rq, key); break;
		case EP_GPU_HEALTH: ep_gpu_health(&rq, key); break;
		case EP_FLEET: ep_fleet(&rq); break;
		case EP_ALERTS: ep_alerts(&rq); break;
		case EP_WORKLOADS: ep_workloads(&rq); break;
		case EP_HEALTHZ: ep_healthz(&rq); break;
		case EP_METRICS: {
			char *text = metrics_text(api);
			if (!text) {
				set(&rq, 500, err_body("internal", NULL, "out of memory"));
				break;
			}
			struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback(
			    strlen(text), text, free);
			if (!r) {
				free(text);
				ret = MHD_NO;
				goto out;
			}
			MHD_add_response_header(r, "Content-Type",
			                        "text/plain; version=0.0.4; charset=utf-8");
			ret = MHD_queue_response(c, 200, r);
			MHD_destroy_response(r);
			count_status(api, 200);
			goto out;
		}
		default:
			set(&rq, 404,
			    err_body("not_found", NULL,
			             "no such endpoint '%.200s': see docs/openapi.yaml (GET "
			             "/api/v1/gpus, /api/v1/fleet/summary, /api/v1/alerts, ...)",
			             url));
		}
	}
	if (rq.status == 0)
		set(&rq, 500, err_body("internal", NULL, "no answer was produced"));
	ret = rq.text ? send_text(api, c, rq.status, &rq.text)
	              : send_json(api, c, rq.status, rq.body);
out:
	if (rq.pc)
		pool_put(api, rq.pc);
	free(rq.text);
	json_decref(rq.body);
	atomic_fetch_add(&api->duration_us[ep], (uint64_t)((time_mono() - t0) * 1e6));
	return ret;
}

/* ---- lifecycle */

int api_create(struct api **out, const struct api_params *params, char *err, size_t errlen)
{
	struct api *api = calloc(1, sizeof(*api));
	if (!api)
		goto oom;
	pthread_mutex_init(&api->pool_mu, NULL);
	pthread_cond_init(&api->pool_cv, NULL);
	api->threads = params->threads ? params->threads : 4;
	if (api->threads > 64) {
		snprintf(err, errlen, "api: %u worker threads is too many (at most 64)",
		         api->threads);
		api_destroy(api);
		return -EINVAL;
	}
	api->per_client = params->per_client ? params->per_client : PER_CLIENT_DEF;
	if (api->per_client > CONN_LIMIT) {
		snprintf(err, errlen,
		         "api: %u connections per client is more than the %d of all clients "
		         "together",
		         api->per_client, CONN_LIMIT);
		api_destroy(api);
		return -EINVAL;
	}
	api->listen = strdup(params->listen ? params->listen : ":8080");
	api->conninfo = strdup(params->conninfo ? params->conninfo : "");
	api->pool = calloc(api->threads, sizeof(*api->pool));
	if (!api->listen || !api->conninfo || !api->pool)
		goto oom;
	*out = api; /* caller owns: api_destroy */
	return 0;
oom:
	snprintf(err, errlen, "api: out of memory");
	api_destroy(api);
	return -ENOMEM;
}

/* Splits "HOST:PORT", ":PORT" or "[V6]:PORT". */
static int split_listen(const char *text, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	if (text[0] == '[') {
		const char *rb = strchr(text, ']');
		if (!rb || rb[1] != ':' || (size_t)(rb - text - 1) >= hostlen)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(rb - text - 1), text + 1);
		colon = rb + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || (size_t)(colon - text) >= hostlen)
			return -EINVAL;
		snprintf(host, hostlen, "%.*s", (int)(colon - text), text);
	}
	const char *p = colon + 1;
	if (!*p || strlen(p) >= portlen || strspn(p, "0123456789") != strlen(p) || atol(p) > 65535)
		return -EINVAL;
	snprintf(port, portlen, "%s", p);
	return 0;
}

static int open_listener(struct api *api, int *fd_out, char *err, size_t errlen)
{
	char host[256], port[8];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int fd = -1, rc;
	if (split_listen(api->listen, host, sizeof(host), port, sizeof(port)) != 0) {
		snprintf(err, errlen,
		         "--listen '%s' is not HOST:PORT (e.g. :8080, 127.0.0.1:8080, [::1]:8080)",
		         api->listen);
		return -EINVAL;
	}
	bool any = host[0] == '\0';
	hints.ai_family = any ? AF_INET6 : AF_UNSPEC;
	int gai = getaddrinfo(any ? NULL : host, port, &hints, &ai);
	if (gai != 0 && any) {
		hints.ai_family = AF_INET;
		gai = getaddrinfo(NULL, port, &hints, &ai);
	}
	if (gai != 0) {
		snprintf(err, errlen, "--listen '%s': cannot resolve '%s': %s", api->listen, host,
		         gai_strerror(gai));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "--listen '%s': socket: %s", api->listen, strerror(errno));
		goto out;
	}
	int one = 1, zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6 && any)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
		rc = -errno;
		if (rc == -EADDRINUSE)
			snprintf(
			    err, errlen,
			    "cannot listen on %s: the port is already in use by another program "
			    "(pick another with --listen HOST:PORT)",
			    api->listen);
		else
			snprintf(err, errlen, "cannot listen on %s: %s", api->listen,
			         strerror(-rc));
		goto out;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char h[INET6_ADDRSTRLEN] = "?";
	unsigned bound_port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, h, sizeof(h));
			bound_port = ntohs(a->sin_port);
		} else {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, h, sizeof(h));
			bound_port = ntohs(a->sin6_port);
		}
	}
	if (ss.ss_family == AF_INET6)
		snprintf(api->address, sizeof(api->address), "[%s]:%u", h, bound_port);
	else
		snprintf(api->address, sizeof(api->address), "%s:%u", h, bound_port);
	*fd_out = fd; /* caller owns */
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return rc;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("api: http: %s", msg);
}

int api_start(struct api *api, char *err, size_t errlen)
{
	int fd = -1;
	if (api->daemon)
		return -EALREADY;
	int rc = open_listener(api, &fd, err, errlen);
	if (rc)
		return rc;
	struct httpd_limits_params lp = {.name = "api",
	                                 .request_s = HEAD_DEADLINE_S,
	                                 .keepalive_s = CONN_TIMEOUT_S,
	                                 .idle_s = CONN_TIMEOUT_S,
	                                 .total = CONN_LIMIT,
	                                 .per_ip = api->per_client};
	rc = httpd_limits_create(&api->limits, &lp);
	if (rc) {
		close(fd);
		snprintf(err, errlen, "cannot start the API's deadline thread: %s", strerror(-rc));
		return rc;
	}
	struct MHD_OptionItem lim[HTTPD_LIMITS_NOPTS];
	httpd_limits_options(api->limits, lim);
	/* a thread per connection: a slow answer (a page of GPUs) holds up only its own client;
	 * /healthz is never queued behind pages on a shared worker thread. A connection past its
	 * head deadline has its socket shut down by httpd_limits: its thread's poll sees the
	 * end of the stream and MHD closes it (and the per-client count drops). */
	api->daemon = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, answer, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_ARRAY, lim, MHD_OPTION_END);
	if (!api->daemon) {
		close(fd);
		httpd_limits_destroy(api->limits);
		api->limits = NULL;
		snprintf(err, errlen, "cannot start the HTTP server on %s", api->address);
		return -EIO;
	}
	return 0; /* fd is owned by the daemon: MHD_stop_daemon closes it */
}

const char *api_address(const struct api *api)
{
	return api->address;
}

void api_stop(struct api *api)
{
	if (api && api->daemon) {
		MHD_stop_daemon(api->daemon); /* closes every connection: the list empties */
		api->daemon = NULL;
	}
	if (api) {
		httpd_limits_destroy(
		    api->limits); /* after the daemon: it reports each close to it */
		api->limits = NULL;
	}
}

void api_stats(struct api *api, struct api_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int e = 0; e < EP_COUNT; e++)
		out->requests += atomic_load(&api->n_requests[e]);
	out->responses_2xx = atomic_load(&api->n_2xx);
	out->responses_4xx = atomic_load(&api->n_4xx);
	out->responses_5xx = atomic_load(&api->n_5xx);
	out->db_errors = atomic_load(&api->n_db_errors);
	pthread_mutex_lock(&api->pool_mu);
	for (unsigned i = 0; i < api->threads && api->pool; i++)
		if (api->pool[i].conn && PQstatus(api->pool[i].conn) == CONNECTION_OK)
			out->db_connections++;
	pthread_mutex_unlock(&api->pool_mu);
}

void api_destroy(struct api *api)
{
	if (!api)
		return;
	api_stop(api);
	for (unsigned i = 0; api->pool && i < api->threads; i++)
		if (api->pool[i].conn)
			PQfinish(api->pool[i].conn);
	free(api->pool);
	free(api->listen);
	free(api->conninfo);
	pthread_mutex_destroy(&api->pool_mu);
	pthread_cond_destroy(&api->pool_cv);
	free(api);
}
