/* pg: libpq helpers shared by every part that talks to PostgreSQL. */
#ifndef GPUHEALTH_PG_H
#define GPUHEALTH_PG_H

#include <stdbool.h>
#include <stddef.h>

/* libpq's handles, by name only: the modules above store/ never call libpq themselves (only
 * store/ includes libpq-fe.h, which declares the same two types) */
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

/*
 * Connects with a conninfo string or postgresql:// URI; NULL or "" means libpq's own PG*
 * environment variables. Returns the connection (caller owns, PQfinish) or NULL with a message
 * in err that names the target (pg_redact) and what to check; a string libpq cannot parse is
 * not tried and the message says how to write one. No password is in any message.
 */
PGconn *pg_connect(const char *conninfo, const char *application_name, char *err, size_t errlen);
/* Closes a connection from pg_connect (PQfinish); NULL is a no-op. */
void pg_close(PGconn *c);
/* The message of a connection to conninfo that failed (c: its handle, not CONNECTION_OK): the
 * target and libpq's text with any password taken out, and where to fix it. */
void pg_connect_error(const char *conninfo, PGconn *c, char *err, size_t errlen);

/* Runs a statement without parameters that returns no rows or rows we ignore. Returns 0, or
 * -EIO with the server's message in err. */
int pg_exec(PGconn *conn, const char *sql, char *err, size_t errlen);

/* Runs a statement (text parameters, n may be 0) whose rows are wanted in *out (the caller's:
 * pg_clear). Returns 0, or -EIO with the server's message in err (nothing in *out). */
int pg_query(PGconn *conn, const char *sql, int n, const char *const *params, PGresult **out,
             char *err, size_t errlen);
/* A result's rows; 0 for NULL. */
int pg_rows(const PGresult *r);
/* A cell's text: "" for SQL NULL (row and col must exist). */
const char *pg_text(const PGresult *r, int row, int col);
/* Whether a cell is SQL NULL. */
bool pg_null(const PGresult *r, int row, int col);
/* A cell as a number (strtod / strtoll of its text: 0 for NULL or text that is not one;
 * "Infinity" and "-Infinity" are the doubles). */
double pg_double(const PGresult *r, int row, int col);
long long pg_int(const PGresult *r, int row, int col);
/* Frees a result; NULL is a no-op. */
void pg_clear(PGresult *r);
/* Whether the session is connected (CONNECTION_OK); false for NULL. */
bool pg_connected(PGconn *conn);

/* libpq's calls as the modules above store/ make them (store/ is the only place that calls
 * libpq: tests/cli/test_layout.sh): */
/* PQexecParams with text parameters and text results; check pg_tuples_ok or pg_command_ok,
 * then pg_clear. */
PGresult *pg_exec_params(PGconn *conn, const char *sql, int n, const char *const *params);
/* PQexec: sql may hold several statements; the last one's result. */
PGresult *pg_exec_simple(PGconn *conn, const char *sql);
bool pg_tuples_ok(const PGresult *r);  /* PGRES_TUPLES_OK */
bool pg_command_ok(const PGresult *r); /* PGRES_COMMAND_OK */
/* The session's last error text (PQerrorMessage), a result's (PQresultErrorMessage). */
const char *pg_conn_error(PGconn *conn);
const char *pg_result_error(const PGresult *r);
/* A failed result's SQLSTATE, NULL when it has none (NULL r too). */
const char *pg_sqlstate(const PGresult *r);
/* A result's columns: how many, a name, a type OID. */
int pg_fields(const PGresult *r);
const char *pg_fname(const PGresult *r, int col);
unsigned pg_ftype(const PGresult *r, int col);
/* The server's answer to a connection attempt with conninfo (PQping): true when it accepts. */
bool pg_ping_ok(const char *conninfo);
/* A server parameter reported at connection (server_version, ...); NULL when unknown. */
const char *pg_parameter(PGconn *conn, const char *name);
/* No transaction open on the session (PQTRANS_IDLE). */
bool pg_idle(PGconn *conn);
/* PQreset: the same session parameters, a new connection. */
void pg_reset(PGconn *conn);

/* True when the error means the connection is gone (reconnect), false for a SQL error. */
bool pg_connection_lost(PGconn *conn);

/*
 * True when a statement failed with a SQLSTATE that this session cannot get past but a new
 * connection may: the server is read-only (25006 read_only_sql_transaction: a standby, a
 * demoted or fenced primary), shutting down or not yet accepting (57P01, 57P02, 57P03), or the
 * connection broke (class 08). A writer then closes the connection and connects again, so a
 * multi-host --db with target_session_attrs=read-write finds the primary; it never means the
 * data is bad. NULL or "" is false.
 */
bool pg_sqlstate_reconnect(const char *sqlstate);

/* True when conn is a session that cannot write: a hot standby, or a server (or role, or
 * database) with default_transaction_read_only on, from what the server reports at connection
 * (PostgreSQL 14 and later; false for older servers, which report neither). */
bool pg_session_read_only(PGconn *conn);

/*
 * The one way a connection string is shown (logs, errors, the console): conninfo (key/value or
 * URI, as --db takes it) parsed by libpq's PQconninfoParse and written back as key=value text,
 * where it is first (service, host, hostaddr, port, dbname, user), then the rest, values
 * re-quoted, password and sslpassword as "***" and no byte of either in any form. NULL or ""
 * shows the PG* variables in use (PGPASSWORD as "***"); a word with no '=' is a database name;
 * a string libpq rejects shows as "(unparseable connection string: REASON)", where libpq's
 * quotes of the input are hidden when the string may hold a password (a misspelt key is named
 * otherwise). Always terminated within outlen.
 */
void pg_redact(const char *conninfo, char *out, size_t outlen);

/* A libpq message (PQerrorMessage after a connection attempt with conninfo) made safe to show:
 * any secret of conninfo or PGPASSWORD replaced by "***", libpq's quotes of an unparseable
 * conninfo hidden, trailing newlines dropped and inner ones joined with "; ". */
void pg_redact_message(const char *conninfo, const char *msg, char *out, size_t outlen);

/* True when conninfo itself carries a password or sslpassword (for the warning about a
 * password on the command line); an unparseable string that looks like it does counts. */
bool pg_conninfo_has_password(const char *conninfo);

/* v[0..n) as a PostgreSQL text[] literal in buf (each element quoted, " and \ escaped), for a
 * query parameter ($1::text[]). Returns 0, or -ENOSPC when it does not fit in len bytes. */
int pg_text_array(const char *const *v, size_t n, char *buf, size_t len);

#endif
