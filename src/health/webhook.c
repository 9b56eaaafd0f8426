#include "health/webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

struct body {
	char *p; /* owned */
	size_t len;
};

struct webhook {
	char *url;
	long timeout_ms;
	int retries;
	double backoff_s;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	struct body q[WEBHOOK_QUEUE_MAX]; /* ring */
	size_t head, n;
	struct webhook_stats st;
};

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

int webhook_post_json(CURL *c, const char *url, const char *body, size_t len, long timeout_ms,
                      char *why, size_t whylen)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "gpuhealth-scorer");
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	int out = -EIO;
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "%s", curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code < 300)
			out = 0;
		else
			snprintf(why, whylen, "HTTP %ld", code);
	}
	curl_slist_free_all(h);
	return out;
}

/* One POST. Returns 0 on a 2xx answer. */
static int post_once(struct webhook *w, CURL *c, const struct body *b, char *why, size_t whylen)
{
	return webhook_post_json(c, w->url, b->p, b->len, w->timeout_ms, why, whylen);
}

/* Waits up to s seconds or until stop. Returns true when stopping. Call with the lock held. */
static bool wait_stop(struct webhook *w, double s)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double whole = (double)(long)s;
	ts.tv_sec += (time_t)whole;
	ts.tv_nsec += (long)((s - whole) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!w->stop)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	return w->stop;
}

static void *sender(void *arg)
{
	struct webhook *w = arg;
	CURL *c = curl_easy_init();
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		if (!w->n) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		struct body b = w->q[w->head]; /* ours now */
		w->q[w->head].p = NULL;
		w->head = (w->head + 1) % WEBHOOK_QUEUE_MAX;
		w->n--;
		bool ok = false;
		char why[256] = "no curl handle";
		for (int attempt = 0; c && attempt <= w->retries && !w->stop; attempt++) {
			if (attempt && wait_stop(w, w->backoff_s * (double)(1u << (attempt - 1 < 10 ? attempt - 1 : 10))))
				break;
			w->st.attempts++;
			pthread_mutex_unlock(&w->lock);
			ok = post_once(w, c, &b, why, sizeof(why)) == 0;
			pthread_mutex_lock(&w->lock);
			if (ok)
				break;
		}
		if (ok) {
			w->st.sent++;
		} else {
			w->st.failed++;
			log_warn("scorer: webhook POST failed: %s", why);
		}
		free(b.p);
	}
	pthread_mutex_unlock(&w->lock);
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

int webhook_create(struct webhook **out, const struct webhook_opts *o, char *err, size_t errlen)
{
	if (!o->url || (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0)) {
		/* not the URL itself: it may hold credentials or a token */
		const char *u = o->url ? o->url : "";
		size_t sl = strcspn(u, ":/?#@");
		snprintf(err, errlen,
			 "--webhook: the URL must start with http:// or https:// (it starts with "
			 "'%.*s%s')",
			 (int)(sl < 16 ? sl : 16), u, u[sl] == ':' ? ":" : "");
		return -EINVAL;
	}
	struct webhook *w = calloc(1, sizeof(*w));
	if (!w || !(w->url = strdup(o->url))) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	w->timeout_ms = o->timeout_s > 0 ? (long)(o->timeout_s * 1000) : 5000;
	if (w->timeout_ms < 1)
		w->timeout_ms = 1;
	w->retries = o->retries >= 0 ? o->retries : 3;
	w->backoff_s = o->backoff_s > 0 ? o->backoff_s : 0.5;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	int rc = pthread_create(&w->thread, NULL, sender, w);
	if (rc) {
		snprintf(err, errlen, "cannot start the webhook thread: %s", strerror(rc));
		webhook_destroy(w);
		return -rc;
	}
	w->started = true;
	*out = w; /* caller owns: webhook_destroy */
	return 0;
}

int webhook_post(struct webhook *w, const char *body, size_t len)
{
	char *p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, body, len);
	p[len] = '\0';
	pthread_mutex_lock(&w->lock);
	if (w->n == WEBHOOK_QUEUE_MAX) { /* full: the oldest goes */
		free(w->q[w->head].p);
		w->q[w->head].p = NULL;
		w->head = (w->head + 1) % WEBHOOK_QUEUE_MAX;
		w->n--;
		w->st.dropped++;
	}
	size_t tail = (w->head + w->n) % WEBHOOK_QUEUE_MAX;
	w->q[tail].p = p; /* the queue owns it now */
	w->q[tail].len = len;
	w->n++;
	w->st.queued++;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void webhook_stats(struct webhook *w, struct webhook_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->st;
	out->pending = w->n;
	pthread_mutex_unlock(&w->lock);
}

void webhook_destroy(struct webhook *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	for (size_t i = 0; i < w->n; i++) {
		free(w->q[(w->head + i) % WEBHOOK_QUEUE_MAX].p);
		w->st.dropped++;
	}
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->url);
	free(w);
}
