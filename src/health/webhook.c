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
#include "core/timeutil.h"
#include "core/waiter.h"

struct body {
	char *p; /* owned */
	size_t len;
};

struct webhook {
	char *url;
	long timeout_ms;
	int retries;
	double backoff_s;
	struct waiter wt;                 /* the sender thread; its lock guards the queue and st */
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

static void *sender(void *arg)
{
	struct webhook *w = arg;
	CURL *c = curl_easy_init();
	pthread_mutex_lock(&w->wt.lock);
	while (!w->wt.stop) {
		if (!w->n) {
			waiter_wait_locked(&w->wt);
			continue;
		}
		struct body b = w->q[w->head]; /* ours now */
		w->q[w->head].p = NULL;
		w->head = (w->head + 1) % WEBHOOK_QUEUE_MAX;
		w->n--;
		bool ok = false;
		char why[256] = "no curl handle";
		for (int attempt = 0; c && attempt <= w->retries && !w->wt.stop; attempt++) {
			/* before a retry: backoff_s, doubling, at most 2^10 times it */
			int k = attempt - 1 < 10 ? attempt - 1 : 10;
			if (attempt && !waiter_sleep_until_locked(
			                   &w->wt, time_mono() + w->backoff_s * (1u << k)))
				break;
			w->st.attempts++;
			pthread_mutex_unlock(&w->wt.lock);
			ok = post_once(w, c, &b, why, sizeof(why)) == 0;
			pthread_mutex_lock(&w->wt.lock);
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
	pthread_mutex_unlock(&w->wt.lock);
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
	int rc = waiter_init(&w->wt);
	if (rc) {
		free(w->url);
		free(w);
		snprintf(err, errlen, "cannot start the webhook thread: %s", strerror(-rc));
		return rc;
	}
	rc = waiter_start(&w->wt, sender, w);
	if (rc) {
		snprintf(err, errlen, "cannot start the webhook thread: %s", strerror(-rc));
		webhook_destroy(w);
		return rc;
	}
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
	pthread_mutex_lock(&w->wt.lock);
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
	waiter_wake_locked(&w->wt);
	pthread_mutex_unlock(&w->wt.lock);
	return 0;
}

void webhook_stats(struct webhook *w, struct webhook_stats *out)
{
	pthread_mutex_lock(&w->wt.lock);
	*out = w->st;
	out->pending = w->n;
	pthread_mutex_unlock(&w->wt.lock);
}

void webhook_destroy(struct webhook *w)
{
	if (!w)
		return;
	waiter_stop(&w->wt);
	for (size_t i = 0; i < w->n; i++) {
		free(w->q[(w->head + i) % WEBHOOK_QUEUE_MAX].p);
		w->st.dropped++;
	}
	waiter_destroy(&w->wt);
	free(w->url);
	free(w);
}
