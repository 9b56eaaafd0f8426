#include "fleet/fleet.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/timeutil.h"
#include "health/health_engine.h"

#define DEFAULT_MAX_GPUS 65536

struct fleet {
	pthread_mutex_t lock; /* guards everything below */
	struct fleet_opts o;
	struct health_engine *engine; /* the scorer's evaluation (health/health_engine.h) */
	struct fleet_gpu **gpus; /* owned, in arrival order */
	struct fleet_process **procs; /* owned, per GPU as gpus (NULL: none reported) */
	size_t n, cap;
	size_t *order; /* indexes sorted by (host, index, key); valid when !dirty */
	bool dirty;
	size_t *hash; /* open addressing: index + 1, 0 empty */
	size_t hcap;
	struct fleet_stats st;
};

static uint64_t hash_key(const char *k)
{
	return hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, k); /* FNV-1a, our basis */
}

static int rehash(struct fleet *f, size_t cap)
{
	size_t *h = calloc(cap, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < f->n; i++) {
		size_t j = (size_t)(hash_key(f->gpus[i]->key) & (cap - 1));
		while (h[j])
			j = (j + 1) & (cap - 1);
		h[j] = i + 1;
	}
	free(f->hash);
	f->hash = h;
	f->hcap = cap;
	return 0;
}

/* The arrival index of key, or -1. */
static long find_idx(struct fleet *f, const char *key)
{
	if (!f->hcap)
		return -1;
	size_t j = (size_t)(hash_key(key) & (f->hcap - 1));
	while (f->hash[j]) {
		if (strcmp(f->gpus[f->hash[j] - 1]->key, key) == 0)
			return (long)(f->hash[j] - 1);
		j = (j + 1) & (f->hcap - 1);
	}
	return -1;
}

static struct fleet_gpu *find(struct fleet *f, const char *key)
{
	long i = find_idx(f, key);
	return i < 0 ? NULL : f->gpus[i];
}

