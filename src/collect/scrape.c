#include "collect/scrape.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "collect/targets.h"
#include "core/config.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "version.h"

/* Body buffers above this are freed after each scrape, smaller ones kept for the next. */
#define BODY_KEEP_MAX (1u << 20)
/* Expected body bytes (each target's last body) in flight at once, by default. Without a bound, a
 * collector that fell behind (its thread parses each body as it completes, and transfers wait
 * meanwhile) had up to max_parallel large transfers sharing its reads: all slowed down
 * together and timed out together with most of their bytes received (bench/e2e at 196 targets
 * of 9.6 MB: 559 time-outs in 5 minutes, 123 targets down), a collapse that fed itself. With
 * it, a few large transfers run at full speed and the rest wait their turn, unstarted (the
 * timeout counts from the start). Small bodies are never held back by it: any transfer starts
 * when nothing else is in flight. */
#define INFLIGHT_BYTES_MAX ((size_t)32 << 20)
/* libcurl's receive buffer for targets whose bodies are above BODY_KEEP_MAX: 16 KiB reads
 * would be ~600 recv calls and write callbacks per 10 MB body. */
#define BIG_BODY_READ_BUFFER (256L << 10)

struct target {
	char *url;          /* owned; as shown: without any user:password@ */
	char *given;        /* owned; as given, the key of scrape_set_targets */
	size_t index;       /* in the current set */
	CURL *easy;         /* owned; kept between scrapes so its connection is reused */
	struct strbuf body; /* bounded by max_body */
	char curl_err[CURL_ERROR_SIZE];
	bool running, tried, too_large;
	bool big_reads;                /* CURLOPT_BUFFERSIZE raised (bodies above BODY_KEEP_MAX) */
	size_t inflight;               /* its share of scrape.inflight while running */
	double due;                    /* monotonic; INFINITY: never again (once) */
	double started;                /* monotonic */
	struct scrape_target_stats st; /* guarded by scrape.lock */
};

struct scrape {
	struct scrape_options o;
	CURLM *multi;
	struct target **t; /* owned; pointers stay put when the set changes */
	size_t n;
	size_t running;
	size_t inflight; /* sum of the running targets' expected body sizes */
	bool held;       /* the last start_due() left a due target waiting for the budget */
	uint64_t rng;
	pthread_mutex_t lock; /* guards t[]->st and n for readers on other threads */
};

static bool curl_ready;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == 0;
}

double scrape_backoff(double interval, double backoff_max, unsigned failures, double u)
{
	if (failures == 0)
		return interval;
	double d = interval;
	for (unsigned i = 1; i < failures && d < backoff_max; i++)
		d *= 2;
	if (d > backoff_max)
		d = backoff_max;
	if (u < 0)
		u = 0;
	if (u >= 1)
		u = 0.999999;
	return d * (0.5 + 0.5 * u);
}

double scrape_next_due(double due, double interval, double now)
{
	double next = due + interval;
	if (next <= now) /* overran: skip the intervals that passed */
		next += ceil((now - next) / interval) * interval;
	if (next <= now)
		next += interval;
	return next;
}

double scrape_phase(const char *url, double interval)
{
	uint64_t h = hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, url); /* FNV-1a, our basis */
	h ^= h >> 33; /* spread the low-entropy tail of similar URLs */
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return interval * ((double)(h >> 11) / 9007199254740992.0);
}

static double mono(struct scrape *s)
{
	return s->o.mono ? s->o.mono(s->o.clock_ud) : time_mono();
}

