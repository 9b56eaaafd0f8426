#include "store/pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- redaction: every connection string goes through libpq's own parser ---- */

/* A bounded appender: never writes past out[len-1], always terminated. */
struct outbuf {
	char *p;
	size_t len, used;
};

static void put_n(struct outbuf *b, const char *s, size_t n)
{
	if (!b->len)
		return;
	while (n-- && b->used + 1 < b->len)
		b->p[b->used++] = *s++;
	b->p[b->used] = '\0';
}

static void put(struct outbuf *b, const char *s) { put_n(b, s, strlen(s)); }

/* True for a key whose value is a secret: libpq marks them with dispchar "*" (password,
 * sslpassword); the names are checked too in case a libpq build does not. */
static bool secret_key(const char *keyword, const char *dispchar)
{
	return (dispchar && dispchar[0] == '*') || strcmp(keyword, "password") == 0 ||
	       strcmp(keyword, "sslpassword") == 0;
}

/* A value as conninfo text: quoted when it needs it, control bytes shown as '?' so a value
 * cannot start a new log line. */
static void put_value(struct outbuf *b, const char *v)
{
	bool quote = !*v;
	for (const char *s = v; *s; s++)
		if (*s == ' ' || *s == '\'' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f)
			quote = true;
	if (quote)
		put(b, "'");
	for (const char *s = v; *s; s++) {
		if (*s == '\'' || *s == '\\')
			put(b, "\\");
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			put(b, "?");
		else
			put_n(b, s, 1);
	}
	if (quote)
		put(b, "'");
}

/* The host of a host list at s: its length (*n) and its last '@' (*at; NULL when none, or for a
 * socket directory, which starts with '/'). Returns the next host, NULL after the last. */
static const char *next_host(const char *s, size_t *n, const char **at)
{
	const char *end = strchr(s, ',');
	*n = end ? (size_t)(end - s) : strlen(s);
	*at = NULL;
	for (const char *q = s; *s != '/' && q < s + *n; q++)
		if (*q == '@')
			*at = q;
	return end ? end + 1 : NULL;
}

/* A host list with anything before an '@' in one host hidden: "postgresql://u:pa@ss@h" leaves
 * "ss@h" as libpq's host, and "ss" is part of the password. */
static void put_hosts(struct outbuf *b, const char *v)
{
	char tmp[1024];
	struct outbuf t = {tmp, sizeof(tmp), 0};
	tmp[0] = '\0';
	const char *s = v;
	while (*s) {
		size_t n;
		const char *at, *next = next_host(s, &n, &at);
		if (at) {
			put(&t, "***");
			put_n(&t, at, n - (size_t)(at - s));
		} else {
			put_n(&t, s, n);
		}
		if (!next)
			break;
		put(&t, ",");
		s = next;
	}
	put_value(b, tmp);
}

static void put_option(struct outbuf *b, const char *key, const char *val, bool secret)
{
	if (b->used)
		put(b, " ");
	put(b, key);
	put(b, "=");
	if (secret)
		put(b, "***");
	else if (strcmp(key, "host") == 0)
		put_hosts(b, val);
	else
		put_value(b, val);
}

/* libpq treats a string as a connection string when it has an '=' or a URI prefix; anything
 * else given as --db is a database name (PQconnectdbParams with expand_dbname). */
static bool is_conninfo(const char *s)
{
	return strchr(s, '=') || strncmp(s, "postgresql://", 13) == 0 ||
	       strncmp(s, "postgres://", 11) == 0;
}

/* The first line of a libpq parse error of conninfo. libpq quotes the piece it stumbled on
 * ("missing "=" after "b"", "invalid percent-encoded token: "p%zz"", or the whole URI): when
 * the string may hold a password that piece may be part of it, and every quoted part is
 * hidden; otherwise it is shown (a misspelt key is then named), control bytes as '?'. */
