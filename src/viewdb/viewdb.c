#include "viewdb/viewdb.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timeutil.h"
#include "core/waiter.h"
#include "fleet/fleet.h"
#include "store/pg.h"
#include "store/pgconn.h"
#include "viewdb/viewdb_int.h"

struct viewdb {
	struct waiter wt;    /* the reader thread; its lock guards what says "under lock" */
	char conninfo[4096]; /* "" until get() gives it (the thread's only) */
	viewdb_conninfo_fn get;
	void *get_arg;
	double period_s;
	struct viewdb_request req; /* under lock */
	uint64_t req_gen;          /* bumped by each change of req */
	uint64_t done_gen;         /* the req_gen of the last query done (or failed) */
	/* results, under lock; *_gen: the req_gen they answer */
	struct viewdb_alert *alerts;
	size_t nalerts;
	uint64_t alerts_gen;
	struct viewdb_node *nodes;
	size_t nnodes;
	uint64_t nodes_gen;
	struct viewdb_history *hist;
	uint64_t hist_gen;
	struct viewdb_status st;
	/* a table reader (viewdb_create_table): the page and the detail's GPU */
	bool table;
	double interval_s;
	struct fleet_gpu *page;
	struct viewdb_table *tinfo;
	uint64_t table_gen;
	struct fleet_gpu *gpu;
	bool gpu_found;
	uint64_t gpu_gen;
};

/* ------------------------------------------------------------------ names */

const char *viewdb_level_name(enum viewdb_level l)
{
	static const char *n[] = {"cluster", "datacenter", "rack", "host"};
	return (unsigned)l < VDB_LEVELS ? n[l] : "?";
}

const char *viewdb_sort_name(enum viewdb_sort s)
{
	static const char *n[] = {"name", "gpus", "health", "temp", "p_fail"};
	return (unsigned)s < VDBS_COUNT ? n[s] : "?";
}

double viewdb_window_s(enum viewdb_window w)
{
	static const double s[] = {600, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600};
	return (unsigned)w < VDB_WINDOWS ? s[w] : 600;
}

const char *viewdb_window_name(enum viewdb_window w)
{
	static const char *n[] = {"10 min", "1 h", "6 h", "24 h", "7 d"};
	return (unsigned)w < VDB_WINDOWS ? n[w] : "?";
}

const char *viewdb_window_source(enum viewdb_window w)
{
	return w <= VDB_W6H ? "gpu_metrics" : "gpu_metrics_1min";
}

char viewdb_health_letter(bool have, enum health_status s)
{
	if (!have)
		return '?';
	return s == HEALTH_FAIL ? 'F' : s == HEALTH_WARN ? 'W' : 'P';
}

/* ------------------------------------------------------------------ sorting */

static enum viewdb_sort sort_key;
static bool sort_desc;

static int cmp_double(double a, double b)
{
	if (isnan(a) || isnan(b))
		return isnan(a) - isnan(b) > 0 ? -1 : isnan(a) == isnan(b) ? 0 : 1;
	return a < b ? -1 : a > b;
}

static int node_cmp(const void *pa, const void *pb)
{
	const struct viewdb_node *a = pa, *b = pb;
	int c = 0;
	switch (sort_key) {
	case VDBS_GPUS: c = (a->gpus > b->gpus) - (a->gpus < b->gpus); break;
	case VDBS_HEALTH:
		c = (a->fail > b->fail) - (a->fail < b->fail);
		if (!c)
			c = (a->warn > b->warn) - (a->warn < b->warn);
		break;
	case VDBS_TEMP: c = cmp_double(a->hottest_c, b->hottest_c); break;
	case VDBS_PFAIL: c = cmp_double(a->p_fail_max, b->p_fail_max); break;
	default: break;
	}
	if (sort_desc)
		c = -c;
	if (!c)
		c = strcmp(a->name, b->name) * (sort_key == VDBS_NAME && sort_desc ? -1 : 1);
	return c;
}