static double rand01(struct scrape *s)
{
	uint64_t x = s->rng; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	s->rng = x;
	return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	struct target *t = ud;
	size_t n = size * nmemb;
	if (strbuf_append(&t->body, data, n) != 0) {
		t->too_large = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	return n;
}

int scrape_gzip_parse(const char *text, enum scrape_gzip *out)
{
	static const char *const names[] = {"auto", "always", "never"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (text && strcmp(text, names[i]) == 0) {
			if (out)
				*out = (enum scrape_gzip)i;
			return 0;
		}
	return -EINVAL;
}

enum scrape_gzip scrape_gzip_from_config(const struct config *cfg)
{
	enum scrape_gzip g = SCRAPE_GZIP_AUTO;
	(void)scrape_gzip_parse(config_str(cfg, "scrape-gzip"), &g); /* checked by cli_load */
	return g;
}

bool scrape_url_is_loopback(const char *url)
{
	bool lo = false;
	char *host = NULL;
	CURLU *u = curl_url();
	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host)
		goto out;
	struct in_addr a4;
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		lo = true;
	else if (inet_pton(AF_INET, host, &a4) == 1)
		lo = (ntohl(a4.s_addr) >> 24) == 127;
out:
	curl_free(host);
	curl_url_cleanup(u);
	return lo;
}

static void target_free(struct target *t)
{
	if (!t)
		return;
	if (t->easy)
		curl_easy_cleanup(t->easy);
	strbuf_free(&t->body);
	free(t->url);
	free(t->given);
	free(t);
}

static struct target *target_new(struct scrape *s, const char *url)
{
	struct target *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	strbuf_init(&t->body, s->o.max_body);
	if (!(t->url = strdup(url)) || !(t->given = strdup(url)) || !(t->easy = curl_easy_init())) {
		target_free(t);
		return NULL;
	}
	CURL *e = t->easy;
	/* user:password@ in the URL: sent as basic authentication, and the URL kept without it,
	 * so no log line, console row, /metrics label or event carries the password */
	size_t uoff, ulen;
	if (targets_url_userinfo(url, &uoff, &ulen)) {
		const char *ui = url + uoff;
		size_t ul = ulen - 1; /* without the '@' */
		const char *colon = memchr(ui, ':', ul);
		size_t nl = colon ? (size_t)(colon - ui) : ul;
		char *user = curl_easy_unescape(e, ui, (int)nl, NULL);
		char *pass =
		    colon ? curl_easy_unescape(e, colon + 1, (int)(ul - nl - 1), NULL) : NULL;
		if (!user || (colon && !pass)) {
			curl_free(user);
			curl_free(pass);
			target_free(t);
			return NULL;
		}
		curl_easy_setopt(e, CURLOPT_USERNAME, user);
		if (pass)
			curl_easy_setopt(e, CURLOPT_PASSWORD, pass);
		curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		/* libcurl keeps its own copies; these go now */
		memset(user, 0, strlen(user));
		if (pass)
			memset(pass, 0, strlen(pass));
		curl_free(user);
		curl_free(pass);
		memmove(t->url + uoff, t->url + uoff + ulen, strlen(t->url + uoff + ulen) + 1);
	}
	snprintf(t->st.url, sizeof(t->st.url), "%s", t->url);
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_err);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	bool gz = s->o.gzip == SCRAPE_GZIP_ALWAYS ||
	          (s->o.gzip == SCRAPE_GZIP_AUTO && !scrape_url_is_loopback(t->url));
	/* "identity" sends the header and decodes nothing; NULL would send none */
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, gz ? "gzip" : "identity");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(s->o.timeout_s * 1000 + 0.5));
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->o.max_body);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "gpuhealth-collector/" GPUHEALTH_VERSION);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	return t;
}

int scrape_create(struct scrape **out, const struct scrape_options *o, char *err, size_t errlen)
{
	*out = NULL;
	if (!(o->interval_s > 0) || !(o->timeout_s > 0) || o->max_body == 0 || !o->cb) {
		snprintf(err, errlen, "scrape: interval, timeout and max body must be positive");
		return -EINVAL;
	}
	pthread_once(&curl_once, curl_init_once);
	if (!curl_ready) {
		snprintf(err, errlen, "libcurl could not be initialised");
		return -ENOMEM;
	}
	struct scrape *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	if (s->o.backoff_max_s <= 0)
		s->o.backoff_max_s = o->interval_s > 120 ? o->interval_s : 120;
	if (s->o.backoff_max_s < o->interval_s)
		s->o.backoff_max_s = o->interval_s;
	if (s->o.max_parallel == 0)
		s->o.max_parallel = 256;
	if (s->o.max_inflight_bytes == 0)
		s->o.max_inflight_bytes = INFLIGHT_BYTES_MAX;
	s->rng = o->seed ? o->seed : (uint64_t)(time_now() * 1e6) ^ 0x9e3779b97f4a7c15ull;
	if (!s->rng)
		s->rng = 1;
	pthread_mutex_init(&s->lock, NULL);
	s->multi = curl_multi_init();
	if (!s->multi) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return -ENOMEM;
	}
	*out = s; /* caller owns */
	return 0;
}

