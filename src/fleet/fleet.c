#include "fleet/fleet.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "health/alerts.h"
#include "health/predict.h"

#define DEFAULT_MAX_GPUS 65536
#define KIND_HEALTH "health"
#define MISSING_MAX 64

struct fleet {
	pthread_mutex_t lock; /* guards everything below */
	struct fleet_opts o;
	struct econ_inputs econ;
	struct rules *rules;
	struct alerts *alerts;
	struct fleet_gpu **gpus; /* owned, in arrival order */
	size_t n, cap;
	size_t *order; /* indexes sorted by (host, index, key); valid when !dirty */
	bool dirty;
	size_t *hash; /* open addressing: index + 1, 0 empty */
	size_t hcap;
	struct fleet_stats st;
	struct health_result missing[MISSING_MAX];
};

static uint64_t hash_key(const char *k)
{
	uint64_t h = 1469598103934665603ull;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
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

static struct fleet_gpu *find(struct fleet *f, const char *key)
{
	if (!f->hcap)
		return NULL;
	size_t j = (size_t)(hash_key(key) & (f->hcap - 1));
	while (f->hash[j]) {
		struct fleet_gpu *g = f->gpus[f->hash[j] - 1];
		if (strcmp(g->key, key) == 0)
			return g;
		j = (j + 1) & (f->hcap - 1);
	}
	return NULL;
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
		size_t cap = f->cap ? f->cap * 2 : 16;
		struct fleet_gpu **v = realloc(f->gpus, cap * sizeof(*v));
		if (!v)
			goto nomem;
		f->gpus = v;
		size_t *o = realloc(f->order, cap * sizeof(*o));
		if (!o)
			goto nomem;
		f->order = o;
		f->cap = cap;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		goto nomem;
	snprintf(g->key, sizeof(g->key), "%s", s->key);
	g->index = -1;
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

static void push_alert(struct fleet_gpu *g, const struct health_result *r, enum alert_action act,
		       enum health_status sev)
{
	if (g->nalerts == FLEET_ALERTS)
		g->nalerts--;
	memmove(g->alerts + 1, g->alerts, g->nalerts * sizeof(g->alerts[0]));
	struct fleet_alert *a = &g->alerts[0];
	memset(a, 0, sizeof(*a));
	a->time = r->time;
	a->cleared = act == ALERT_CLEAR;
	a->severity = act == ALERT_CLEAR ? HEALTH_PASS : sev;
	if (r->nreasons && !a->cleared) {
		snprintf(a->kind, sizeof(a->kind), "%s", r->reasons[0].code);
		snprintf(a->text, sizeof(a->text), "%s", r->reasons[0].text);
	} else {
		snprintf(a->kind, sizeof(a->kind), "%s", KIND_HEALTH);
		snprintf(a->text, sizeof(a->text), "%s",
			 a->cleared ? "healthy again" : health_status_name(sev));
	}
	g->nalerts++;
}

/* Health, prediction, recommendation and alerts of one evaluation into g. */
static int judge(struct fleet *f, struct fleet_gpu *g, const struct health_result *r)
{
	struct prediction p;
	predict_eval(&r->trends, r->status, f->o.horizon_h, &p);
	bool at_risk = p.probability >= f->o.risk_level;
	enum health_action required = r->remedy;
	if (at_risk && !p.failing && p.required > required)
		required = p.required;
	enum health_action action = ACT_KEEP;
	for (int a = 0; a < ACT_COUNT; a++)
		g->cost[a] = NAN;
	if (r->status != HEALTH_PASS || at_risk) {
		struct econ_result e;
		struct econ_inputs in = f->econ;
		in.horizon_h = f->o.horizon_h;
		if (econ_evaluate(&in, p.probability, r->status == HEALTH_FAIL, required, &e) == 0) {
			action = e.best;
			for (int a = 0; a < ACT_COUNT; a++)
				g->cost[a] = e.cost[a];
		}
	}
	g->have_health = true;
	g->health = *r;
	g->action = action;
	g->p_fail = p.probability;
	enum alert_action act;
	enum health_status open;
	int rc = alerts_step(f->alerts, r->key, KIND_HEALTH, r->status, r->event, &act, &open);
	if (rc == 0 && act != ALERT_NONE)
		push_alert(g, r, act, open);
	return rc;
}

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
	if (f->o.risk_level <= 0 || f->o.risk_level > 1)
		f->o.risk_level = 0.5;
	if (f->o.econ)
		f->econ = *f->o.econ;
	else
		econ_defaults(&f->econ);
	f->o.econ = NULL; /* not kept: copied */
	if (f->o.missing_intervals <= 0)
		f->o.missing_intervals = RULES_MISSING_INTERVALS;
	struct rules_opts ro = {.interval_s = f->o.interval_s,
				.missing_intervals = f->o.missing_intervals};
	struct alerts_opts ao = {
		.raise_after = f->o.raise_after > 0 ? f->o.raise_after : ALERTS_RAISE_AFTER,
		.clear_after = f->o.clear_after > 0 ? f->o.clear_after : ALERTS_CLEAR_AFTER};
	int rc = rules_create(&f->rules, &ro);
	if (rc == 0)
		rc = alerts_create(&f->alerts, &ao);
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
	for (size_t i = 0; i < f->n; i++)
		free(f->gpus[i]);
	free(f->gpus);
	free(f->order);
	free(f->hash);
	rules_destroy(f->rules);
	alerts_destroy(f->alerts);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static double num_at(const json_t *metrics, const char *key)
{
	const json_t *v = json_object_get(metrics, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
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
	}
	push_history(g, &s);
	struct health_result r;
	rc = rules_update(f->rules, &s, &r);
	if (rc == -EALREADY) {
		rc = 0;
		goto out;
	}
	if (rc == 0)
		rc = judge(f, g, &r);
	/* fell off the bus: only on live samples (a replayed backlog reads GPUs unevenly) */
	bool live = time_now() - s.time <= f->o.interval_s * (f->o.missing_intervals + 1);
	if (rc == 0 && live && s.host[0]) {
		size_t n = rules_missing(f->rules, s.host, s.time, f->missing, MISSING_MAX);
		for (size_t i = 0; i < n && rc == 0; i++) {
			struct fleet_gpu *mg = find(f, f->missing[i].key);
			if (mg)
				rc = judge(f, mg, &f->missing[i]);
		}
	}
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

static struct fleet *sort_ctx; /* only under sort_lock */
static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static int cmp_gpu(const void *a, const void *b)
{
	const struct fleet_gpu *x = sort_ctx->gpus[*(const size_t *)a];
	const struct fleet_gpu *y = sort_ctx->gpus[*(const size_t *)b];
	int c = strcmp(x->host, y->host);
	if (c)
		return c;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return strcmp(x->key, y->key);
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
	double now = time_now();
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
	double now = time_now();
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
