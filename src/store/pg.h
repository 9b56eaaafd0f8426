/* pg: libpq helpers shared by every part that talks to PostgreSQL. */
#ifndef GPUHEALTH_PG_H
#define GPUHEALTH_PG_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

/*
 * Connects with a conninfo string or postgresql:// URI; NULL or "" means libpq's own PG*
 * environment variables. Returns the connection (caller owns, PQfinish) or NULL with a message
 * in err that names the target and what to check.
 */
PGconn *pg_connect(const char *conninfo, const char *application_name, char *err, size_t errlen);

/* Runs a statement without parameters that returns no rows or rows we ignore. Returns 0, or
 * -EIO with the server's message in err. */
int pg_exec(PGconn *conn, const char *sql, char *err, size_t errlen);

/* True when the error means the connection is gone (reconnect), false for a SQL error. */
bool pg_connection_lost(PGconn *conn);

/* A conninfo with any password replaced by "***", for messages. */
void pg_redact(const char *conninfo, char *out, size_t outlen);

#endif
