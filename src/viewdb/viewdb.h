/*
 * viewdb: what the console's fleet screens read from a fleet database (issue #25): open
 * alerts, the fleet overview (cluster -> datacenter -> rack -> host aggregates), and one GPU's
 * history over a window. No ncurses: the console says what its screen shows
 * (viewdb_want_*), a thread of this module runs only that screen's query on its own read-only
 * connection (once per refresh, and at once when the request changes) and publishes the
 * result; the console copies it under the lock (viewdb_copy_*). Every query is bounded by
 * what a screen can show: aggregates are computed in SQL, history is bucketed in SQL to the
 * chart's width, lists have a LIMIT.
 *
 * Without a database the same structures come from the live fleet (viewdb_live_*: pure
 * functions, no I/O).
 *
 * Thread safety: every viewdb_* function on a struct viewdb takes its mutex; the live
 * functions touch only their arguments.
 *
 * Its parts: viewdb.c (the thread, the requests and the copies, the names and orders),
 * viewdb_live.c (viewdb_live_*), and private to src/viewdb, viewdb_int.h: the queries the thread
 * runs, in viewdb_query.c (alerts, overview, history) and viewdb_table.c (a table reader's page
 * and GPU).
 */
#ifndef GPUHEALTH_VIEWDB_H
#define GPUHEALTH_VIEWDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/fleet.h"

#define VIEWDB_MAX_ALERTS 256
#define VIEWDB_MAX_NODES  512
#define VIEWDB_STRIP      240 /* health letters kept per overview line */
#define VIEWDB_MAX_POINTS 512
#define VIEWDB_MAX_MARKS  64
#define VIEWDB_NSERIES    3 /* temperature, power, utilization (fleet.h's order) */

struct viewdb_alert {
	char key[HS_KEY_MAX];
	char host[HS_HOST_MAX];
	int index;         /* -1 unknown */
	char workload[64]; /* "" unknown */
	char kind[48];
	enum health_status severity;
	char text[160];
	double since; /* epoch seconds of the raise */
};

/* The overview's levels; a line of one level is a group of the next one down. */
enum viewdb_level { VDB_CLUSTER = 0, VDB_DATACENTER, VDB_RACK, VDB_HOST, VDB_LEVELS };
const char *viewdb_level_name(enum viewdb_level l); /* "cluster", ... */

struct viewdb_node {
	char name[HS_HOST_MAX]; /* "-" when the level is unknown */
	size_t gpus, pass, warn, fail;
	double hottest_c;               /* NAN unknown */
	char hottest[HS_HOST_MAX + 16]; /* "host/index" of the hottest GPU */
	double p_fail_max;              /* NAN unknown */
	size_t strip_n; /* letters in strip (the group's GPUs, at most VIEWDB_STRIP) */
	char strip[VIEWDB_STRIP + 1]; /* one letter per GPU by host, index: P pass, W warn, F fail,
	                                 ? unknown */
};

/* the overview's order (the fleet table's sort keys cycle through these) */
enum viewdb_sort { VDBS_NAME = 0, VDBS_GPUS, VDBS_HEALTH, VDBS_TEMP, VDBS_PFAIL, VDBS_COUNT };
const char *viewdb_sort_name(enum viewdb_sort s);
/* Sorts nodes in place (descending: largest / worst first). */
void viewdb_sort_nodes(struct viewdb_node *n, size_t count, enum viewdb_sort s, bool desc);

/* The history windows of the GPU detail: keys 1..5. */
enum viewdb_window { VDB_W10M = 0, VDB_W1H, VDB_W6H, VDB_W24H, VDB_W7D, VDB_WINDOWS };
double viewdb_window_s(enum viewdb_window w);
const char *viewdb_window_name(enum viewdb_window w); /* "10 min", "1 h", ... */
/* The table a window reads: "gpu_metrics" (raw, up to 6 h) or "gpu_metrics_1min". */
const char *viewdb_window_source(enum viewdb_window w);

struct viewdb_mark {
	double t;
	char kind; /* 'X' XID, 'S' health status change, 'A' alert raised */
	char text[48];
};

struct viewdb_history {
	char key[HS_KEY_MAX];
	enum viewdb_window window;
	double t0, t1;      /* the window: [t0, t1) epoch seconds */
	const char *source; /* viewdb_window_source() */
	size_t n;           /* buckets, oldest first; each bucket_s wide from t0 */
	double bucket_s;
	float min[VIEWDB_NSERIES][VIEWDB_MAX_POINTS]; /* NAN: no sample in the bucket */
	float mean[VIEWDB_NSERIES][VIEWDB_MAX_POINTS];
	float max[VIEWDB_NSERIES][VIEWDB_MAX_POINTS];
	size_t nmarks;
	struct viewdb_mark marks[VIEWDB_MAX_MARKS];
};

/* ---- the fleet table (issue #25): a page of the GPUs, paged, sorted and filtered in SQL over
 * fleet_gpu_now (schema 15), for a read-only viewer of a fleet database */
