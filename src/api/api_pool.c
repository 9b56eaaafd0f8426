#include "api/api_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "store/pg.h"
#include "store/pgconn.h"

struct api_pconn {
	struct pgconn *pc; /* owned; no session until first used, or after a failed reconnect */
	bool busy;
};

struct api_pool {
	unsigned size;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct api_pconn *conns; /* size entries */
	atomic_uint_least64_t n_db_errors;
};

int api_pool_create(struct api_pool **out, unsigned size, const char *conninfo)
{
	struct api_pool *pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
	pool->size = size;
	pool->conns = calloc(size, sizeof(*pool->conns));
	if (!pool->conns) {
		api_pool_destroy(pool);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < size; i++)
		if (!(pool->conns[i].pc = pgconn_create(conninfo, "gpuhealth-api"))) {
			api_pool_destroy(pool);
			return -ENOMEM;
		}
	*out = pool; /* caller owns: api_pool_destroy */
	return 0;
}

unsigned api_pool_size(const struct api_pool *pool)
{
	return pool->size;
}

void api_pool_put(struct api_pool *pool, struct api_pconn *p)
{
	pthread_mutex_lock(&pool->mu);
	p->busy = false;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
}

struct api_pconn *api_pool_get(struct api_pool *pool)
{
	pthread_mutex_lock(&pool->mu);
	struct api_pconn *p = NULL;
	for (;;) {
		for (unsigned i = 0; i < pool->size; i++)
			if (!pool->conns[i].busy) {
				p = &pool->conns[i];
				break;
			}
		if (p)
			break;
		pthread_cond_wait(&pool->cv, &pool->mu);
	}
	p->busy = true;
	pthread_mutex_unlock(&pool->mu);
	return p;
}

/* Makes sure p has a usable session (store/pgconn.h: a lost one re-opened with PQreset).
 * Returns 0 or -EIO with a message. */
static int pconn_ready(struct api_pconn *p, char *err, size_t errlen)
{
	int rc = pgconn_ensure(p->pc, 0, err, errlen);
	if (rc <= 0)
		return rc;
	/* a new session's constant settings: UTC timestamps in ISO form, read-only, bounded
	 * queries */
	if (pg_exec(pgconn_db(p->pc),
	            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; "
	            "SET default_transaction_read_only = on; SET statement_timeout = '15s'",
	            err, errlen) != 0) {
		pgconn_close(p->pc);
		return -EIO;
	}
	return 0;
}

enum api_dbfail api_pool_classify(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return API_DB_UNREACHABLE; /* libpq's own error: the connection */
	/* connection exception, shutdown, too many connections */
	if (strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "57P0", 4) == 0 ||
	    strcmp(sqlstate, "53300") == 0)
		return API_DB_UNREACHABLE;
	if (strncmp(sqlstate, "22", 2) == 0)
		return API_DB_CLIENT;
	return API_DB_SERVER;
}

/* Runs a parameterized query; one reconnect and retry when the connection was lost.
 * Returns the result (caller PQclear) or NULL with why in *why and SQLSTATE in state (""
 * when there is none). The database's own text goes to the log only: it names hosts, roles,
 * tables and values, none of which a client may see. */
PGresult *api_pool_query(struct api_pool *pool, struct api_pconn *p, const char *sql, int n,
                         const char *const *params, enum api_dbfail *why, char state[6])
{
	char err[512] = "";
	*why = API_DB_UNREACHABLE;
	state[0] = '\0';
	for (int attempt = 0; attempt < 2; attempt++) {
		if (pconn_ready(p, err, sizeof(err)) != 0) {
			*why = API_DB_UNREACHABLE;
			break;
		}
		PGconn *conn = pgconn_db(p->pc);
		PGresult *r = pg_exec_params(conn, sql, n, params);
		if (pg_tuples_ok(r))
			return r; /* caller owns */
		snprintf(err, sizeof(err), "%s", r ? pg_result_error(r) : pg_conn_error(conn));
		const char *ss = r ? pg_sqlstate(r) : NULL;
		snprintf(state, 6, "%s", ss ? ss : "");
		*why = api_pool_classify(ss);
		size_t l = strlen(err);
		while (l && (err[l - 1] == '\n' || err[l - 1] == ' '))
			err[--l] = '\0';
		pg_clear(r);
		if (!pg_connection_lost(conn)) {
			/* 53300 on a live session: the server is there */
			if (*why == API_DB_UNREACHABLE && ss)
				*why = API_DB_SERVER;
			break; /* a SQL error: retrying changes nothing */
		}
		*why = API_DB_UNREACHABLE; /* the next try re-opens the session (PQreset) */
	}
	for (char *c = err; *c; c++) /* libpq's messages run over lines: keep one */
		if (*c == '\n' || *c == '\t')
			*c = ' ';
	if (*why != API_DB_CLIENT)
		atomic_fetch_add(&pool->n_db_errors, 1);
	log_warn("api: database%s%s: %s", state[0] ? " SQLSTATE " : "", state, err);
	return NULL;
}

unsigned api_pool_open(struct api_pool *pool)
{
	unsigned n = 0;
	if (!pool)
		return 0;
	pthread_mutex_lock(&pool->mu);
	for (unsigned i = 0; i < pool->size; i++)
		if (pgconn_up(pool->conns[i].pc))
			n++;
	pthread_mutex_unlock(&pool->mu);
	return n;
}

uint64_t api_pool_errors(struct api_pool *pool)
{
	return pool ? atomic_load(&pool->n_db_errors) : 0;
}

void api_pool_destroy(struct api_pool *pool)
{
	if (!pool)
		return;
	for (unsigned i = 0; pool->conns && i < pool->size; i++)
		pgconn_destroy(pool->conns[i].pc);
	free(pool->conns);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->cv);
	free(pool);
}
