#include "health/alertmanager.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errmsg.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "core/waiter.h"
#include "health/webhook.h"

#define BACKOFF_MIN_S 0.5
#define WAKE_MAX_S    1.0

/* A prepared change: built by the scorer thread, handed to the sender. */
struct alertmanager_alert {
	char *id; /* "key\x1fkind", owned */
	bool firing;
	char *severity; /* the severity label, owned */
	double time;
	json_t *obj; /* owned: the Alertmanager alert (labels, annotations, startsAt, ...) */
};

/* One alert the sender holds. */
struct entry {
	char *id; /* owned */
	bool firing;
	json_t *obj;        /* owned */
	uint32_t delivered; /* bit u: Alertmanager u took this version */
	uint64_t gen;       /* bumped at every change */
	uint64_t seq;       /* unique, in arrival order */
};

struct target {
	char *url; /* owned: base + /api/v2/alerts */
	double next_try, next_resend, backoff;
	bool failing;
};

struct alertmanager {
	struct target t[ALERTMANAGER_MAX_URLS];
	size_t nt;
	double resend_s;
	long timeout_ms;
	char *api_url; /* owned; NULL: no generatorURL */
	json_t *gpus;  /* GPU key -> labels object; the scorer thread's */
	/* restored alerts waiting for their GPU's labels; the scorer thread's */
	struct alertmanager_alert **rest;
	size_t nrest, caprest;

	struct waiter wt; /* the sender thread; its lock guards everything below */
	struct entry *e;
	size_t n, cap;
	uint64_t seq;
	struct alertmanager_stats st;
};

const char *alertmanager_alertname(const char *kind)
{
	return strcmp(kind, "failure_risk") == 0 ? "GPUFailureRisk" : "GPUHealth";
}

/* ---- labels of a GPU, from its events (scorer thread) */

static void set_str(json_t *labels, const char *name, const json_t *v)
{
	if (json_is_string(v) && json_string_length(v) > 0)
		json_object_set_new(labels, name, json_string(json_string_value(v)));
}

static void relabel_restored(struct alertmanager *am, const char *key, const json_t *labels);

int alertmanager_note_event(struct alertmanager *am, const char *key, const char *text, size_t len,
                            bool force)
{
	if (!force && json_object_get(am->gpus, key))
		return 0;
	json_t *ev = json_loadb(text, len, 0, NULL);
	if (!json_is_object(ev)) {
		json_decref(ev);
		return 0; /* not an event: the scorer counts it */
	}
	json_t *labels = json_object();
	if (!labels) {
		json_decref(ev);
		return -ENOMEM;
	}
	const json_t *gpu = json_object_get(ev, "gpu");
	set_str(labels, "gpu_uuid", json_object_get(gpu, "uuid"));
	const json_t *idx = json_object_get(gpu, "index");
	if (json_is_integer(idx)) {
		char b[24];
		snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(idx));
		json_object_set_new(labels, "gpu", json_string(b));
	}
	const json_t *mig = json_object_get(gpu, "mig_instance");
	if (json_is_integer(mig)) { /* dcgm-exporter's label of a MIG instance */
		char b[24];
		snprintf(b, sizeof(b), "%lld", (long long)json_integer_value(mig));
		json_object_set_new(labels, "GPU_I_ID", json_string(b));
	} else {
		set_str(labels, "GPU_I_ID", mig);
	}
	set_str(labels, "hostname", json_object_get(ev, "hostname"));
	set_str(labels, "cluster", json_object_get(ev, "cluster"));
	set_str(labels, "datacenter", json_object_get(ev, "datacenter"));
	set_str(labels, "rack", json_object_get(ev, "rack"));
	const json_t *wl = json_object_get(ev, "workload");
	set_str(labels, "namespace", json_object_get(wl, "namespace"));
	set_str(labels, "pod", json_object_get(wl, "pod"));
	json_decref(ev);
	if (json_object_set_new(am->gpus, key, labels)) /* the map owns labels */
		return -ENOMEM;
	if (am->nrest)
		relabel_restored(am, key, labels);
	return 0;
}

/* Appends key to b, percent-encoded as one path segment. */
static int put_escaped(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			rc = strbuf_append(b, (const char *)p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			rc = strbuf_append(b, e, 3);
		}
	}
	return rc;
}

void alertmanager_alert_free(struct alertmanager_alert *a)
{
	if (!a)
		return;
	free(a->id);
	free(a->severity);
	json_decref(a->obj);
	free(a);
}