static void put_parse_error(struct outbuf *b, const char *conninfo, const char *msg)
{
	const char *s = msg;
	if (!pg_conninfo_has_password(conninfo)) {
		for (; *s && *s != '\n'; s++) {
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				put(b, "?");
			else
				put_n(b, s, 1);
		}
		return;
	}
	while (*s && *s != '\n') {
		const char *q = strchr(s, '"');
		const char *nl = strchr(s, '\n');
		if (!q || (nl && nl < q)) {
			put_n(b, s, nl ? (size_t)(nl - s) : strlen(s));
			return;
		}
		put_n(b, s, (size_t)(q - s) + 1);
		const char *close = strchr(q + 1, '"');
		if (!close || (nl && nl < close)) {
			put(b, "...\"");
			return;
		}
		size_t n = (size_t)(close - q - 1);
		/* keep libpq's own punctuation ("=", "]"), hide the rest */
		if (n == 1 && (q[1] == '=' || q[1] == ']'))
			put_n(b, q + 1, 1);
		else
			put(b, "...");
		put(b, "\"");
		s = close + 1;
	}
}

/* The PG* variables that choose the database, as pg_redact shows them. */
static const struct {
	const char *env, *key;
} pg_env[] = {{"PGSERVICE", "service"}, {"PGHOST", "host"},         {"PGHOSTADDR", "hostaddr"},
	      {"PGPORT", "port"},       {"PGDATABASE", "dbname"}, {"PGUSER", "user"},
	      {"PGPASSWORD", "password"}, {"PGSSLMODE", "sslmode"}};

void pg_redact(const char *conninfo, char *out, size_t outlen)
{
	struct outbuf b = {out, outlen, 0};
	if (outlen)
		out[0] = '\0';
	if (!conninfo || !*conninfo) {
		char tmp[512];
		struct outbuf t = {tmp, sizeof(tmp), 0};
		tmp[0] = '\0';
		for (size_t i = 0; i < sizeof(pg_env) / sizeof(pg_env[0]); i++) {
			const char *v = getenv(pg_env[i].env);
			if (v && *v)
				put_option(&t, pg_env[i].key, v, strcmp(pg_env[i].key, "password") == 0);
		}
		put(&b, "(PG* environment");
		if (t.used) {
			put(&b, ": ");
			put(&b, tmp);
		}
		put(&b, ")");
		return;
	}
	if (!is_conninfo(conninfo)) {
		put_option(&b, "dbname", conninfo, false);
		return;
	}
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		put(&b, "(unparseable connection string");
		if (perr && *perr) {
			put(&b, ": ");
			put_parse_error(&b, conninfo, perr);
		}
		put(&b, ")");
		PQfreemem(perr);
		return;
	}
	/* where first, then who, then the rest in libpq's order */
	static const char *const first[] = {"service", "host", "hostaddr", "port", "dbname", "user"};
	const size_t nfirst = sizeof(first) / sizeof(first[0]);
	for (size_t i = 0; i < nfirst; i++)
		for (const PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val && strcmp(o->keyword, first[i]) == 0)
				put_option(&b, o->keyword, o->val, secret_key(o->keyword, o->dispchar));
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		bool done = false;
		for (size_t i = 0; i < nfirst; i++)
			done = done || strcmp(o->keyword, first[i]) == 0;
		if (o->val && !done)
			put_option(&b, o->keyword, o->val, secret_key(o->keyword, o->dispchar));
	}
	if (!b.used)
		put(&b, "(empty connection string)");
	PQconninfoFree(opts);
}

/* The secrets of a connection string, for scrubbing text: the values of secret keys and any
 * part of a host before an '@'. Returns how many were stored (pointers into opts or the
 * environment), at most max. */
static size_t find_secrets(const PQconninfoOption *opts, const char **sec, size_t *len, size_t max)
{
	size_t n = 0;
	const char *envpw = getenv("PGPASSWORD");
	if (envpw && *envpw && n < max) {
		sec[n] = envpw;
		len[n++] = strlen(envpw);
	}
	for (const PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (secret_key(o->keyword, o->dispchar) && n < max) {
			sec[n] = o->val;
			len[n++] = strlen(o->val);
		} else if (strcmp(o->keyword, "host") == 0) {
			const char *s = o->val;
			while (s && *s && n < max) {
				size_t hl;
				const char *at, *next = next_host(s, &hl, &at);
				if (at && at > s) {
					sec[n] = s;
					len[n++] = (size_t)(at - s);
				}
				s = next;
			}
		}
	}
	return n;
}