void scrape_destroy(struct scrape *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		if (s->t[i]->running)
			curl_multi_remove_handle(s->multi, s->t[i]->easy);
		target_free(s->t[i]);
	}
	free(s->t);
	curl_multi_cleanup(s->multi);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int scrape_set_targets(struct scrape *s, const char *const *urls, size_t n)
{
	struct target **nt = calloc(n ? n : 1, sizeof(*nt));
	bool *kept = calloc(s->n ? s->n : 1, sizeof(*kept));
	if (!nt || !kept) {
		free(nt);
		free(kept);
		return -ENOMEM;
	}
	double now = mono(s);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < s->n; j++)
			if (!kept[j] && strcmp(s->t[j]->given, urls[i]) == 0) {
				kept[j] = true;
				nt[i] = s->t[j];
				break;
			}
		if (nt[i])
			continue;
		if (!(nt[i] = target_new(s, urls[i]))) {
			for (size_t k = 0; k <= i; k++) /* undo: free only what is new */
				if (nt[k]) {
					bool old = false;
					for (size_t j = 0; j < s->n; j++)
						old |= s->t[j] == nt[k];
					if (!old)
						target_free(nt[k]);
				}
			free(nt);
			free(kept);
			return -ENOMEM;
		}
		nt[i]->due = s->o.once || s->o.first_now
		                 ? now
		                 : now + scrape_phase(urls[i], s->o.interval_s);
	}
	pthread_mutex_lock(&s->lock);
	for (size_t j = 0; j < s->n; j++)
		if (!kept[j]) {
			if (s->t[j]->running) {
				curl_multi_remove_handle(s->multi, s->t[j]->easy);
				s->running--;
				s->inflight -= s->t[j]->inflight;
			}
			target_free(s->t[j]);
		}
	free(s->t);
	s->t = nt; /* owned by s */
	s->n = n;
	for (size_t i = 0; i < n; i++)
		nt[i]->index = i;
	pthread_mutex_unlock(&s->lock);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)(n < 16 ? 16 : n));
	free(kept);
	return 0;
}