struct alertmanager_alert *alertmanager_alert_new(struct alertmanager *am,
                                                  const struct alertmanager_change *c)
{
	struct alertmanager_alert *a = calloc(1, sizeof(*a));
	struct strbuf gen;
	strbuf_init(&gen, 4096);
	char ts[40];
	if (!a)
		goto fail;
	size_t idlen = strlen(c->key) + strlen(c->kind) + 2;
	if (!(a->id = malloc(idlen)))
		goto fail;
	snprintf(a->id, idlen, "%s\x1f%s", c->key, c->kind);
	a->firing = c->firing;
	a->time = c->time;
	a->severity = strdup(c->critical ? "critical" : "warning");
	const json_t *known = json_object_get(am->gpus, c->key);
	json_t *labels = known ? json_deep_copy(known) : json_object();
	if (!a->severity || !labels)
		goto fail_labels;
	if (!json_object_get(labels, "gpu_uuid")) {
		char uuid[200];
		snprintf(uuid, sizeof(uuid), "%.*s", (int)strcspn(c->key, "/"), c->key);
		json_object_set_new(labels, "gpu_uuid", json_string(uuid));
	}
	if (!json_object_get(labels, "hostname") && c->hostname && *c->hostname)
		json_object_set_new(labels, "hostname", json_string(c->hostname));
	json_object_set_new(labels, "alertname", json_string(alertmanager_alertname(c->kind)));
	json_object_set_new(labels, "severity", json_string(a->severity));
	char prob[32];
	snprintf(prob, sizeof(prob), "%.4g", c->failure_probability);
	json_t *ann = json_object();
	if (!ann)
		goto fail_labels;
	json_object_set_new(ann, "summary", json_string(c->summary ? c->summary : ""));
	json_object_set_new(ann, "description", json_string(c->description ? c->description : ""));
	json_object_set_new(ann, "remedy", json_string(c->remedy ? c->remedy : "keep"));
	json_object_set_new(ann, "recommended_action",
	                    json_string(c->recommended_action ? c->recommended_action : "keep"));
	json_object_set_new(ann, "failure_probability", json_string(prob));
	time_format_rfc3339(c->time, ts, sizeof(ts));
	a->obj = json_pack("{s:o, s:o, s:s}", "labels", labels, "annotations", ann, "startsAt", ts);
	labels = NULL; /* json_pack took both, also on failure */
	if (!a->obj)
		goto fail;
	if (am->api_url) {
		int rc = strbuf_puts(&gen, am->api_url);
		rc = rc ? rc : strbuf_puts(&gen, "/api/v1/gpus/");
		rc = rc ? rc : put_escaped(&gen, c->key);
		if (rc ||
		    json_object_set_new(a->obj, "generatorURL", json_stringn(gen.data, gen.len)))
			goto fail;
	}
	strbuf_free(&gen);
	return a; /* caller owns */
fail_labels:
	json_decref(labels);
fail:
	strbuf_free(&gen);
	alertmanager_alert_free(a);
	return NULL;
}

/* ---- alerts open at start */

int alertmanager_restore(struct alertmanager *am, const char *key, const char *kind, bool critical,
                         double raised_at, const char *hostname, const char *message,
                         const char *details)
{
	json_t *d = details ? json_loads(details, 0, NULL) : NULL;
	struct strbuf desc;
	strbuf_init(&desc, 4096);
	const json_t *reasons = json_object_get(d, "reasons"), *x;
	const char *remedy = NULL;
	size_t i;
	json_array_foreach(reasons, i, x)
	{
		const char *sev = json_string_value(json_object_get(x, "severity"));
		if (!sev || strcmp(sev, "info") == 0)
			continue;
		if (!remedy)
			remedy = json_string_value(json_object_get(x, "remedy"));
		strbuf_printf(&desc, "%s%s (%s, %s): %s", desc.len ? "; " : "",
		              json_string_value(json_object_get(x, "code")) ?: "?",
		              json_string_value(json_object_get(x, "component")) ?: "?", sev,
		              json_string_value(json_object_get(x, "text")) ?: "");
	}
	struct alertmanager_change c = {
	    .key = key,
	    .kind = kind,
	    .firing = true,
	    .critical = critical,
	    .time = raised_at,
	    .hostname = hostname,
	    .summary = message,
	    .description = desc.len ? desc.data : message,
	    .remedy = remedy,
	    .recommended_action = json_string_value(json_object_get(d, "recommendation")),
	    .failure_probability = json_number_value(json_object_get(d, "probability")),
	};
	struct alertmanager_alert *a = alertmanager_alert_new(am, &c);
	strbuf_free(&desc);
	json_decref(d);
	if (!a)
		return -ENOMEM;
	if (json_object_get(am->gpus, key)) { /* labels known already */
		alertmanager_post(am, a);
		return 0;
	}
	if (grow_array((void **)&am->rest, &am->caprest, am->nrest + 1, sizeof(*am->rest), 16)) {
		alertmanager_alert_free(a);
		return -ENOMEM;
	}
	am->rest[am->nrest++] = a; /* ours until the GPU's labels are known */
	return 0;
}