static bool word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void pg_redact_message(const char *conninfo, const char *msg, char *out, size_t outlen)
{
	struct outbuf b = {out, outlen, 0};
	if (outlen)
		out[0] = '\0';
	if (!msg)
		return;
	size_t mlen = strlen(msg);
	while (mlen && (msg[mlen - 1] == '\n' || msg[mlen - 1] == ' ' || msg[mlen - 1] == '\r'))
		mlen--;
	PQconninfoOption *opts = NULL;
	if (conninfo && *conninfo && is_conninfo(conninfo)) {
		char *perr = NULL;
		opts = PQconninfoParse(conninfo, &perr);
		PQfreemem(perr);
		if (!opts) {
			/* libpq's message is its parse error, which quotes the input */
			put_parse_error(&b, conninfo, msg);
			return;
		}
	}
	const char *sec[16];
	size_t slen[16];
	size_t nsec = find_secrets(opts, sec, slen, 16);
	for (size_t i = 0; i < mlen;) {
		bool hit = false;
		for (size_t k = 0; k < nsec && !hit; k++) {
			if (!slen[k] || slen[k] > mlen - i || memcmp(msg + i, sec[k], slen[k]) != 0)
				continue;
			/* a short secret only as a whole word, or every such letter would go */
			if (slen[k] < 4 && ((i && word_char(msg[i - 1])) ||
					    (i + slen[k] < mlen && word_char(msg[i + slen[k]]))))
				continue;
			put(&b, "***");
			i += slen[k];
			hit = true;
		}
		if (hit)
			continue;
		if (msg[i] == '\n') {
			put(&b, "; ");
			while (i + 1 < mlen && (msg[i + 1] == ' ' || msg[i + 1] == '\t'))
				i++;
		} else if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			put(&b, " ");
		else
			put_n(&b, msg + i, 1);
		i++;
	}
	PQconninfoFree(opts);
}

bool pg_conninfo_has_password(const char *conninfo)
{
	if (!conninfo || !*conninfo || !is_conninfo(conninfo))
		return false;
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	PQfreemem(perr);
	if (!opts) {
		/* unparseable: it may still hold one (it is on the command line all the same) */
		if (strcasestr(conninfo, "password"))
			return true;
		const char *auth = strstr(conninfo, "://");
		const char *at = auth ? strchr(auth + 3, '@') : NULL;
		const char *colon = auth ? strchr(auth + 3, ':') : NULL;
		return at && colon && colon < at;
	}
	bool found = false;
	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && *o->val && secret_key(o->keyword, o->dispchar))
			found = true;
	PQconninfoFree(opts);
	return found;
}

PGconn *pg_connect(const char *conninfo, const char *application_name, char *err, size_t errlen)
{
	if (conninfo && is_conninfo(conninfo)) {
		char *perr = NULL;
		PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
		if (!opts) {
			char why[512] = "";
			struct outbuf b = {why, sizeof(why), 0};
			put_parse_error(&b, conninfo, perr ? perr : "out of memory");
			PQfreemem(perr);
			snprintf(err, errlen,
				 "the PostgreSQL connection string (--db / DATABASE_URL) is not valid: %s; "
				 "write key=value pairs with a value that has spaces or quotes in single "
				 "quotes (password='a b\\'c'), or a postgresql:// URI with such bytes "
				 "%%-encoded",
				 why);
			return NULL;
		}
		PQconninfoFree(opts);
	}
	const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
	const char *vals[] = {conninfo ? conninfo : "", application_name, "10", NULL};
	/* expand_dbname=1: dbname may be a full conninfo or URI, which then wins over the rest
	 * except where it leaves a key unset. */
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	if (!c) {
		snprintf(err, errlen, "out of memory connecting to PostgreSQL");
		return NULL;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		pg_connect_error(conninfo, c, err, errlen);
		PQfinish(c);
		return NULL;
	}
	return c; /* caller owns */
}

void pg_close(PGconn *c)
{
	if (c)
		PQfinish(c);
}

void pg_connect_error(const char *conninfo, PGconn *c, char *err, size_t errlen)
{
	char safe[512], msg[1024];
	pg_redact(conninfo, safe, sizeof(safe));
	pg_redact_message(conninfo, PQerrorMessage(c), msg, sizeof(msg));
	snprintf(err, errlen, "cannot connect to PostgreSQL %s: %s (check --db / DATABASE_URL)",
	         safe, msg);
}