static void start_due(struct scrape *s, double now)
{
	s->held = false;
	for (size_t i = 0; i < s->n && s->running < s->o.max_parallel; i++) {
		struct target *t = s->t[i];
		if (t->running || t->due > now)
			continue;
		size_t expect = t->st.last_bytes;
		if (s->running > 0 && s->inflight + expect > s->o.max_inflight_bytes) {
			s->held = true; /* its turn comes when a transfer completes */
			continue;
		}
		if (!t->big_reads && expect > BODY_KEEP_MAX) {
			t->big_reads = true;
			curl_easy_setopt(t->easy, CURLOPT_BUFFERSIZE, BIG_BODY_READ_BUFFER);
		}
		strbuf_reset(&t->body);
		if (!t->body.cap && t->st.last_bytes) { /* room for a body like the last one */
			size_t want = t->st.last_bytes + t->st.last_bytes / 8 + 4096;
			(void)strbuf_reserve(&t->body, want < s->o.max_body ? want : s->o.max_body);
		}
		t->too_large = false;
		t->curl_err[0] = '\0';
		if (curl_multi_add_handle(s->multi, t->easy) != CURLM_OK) {
			pthread_mutex_lock(&s->lock);
			t->due = now + 1; /* try again shortly */
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		t->running = true;
		t->started = now;
		s->running++;
		t->inflight = expect;
		s->inflight += expect;
		pthread_mutex_lock(&s->lock);
		t->st.running = true;
		pthread_mutex_unlock(&s->lock);
	}
}

static void finish(struct scrape *s, struct target *t, CURLcode cc)
{
	double now = mono(s);
	double wall = time_now();
	struct timespec when;
	clock_gettime(CLOCK_REALTIME, &when); /* the response has arrived: the scrape time */
	long status = 0;
	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(s->multi, t->easy);
	t->running = false;
	s->running--;
	s->inflight -= t->inflight;
	t->inflight = 0;
	t->tried = true;

	struct scrape_result res = {0};
	char error[256] = "";
	bool ok = false;
	if (t->too_large || cc == CURLE_FILESIZE_EXCEEDED) {
		t->too_large = true;
		snprintf(error, sizeof(error),
		         "body larger than --max-body %zu bytes (transfer aborted)", s->o.max_body);
	} else if (cc != CURLE_OK) {
		snprintf(error, sizeof(error), "%s",
		         t->curl_err[0] ? t->curl_err : curl_easy_strerror(cc));
	} else if (status != 200) {
		snprintf(error, sizeof(error), "HTTP status %ld", status);
	} else {
		if (!t->body.data) /* an empty body: give the callback a valid pointer */
			strbuf_append(&t->body, "", 0);
		int rc = s->o.cb(s->o.ud, t->index, t->url, t->body.data, t->body.len, &when, &res);
		if (rc == 0)
			ok = true;
		else
			snprintf(error, sizeof(error), "%s",
			         res.error[0] ? res.error : "rejected by the collector");
	}

	pthread_mutex_lock(&s->lock);
	struct scrape_target_stats *st = &t->st;
	unsigned before = st->consecutive_failures;
	st->running = false;
	st->last_attempt = wall;
	st->last_duration_s = now - t->started;
	st->samples += res.samples;
	st->bad_lines += res.bad_lines;
	if (ok) {
		st->ok++;
		st->consecutive_failures = 0;
		st->last_success = wall;
		st->last_bytes = t->body.len;
		st->last_samples = res.samples;
	} else {
		st->failed++;
		st->consecutive_failures++;
		st->last_error_time = wall;
		snprintf(st->last_error, sizeof(st->last_error), "%s", error);
		if (t->too_large)
			st->too_large++;
	}
	if (s->o.once) {
		t->due = INFINITY;
	} else if (ok) {
		double next = scrape_next_due(t->due, s->o.interval_s, now);
		double skipped = floor((next - t->due) / s->o.interval_s + 0.5) - 1;
		if (skipped > 0)
			st->missed += (uint64_t)skipped;
		t->due = next;
	} else {
		t->due = now + scrape_backoff(s->o.interval_s, s->o.backoff_max_s,
		                              st->consecutive_failures, rand01(s));
	}
	unsigned fails = st->consecutive_failures;
	double retry_in = t->due - now;
	pthread_mutex_unlock(&s->lock);
	if (!s->o.once && !ok && fails == 1)
		log_warn("collector: target %s failed: %s (retrying with backoff, next in %.1f s)",
		         t->url, error, retry_in);
	else if (!s->o.once && !ok)
		log_debug("collector: target %s failed %u times in a row: %s (next in %.1f s)",
		          t->url, fails, error, retry_in);
	else if (ok && before > 0)
		log_info("collector: target %s is back after %u failed scrapes", t->url, before);
	/* give back a large buffer (thousands of targets of 1,024 GPUs would otherwise hold ~10 MB
	 * each between scrapes) or a one-off large one; the next transfer reserves its size */
	if (t->body.cap > BODY_KEEP_MAX || t->body.cap > 4 * (t->body.len + 4096)) {
		strbuf_free(&t->body);
		strbuf_init(&t->body, s->o.max_body);
	}
}

static int drain(struct scrape *s)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(s->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct target *t = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		if (t)
			finish(s, t, m->data.result);
	}
	return 0;
}

int scrape_run(struct scrape *s, double max_wait_s)
{
	int still = 0;
	double now = mono(s);
	start_due(s, now);
	if (curl_multi_perform(s->multi, &still) != CURLM_OK)
		return -EIO;
	drain(s);
	/* wait until a socket is ready or the next target falls due */
	now = mono(s);
	double wait = max_wait_s;
	for (size_t i = 0; i < s->n; i++)
		if (!s->t[i]->running && s->t[i]->due - now < wait)
			wait = s->t[i]->due - now;
	if (wait < 0)
		wait = 0;
	if ((s->running >= s->o.max_parallel || s->held) && wait < 0.01)
		wait = max_wait_s < 0.01 ? max_wait_s : 0.01; /* all slots busy: wait for sockets */
	int ms = (int)(wait * 1000 + 0.999);
	if (curl_multi_poll(s->multi, NULL, 0, ms, NULL) != CURLM_OK)
		return -EIO;
	if (curl_multi_perform(s->multi, &still) != CURLM_OK)
		return -EIO;
	drain(s);
	return 0;
}

bool scrape_once_done(const struct scrape *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->t[i]->tried)
			return false;
	return true;
}

size_t scrape_count(struct scrape *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t scrape_target_stats(struct scrape *s, struct scrape_target_stats *out, size_t max)
{
	double now = mono(s);
	pthread_mutex_lock(&s->lock);
	size_t n = s->n;
	for (size_t i = 0; i < n && i < max; i++) {
		out[i] = s->t[i]->st;
		double due = s->t[i]->due;
		out[i].next_in_s = isinf(due) ? -1 : due - now;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}