/* The restored alerts of key get the GPU's labels and go to the sender. */
static void relabel_restored(struct alertmanager *am, const char *key, const json_t *labels)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < am->nrest;) {
		struct alertmanager_alert *a = am->rest[i];
		if (strncmp(a->id, key, kl) != 0 || a->id[kl] != '\x1f') {
			i++;
			continue;
		}
		am->rest[i] = am->rest[--am->nrest];
		json_t *old = json_object_get(a->obj, "labels");
		json_t *nl = json_deep_copy(labels);
		if (nl) {
			json_object_set(nl, "alertname", json_object_get(old, "alertname"));
			json_object_set(nl, "severity", json_object_get(old, "severity"));
			json_object_set_new(a->obj, "labels", nl);
		}
		alertmanager_post(am, a);
	}
}

/* ---- the table (lock held) */

static struct entry *find_firing(struct alertmanager *am, const char *id)
{
	for (size_t i = 0; i < am->n; i++)
		if (am->e[i].firing && strcmp(am->e[i].id, id) == 0)
			return &am->e[i];
	return NULL;
}

static void entry_free(struct entry *e)
{
	free(e->id);
	json_decref(e->obj);
}

/* Keeps the order of arrival, so a POST carries an alert's resolve before a new alert with the
 * same labels (a raise again before the resolve was delivered). */
static void remove_at(struct alertmanager *am, size_t i)
{
	entry_free(&am->e[i]);
	memmove(&am->e[i], &am->e[i + 1], (am->n - i - 1) * sizeof(*am->e));
	am->n--;
}

static void resolve(struct entry *e, double t)
{
	char ts[40];
	time_format_rfc3339(t, ts, sizeof(ts));
	json_object_set_new(e->obj, "endsAt", json_string(ts));
	e->firing = false;
	e->gen++;
	e->delivered = 0;
}

/* Adds a's alert as a new entry; takes a->id and a->obj. Returns false when dropped. */
static bool add_entry(struct alertmanager *am, struct alertmanager_alert *a)
{
	if (am->n >= ALERTMANAGER_MAX_ALERTS) {
		size_t old = am->n;
		for (size_t i = 0; i < am->n; i++)
			if (!am->e[i].firing && (old == am->n || am->e[i].seq < am->e[old].seq))
				old = i;
		if (old == am->n)
			return false; /* all firing: the new one goes */
		remove_at(am, old);
		am->st.dropped++;
	}
	if (grow_array((void **)&am->e, &am->cap, am->n + 1, sizeof(*am->e), 64))
		return false;
	struct entry *e = &am->e[am->n++];
	memset(e, 0, sizeof(*e));
	e->id = a->id;
	e->obj = a->obj;
	a->id = NULL;
	a->obj = NULL;
	e->firing = a->firing;
	e->seq = ++am->seq;
	e->gen = 1;
	return true;
}

void alertmanager_post(struct alertmanager *am, struct alertmanager_alert *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&am->wt.lock);
	struct entry *cur = find_firing(am, a->id);
	if (a->firing) {
		const char *sev = cur ? json_string_value(json_object_get(
		                            json_object_get(cur->obj, "labels"), "severity"))
		                      : NULL;
		if (cur && sev && strcmp(sev, a->severity) == 0) {
			/* raised again at the same severity: same alert, fresh annotations */
			json_object_set(cur->obj, "annotations",
			                json_object_get(a->obj, "annotations"));
			cur->gen++;
			cur->delivered = 0;
		} else {
			if (cur) /* another severity is another alert: the old one ends now */
				resolve(cur, a->time);
			if (!add_entry(am, a)) {
				am->st.dropped++;
				log_warn(
				    "scorer: alertmanager: more than %d alerts held; one dropped",
				    ALERTMANAGER_MAX_ALERTS);
			}
		}
	} else if (cur) {
		resolve(cur, a->time);
	} else {
		log_debug(
		    "scorer: alertmanager: a cleared alert it never sent (open before a restart)");
	}
	waiter_wake_locked(&am->wt);
	pthread_mutex_unlock(&am->wt.lock);
	alertmanager_alert_free(a);
}

