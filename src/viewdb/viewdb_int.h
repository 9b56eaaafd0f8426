/*
 * viewdb_int: private to src/viewdb (included by its files only): what viewdb's reader thread
 * (viewdb.c) hands to the queries that run on its connection. The thread copies the request
 * as the console last set it (struct viewdb_request) and runs the one query it asks for:
 * viewdb_query.c reads the fleet screens (the open alerts, the overview's aggregates, one
 * GPU's history and its events), viewdb_table.c a table reader's page of the fleet table and
 * one GPU of the detail. Each query fills the caller's buffers and returns 0, or -EIO/-ENOMEM
 * with what failed in err; the connection stays the caller's.
 */
#ifndef GPUHEALTH_VIEWDB_INT_H
#define GPUHEALTH_VIEWDB_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "fleet/fleet.h"
#include "viewdb/viewdb.h"

struct pg_conn;   /* libpq's PGconn */
struct pg_result; /* libpq's PGresult */

/* What the screen shows: the query the thread runs. */
enum viewdb_want { VDBW_NONE = 0, VDBW_ALERTS, VDBW_OVERVIEW, VDBW_HISTORY, VDBW_TABLE, VDBW_GPU };

/* The request: each viewdb_want_* fills one zeroed first (requests are compared as bytes). */
struct viewdb_request {
	enum viewdb_want what;
	enum viewdb_level level;
	char path[VDB_LEVELS - 1][HS_HOST_MAX];
	char filter[VIEWDB_FILTER_MAX];
	char key[HS_KEY_MAX];
	enum viewdb_window window;
	double end;
	size_t points;
	/* the fleet table */
	int sort;
	bool desc, group;
	size_t offset, limit;
};

/* ---- viewdb.c */
/* The alerts' order (qsort): worst, then newest first, then by GPU key. */
int viewdb_alert_cmp(const void *pa, const void *pb);

/* ---- viewdb_query.c: the fleet screens */
/* A column as a number; NAN when it is NULL. */
double viewdb_query_getd(const struct pg_result *r, int row, int col);
/* "fail", "warn", else pass. */
enum health_status viewdb_query_status(const char *s);
/* 0 when r holds rows (rows >= 0: exactly that many); else -EIO with "what: the connection's
 * error" in err, on one line. */
int viewdb_query_check(struct pg_conn *c, const struct pg_result *r, int rows, const char *what,
                       char *err, size_t errlen);
/* Open alerts, worst and newest first, at most max into out; *n: how many. */
int viewdb_query_alerts(struct pg_conn *c, struct viewdb_alert *out, size_t max, size_t *n,
                        char *err, size_t errlen);
/* The overview's groups at q's level under its path, aggregated in SQL, at most max into out;
 * kept: the database keeps each GPU's and host's newest state (schema 14). */
int viewdb_query_overview(struct pg_conn *c, bool kept, const struct viewdb_request *q,
                          struct viewdb_node *out, size_t max, size_t *n, char *err, size_t errlen);
/* q's GPU's history over q's window, bucketed to q's points, and its events, into h. */
int viewdb_query_history(struct pg_conn *c, const struct viewdb_request *q,
                         struct viewdb_history *h, char *err, size_t errlen);

/* ---- viewdb_table.c: a table reader's (viewdb_create_table) */
/* q's page of the fleet table into out (VIEWDB_TABLE_MAX entries) and ti; the GPUs' rows are
 * read into tf (the reader's own fleet, whose rings grow while a GPU stays on screen);
 * interval_s: the least sampling interval a GPU is judged stale by. */
int viewdb_table_page(struct pg_conn *c, struct fleet *tf, const struct viewdb_request *q,
                      double interval_s, struct fleet_gpu *out, struct viewdb_table *ti, char *err,
                      size_t errlen);
/* q's one GPU (q->key) into out, with its newest alerts; *found: whether the database knows
 * it. */
int viewdb_table_gpu(struct pg_conn *c, struct fleet *tf, const struct viewdb_request *q,
                     double interval_s, struct fleet_gpu *out, bool *found, char *err,
                     size_t errlen);

#endif
