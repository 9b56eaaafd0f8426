#include "sink/workloads.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"
#include "store/pg.h"

/* ---- a string-keyed open-addressing index: key -> entry number */

struct index {
	char **keys;   /* owned; NULL = empty slot */
	uint32_t *val; /* entry number of the key */
	size_t cap, n;
};

static uint64_t hash_str(const char *s)
{
	return hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, s); /* FNV-1a, our basis */
}

static void index_clear(struct index *x)
{
	for (size_t i = 0; i < x->cap; i++) {
		free(x->keys[i]);
		x->keys[i] = NULL;
	}
	x->n = 0;
}

static void index_free(struct index *x)
{
	index_clear(x);
	free(x->keys);
	free(x->val);
	memset(x, 0, sizeof(*x));
}

/* The slot of key, or of the empty slot where it goes. cap > 0. */
static size_t index_slot(const struct index *x, const char *key)
{
	size_t i = (size_t)hash_str(key) & (x->cap - 1);
	while (x->keys[i] && strcmp(x->keys[i], key) != 0)
		i = (i + 1) & (x->cap - 1);
	return i;
}

static bool index_get(const struct index *x, const char *key, uint32_t *v)
{
	if (!x->cap)
		return false;
	size_t i = index_slot(x, key);
	if (!x->keys[i])
		return false;
	*v = x->val[i];
	return true;
}

static int index_grow(struct index *x)
{
	size_t cap = x->cap ? x->cap * 2 : 64;
	char **keys = calloc(cap, sizeof(*keys));
	uint32_t *val = calloc(cap, sizeof(*val));
	if (!keys || !val) {
		free(keys);
		free(val);
		return -ENOMEM;
	}
	struct index n = {keys, val, cap, 0};
	for (size_t i = 0; i < x->cap; i++)
		if (x->keys[i]) {
			size_t j = index_slot(&n, x->keys[i]);
			n.keys[j] = x->keys[i];
			n.val[j] = x->val[i];
			n.n++;
		}
	free(x->keys);
	free(x->val);
	*x = n;
	return 0;
}

/* Sets key -> v (a copy of key kept). Returns 0 or -ENOMEM. */
static int index_put(struct index *x, const char *key, uint32_t v)
{
	if ((x->n + 1) * 2 > x->cap && index_grow(x))
		return -ENOMEM;
	size_t i = index_slot(x, key);
	if (!x->keys[i]) {
		if (!(x->keys[i] = strdup(key)))
			return -ENOMEM;
		x->n++;
	}
	x->val[i] = v;
	return 0;
}

/* ---- what this sink merged into gpu_workloads, per GPU */

struct merged {
	char *wl; /* owned, the workload's COPY text; "" = none */
	double last;
	/* the newest committed sample with this workload, which may be past last (batches that
	 * did not move last_seen): sent with the next merge of the GPU, so when the workload
	 * changes the finished run's row ends at its last sample, not up to 30 s before it */
	double seen;
	double tail_sent; /* the seen a workloads_tails_json() sent */
};

struct workloads {
	pthread_mutex_t lock;
	struct index ix;
	struct merged *m;
	size_t n, cap;
};

struct workloads *workloads_create(void)
{
	struct workloads *k = calloc(1, sizeof(*k));
	if (k)
		pthread_mutex_init(&k->lock, NULL);
	return k;
}

static void merged_clear(struct workloads *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->m[i].wl);
	k->n = 0;
	index_clear(&k->ix);
}

