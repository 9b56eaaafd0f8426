#include "store/pg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void pg_redact(const char *conninfo, char *out, size_t outlen)
{
	if (!conninfo || !*conninfo) {
		snprintf(out, outlen, "(PG* environment)");
		return;
	}
	size_t o = 0;
	const char *p = conninfo;
	while (*p && o + 1 < outlen) {
		/* password=... in key/value form, or :pass@ in a URI */
		if (strncmp(p, "password=", 9) == 0) {
			int n = snprintf(out + o, outlen - o, "password=***");
			o += n > 0 ? (size_t)n : 0;
			p += 9;
			while (*p && *p != ' ')
				p++;
			continue;
		}
		if (*p == ':' && strstr(conninfo, "://") && p > strstr(conninfo, "://") + 2) {
			const char *at = strchr(p, '@');
			const char *slash = strchr(p, '/');
			if (at && (!slash || at < slash)) {
				int n = snprintf(out + o, outlen - o, ":***");
				o += n > 0 ? (size_t)n : 0;
				p = at;
				continue;
			}
		}
		out[o++] = *p++;
	}
	out[o < outlen ? o : outlen - 1] = '\0';
}

PGconn *pg_connect(const char *conninfo, const char *application_name, char *err, size_t errlen)
{
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
		char safe[256];
		pg_redact(conninfo, safe, sizeof(safe));
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
		size_t l = strlen(msg);
		while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
			msg[--l] = '\0';
		snprintf(err, errlen, "cannot connect to PostgreSQL %s: %s (check --db / DATABASE_URL)", safe,
			 msg);
		PQfinish(c);
		return NULL;
	}
	return c; /* caller owns */
}

int pg_exec(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *m = PQresultErrorMessage(r);
		if (!m || !*m)
			m = PQerrorMessage(conn);
		snprintf(err, errlen, "%s", m);
		size_t l = strlen(err);
		while (l && err[l - 1] == '\n')
			err[--l] = '\0';
		rc = -EIO;
	}
	PQclear(r);
	return rc;
}

bool pg_connection_lost(PGconn *conn) { return !conn || PQstatus(conn) != CONNECTION_OK; }