/* ---- the sender thread */

struct sent {
	uint64_t seq, gen;
};

/* One POST to target u of up to ALERTMANAGER_BATCH alerts it has not taken. Lock held (released
 * around the POST). Returns 1 when something was sent, 0 when nothing was pending, -EIO. */
static int send_some(struct alertmanager *am, CURL *c, size_t u, struct sent *sent)
{
	uint32_t bit = 1u << u;
	json_t *arr = json_array();
	size_t k = 0;
	for (size_t i = 0; arr && i < am->n && k < ALERTMANAGER_BATCH; i++) {
		if (am->e[i].delivered & bit)
			continue;
		json_array_append(arr, am->e[i].obj);
		sent[k].seq = am->e[i].seq;
		sent[k].gen = am->e[i].gen;
		k++;
	}
	if (!arr)
		return -ENOMEM;
	if (!k) {
		json_decref(arr);
		return 0;
	}
	char *body = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!body)
		return -ENOMEM;
	char why[256] = "";
	pthread_mutex_unlock(&am->wt.lock);
	int rc = webhook_post_json(c, am->t[u].url, body, strlen(body), am->timeout_ms, why,
	                           sizeof(why));
	pthread_mutex_lock(&am->wt.lock);
	free(body);
	struct target *t = &am->t[u];
	double now = time_mono();
	if (rc) {
		am->st.failed++;
		t->backoff = t->backoff > 0 ? t->backoff * 2 : BACKOFF_MIN_S;
		double cap = am->resend_s > BACKOFF_MIN_S ? am->resend_s : BACKOFF_MIN_S;
		if (t->backoff > cap)
			t->backoff = cap;
		t->next_try = now + t->backoff;
		if (!t->failing)
			log_warn(
			    "scorer: alertmanager %zu of %zu: POST failed (%s); %zu alert(s) wait, "
			    "retrying with backoff",
			    u + 1, am->nt, why, k);
		t->failing = true;
		return -EIO;
	}
	for (size_t j = 0; j < k; j++)
		for (size_t i = 0; i < am->n; i++)
			if (am->e[i].seq == sent[j].seq) {
				if (am->e[i].gen == sent[j].gen)
					am->e[i].delivered |= bit;
				break;
			}
	am->st.posts++;
	am->st.sent += k;
	t->backoff = 0;
	if (t->failing)
		log_info("scorer: alertmanager %zu of %zu: back; alerts delivered", u + 1, am->nt);
	t->failing = false;
	return 1;
}

static void prune(struct alertmanager *am)
{
	uint32_t all = am->nt >= 32 ? 0xffffffffu : (1u << am->nt) - 1;
	size_t firing = 0, pending = 0, k = 0;
	for (size_t i = 0; i < am->n; i++) { /* one pass, keeping the order of arrival */
		if (!am->e[i].firing && (am->e[i].delivered & all) == all) {
			entry_free(&am->e[i]);
			continue;
		}
		firing += am->e[i].firing;
		pending += (am->e[i].delivered & all) != all;
		am->e[k++] = am->e[i];
	}
	am->n = k;
	am->st.firing = firing;
	am->st.pending = pending;
}