/* Finds or adds the GPU of s. NULL with *rc = -ENOSPC past max_gpus, -ENOMEM. */
static struct fleet_gpu *get_gpu(struct fleet *f, const struct health_sample *s, int *rc)
{
	struct fleet_gpu *g = find(f, s->key);
	*rc = 0;
	if (g)
		return g;
	if (f->n >= f->o.max_gpus) {
		f->st.over_limit++;
		*rc = -ENOSPC;
		return NULL;
	}
	if ((f->n + 1) * 2 > f->hcap && rehash(f, f->hcap ? f->hcap * 2 : 64) != 0)
		goto nomem;
	if (f->n == f->cap) {
		/* three arrays of one capacity: cap moves when all have grown */
		size_t cv = f->cap, co = f->cap, cp = f->cap;
		if (grow_array((void **)&f->gpus, &cv, f->n + 1, sizeof(*f->gpus), 16) ||
		    grow_array((void **)&f->order, &co, f->n + 1, sizeof(*f->order), 16) ||
		    grow_array((void **)&f->procs, &cp, f->n + 1, sizeof(*f->procs), 16))
			goto nomem;
		memset(f->procs + f->cap, 0, (cp - f->cap) * sizeof(*f->procs));
		f->cap = cp;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		goto nomem;
	snprintf(g->key, sizeof(g->key), "%s", s->key);
	g->index = -1;
	g->nprocs = -1;
	g->fb_used_mib = g->fb_total_mib = g->sm_clock_mhz = g->mem_clock_mhz = NAN;
	g->p_fail = NAN;
	for (int a = 0; a < ACT_COUNT; a++)
		g->cost[a] = NAN;
	g->first_seen = s->time;
	f->gpus[f->n] = g; /* owned by f */
	size_t j = (size_t)(hash_key(g->key) & (f->hcap - 1));
	while (f->hash[j])
		j = (j + 1) & (f->hcap - 1);
	f->hash[j] = ++f->n;
	f->dirty = true;
	return g;
nomem:
	*rc = -ENOMEM;
	return NULL;
}

static void set_identity(struct fleet *f, struct fleet_gpu *g, const struct health_sample *s)
{
	if (s->host[0] && strcmp(g->host, s->host) != 0) {
		snprintf(g->host, sizeof(g->host), "%s", s->host);
		f->dirty = true;
	}
	if (s->model[0])
		snprintf(g->model, sizeof(g->model), "%s", s->model);
	if (s->index >= 0 && g->index != s->index) {
		g->index = s->index;
		f->dirty = true;
	}
}

static void push_history(struct fleet_gpu *g, const struct health_sample *s)
{
	if (g->nhist && s->time <= g->hist_time[g->nhist - 1])
		return; /* not newer: the history stays in time order */
	if (g->nhist == FLEET_HISTORY) {
		for (int k = 0; k < FLEET_NSERIES; k++)
			memmove(g->hist[k], g->hist[k] + 1, (FLEET_HISTORY - 1) * sizeof(float));
		memmove(g->hist_time, g->hist_time + 1, (FLEET_HISTORY - 1) * sizeof(double));
		g->nhist--;
	}
	static const enum hs_field from[FLEET_NSERIES] = {HS_GPU_TEMP, HS_POWER, HS_GPU_UTIL};
	for (int k = 0; k < FLEET_NSERIES; k++)
		g->hist[k][g->nhist] = health_sample_has(s, from[k]) ? (float)s->v[from[k]] : NAN;
	g->hist_time[g->nhist++] = s->time;
}

static void push_alert(struct fleet_gpu *g, double time, const struct health_alert_change *c)
{
	if (g->nalerts == FLEET_ALERTS)
		g->nalerts--;
	memmove(g->alerts + 1, g->alerts, g->nalerts * sizeof(g->alerts[0]));
	struct fleet_alert *a = &g->alerts[0];
	memset(a, 0, sizeof(*a));
	a->time = time;
	a->cleared = c->action == ALERT_CLEAR;
	a->severity = c->severity;
	snprintf(a->kind, sizeof(a->kind), "%s", c->kind);
	snprintf(a->text, sizeof(a->text), "%s", c->summary);
	g->nalerts++;
	/* the open alert of the kind: raised (kept from its first raise), or closed */
	size_t k = 0;
	while (k < g->nopen && strcmp(g->open[k].kind, c->kind) != 0)
		k++;
	if (c->action == ALERT_CLEAR) {
		if (k < g->nopen)
			memmove(&g->open[k], &g->open[k + 1], (--g->nopen - k) * sizeof(g->open[0]));
		return;
	}
	if (k == g->nopen) {
		if (k == FLEET_ALERT_KINDS)
			return; /* no other kinds exist */
		g->open[g->nopen++] = *a;
		return;
	}
	g->open[k].severity = a->severity;
	snprintf(g->open[k].text, sizeof(g->open[k].text), "%s", a->text);
}

/* One verdict of the engine (the sample's GPU, or a silent GPU of its host) into its GPU. */
static int judged(const struct health_verdict *v, void *ud)
{
	struct fleet *f = ud;
	struct fleet_gpu *g = find(f, v->r.key);
	if (!g)
		return 0; /* a silent GPU not kept (past max_gpus) */
	g->have_health = true;
	g->health = v->r;
	g->action = v->action;
	g->p_fail = v->p.probability;
	for (int a = 0; a < ACT_COUNT; a++)
		g->cost[a] = v->recommended ? v->e.cost[a] : NAN;
	for (size_t i = 0; i < v->nalerts; i++)
		push_alert(g, v->r.time, &v->alerts[i]);
	return 0;
}

static double fleet_now(const struct fleet *f) { return f->o.clock ? f->o.clock() : time_now(); }

int fleet_create(struct fleet **out, const struct fleet_opts *opts)
{
	*out = NULL;
	struct fleet *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	if (opts)
		f->o = *opts;
	if (f->o.interval_s <= 0)
		f->o.interval_s = 10;
	if (f->o.horizon_h <= 0)
		f->o.horizon_h = 24;
	if (f->o.max_gpus == 0)
		f->o.max_gpus = DEFAULT_MAX_GPUS;
	struct health_engine_opts eo = {.interval_s = f->o.interval_s,
					.missing_intervals = f->o.missing_intervals,
					.horizon_h = f->o.horizon_h,
					.risk_level = f->o.risk_level,
					.econ = f->o.econ,
					.raise_after = f->o.raise_after,
					.clear_after = f->o.clear_after};
	f->o.econ = NULL; /* not kept: the engine copied it */
	int rc = health_engine_create(&f->engine, &eo);
	if (rc) {
		fleet_destroy(f);
		return rc;
	}
	*out = f; /* caller owns */
	return 0;
}

void fleet_destroy(struct fleet *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->gpus[i]);
		free(f->procs[i]);
	}
	free(f->gpus);
	free(f->procs);
	free(f->order);
	free(f->hash);
	health_engine_destroy(f->engine);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static double num_at(const json_t *metrics, const char *key)
{
	const json_t *v = json_object_get(metrics, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static void set_workload(struct fleet_gpu *g, const char *ns, const char *pod,
                         const char *container)
{
	snprintf(g->wl_namespace, sizeof(g->wl_namespace), "%s", ns ? ns : "");
	snprintf(g->wl_pod, sizeof(g->wl_pod), "%s", pod ? pod : "");
	snprintf(g->wl_container, sizeof(g->wl_container), "%s", container ? container : "");
	g->has_workload = g->wl_namespace[0] || g->wl_pod[0] || g->wl_container[0];
}

/* event-v1 "workload": null, or {"namespace", "pod", "container"}, each a string or null */
static void workload_of(struct fleet_gpu *g, const json_t *event)
{
	const json_t *w = json_object_get(event, "workload");
	if (!json_is_object(w)) {
		set_workload(g, NULL, NULL, NULL);
		return;
	}
	set_workload(g, json_string_value(json_object_get(w, "namespace")),
	             json_string_value(json_object_get(w, "pod")),
	             json_string_value(json_object_get(w, "container")));
}

int fleet_ingest_event(struct fleet *f, const json_t *event)
{
	struct health_sample s;
	char err[256];
	int rc = health_sample_from_json(event, &s, err, sizeof(err));
	pthread_mutex_lock(&f->lock);
	if (rc) {
		f->st.bad_events++;
		snprintf(f->st.last_error, sizeof(f->st.last_error), "event not understood: %.200s", err);
		rc = -EINVAL;
		goto out;
	}
	f->st.events++;
	struct fleet_gpu *g = get_gpu(f, &s, &rc);
	if (!g) {
		rc = rc == -ENOSPC ? 0 : rc; /* counted in over_limit */
		goto out;
	}
	set_identity(f, g, &s);
	if (s.time >= g->last_seen) {
		g->last = s;
		g->last_seen = s.time;
		const json_t *m = json_object_get(event, "metrics");
		g->sm_clock_mhz = num_at(m, "sm_clock");
		g->mem_clock_mhz = num_at(m, "mem_clock");
		double used = num_at(m, "fb_used"), fr = num_at(m, "fb_free"),
		       res = num_at(m, "fb_reserved");
		g->fb_used_mib = used;
		g->fb_total_mib = isnan(used) || isnan(fr) ? NAN : used + fr + (isnan(res) ? 0 : res);
		workload_of(g, event);
	}
	push_history(g, &s);
	/* the sample's verdict, then (on live data) those of its host's silent GPUs: the
	 * scorer's engine, so the console shows what the database gets */
	rc = health_engine_sample(f->engine, &s, fleet_now(f), judged, f);
	if (rc == -EALREADY)
		rc = 0; /* not newer than the GPU's last sample */
out:
	if (rc == -ENOMEM)
		snprintf(f->st.last_error, sizeof(f->st.last_error), "out of memory");
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fleet_ingest_health(struct fleet *f, const struct health_sample *s, bool have_health,
			const struct health_result *h, enum health_action action, double p_fail)
{
	int rc;
	pthread_mutex_lock(&f->lock);
	f->st.rows++;
	struct fleet_gpu *g = get_gpu(f, s, &rc);
	if (!g) {
		rc = rc == -ENOSPC ? 0 : rc;
		goto out;
	}
	set_identity(f, g, s);
	if (s->time >= g->last_seen) {
		g->last = *s;
		g->last_seen = s->time;
	}
	push_history(g, s);
	/* the newer evaluation wins: this console's own (from events) or the database's */
	if (have_health && h && (!g->have_health || h->time >= g->health.time)) {
		g->have_health = true;
		g->health = *h;
		g->action = action;
		g->p_fail = p_fail;
	}
out:
	if (rc == -ENOMEM)
		snprintf(f->st.last_error, sizeof(f->st.last_error), "out of memory");
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fleet_set_extra(struct fleet *f, const char *key, double fb_used_mib, double fb_total_mib,
		    double sm_clock_mhz, double mem_clock_mhz)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&f->lock);
	struct fleet_gpu *g = find(f, key);
	if (g) {
		g->fb_used_mib = fb_used_mib;
		g->fb_total_mib = fb_total_mib;
		g->sm_clock_mhz = sm_clock_mhz;
		g->mem_clock_mhz = mem_clock_mhz;
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fleet_set_costs(struct fleet *f, const char *key, const double cost[ACT_COUNT])
{
	int rc = -ENOENT;
	pthread_mutex_lock(&f->lock);
	struct fleet_gpu *g = find(f, key);
	if (g) {
		for (int a = 0; a < ACT_COUNT; a++)
			g->cost[a] = cost[a];
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fleet_set_workload(struct fleet *f, const char *key, const char *ns, const char *pod,
                       const char *container)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&f->lock);
	struct fleet_gpu *g = find(f, key);
	if (g) {
		set_workload(g, ns, pod, container);
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fleet_set_processes(struct fleet *f, const char *key, const struct fleet_process *procs, int n)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&f->lock);
	long i = find_idx(f, key);
	if (i < 0)
		goto out;
	rc = 0;
	struct fleet_gpu *g = f->gpus[i];
	if (n < 0) {
		free(f->procs[i]);
		f->procs[i] = NULL;
		g->nprocs = -1;
		goto out;
	}
	size_t keep = (size_t)n < FLEET_PROCS_MAX ? (size_t)n : FLEET_PROCS_MAX;
	if (!f->procs[i] && keep) {
		f->procs[i] = calloc(FLEET_PROCS_MAX, sizeof(*f->procs[i]));
		if (!f->procs[i]) {
			g->nprocs = -1;
			rc = -ENOMEM;
			goto out;
		}
	}
	if (keep)
		memcpy(f->procs[i], procs, keep * sizeof(*procs));
	g->nprocs = n; /* how many the driver reported; fleet_processes gives the first ones */
out:
	pthread_mutex_unlock(&f->lock);
	return rc;
}

int fleet_processes(struct fleet *f, const char *key, struct fleet_process *out, size_t max)
{
	int n = -1;
	pthread_mutex_lock(&f->lock);
	long i = find_idx(f, key);
	if (i >= 0 && f->gpus[i]->nprocs >= 0) {
		n = f->gpus[i]->nprocs;
		size_t have = (size_t)n < FLEET_PROCS_MAX ? (size_t)n : FLEET_PROCS_MAX;
		if (have > max)
			have = max;
		if (have)
			memcpy(out, f->procs[i], have * sizeof(*out));
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

int fleet_gpu_cmp(const struct fleet_gpu *a, const struct fleet_gpu *b)
{
	int c = strcmp(a->host, b->host);
	if (c)
		return c;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return strcmp(a->key, b->key);
}

static struct fleet *sort_ctx; /* only under sort_lock */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int cmp_gpu(const void *a, const void *b)
{
	return fleet_gpu_cmp(sort_ctx->gpus[*(const size_t *)a],
	                     sort_ctx->gpus[*(const size_t *)b]);
}

/* Called with f->lock held. */
static void sort_order(struct fleet *f)
{
	if (!f->dirty)
		return;
	for (size_t i = 0; i < f->n; i++)
		f->order[i] = i;
	pthread_mutex_lock(&sort_lock);
	sort_ctx = f;
	if (f->n > 1)
		qsort(f->order, f->n, sizeof(*f->order), cmp_gpu);
	sort_ctx = NULL;
	pthread_mutex_unlock(&sort_lock);
	f->dirty = false;
}

static void mark_stale(const struct fleet *f, struct fleet_gpu *g, double now)
{
	g->stale = now - g->last_seen > 3 * f->o.interval_s;
}

size_t fleet_snapshot(struct fleet *f, struct fleet_gpu *out, size_t max)
{
	double now = fleet_now(f);
	pthread_mutex_lock(&f->lock);
	sort_order(f);
	size_t n = f->n;
	for (size_t i = 0; i < n && i < max; i++) {
		out[i] = *f->gpus[f->order[i]];
		mark_stale(f, &out[i], now);
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

bool fleet_get(struct fleet *f, const char *key, struct fleet_gpu *out)
{
	double now = fleet_now(f);
	pthread_mutex_lock(&f->lock);
	struct fleet_gpu *g = find(f, key);
	if (g) {
		*out = *g;
		mark_stale(f, out, now);
	}
	pthread_mutex_unlock(&f->lock);
	return g != NULL;
}

void fleet_stats(struct fleet *f, struct fleet_stats *out)
{
	pthread_mutex_lock(&f->lock);
	sort_order(f);
	f->st.gpus = f->n;
	size_t hosts = 0;
	for (size_t i = 0; i < f->n; i++)
		if (i == 0 || strcmp(f->gpus[f->order[i]]->host, f->gpus[f->order[i - 1]]->host) != 0)
			hosts++;
	f->st.hosts = hosts;
	*out = f->st;
	pthread_mutex_unlock(&f->lock);
}