void workloads_destroy(struct workloads *k)
{
	if (!k)
		return;
	merged_clear(k);
	index_free(&k->ix);
	free(k->m);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void workloads_forget(struct workloads *k)
{
	pthread_mutex_lock(&k->lock);
	merged_clear(k);
	pthread_mutex_unlock(&k->lock);
}

/* ---- one batch's runs */

struct run {
	uint32_t gpu; /* its GPU in gpus[] */
	char *wl;     /* owned; "" = none */
	double first, last;
	bool sent;
};

struct run_gpu {
	char *key;     /* owned */
	uint32_t last; /* its newest run in runs[] */
	uint32_t nruns;
};

struct workload_runs {
	struct index ix; /* key -> gpus[] */
	struct run *runs;
	size_t nruns, caprun;
	struct run_gpu *gpus;
	size_t ngpus, capgpu;
};

struct workload_runs *workload_runs_create(void)
{
	return calloc(1, sizeof(struct workload_runs));
}

void workload_runs_clear(struct workload_runs *r)
{
	for (size_t i = 0; i < r->nruns; i++)
		free(r->runs[i].wl);
	for (size_t i = 0; i < r->ngpus; i++)
		free(r->gpus[i].key);
	r->nruns = r->ngpus = 0;
	index_clear(&r->ix);
}

void workload_runs_destroy(struct workload_runs *r)
{
	if (!r)
		return;
	workload_runs_clear(r);
	index_free(&r->ix);
	free(r->runs);
	free(r->gpus);
	free(r);
}

size_t workload_runs_count(const struct workload_runs *r)
{
	return r->nruns;
}

static bool same_wl(const char *a, const char *wl, size_t len)
{
	return strlen(a) == len && memcmp(a, wl, len) == 0;
}

int workload_runs_add(struct workload_runs *r, const char *key, const char *wl, size_t wl_len,
                      double t)
{
	uint32_t g;
	bool known = index_get(&r->ix, key, &g);
	if (known) {
		struct run *last = &r->runs[r->gpus[g].last];
		if (same_wl(last->wl, wl, wl_len)) {
			if (t < last->first)
				last->first = t;
			if (t > last->last)
				last->last = t;
			return 0;
		}
	} else {
		if (grow_array((void **)&r->gpus, &r->capgpu, r->ngpus + 1, sizeof(*r->gpus), 64))
			return -ENOMEM;
		char *k = strdup(key);
		if (!k)
			return -ENOMEM;
		g = (uint32_t)r->ngpus;
		if (index_put(&r->ix, key, g)) {
			free(k);
			return -ENOMEM;
		}
		r->gpus[g] = (struct run_gpu){k, 0, 0};
		r->ngpus++;
	}
	if (grow_array((void **)&r->runs, &r->caprun, r->nruns + 1, sizeof(*r->runs), 64))
		return -ENOMEM;
	char *w = malloc(wl_len + 1);
	if (!w)
		return -ENOMEM;
	memcpy(w, wl, wl_len);
	w[wl_len] = '\0';
	r->runs[r->nruns] = (struct run){g, w, t, t, false};
	r->gpus[g].last = (uint32_t)r->nruns;
	r->gpus[g].nruns++;
	r->nruns++;
	return 0;
}

/* "a\tb\tc" (COPY text, \N for none) -> three JSON values (strings or null). */
static int wl_json(json_t *arr, const char *wl)
{
	const char *p = wl;
	for (int i = 0; i < 3; i++) {
		const char *e = p;
		while (*e && *e != '\t')
			e++;
		json_t *v;
		size_t n = (size_t)(e - p);
		if (!*wl || (n == 2 && p[0] == '\\' && p[1] == 'N')) {
			v = json_null();
		} else {
			/* undo COPY's escapes */
			char *s = malloc(n + 1);
			if (!s)
				return -ENOMEM;
			size_t o = 0;
			for (size_t j = 0; j < n; j++) {
				char c = p[j];
				if (c == '\\' && j + 1 < n) {
					c = p[++j];
					c = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
				}
				s[o++] = c;
			}
			s[o] = '\0';
			v = json_stringn(s, o);
			free(s);
		}
		if (!v || json_array_append_new(arr, v))
			return -ENOMEM;
		p = *e ? e + 1 : e;
	}
	return 0;
}

int workloads_pending_json(struct workloads *k, struct workload_runs *r, char **json)
{
	*json = NULL;
	if (!r->nruns)
		return 0;
	json_t *all = json_array();
	if (!all)
		return -ENOMEM;
	bool *send = calloc(r->ngpus, sizeof(*send));
	if (!send) {
		json_decref(all);
		return -ENOMEM;
	}
	int rc = 0;
	pthread_mutex_lock(&k->lock);
	for (size_t g = 0; g < r->ngpus; g++) {
		const struct run_gpu *rg = &r->gpus[g];
		const struct run *newest = &r->runs[rg->last];
		uint32_t mi;
		send[g] = rg->nruns > 1 || !index_get(&k->ix, rg->key, &mi);
		if (!send[g]) {
			const struct merged *m = &k->m[mi];
			send[g] = strcmp(m->wl, newest->wl) != 0 ||
			          newest->last - m->last >= WORKLOADS_TOUCH_S;
		}
	}
	/* the current row's unsent tail first: it extends the row the GPU had (same workload,
	 * starting at or before what was merged), before a new run may start a new row */
	for (size_t g = 0; g < r->ngpus; g++) {
		uint32_t mi;
		if (!send[g] || !index_get(&k->ix, r->gpus[g].key, &mi) ||
		    !(k->m[mi].seen > k->m[mi].last))
			continue;
		const struct merged *m = &k->m[mi];
		json_t *a = json_array();
		if (!a || json_array_append_new(all, a) ||
		    json_array_append_new(a, json_string(r->gpus[g].key)) || wl_json(a, m->wl) ||
		    json_array_append_new(a, json_real(m->last)) ||
		    json_array_append_new(a, json_real(m->seen))) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < r->nruns; i++) {
		struct run *ru = &r->runs[i];
		if (!send[ru->gpu])
			continue;
		json_t *a = json_array();
		if (!a || json_array_append_new(all, a) ||
		    json_array_append_new(a, json_string(r->gpus[ru->gpu].key)) ||
		    wl_json(a, ru->wl) || json_array_append_new(a, json_real(ru->first)) ||
		    json_array_append_new(a, json_real(ru->last))) {
			rc = -ENOMEM;
			goto out;
		}
		ru->sent = true;
	}
out:
	pthread_mutex_unlock(&k->lock);
	free(send);
	if (!rc && json_array_size(all)) {
		*json = json_dumps(all, JSON_COMPACT | JSON_REAL_PRECISION(17));
		if (!*json)
			rc = -ENOMEM;
	}
	json_decref(all);
	return rc;
}

void workloads_committed(struct workloads *k, const struct workload_runs *r)
{
	pthread_mutex_lock(&k->lock);
	for (size_t g = 0; g < r->ngpus; g++) {
		const struct run *newest = &r->runs[r->gpus[g].last];
		uint32_t mi;
		if (!newest->sent) { /* committed without moving last_seen: remember how far */
			if (index_get(&k->ix, r->gpus[g].key, &mi) &&
			    strcmp(k->m[mi].wl, newest->wl) == 0 && newest->last > k->m[mi].seen)
				k->m[mi].seen = newest->last;
			continue;
		}
		if (index_get(&k->ix, r->gpus[g].key, &mi)) {
			struct merged *m = &k->m[mi];
			if (newest->last <= m->last) /* another batch merged a later one */
				continue;
			char *w = strdup(newest->wl);
			if (!w)
				continue; /* merged again next time */
			free(m->wl);
			m->wl = w;
			m->last = newest->last;
			m->seen = newest->last;
			continue;
		}
		if (grow_array((void **)&k->m, &k->cap, k->n + 1, sizeof(*k->m), 64))
			break;
		char *w = strdup(newest->wl);
		if (!w || index_put(&k->ix, r->gpus[g].key, (uint32_t)k->n)) {
			free(w);
			break;
		}
		k->m[k->n++] = (struct merged){w, newest->last, newest->last, 0};
	}
	pthread_mutex_unlock(&k->lock);
}

int workloads_tails_json(struct workloads *k, double before, char **json)
{
	*json = NULL;
	json_t *all = json_array();
	if (!all)
		return -ENOMEM;
	int rc = 0;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->ix.cap; i++) {
		if (!k->ix.keys[i])
			continue;
		struct merged *m = &k->m[k->ix.val[i]];
		if (!(m->seen > m->last) || m->seen >= before)
			continue;
		json_t *a = json_array();
		if (!a || json_array_append_new(all, a) ||
		    json_array_append_new(a, json_string(k->ix.keys[i])) || wl_json(a, m->wl) ||
		    json_array_append_new(a, json_real(m->last)) ||
		    json_array_append_new(a, json_real(m->seen))) {
			rc = -ENOMEM;
			break;
		}
		m->tail_sent = m->seen;
	}
	pthread_mutex_unlock(&k->lock);
	if (!rc && json_array_size(all)) {
		*json = json_dumps(all, JSON_COMPACT | JSON_REAL_PRECISION(17));
		if (!*json)
			rc = -ENOMEM;
	}
	json_decref(all);
	return rc;
}

void workloads_tails_committed(struct workloads *k)
{
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n; i++) {
		struct merged *m = &k->m[i];
		if (m->tail_sent > m->last)
			m->last = m->tail_sent;
		m->tail_sent = 0;
	}
	pthread_mutex_unlock(&k->lock);
}

bool workloads_db_ready(PGconn *db)
{
	PGresult *r = pg_exec_simple(
	    db, "SELECT to_regprocedure('gpuhealth_merge_workloads(jsonb)') IS NOT NULL");
	bool ok = pg_tuples_ok(r) && pg_rows(r) == 1 && strcmp(pg_text(r, 0, 0), "t") == 0;
	pg_clear(r);
	return ok;
}