#define VIEWDB_TABLE_MAX 600 /* rows of one page (the screen's, one above and one below) */
/* the longest filter: room for "host=" and a whole host name (Enter on a host) */
#define VIEWDB_FILTER_MAX (HS_HOST_MAX + 8)
struct viewdb_table {
	/* the order and filter the page answers (the console's view.h sort key) */
	int sort;
	bool desc, group;
	char filter[VIEWDB_FILTER_MAX];
	size_t offset;                  /* the position of the page's first row in that order */
	size_t n;                       /* rows in the page */
	size_t matched;                 /* GPUs that match the filter */
	size_t total, pass, warn, fail; /* the whole fleet's GPUs and health */
	size_t open_alerts;             /* the database's open (not cleared) alerts */
	/* per row: its host's GPUs that match the filter, and those warning or failing (the
	 * host headings) */
	size_t host_gpus[VIEWDB_TABLE_MAX], host_bad[VIEWDB_TABLE_MAX];
};

/* What the last query of a kind found. */
struct viewdb_status {
	bool connected;
	bool have;       /* a result of the request as it is now */
	double query_ms; /* the last query's time */
	double max_query_ms;
	uint64_t queries;      /* results so far (every kind) */
	double total_query_ms; /* their time together */
	double at;             /* epoch seconds of the last result */
	char error[256];       /* "" when the last query worked */
};

struct viewdb;

/* Starts the thread; conninfo is copied (the connection is opened by the thread, read-only).
 * period_s: how often the shown screen's query runs again. Returns 0, -ENOMEM or -errno. */
int viewdb_create(struct viewdb **out, const char *conninfo, double period_s);
/* The same for a database whose conninfo is known only later (the console's private
 * PostgreSQL, which the pipeline starts): the thread calls get(arg, buf, len) before it
 * connects until it returns 0 with the conninfo in buf; arg must outlive the viewdb. */
typedef int (*viewdb_conninfo_fn)(void *arg, char *buf, size_t len);
int viewdb_create_deferred(struct viewdb **out, viewdb_conninfo_fn get, void *arg, double period_s);
/* A reader of the fleet table and the GPU detail (viewdb_want_table, viewdb_want_gpu) on its
 * own connection: a GPU's ring of samples (the sparklines) grows while it stays on screen;
 * interval_s: the fleet's sample period (a GPU is stale after 3 of them). */
int viewdb_create_table(struct viewdb **out, const char *conninfo, double period_s,
                        double interval_s);
void viewdb_destroy(struct viewdb *v);

/* What the screen shows; the thread queries only that. */
void viewdb_want_none(struct viewdb *v);
void viewdb_want_alerts(struct viewdb *v);
/* path: the names chosen above level (path[0] the cluster, ...), filter: the fleet filter */
void viewdb_want_overview(struct viewdb *v, enum viewdb_level level, const char *const *path,
                          const char *filter);
/* end: the window's end (0: now, moving), points: the chart's width in cells */
void viewdb_want_history(struct viewdb *v, const char *key, enum viewdb_window w, double end,
                         size_t points);

/* A table reader's page: rows [offset, offset + limit) of the GPUs that match filter, sorted by
 * sort (view.h's enum view_sort_key; descending when desc; grouped by host first when group),
 * ties by host, index, key; limit at most VIEWDB_TABLE_MAX. */
void viewdb_want_table(struct viewdb *v, int sort, bool desc, bool group, const char *filter,
                       size_t offset, size_t limit);
/* A table reader's one GPU: the detail's data, with its newest 5 alerts (open or cleared). A
 * table reader's GPUs are stale when their newest sample is older than 3 of their own
 * sampling intervals (the median gap of their newest samples; at least the interval_s given). */
void viewdb_want_gpu(struct viewdb *v, const char *key);

/* Copies of the last results (for the request as it is now: *st says whether there is one). */
size_t viewdb_copy_alerts(struct viewdb *v, struct viewdb_alert *out, size_t max,
                          struct viewdb_status *st);
size_t viewdb_copy_overview(struct viewdb *v, struct viewdb_node *out, size_t max,
                            struct viewdb_status *st);
void viewdb_copy_history(struct viewdb *v, struct viewdb_history *out, struct viewdb_status *st);
/* The last page (whatever was asked: info says which order and rows it holds); returns the
 * rows copied (at most max). */
size_t viewdb_copy_table(struct viewdb *v, struct fleet_gpu *out, size_t max,
                         struct viewdb_table *info, struct viewdb_status *st);
/* The last GPU read by viewdb_want_gpu when it is key: true with its copy in out. */
bool viewdb_copy_gpu(struct viewdb *v, const char *key, struct fleet_gpu *out,
                     struct viewdb_status *st);
/* Whether the request as it is now has no answer yet (neither a result nor an error). */
bool viewdb_pending(struct viewdb *v);
/* The reader's figures (queries, their time) whatever the screen: for GPUHEALTH_UI_STATS. */
void viewdb_copy_status(struct viewdb *v, struct viewdb_status *st);

/* ---- the same from the live fleet (no database): pure functions */
/* Open (not cleared) alerts of the GPUs, worst and newest first. Returns how many. */
size_t viewdb_live_alerts(const struct fleet_gpu *gpus, size_t n, struct viewdb_alert *out,
                          size_t max);
/* The live fleet knows hosts only: every cluster, datacenter and rack is "-". */
size_t viewdb_live_overview(const struct fleet_gpu *gpus, size_t n, enum viewdb_level level,
                            const char *const *path, const char *filter, struct viewdb_node *out,
                            size_t max);
/* The health letter of a status: 'P', 'W', 'F'; '?' unknown. */
char viewdb_health_letter(bool have, enum health_status s);

#endif
