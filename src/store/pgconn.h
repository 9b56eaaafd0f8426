/*
 * pgconn: one PostgreSQL session of a service that writes (the sink's writers, the scorer), and
 * the one way it is kept (issue #22: the sink and the scorer each had their own
 * connect-check-reconnect).
 *
 *   pgconn_ensure()   connected and usable? 0. Else a new session: the lost one is re-opened
 *                     with PQreset (same parameters; a multi-host --db with
 *                     target_session_attrs finds the primary again), a first one with
 *                     pg_connect (store/pg.h: its messages name the target, never a password).
 *                     A writer's session that is read-only (a standby, a fenced primary) is
 *                     refused like a server that is away, with the fix in the message. Returns
 *                     1 for a new session: the caller sets it up again (temp tables, what it
 *                     knew of the database).
 *   pgconn_result()   a statement's outcome by SQLSTATE: 0, -EINVAL for data the server refuses
 *                     (classes 22, 23: a retry cannot mend it), -EIO for the rest; a SQLSTATE a
 *                     new session may get past (pg_sqlstate_reconnect) marks the session to be
 *                     replaced at the next ensure.
 *   pgconn_abort()    after a failure: results drained, then ROLLBACK, or the session closed
 *                     when it is gone or marked.
 *
 * One thread uses a pgconn at a time (its owner's); nothing here locks.
 */
#ifndef GPUHEALTH_PGCONN_H
#define GPUHEALTH_PGCONN_H

#include <stdbool.h>
#include <stddef.h>

/* libpq's handles, by name only: the modules above store/ never call libpq themselves (only
 * store/ includes libpq-fe.h, which declares the same two types) */
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

struct pgconn;

/* conninfo (NULL or "": the PG* variables) and application_name are copied. NULL: no memory. */
struct pgconn *pgconn_create(const char *conninfo, const char *application_name);
void pgconn_destroy(struct pgconn *c);

#define PGCONN_WRITER 1u /* refuse a read-only session */
/* Returns 0 (the session was up), 1 (a new session) or -EIO with the reason in err. */
int pgconn_ensure(struct pgconn *c, unsigned flags, char *err, size_t errlen);
/* The session, or NULL when there is none. */
PGconn *pgconn_db(struct pgconn *c);
/* Connected, and not marked to be replaced. */
bool pgconn_up(struct pgconn *c);
/* The next ensure opens a new session (a SQLSTATE asked for one). */
void pgconn_mark(struct pgconn *c);
void pgconn_close(struct pgconn *c);

/* r's outcome (r is not cleared): 0, -EINVAL (refused data) or -EIO, with the message in err
 * and the SQLSTATE in state ("" when none). */
int pgconn_result(struct pgconn *c, const PGresult *r, char *err, size_t errlen, char state[6]);
/* PQexecParams (text parameters) and its outcome; on success *out gets the result when out is
 * given (the caller clears it). */
int pgconn_exec(struct pgconn *c, const char *sql, int n, const char *const *params,
                PGresult **out, char *err, size_t errlen, char state[6]);
/* The same with binary parameters: lens[i] and formats[i] (1: binary) as PQexecParams takes
 * them (either NULL: all text). */
int pgconn_exec_bin(struct pgconn *c, const char *sql, int n, const char *const *params,
                    const int *lens, const int *formats, PGresult **out, char *err, size_t errlen,
                    char state[6]);
/* COPY ... FROM STDIN of len bytes of data: text, or binary rows (the header and trailer are
 * added here, store/pgcopy.h). Returns as pgconn_result. */
int pgconn_copy_in(struct pgconn *c, const char *sql, bool binary, const char *data, size_t len,
                   char *err, size_t errlen, char state[6]);
/* After a failed statement: results drained, the transaction rolled back, or the session
 * closed when it is gone or marked. */
void pgconn_abort(struct pgconn *c);

#endif
