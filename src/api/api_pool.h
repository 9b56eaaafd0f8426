/*
 * api_pool: the API's PostgreSQL connections, one per HTTP worker thread. A request borrows one
 * (api_pool_get waits while every one is busy) and gives it back (api_pool_put); a connection
 * is opened when it is first used and again after a loss, as a read-only session
 * (default_transaction_read_only) in UTC with ISO dates and a 15 s statement timeout.
 * api_pool_query runs one parameterized query on a borrowed connection and says why one failed
 * (api_pool_classify), which decides what a client is told; the database's own text goes to
 * the log only.
 *
 * Thread safety: every api_pool_* function may be called from any thread; a borrowed
 * connection is used by its borrower alone.
 */
#ifndef GPUHEALTH_API_POOL_H
#define GPUHEALTH_API_POOL_H

#include <stdint.h>

struct pg_result; /* libpq's PGresult */

struct api_pool;
struct api_pconn; /* one pooled connection, borrowed from the pool */

/* Why a query failed, which decides the status a client gets. */
enum api_dbfail {
	API_DB_UNREACHABLE, /* no connection, or it broke (08xxx, 57P0x, 53300): 503 */
	API_DB_CLIENT,      /* the request's values (SQLSTATE class 22, data exception): 400 */
	API_DB_SERVER,      /* anything else (a timeout, a privilege, a bug): 500 */
};

/* A pool of size connections (none opened yet) to conninfo (libpq conninfo or URI; "": the PG*
 * environment), which is copied. Returns 0 or -ENOMEM. */
int api_pool_create(struct api_pool **out, unsigned size, const char *conninfo);
/* Closes every connection; none may be borrowed. NULL: nothing. */
void api_pool_destroy(struct api_pool *pool);
/* The number of connections (the HTTP worker threads). */
unsigned api_pool_size(const struct api_pool *pool);

/* Borrows a connection, waiting until one is free; give it back with api_pool_put. */
struct api_pconn *api_pool_get(struct api_pool *pool);
void api_pool_put(struct api_pool *pool, struct api_pconn *p);

/* Runs a parameterized query on p (borrowed); one reconnect and retry when the connection was
 * lost. Returns the result (caller PQclear) or NULL with why in *why and SQLSTATE in state (""
 * when there is none), logged and, unless the request's values caused it, counted. */
struct pg_result *api_pool_query(struct api_pool *pool, struct api_pconn *p, const char *sql, int n,
                                 const char *const *params, enum api_dbfail *why, char state[6]);
/* Why a query failed by its SQLSTATE (NULL: libpq's own error, i.e. the connection). */
enum api_dbfail api_pool_classify(const char *sqlstate);

/* Open connections now (NULL: 0). */
unsigned api_pool_open(struct api_pool *pool);
/* Failed connections and queries so far (not those a request's values caused; NULL: 0). */
uint64_t api_pool_errors(struct api_pool *pool);

#endif
