#include "health/health_metrics.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

struct hm_gpu {
	char *key;    /* owned */
	char *labels; /* owned: the rendered label pairs, without braces; NULL until known */
	int score;
	enum health_status status;
	double probability;
	enum health_action action;
	double seen; /* time_mono() of the last verdict; 0: none yet */
};

struct health_metrics {
	pthread_mutex_t lock; /* guards everything below */
	double stale_s;
	struct hm_gpu *gpus;
	size_t n, cap;
	json_t *index; /* key -> position in gpus */
};

int health_metrics_create(struct health_metrics **out, double stale_s)
{
	struct health_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->index = json_object();
	if (!m->index) {
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->stale_s = stale_s > 0 ? stale_s : HEALTH_METRICS_STALE_S;
	*out = m;
	return 0;
}

static void gpu_free(struct hm_gpu *g)
{
	free(g->key);
	free(g->labels);
}

void health_metrics_destroy(struct health_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		gpu_free(&m->gpus[i]);
	free(m->gpus);
	json_decref(m->index);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* Appends name="value" (escaped as the text format wants), comma-separated; nothing for NULL or
 * "". */
static int put_label(struct strbuf *b, const char *name, const char *v)
{
	if (!v || !*v)
		return 0;
	int rc = strbuf_printf(b, "%s%s=\"", b->len ? "," : "", name);
	rc = rc ? rc : strbuf_put_label_value(b, v);
	return rc ? rc : strbuf_puts(b, "\"");
}

/* Hands b's text to *out (the caller's; "" for no labels), or frees it and returns -ENOMEM
 * when rc (a put_label's) says so. */
static int labels_done(struct strbuf *b, int rc, char **out)
{
	if (!rc && !b->data)
		rc = strbuf_puts(b, "");
	if (rc) {
		strbuf_free(b);
		return -ENOMEM;
	}
	*out = b->data;
	return 0;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The label pairs of an event (dcgm-exporter's names); *out owned by the caller. */
static int event_labels(const json_t *ev, char **out)
{
	struct strbuf b;
	strbuf_init(&b, 1 << 16);
	char n[24];
	const json_t *gpu = json_object_get(ev, "gpu");
	const json_t *idx = json_object_get(gpu, "index");
	int rc = 0;
	if (json_is_integer(idx)) {
		snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(idx));
		rc = put_label(&b, "gpu", n);
	}
	rc = rc ? rc : put_label(&b, "UUID", jstr(gpu, "uuid"));
	rc = rc ? rc : put_label(&b, "Hostname", jstr(ev, "hostname"));
	const json_t *mig = json_object_get(gpu, "mig_instance");
	if (json_is_integer(mig)) {
		snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(mig));
		rc = rc ? rc : put_label(&b, "GPU_I_ID", n);
	} else {
		rc = rc ? rc : put_label(&b, "GPU_I_ID", json_string_value(mig));
	}
	rc = rc ? rc : put_label(&b, "cluster", jstr(ev, "cluster"));
	rc = rc ? rc : put_label(&b, "datacenter", jstr(ev, "datacenter"));
	rc = rc ? rc : put_label(&b, "rack", jstr(ev, "rack"));
	const json_t *wl = json_object_get(ev, "workload");
	rc = rc ? rc : put_label(&b, "namespace", jstr(wl, "namespace"));
	rc = rc ? rc : put_label(&b, "pod", jstr(wl, "pod"));
	rc = rc ? rc : put_label(&b, "container", jstr(wl, "container"));
	return labels_done(&b, rc, out);
}

/* The labels of a GPU known only by its key: UUID[/GPU_I_ID]. */
static int key_labels(const char *key, char **out)
{
	struct strbuf b;
	strbuf_init(&b, 1 << 16);
	const char *slash = strchr(key, '/');
	char uuid[HS_KEY_MAX];
	snprintf(uuid, sizeof(uuid), "%.*s", (int)(slash ? (size_t)(slash - key) : strlen(key)),
	         key);
	int rc = put_label(&b, "UUID", uuid);
	rc = rc ? rc : put_label(&b, "GPU_I_ID", slash ? slash + 1 : NULL);
	return labels_done(&b, rc, out);
}

/* The entry of key, created when absent (lock held). NULL: out of memory. */
static struct hm_gpu *find_or_add(struct health_metrics *m, const char *key)
{
	const json_t *at = json_object_get(m->index, key);
	if (at)
		return &m->gpus[json_integer_value(at)];
	if (grow_array((void **)&m->gpus, &m->cap, m->n + 1, sizeof(*m->gpus), 64))
		return NULL;
	struct hm_gpu *g = &m->gpus[m->n];
	memset(g, 0, sizeof(*g));
	g->key = strdup(key);
	if (!g->key || json_object_set_new(m->index, key, json_integer((json_int_t)m->n))) {
		free(g->key);
		return NULL;
	}
	m->n++;
	return g;
}

int health_metrics_note_event(struct health_metrics *m, const char *key, const char *text,
                              size_t len)
{
	json_t *ev = json_loadb(text, len, 0, NULL);
	if (!json_is_object(ev)) {
		json_decref(ev);
		return 0; /* not an event: the scorer counts it */
	}
	char *labels = NULL;
	int rc = event_labels(ev, &labels);
	json_decref(ev);
	if (rc)
		return rc;
	pthread_mutex_lock(&m->lock);
	struct hm_gpu *g = find_or_add(m, key);
	if (g) {
		free(g->labels);
		g->labels = labels; /* the entry owns it */
		labels = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	free(labels);
	return g ? 0 : -ENOMEM;
}

int health_metrics_set(struct health_metrics *m, const char *key, int score,
                       enum health_status status, double probability, enum health_action action,
                       double now)
{
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	struct hm_gpu *g = find_or_add(m, key);
	if (!g || (!g->labels && key_labels(key, &g->labels))) {
		rc = -ENOMEM;
	} else {
		g->score = score;
		g->status = status;
		g->probability = probability;
		g->action = action;
		g->seen = now;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

size_t health_metrics_count(struct health_metrics *m)
{
	pthread_mutex_lock(&m->lock);
	size_t n = m->n;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* Drops the entries not evaluated within stale_s (lock held). */
static void prune(struct health_metrics *m, double now)
{
	for (size_t i = 0; i < m->n;) {
		struct hm_gpu *g = &m->gpus[i];
		/* seen 0: labels noted, the verdict on its way from the scorer thread */
		if (g->seen == 0 || now - g->seen <= m->stale_s) {
			i++;
			continue;
		}
		json_object_del(m->index, g->key);
		gpu_free(g);
		m->n--;
		if (i != m->n) {
			m->gpus[i] = m->gpus[m->n];
			json_object_set_new(m->index, m->gpus[i].key, json_integer((json_int_t)i));
		}
	}
}

static const char *const STATUS[] = {"pass", "warn", "fail"};

/* One GPU's series of a one-of family: gpuhealth_gpu_NAME{LABELS,LABEL="names[k]"} 1 for k ==
 * which, 0 for the others. */
static int one_of(struct strbuf *out, const char *name, const char *labels, const char *label,
                  const char *const *names, int n, int which)
{
	int rc = 0;
	for (int k = 0; k < n && !rc; k++)
		rc = strbuf_printf(out, "gpuhealth_gpu_%s{%s%s%s=\"%s\"} %d\n", name, labels,
		                   labels[0] ? "," : "", label, names[k], k == which);
	return rc;
}

/* A family's HELP and TYPE lines: gpuhealth_gpu_NAME, a gauge. */
static int gauge(struct strbuf *out, const char *name, const char *help)
{
	return strbuf_printf(out, "# HELP gpuhealth_gpu_%s %s\n# TYPE gpuhealth_gpu_%s gauge\n",
	                     name, help, name);
}

int health_metrics_render(struct health_metrics *m, struct strbuf *out, double now)
{
	struct hm_gpu *snap = NULL;
	size_t n = 0;
	int rc = 0;
	pthread_mutex_lock(&m->lock);
	prune(m, now);
	snap = calloc(m->n ? m->n : 1, sizeof(*snap));
	for (size_t i = 0; snap && i < m->n; i++) {
		if (!m->gpus[i].seen)
			continue;
		snap[n] = m->gpus[i];
		snap[n].key = NULL;
		snap[n].labels = strdup(m->gpus[i].labels ? m->gpus[i].labels : "");
		if (!snap[n++].labels) {
			rc = -ENOMEM;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (!snap)
		return -ENOMEM;
	/* rendered outside the lock: the scorer thread never waits for a slow scrape */
	rc = rc ? rc
	        : gauge(out, "health_score",
	                "The GPU's health score from the scorer's rules: 100 healthy, 0 failed.");
	for (size_t i = 0; i < n && !rc; i++)
		rc = strbuf_printf(out, "gpuhealth_gpu_health_score{%s} %d\n", snap[i].labels,
		                   snap[i].score);
	rc = rc ? rc
	        : gauge(out, "health_status",
	                "The GPU's health status: 1 for the status it has (pass, warn or fail), 0 "
	                "for the others.");
	for (size_t i = 0; i < n && !rc; i++)
		rc = one_of(out, "health_status", snap[i].labels, "status", STATUS, 3,
		            (int)snap[i].status - HEALTH_PASS);
	rc = rc ? rc
	        : gauge(out, "failure_probability",
	                "The predicted probability that the GPU fails within the scorer's "
	                "--horizon (0 to 1).");
	for (size_t i = 0; i < n && !rc; i++)
		rc = strbuf_printf(out, "gpuhealth_gpu_failure_probability{%s} %.6g\n",
		                   snap[i].labels, snap[i].probability);
	rc = rc ? rc
	        : gauge(out, "recommended_action",
	                "The action the scorer recommends for the GPU: 1 for it (keep, drain, "
	                "reset, reboot or rma), 0 for the others.");
	const char *actions[ACT_COUNT];
	for (int a = 0; a < ACT_COUNT; a++)
		actions[a] = health_action_name((enum health_action)a);
	for (size_t i = 0; i < n && !rc; i++)
		rc = one_of(out, "recommended_action", snap[i].labels, "action", actions, ACT_COUNT,
		            (int)snap[i].action);
	for (size_t i = 0; i < n; i++)
		free(snap[i].labels);
	free(snap);
	return rc;
}