/* r's outcome: true when the statement ran (rows or a command), else false with the server's
 * message (or the session's) in err, without its trailing newlines. */
static bool result_ok(PGconn *conn, const PGresult *r, char *err, size_t errlen)
{
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return true;
	const char *m = r ? PQresultErrorMessage(r) : NULL;
	if (!m || !*m)
		m = PQerrorMessage(conn);
	snprintf(err, errlen, "%s", m);
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	return false;
}

int pg_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, sql);
	int rc = result_ok(conn, r, err, errlen) ? 0 : -EIO;
	PQclear(r);
	return rc;
}

bool pg_connection_lost(PGconn *conn)
{
	return !pg_connected(conn);
}

bool pg_connected(PGconn *conn)
{
	return conn && PQstatus(conn) == CONNECTION_OK;
}

int pg_query(PGconn *conn, const char *sql, int n, const char *const *params, PGresult **out,
             char *err, size_t errlen)
{
	*out = NULL;
	PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
	if (result_ok(conn, r, err, errlen)) {
		*out = r; /* the caller's */
		return 0;
	}
	PQclear(r);
	return -EIO;
}

int pg_rows(const PGresult *r)
{
	return r ? PQntuples(r) : 0;
}

const char *pg_text(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col);
}

bool pg_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) != 0;
}

double pg_double(const PGresult *r, int row, int col)
{
	return strtod(PQgetvalue(r, row, col), NULL);
}

long long pg_int(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void pg_clear(PGresult *r)
{
	PQclear(r);
}

PGresult *pg_exec_params(PGconn *conn, const char *sql, int n, const char *const *params)
{
	return PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
}

PGresult *pg_exec_simple(PGconn *conn, const char *sql)
{
	return PQexec(conn, sql);
}

bool pg_tuples_ok(const PGresult *r)
{
	return PQresultStatus(r) == PGRES_TUPLES_OK;
}

bool pg_command_ok(const PGresult *r)
{
	return PQresultStatus(r) == PGRES_COMMAND_OK;
}

const char *pg_conn_error(PGconn *conn)
{
	return PQerrorMessage(conn);
}

const char *pg_result_error(const PGresult *r)
{
	return PQresultErrorMessage(r);
}

const char *pg_sqlstate(const PGresult *r)
{
	return r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
}

int pg_fields(const PGresult *r)
{
	return PQnfields(r);
}

const char *pg_fname(const PGresult *r, int col)
{
	return PQfname(r, col);
}

unsigned pg_ftype(const PGresult *r, int col)
{
	return (unsigned)PQftype(r, col);
}

bool pg_ping_ok(const char *conninfo)
{
	return PQping(conninfo) == PQPING_OK;
}

const char *pg_parameter(PGconn *conn, const char *name)
{
	return PQparameterStatus(conn, name);
}

bool pg_idle(PGconn *conn)
{
	return PQtransactionStatus(conn) == PQTRANS_IDLE;
}

void pg_reset(PGconn *conn)
{
	PQreset(conn);
}

bool pg_sqlstate_reconnect(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return false;
	return strcmp(sqlstate, "25006") == 0 || strcmp(sqlstate, "57P01") == 0 ||
	       strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0 ||
	       strncmp(sqlstate, "08", 2) == 0;
}

bool pg_session_read_only(PGconn *conn)
{
	if (!conn)
		return false;
	const char *hs = PQparameterStatus(conn, "in_hot_standby");
	const char *ro = PQparameterStatus(conn, "default_transaction_read_only");
	return (hs && strcmp(hs, "on") == 0) || (ro && strcmp(ro, "on") == 0);
}

int pg_text_array(const char *const *v, size_t n, char *buf, size_t len)
{
	size_t k = 0;
	if (len < 3)
		return -ENOSPC;
	buf[k++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (k + 4 >= len)
			return -ENOSPC;
		if (i)
			buf[k++] = ',';
		buf[k++] = '"';
		for (const char *p = v[i]; *p; p++) {
			if (k + 4 >= len)
				return -ENOSPC;
			if (*p == '"' || *p == '\\')
				buf[k++] = '\\';
			buf[k++] = *p;
		}
		buf[k++] = '"';
	}
	buf[k++] = '}';
	buf[k] = '\0';
	return 0;
}