void viewdb_sort_nodes(struct viewdb_node *n, size_t count, enum viewdb_sort s, bool desc)
{
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; /* qsort has no context argument */
	pthread_mutex_lock(&m);
	sort_key = s;
	sort_desc = desc;
	qsort(n, count, sizeof(*n), node_cmp);
	pthread_mutex_unlock(&m);
}

/* The alerts' order: worst, newest first. */
int viewdb_alert_cmp(const void *pa, const void *pb)
{
	const struct viewdb_alert *a = pa, *b = pb;
	if (a->severity != b->severity)
		return a->severity > b->severity ? -1 : 1;
	if (a->since != b->since)
		return a->since > b->since ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* ------------------------------------------------------------------ thread */

static void *viewdb_main(void *arg)
{
	struct viewdb *v = arg;
	struct pgconn *pc = NULL; /* made once the conninfo is known */
	PGconn *c = NULL;
	bool kept = false; /* schema 14: fleet_gpu_now and fleet_host_now */
	char err[512];
	struct viewdb_alert *alerts = calloc(VIEWDB_MAX_ALERTS, sizeof(*alerts));
	struct viewdb_node *nodes = calloc(VIEWDB_MAX_NODES, sizeof(*nodes));
	struct viewdb_history *hist = calloc(1, sizeof(*hist));
	uint64_t done_gen = UINT64_MAX;
	double next = 0;
	/* a table reader's: the GPUs read so far (their rings), the page and the GPU being read */
	struct fleet *tf = NULL;
	struct fleet_gpu *page = v->table ? calloc(VIEWDB_TABLE_MAX, sizeof(*page)) : NULL;
	struct viewdb_table *tinfo = v->table ? calloc(1, sizeof(*tinfo)) : NULL;
	struct fleet_gpu *gpu = v->table ? calloc(1, sizeof(*gpu)) : NULL;
	bool found = false;
	bool ready = alerts && nodes && hist && (!v->table || (page && tinfo && gpu));
	pthread_mutex_lock(&v->wt.lock);
	while (!v->wt.stop && ready) {
		double now = time_mono();
		if (v->req_gen == done_gen && now < next) {
			waiter_sleep_locked(&v->wt, next - now < 0.2 ? next - now : 0.2);
			continue;
		}
		struct viewdb_request q = v->req;
		uint64_t gen = v->req_gen;
		pthread_mutex_unlock(&v->wt.lock);

		err[0] = '\0';
		int rc = 0;
		if (q.what != VDBW_NONE && !pgconn_up(pc)) {
			c = NULL;
			if (!pc && !v->conninfo[0] && v->get &&
			    v->get(v->get_arg, v->conninfo, sizeof(v->conninfo)) != 0) {
				v->conninfo[0] = '\0';
				snprintf(err, sizeof(err),
				         "the console's database is not running (yet)");
			} else if (!pc &&
			           !(pc = pgconn_create(v->conninfo, "gpuhealth-console-viewer"))) {
				snprintf(err, sizeof(err), "out of memory");
			}
			/* store/pgconn.h: a lost session is re-opened with PQreset */
			int up = pc ? pgconn_ensure(pc, 0, err, sizeof(err)) : -EIO;
			if (up == 1) {
				c = pgconn_db(pc);
				/* the viewer only reads: its session cannot write even by mistake */
				if (pg_exec(c, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
				            err, sizeof(err)) != 0 ||
				    pg_exec(c, "SET statement_timeout = '5s'", err, sizeof(err)) != 0) {
					pgconn_close(pc);
					c = NULL;
					up = -EIO;
				}
			}
			if (up < 0)
				rc = -EIO;
			if (up == 1) {
				PGresult *k = NULL;
				kept =
				    pg_query(c, "SELECT to_regclass('fleet_host_now') IS NOT NULL",
				             0, NULL, &k, err, sizeof(err)) == 0 &&
				    pg_rows(k) == 1 && pg_text(k, 0, 0)[0] == 't';
				pg_clear(k);
			}
		}
		c = pgconn_db(pc);
		double t0 = time_mono();
		size_t n = 0;
		if (rc == 0) {
			if (q.what == VDBW_ALERTS)
				rc = viewdb_query_alerts(c, alerts, VIEWDB_MAX_ALERTS, &n, err,
				                         sizeof(err));
			else if (q.what == VDBW_OVERVIEW)
				rc = viewdb_query_overview(c, kept, &q, nodes, VIEWDB_MAX_NODES, &n,
				                           err, sizeof(err));
			else if (q.what == VDBW_HISTORY)
				rc = viewdb_query_history(c, &q, hist, err, sizeof(err));
			else if (q.what == VDBW_TABLE || q.what == VDBW_GPU) {
				/* the GPUs read so far, at most 4 pages' worth: then anew */
				struct fleet_stats fs;
				if (tf) {
					fleet_stats(tf, &fs);
					if (fs.gpus + VIEWDB_TABLE_MAX > 4 * VIEWDB_TABLE_MAX) {
						fleet_destroy(tf);
						tf = NULL;
					}
				}
				struct fleet_opts fo = {.interval_s = v->interval_s,
				                        .max_gpus = 4 * VIEWDB_TABLE_MAX};
				if (!tf && (rc = fleet_create(&tf, &fo)) != 0)
					snprintf(err, sizeof(err), "out of memory");
				else if (q.what == VDBW_TABLE)
					rc = viewdb_table_page(c, tf, &q, v->interval_s, page,
					                       tinfo, err, sizeof(err));
				else
					rc = viewdb_table_gpu(c, tf, &q, v->interval_s, gpu, &found,
					                      err, sizeof(err));
			}
		}
		double ms = (time_mono() - t0) * 1000.0;

		pthread_mutex_lock(&v->wt.lock);
		done_gen = gen;
		v->done_gen = gen;
		next = time_mono() + v->period_s;
		v->st.connected = pg_connected(c);
		/* a longer error is cut to the status field (its start says what failed) */
		snprintf(v->st.error, sizeof(v->st.error), "%.*s", (int)sizeof(v->st.error) - 1,
		         rc ? err : "");
		if (q.what == VDBW_NONE || rc)
			continue;
		v->st.query_ms = ms;
		v->st.queries++;
		v->st.total_query_ms += ms;
		if (ms > v->st.max_query_ms)
			v->st.max_query_ms = ms;
		v->st.at = time_now();
		if (q.what == VDBW_ALERTS) {
			memcpy(v->alerts, alerts, n * sizeof(*alerts));
			v->nalerts = n;
			v->alerts_gen = gen;
		} else if (q.what == VDBW_OVERVIEW) {
			memcpy(v->nodes, nodes, n * sizeof(*nodes));
			v->nnodes = n;
			v->nodes_gen = gen;
		} else if (q.what == VDBW_HISTORY) {
			*v->hist = *hist;
			v->hist_gen = gen;
		} else if (q.what == VDBW_TABLE) {
			memcpy(v->page, page, tinfo->n * sizeof(*page));
			*v->tinfo = *tinfo;
			v->table_gen = gen;
		} else {
			if (found)
				*v->gpu = *gpu;
			else
				snprintf(v->gpu->key, sizeof(v->gpu->key), "%s", q.key);
			v->gpu_found = found;
			v->gpu_gen = gen;
		}
	}
	pthread_mutex_unlock(&v->wt.lock);
	pgconn_destroy(pc);
	fleet_destroy(tf);
	free(page);
	free(tinfo);
	free(gpu);
	free(alerts);
	free(nodes);
	free(hist);
	return NULL;
}

static int create(struct viewdb **out, const char *conninfo, viewdb_conninfo_fn get, void *arg,
                  double period_s, double table_interval_s)
{
	*out = NULL;
	struct viewdb *v = waiter_calloc(sizeof(*v), offsetof(struct viewdb, wt));
	if (!v)
		return -ENOMEM;
	snprintf(v->conninfo, sizeof(v->conninfo), "%s", conninfo);
	v->get = get;
	v->get_arg = arg;
	v->period_s = period_s > 0.05 ? period_s : 0.05;
	v->done_gen = UINT64_MAX;
	v->alerts_gen = v->nodes_gen = v->hist_gen = v->table_gen = v->gpu_gen = UINT64_MAX;
	v->alerts = calloc(VIEWDB_MAX_ALERTS, sizeof(*v->alerts));
	v->nodes = calloc(VIEWDB_MAX_NODES, sizeof(*v->nodes));
	v->hist = calloc(1, sizeof(*v->hist));
	v->table = table_interval_s > 0;
	v->interval_s = table_interval_s;
	if (v->table) {
		v->page = calloc(VIEWDB_TABLE_MAX, sizeof(*v->page));
		v->tinfo = calloc(1, sizeof(*v->tinfo));
		v->gpu = calloc(1, sizeof(*v->gpu));
	}
	if (!v->alerts || !v->nodes || !v->hist ||
	    (v->table && (!v->page || !v->tinfo || !v->gpu))) {
		viewdb_destroy(v);
		return -ENOMEM;
	}
	int rc = waiter_start(&v->wt, viewdb_main, v);
	if (rc) {
		viewdb_destroy(v);
		return rc;
	}
	*out = v; /* caller owns */
	return 0;
}

int viewdb_create(struct viewdb **out, const char *conninfo, double period_s)
{
	return create(out, conninfo, NULL, NULL, period_s, 0);
}

int viewdb_create_table(struct viewdb **out, const char *conninfo, double period_s,
                        double interval_s)
{
	return create(out, conninfo, NULL, NULL, period_s, interval_s > 0 ? interval_s : 10);
}

int viewdb_create_deferred(struct viewdb **out, viewdb_conninfo_fn get, void *arg, double period_s)
{
	return create(out, "", get, arg, period_s, 0);
}

void viewdb_destroy(struct viewdb *v)
{
	if (!v)
		return;
	waiter_destroy(&v->wt);
	free(v->alerts);
	free(v->nodes);
	free(v->hist);
	free(v->page);
	free(v->tinfo);
	free(v->gpu);
	free(v);
}

static void set_request(struct viewdb *v, const struct viewdb_request *q)
{
	pthread_mutex_lock(&v->wt.lock);
	if (memcmp(&v->req, q, sizeof(*q)) != 0) {
		v->req = *q;
		v->req_gen++;
		waiter_wake_locked(&v->wt);
	}
	pthread_mutex_unlock(&v->wt.lock);
}

void viewdb_want_none(struct viewdb *v)
{
	struct viewdb_request q;
	memset(&q, 0, sizeof(q));
	set_request(v, &q);
}

void viewdb_want_alerts(struct viewdb *v)
{
	struct viewdb_request q;
	memset(&q, 0, sizeof(q));
	q.what = VDBW_ALERTS;
	set_request(v, &q);
}

void viewdb_want_overview(struct viewdb *v, enum viewdb_level level, const char *const *path,
                          const char *filter)
{
	struct viewdb_request q;
	memset(&q, 0, sizeof(q));
	q.what = VDBW_OVERVIEW;
	q.level = level;
	for (int l = 0; l < (int)level && l < VDB_LEVELS - 1; l++)
		snprintf(q.path[l], sizeof(q.path[l]), "%s", path && path[l] ? path[l] : "-");
	snprintf(q.filter, sizeof(q.filter), "%s", filter ? filter : "");
	set_request(v, &q);
}

void viewdb_want_history(struct viewdb *v, const char *key, enum viewdb_window w, double end,
                         size_t points)
{
	struct viewdb_request q;
	memset(&q, 0, sizeof(q));
	q.what = VDBW_HISTORY;
	snprintf(q.key, sizeof(q.key), "%s", key);
	q.window = w;
	q.end = end;
	q.points = points;
	set_request(v, &q);
}

void viewdb_want_table(struct viewdb *v, int sort, bool desc, bool group, const char *filter,
                       size_t offset, size_t limit)
{
	struct viewdb_request q;
	memset(&q, 0, sizeof(q));
	q.what = VDBW_TABLE;
	q.sort = sort;
	q.desc = desc;
	q.group = group;
	snprintf(q.filter, sizeof(q.filter), "%s", filter ? filter : "");
	q.offset = offset;
	q.limit = limit > VIEWDB_TABLE_MAX ? VIEWDB_TABLE_MAX : limit;
	set_request(v, &q);
}

void viewdb_want_gpu(struct viewdb *v, const char *key)
{
	struct viewdb_request q;
	memset(&q, 0, sizeof(q));
	q.what = VDBW_GPU;
	snprintf(q.key, sizeof(q.key), "%s", key);
	set_request(v, &q);
}

static void copy_status(struct viewdb *v, uint64_t gen, struct viewdb_status *st)
{
	if (!st)
		return;
	*st = v->st;
	st->have = gen == v->req_gen;
}

/* Copies up to max of the *n results at src (size bytes each) and the status they answer
 * (*gen): all three read under the lock. */
static size_t copy_results(struct viewdb *v, void *out, const void *src, const size_t *n,
                           size_t max, size_t size, const uint64_t *gen, struct viewdb_status *st)
{
	pthread_mutex_lock(&v->wt.lock);
	size_t k = *n < max ? *n : max;
	memcpy(out, src, k * size);
	copy_status(v, *gen, st);
	pthread_mutex_unlock(&v->wt.lock);
	return k;
}

size_t viewdb_copy_alerts(struct viewdb *v, struct viewdb_alert *out, size_t max,
                          struct viewdb_status *st)
{
	return copy_results(v, out, v->alerts, &v->nalerts, max, sizeof(*out), &v->alerts_gen, st);
}

size_t viewdb_copy_overview(struct viewdb *v, struct viewdb_node *out, size_t max,
                            struct viewdb_status *st)
{
	return copy_results(v, out, v->nodes, &v->nnodes, max, sizeof(*out), &v->nodes_gen, st);
}

void viewdb_copy_history(struct viewdb *v, struct viewdb_history *out, struct viewdb_status *st)
{
	pthread_mutex_lock(&v->wt.lock);
	*out = *v->hist;
	copy_status(v, v->hist_gen, st);
	pthread_mutex_unlock(&v->wt.lock);
}

size_t viewdb_copy_table(struct viewdb *v, struct fleet_gpu *out, size_t max,
                         struct viewdb_table *info, struct viewdb_status *st)
{
	size_t n = 0;
	pthread_mutex_lock(&v->wt.lock);
	if (v->table) {
		n = v->tinfo->n < max ? v->tinfo->n : max;
		memcpy(out, v->page, n * sizeof(*out));
		*info = *v->tinfo;
	} else {
		memset(info, 0, sizeof(*info));
	}
	copy_status(v, v->table_gen, st);
	if (st && v->table_gen == UINT64_MAX)
		st->have = false;
	pthread_mutex_unlock(&v->wt.lock);
	return n;
}

bool viewdb_copy_gpu(struct viewdb *v, const char *key, struct fleet_gpu *out,
                     struct viewdb_status *st)
{
	pthread_mutex_lock(&v->wt.lock);
	bool ok =
	    v->table && v->gpu_gen != UINT64_MAX && v->gpu_found && strcmp(v->gpu->key, key) == 0;
	if (ok)
		*out = *v->gpu;
	copy_status(v, v->gpu_gen, st);
	pthread_mutex_unlock(&v->wt.lock);
	return ok;
}

bool viewdb_pending(struct viewdb *v)
{
	pthread_mutex_lock(&v->wt.lock);
	bool p = v->req_gen != v->done_gen;
	pthread_mutex_unlock(&v->wt.lock);
	return p;
}

void viewdb_copy_status(struct viewdb *v, struct viewdb_status *st)
{
	pthread_mutex_lock(&v->wt.lock);
	*st = v->st;
	st->have = false;
	pthread_mutex_unlock(&v->wt.lock);
}