static void *sender(void *arg)
{
	struct alertmanager *am = arg;
	CURL *c = curl_easy_init();
	struct sent *sent = calloc(ALERTMANAGER_BATCH, sizeof(*sent));
	if (!c || !sent)
		log_error(
		    "scorer: alertmanager: out of memory starting the sender; no alert is sent");
	pthread_mutex_lock(&am->wt.lock);
	bool last = false;
	while (c && sent) {
		last = am->wt.stop;
		double now = time_mono(), wake = now + WAKE_MAX_S;
		bool more = false;
		for (size_t u = 0; u < am->nt; u++) {
			struct target *t = &am->t[u];
			if (now >= t->next_resend) { /* every firing alert again */
				for (size_t i = 0; i < am->n; i++)
					if (am->e[i].firing)
						am->e[i].delivered &= ~(1u << u);
				t->next_resend = now + am->resend_s;
			}
			if (t->next_resend < wake)
				wake = t->next_resend;
			if (!last && now < t->next_try) {
				if (t->next_try < wake)
					wake = t->next_try;
				continue;
			}
			int rc = send_some(am, c, u, sent);
			if (rc == 1)
				more = true; /* perhaps another batch: look again at once */
			else if (rc == -EIO && t->next_try < wake)
				wake = t->next_try;
		}
		prune(am);
		if (last)
			break;
		if (!more) /* until wake, or a new alert */
			waiter_sleep_locked(&am->wt, wake - time_mono());
	}
	pthread_mutex_unlock(&am->wt.lock);
	free(sent);
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

/* ---- life */

int alertmanager_create(struct alertmanager **out, const struct alertmanager_opts *o, char *err,
                        size_t errlen)
{
	if (o->nurls == 0 || o->nurls > ALERTMANAGER_MAX_URLS) {
		snprintf(err, errlen, "--alertmanager: give 1 to %d Alertmanager URLs (got %zu)",
		         ALERTMANAGER_MAX_URLS, o->nurls);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->nurls; i++) {
		const char *u = o->urls[i] ? o->urls[i] : "";
		if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0) {
			/* not the URL itself: it may hold credentials */
			snprintf(
			    err, errlen,
			    "--alertmanager: URL %zu of %zu must start with http:// or https:// "
			    "(e.g. http://alertmanager:9093)",
			    i + 1, o->nurls);
			return -EINVAL;
		}
	}
	if (o->api_url && *o->api_url && strncmp(o->api_url, "http://", 7) != 0 &&
	    strncmp(o->api_url, "https://", 8) != 0) {
		snprintf(err, errlen,
		         "--api-url must start with http:// or https:// (e.g. "
		         "http://gpuhealth-api:8080)");
		return -EINVAL;
	}
	struct alertmanager *am = waiter_calloc(sizeof(*am), offsetof(struct alertmanager, wt));
	if (!am)
		goto oom;
	am->resend_s = o->resend_s > 0 ? o->resend_s : 60;
	am->timeout_ms = o->timeout_s > 0 ? (long)(o->timeout_s * 1000) : 10000;
	if (am->timeout_ms < 1)
		am->timeout_ms = 1;
	if (!(am->gpus = json_object()))
		goto oom;
	if (o->api_url && *o->api_url) {
		size_t l = strlen(o->api_url);
		while (l > 0 && o->api_url[l - 1] == '/')
			l--;
		if (!(am->api_url = strndup(o->api_url, l)))
			goto oom;
	}
	for (size_t i = 0; i < o->nurls; i++) {
		size_t l = strlen(o->urls[i]);
		while (l > 0 && o->urls[i][l - 1] == '/')
			l--;
		size_t n = l + sizeof("/api/v2/alerts");
		if (!(am->t[i].url = malloc(n)))
			goto oom;
		snprintf(am->t[i].url, n, "%.*s/api/v2/alerts", (int)l, o->urls[i]);
		am->nt++;
	}
	int rc = waiter_start(&am->wt, sender, am);
	if (rc) {
		snprintf(err, errlen, "cannot start the Alertmanager thread: %s", strerror(-rc));
		alertmanager_destroy(am);
		return rc;
	}
	*out = am; /* caller owns: alertmanager_destroy */
	return 0;
oom:
	alertmanager_destroy(am);
	return errmsg_oom(-ENOMEM, err, errlen, "the Alertmanager sender");
}

void alertmanager_stats(struct alertmanager *am, struct alertmanager_stats *out)
{
	pthread_mutex_lock(&am->wt.lock);
	*out = am->st;
	pthread_mutex_unlock(&am->wt.lock);
}

void alertmanager_destroy(struct alertmanager *am)
{
	if (!am)
		return;
	waiter_stop(&am->wt);
	for (size_t i = 0; i < am->n; i++)
		entry_free(&am->e[i]);
	free(am->e);
	for (size_t i = 0; i < am->nt; i++)
		free(am->t[i].url);
	json_decref(am->gpus);
	for (size_t i = 0; i < am->nrest; i++)
		alertmanager_alert_free(am->rest[i]);
	free(am->rest);
	free(am->api_url);
	waiter_destroy(&am->wt);
	free(am);
}
