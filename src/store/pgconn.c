#include "store/pgconn.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg.h"
#include "store/pgcopy.h"

#define COPY_CHUNK (1u << 20) /* bytes per PQputCopyData */

struct pgconn {
	PGconn *db;     /* owned; NULL when there is no session */
	char *conninfo; /* owned; NULL: the PG* variables */
	char app[64];
	bool marked; /* replace the session at the next ensure */
};

struct pgconn *pgconn_create(const char *conninfo, const char *application_name)
{
	struct pgconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (conninfo && *conninfo && !(c->conninfo = strdup(conninfo))) {
		free(c);
		return NULL;
	}
	snprintf(c->app, sizeof(c->app), "%s", application_name ? application_name : "gpuhealth");
	return c; /* the caller's */
}

void pgconn_close(struct pgconn *c)
{
	if (c && c->db) {
		PQfinish(c->db);
		c->db = NULL;
	}
}

void pgconn_destroy(struct pgconn *c)
{
	if (!c)
		return;
	pgconn_close(c);
	free(c->conninfo);
	free(c);
}

PGconn *pgconn_db(struct pgconn *c)
{
	return c ? c->db : NULL;
}

bool pgconn_up(struct pgconn *c)
{
	return c && c->db && PQstatus(c->db) == CONNECTION_OK && !c->marked;
}

void pgconn_mark(struct pgconn *c)
{
	if (c)
		c->marked = true;
}

int pgconn_ensure(struct pgconn *c, unsigned flags, char *err, size_t errlen)
{
	if (pgconn_up(c))
		return 0;
	c->marked = false;
	if (c->db) {
		/* the same parameters again, on the handle we have */
		PQreset(c->db);
		if (PQstatus(c->db) != CONNECTION_OK) {
			pg_connect_error(c->conninfo, c->db, err, errlen);
			pgconn_close(c); /* the next try starts from pg_connect */
			return -EIO;
		}
	} else if (!(c->db = pg_connect(c->conninfo, c->app, err, errlen))) {
		return -EIO;
	}
	if ((flags & PGCONN_WRITER) && pg_session_read_only(c->db)) {
		/* a standby, or a primary fenced read-only: retried like a server that is away */
		snprintf(err, errlen,
		         "the database server at %s:%s (--db) is read-only (a standby, or "
		         "default_transaction_read_only on): list every host in --db and add "
		         "target_session_attrs=read-write",
		         PQhost(c->db), PQport(c->db));
		pgconn_close(c);
		return -EIO;
	}
	return 1;
}

/* SQLSTATE classes a retry cannot mend: the data itself is refused. */
static bool is_data_error(const char *state)
{
	return state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
}

int pgconn_result(struct pgconn *c, const PGresult *r, char *err, size_t errlen, char state[6])
{
	ExecStatusType st = PQresultStatus(r);
	state[0] = '\0';
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return 0;
	const char *m = r ? PQresultErrorMessage(r) : NULL;
	snprintf(err, errlen, "%s", m && *m ? m : c->db ? PQerrorMessage(c->db) : "no session");
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	snprintf(state, 6, "%s", code ? code : "");
	if (pg_sqlstate_reconnect(code)) /* e.g. the server is read-only now: another session */
		c->marked = true;
	return is_data_error(code) ? -EINVAL : -EIO;
}

int pgconn_exec(struct pgconn *c, const char *sql, int n, const char *const *params,
                PGresult **out, char *err, size_t errlen, char state[6])
{
	return pgconn_exec_bin(c, sql, n, params, NULL, NULL, out, err, errlen, state);
}

int pgconn_exec_bin(struct pgconn *c, const char *sql, int n, const char *const *params,
                    const int *lens, const int *formats, PGresult **out, char *err, size_t errlen,
                    char state[6])
{
	PGresult *r = PQexecParams(c->db, sql, n, NULL, params, lens, formats, 0);
	int rc = pgconn_result(c, r, err, errlen, state);
	if (out && !rc)
		*out = r; /* the caller's */
	else
		PQclear(r);
	return rc;
}

static int put(struct pgconn *c, const char *p, size_t n, char *err, size_t errlen)
{
	if (PQputCopyData(c->db, p, (int)n) == 1)
		return 0;
	snprintf(err, errlen, "COPY: %s", PQerrorMessage(c->db));
	return -EIO;
}

int pgconn_copy_in(struct pgconn *c, const char *sql, bool binary, const char *data, size_t len,
                   char *err, size_t errlen, char state[6])
{
	PGresult *r = PQexec(c->db, sql);
	int rc = 0;
	state[0] = '\0';
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = pgconn_result(c, r, err, errlen, state);
		PQclear(r);
		if (!rc)
			snprintf(err, errlen, "COPY did not start: %s", sql);
		return rc ? rc : -EIO;
	}
	PQclear(r);
	if (binary && (rc = put(c, pgcopy_header, PGCOPY_HEADER_LEN, err, errlen)))
		return rc;
	for (size_t off = 0; off < len;) {
		size_t n = len - off > COPY_CHUNK ? COPY_CHUNK : len - off;
		if ((rc = put(c, data + off, n, err, errlen)))
			return rc;
		off += n;
	}
	if (binary && (rc = put(c, pgcopy_trailer, sizeof(pgcopy_trailer), err, errlen)))
		return rc;
	if (PQputCopyEnd(c->db, NULL) != 1) {
		snprintf(err, errlen, "COPY end: %s", PQerrorMessage(c->db));
		return -EIO;
	}
	r = PQgetResult(c->db);
	rc = pgconn_result(c, r, err, errlen, state);
	PQclear(r);
	while ((r = PQgetResult(c->db)))
		PQclear(r);
	return rc;
}

void pgconn_abort(struct pgconn *c)
{
	if (!c->db)
		return;
	PGresult *r;
	while ((r = PQgetResult(c->db)))
		PQclear(r);
	if (pgconn_up(c))
		PQclear(PQexec(c->db, "ROLLBACK"));
	else
		pgconn_close(c);
}
