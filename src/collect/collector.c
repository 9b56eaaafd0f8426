#include "collect/collector.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/errmsg.h"
#include "core/log.h"
#include "core/timeutil.h"

/* One scrape thread: its share of the targets, and everything a body passes through. */
struct worker {
	struct collector *c; /* not owned */
	unsigned id;
	struct scrape *scrape; /* owned */
	struct events *ev;     /* owned */
	struct prom_cache *pc; /* owned: label sets of the last body (prom_parse_cached) */
	struct strbuf out;     /* the rendered events of one scrape, each followed by '\n' */
	size_t *ends;          /* owned: where each rendered event ends in out */
	size_t ends_cap;
	pthread_t thread;
	bool started;
	/* guarded by c->lock */
	char **pending; /* owned: a target set for this thread to apply */
	size_t *pending_pos;
	struct events_enrich *pending_en; /* owned: each pending target's enrichment, or NULL */
	size_t npending;
	bool has_pending;
	size_t *pos; /* owned: each applied target's place in the collector's whole set */
	size_t npos;
	/* scrape thread only: each applied target's enrichment (owned; NULL: none) */
	struct events_enrich *en;
	size_t nen;
};

struct collector {
	struct worker *w; /* owned: nw scrape threads; w[0] also serves stats and the end */
	unsigned nw;
	struct producer *prod; /* owned; NULL with --output; driven under prod_lock */
	pthread_mutex_t prod_lock;
	FILE *out; /* not owned; written under prod_lock */
	size_t max_body;
	bool once;
	void (*tap)(const json_t *event, void *ud); /* called under prod_lock */
	void *tap_ud;
	struct events_enrich en; /* owned copy of the options' cluster, datacenter and rack */

	/* a local source in place of the scrape targets (collector_local; one thread) */
	bool has_local;
	struct collector_local local;        /* name owned */
	struct strbuf local_body;            /* collector thread only */
	double local_due, interval_s;        /* collector thread only */
	struct scrape_target_stats local_ts; /* guarded by lock */

	/* which thread scrapes a URL: kept while the URL stays in the set (its record and
	 * schedule live in that thread's scraper); sorted by URL; guarded by lock */
	struct assign {
		char *url; /* owned */
		unsigned w;
	} * assign;
	size_t nassign;

	atomic_bool stop;
	struct shard shard; /* count 0: every target given is kept */

	pthread_mutex_t lock; /* guards st, the workers' pending sets and pos, assign */
	struct collector_stats st;
};

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void free_enrich(struct events_enrich *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++)
		events_enrich_clear(&e[i]);
	free(e);
}

static int cmp_assign(const void *a, const void *b)
{
	return strcmp(((const struct assign *)a)->url, ((const struct assign *)b)->url);
}

static void free_assign(struct assign *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++)
		free(a[i].url);
	free(a);
}

/* Splits a target set over the threads: a URL already in the set stays on its thread, a new one
 * goes to the thread with the fewest targets. Hands each thread its part (copied, with each
 * target's place in the whole set) and keeps the new assignment. Call with c->lock held.
 * Returns 0 or -ENOMEM (nothing changed). */
static int split_targets(struct collector *c, const char *const *urls,
                         const struct events_enrich *en, size_t n)
{
	int rc = -ENOMEM;
	unsigned nw = c->nw;
	struct assign *na = calloc(n ? n : 1, sizeof(*na));
	size_t *count = calloc(nw, sizeof(*count));
	char ***lists = calloc(nw, sizeof(*lists));
	size_t **pos = calloc(nw, sizeof(*pos));
	struct events_enrich **ens = calloc(nw, sizeof(*ens));
	size_t *fill = calloc(nw, sizeof(*fill));
	size_t nna = 0;
	if (!na || !count || !lists || !pos || !ens || !fill)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct assign key = {(char *)urls[i], 0};
		const struct assign *old = c->nassign ? bsearch(&key, c->assign, c->nassign,
		                                                sizeof(*c->assign), cmp_assign)
		                                      : NULL;
		if (!(na[nna].url = strdup(urls[i])))
			goto out;
		if (old && old->w < nw) {
			na[nna].w = old->w;
		} else {
			unsigned best = 0;
			for (unsigned k = 1; k < nw; k++)
				if (count[k] < count[best])
					best = k;
			na[nna].w = best;
		}
		count[na[nna].w]++;
		nna++;
	}
	for (unsigned k = 0; k < nw; k++)
		if (!(lists[k] = calloc(count[k] ? count[k] : 1, sizeof(char *))) ||
		    !(pos[k] = calloc(count[k] ? count[k] : 1, sizeof(size_t))) ||
		    (en && !(ens[k] = calloc(count[k] ? count[k] : 1, sizeof(**ens)))))
			goto out;
	for (size_t i = 0; i < n; i++) {
		unsigned k = na[i].w;
		if (en && events_enrich_copy(&ens[k][fill[k]], &en[i]) != 0)
			goto out;
		if (!(lists[k][fill[k]] = strdup(urls[i]))) {
			if (en) /* not counted in fill[k] yet */
				events_enrich_clear(&ens[k][fill[k]]);
			goto out;
		}
		pos[k][fill[k]++] = i;
	}
	for (unsigned k = 0; k < nw; k++) {
		struct worker *w = &c->w[k];
		free_list(w->pending, w->npending);
		free(w->pending_pos);
		free_enrich(w->pending_en, w->npending);
		w->pending = lists[k]; /* owned by w until its thread takes it */
		w->pending_pos = pos[k];
		w->pending_en = ens[k];
		ens[k] = NULL;
		w->npending = count[k];
		w->has_pending = true;
		lists[k] = NULL;
		pos[k] = NULL;
	}
	qsort(na, nna, sizeof(*na), cmp_assign);
	free_assign(c->assign, c->nassign);
	c->assign = na; /* owned by c */
	c->nassign = nna;
	na = NULL;
	rc = 0;
out:
	free_assign(na, nna);
	for (unsigned k = 0; lists && pos && ens && fill && k < nw; k++) {
		free_list(lists[k], fill[k]);
		free(pos[k]);
		free_enrich(ens[k], fill[k]);
	}
	free(ens);
	free(lists);
	free(pos);
	free(count);
	free(fill);
	return rc;
}

/* Takes and applies the thread's pending target set, if any (on its own thread). */
static void apply_pending(struct worker *w)
{
	struct collector *c = w->c;
	pthread_mutex_lock(&c->lock);
	if (!w->has_pending) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	char **pend = w->pending; /* ours now */
	size_t *ppos = w->pending_pos;
	struct events_enrich *pen = w->pending_en;
	size_t npend = w->npending;
	w->pending = NULL;
	w->pending_pos = NULL;
	w->pending_en = NULL;
	w->npending = 0;
	w->has_pending = false;
	pthread_mutex_unlock(&c->lock);
	if (scrape_set_targets(w->scrape, (const char *const *)pend, npend) != 0) {
		log_error("collector: out of memory applying %zu targets; keeping the old set",
		          npend);
		free(ppos);
		free_enrich(pen, npend);
	} else {
		events_set_target(w->ev, NULL); /* it may point into the old set's */
		free_enrich(w->en, w->nen);
		w->en = pen; /* owned by w; this thread only */
		w->nen = pen ? npend : 0;
		pthread_mutex_lock(&c->lock);
		free(w->pos);
		w->pos = ppos; /* owned by w */
		w->npos = npend;
		pthread_mutex_unlock(&c->lock);
	}
	free_list(pend, npend);
}

/* Renders event i at the end of w->out, followed by '\n'. */
static int render(struct worker *w, size_t i)
{
	size_t room = w->out.cap > w->out.len ? w->out.cap - w->out.len : 0; /* with the NUL */
	for (;;) {
		size_t len = 0;
		int rc = events_render(w->ev, i, w->out.data ? w->out.data + w->out.len : NULL,
		                       room, &len);
		if (rc == 0 && len < room) {
			w->out.len += len;
			w->out.data[w->out.len] = '\0';
			return strbuf_append(&w->out, "\n", 1);
		}
		if (rc != 0 && rc != -ENOSPC)
			return rc;
		if ((rc = strbuf_reserve(&w->out, len + 2 > 16384 ? len + 2 : 16384)) != 0)
			return rc;
		room = w->out.cap - w->out.len;
	}
}

/* One scrape body -> events -> output. Runs on a scrape thread (scrape callback). */
static int on_scrape(void *ud, size_t target, const char *url, const char *body, size_t len,
                     const struct timespec *when, struct scrape_result *res)
{
	struct worker *w = ud;
	struct collector *c = w->c;
	events_set_target(w->ev, w->en && target < w->nen ? &w->en[target] : NULL);
	char t[EVENTS_TIME_LEN];
	struct prom_stats pst;
	struct prom_limits lim;
	prom_limits_default(&lim);
	lim.max_body = c->max_body;
	if (events_format_time(when, t) != 0 || events_begin(w->ev, t) != 0) {
		snprintf(res->error, sizeof(res->error), "cannot format the scrape time");
		return -EINVAL;
	}
	int rc = prom_parse_cached(body, len, &lim, events_prom_cb, w->ev, &pst, w->pc);
	res->samples = pst.samples;
	res->bad_lines = pst.bad_lines;
	const struct events_stats *es = events_stats(w->ev);
	uint64_t unusable = es->no_uuid + es->bad_key + es->duplicates + es->too_many_gpus;
	size_t n = events_count(w->ev);
	if (rc) {
		snprintf(res->error, sizeof(res->error), "cannot parse the body: %s",
		         strerror(-rc));
	} else if (pst.samples == 0) {
		rc = -EBADMSG;
		if (pst.nbad)
			snprintf(res->error, sizeof(res->error),
			         "no Prometheus samples in %zu bytes (%zu bad lines; line %zu: %s)",
			         len, pst.bad_lines, pst.bad[0].line,
			         prom_strerror(pst.bad[0].reason));
		else
			snprintf(res->error, sizeof(res->error),
			         "no Prometheus samples in %zu bytes", len);
	} else if (n == 0) {
		rc = -EBADMSG;
		snprintf(res->error, sizeof(res->error),
		         "no GPU in %zu samples: no DCGM_FI_* series with a UUID label (is this a "
		         "dcgm-exporter?)",
		         pst.samples);
	}
	if (pst.bad_lines && pst.nbad)
		log_debug("collector: %s: %zu bad lines, first at line %zu: %s", url, pst.bad_lines,
		          pst.bad[0].line, prom_strerror(pst.bad[0].reason));
	uint64_t produced = 0, out_err = 0;
	if (!rc) {
		/* render every event first (outside the shared lock), then hand them over */
		if (n > w->ends_cap) {
			size_t *e = realloc(w->ends, n * sizeof(*e));
			if (!e) {
				snprintf(res->error, sizeof(res->error), "out of memory");
				rc = -ENOMEM;
				goto count;
			}
			w->ends = e;
			w->ends_cap = n;
		}
		strbuf_reset(&w->out);
		size_t rendered = 0;
		for (size_t i = 0; i < n; i++) {
			size_t before = w->out.len;
			int r = render(w, i);
			if (r) {
				log_error("collector: %s: cannot render event %zu: %s", url, i,
				          strerror(-r));
				strbuf_truncate(&w->out, before);
			}
			w->ends[i] = r ? SIZE_MAX : w->out.len; /* SIZE_MAX: not rendered */
			rendered += !r;
		}
		pthread_mutex_lock(&c->prod_lock);
		size_t start = 0;
		for (size_t i = 0; i < n; i++) {
			if (w->ends[i] == SIZE_MAX)
				continue;
			const char *js = w->out.data + start;
			size_t jl = w->ends[i] - 1 - start; /* without the '\n' */
			start = w->ends[i];
			if (c->tap)
				c->tap(events_json(w->ev, i), c->tap_ud);
			if (c->out) {
				produced++;
				continue;
			}
			const char *key = events_key(w->ev, i);
			int r = producer_send(c->prod, key, strlen(key), js, jl);
			if (r) {
				log_error("collector: %s: event for %s not queued: %s", url, key,
				          strerror(-r));
				continue;
			}
			produced++;
		}
		if (c->out && w->out.len) {
			if (fwrite(w->out.data, 1, w->out.len, c->out) != w->out.len ||
			    fflush(c->out) != 0) {
				out_err++;
				produced = 0;
				pthread_mutex_lock(&c->lock);
				snprintf(c->st.last_error, sizeof(c->st.last_error),
				         "cannot write to --output: %s", strerror(errno));
				c->st.failed = true;
				pthread_mutex_unlock(&c->lock);
				atomic_store(&c->stop, true);
			}
		}
		if (c->prod) /* the journal (with --spool-dir) before the scrape counts as done */
			producer_sync(c->prod);
		pthread_mutex_unlock(&c->prod_lock);
		if (c->out)
			out_err += n - rendered;
		log_debug("collector: scraped %s at %s: %zu samples, %" PRIu64 " events", url, t,
		          pst.samples, produced);
	}
count:
	pthread_mutex_lock(&c->lock);
	c->st.samples += pst.samples;
	c->st.bad_lines += pst.bad_lines;
	c->st.unusable += unusable;
	c->st.events += produced;
	c->st.bytes += len;
	c->st.output_errors += out_err;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* The number of targets: the scrapers', or the local source's one. */
static size_t target_count(struct collector *c)
{
	if (c->has_local)
		return 1;
	size_t n = 0;
	for (unsigned k = 0; k < c->nw; k++)
		n += scrape_count(c->w[k].scrape);
	return n;
}

struct placed {
	size_t pos, seq;
	struct scrape_target_stats ts;
};

static int cmp_placed(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;
	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The targets' records, in the order of the set given (every thread's, merged). */
static size_t target_stats(struct collector *c, struct scrape_target_stats *out, size_t max)
{
	if (c->has_local) {
		if (out && max) {
			pthread_mutex_lock(&c->lock);
			out[0] = c->local_ts;
			pthread_mutex_unlock(&c->lock);
		}
		return 1;
	}
	if (c->nw == 1)
		return scrape_target_stats(c->w[0].scrape, out, max);
	size_t total = 0, got = 0;
	struct placed *pl = NULL;
	struct scrape_target_stats *tmp = NULL;
	for (unsigned k = 0; k < c->nw; k++) {
		size_t cnt = scrape_count(c->w[k].scrape);
		total += cnt;
		if (!out || !max)
			continue;
		struct placed *np = realloc(pl, (got + cnt + 1) * sizeof(*np));
		struct scrape_target_stats *nt = realloc(tmp, (cnt + 1) * sizeof(*nt));
		if (np)
			pl = np;
		if (nt)
			tmp = nt;
		if (!np || !nt)
			break;
		size_t m = scrape_target_stats(c->w[k].scrape, tmp, cnt);
		if (m > cnt)
			m = cnt; /* the set grew meanwhile: the rest next time */
		pthread_mutex_lock(&c->lock);
		const struct worker *w = &c->w[k];
		for (size_t j = 0; j < m; j++) {
			/* a set not applied yet by the thread: its targets go last */
			pl[got + j].pos = w->npos == m ? w->pos[j] : SIZE_MAX;
			pl[got + j].seq = got + j;
			pl[got + j].ts = tmp[j];
		}
		pthread_mutex_unlock(&c->lock);
		got += m;
	}
	if (pl) {
		qsort(pl, got, sizeof(*pl), cmp_placed);
		for (size_t i = 0; i < got && i < max; i++)
			out[i] = pl[i].ts;
	}
	free(pl);
	free(tmp);
	return total;
}

/* One read of the local source when it is due, else a nap until then (at most 0.1 s). */
static void local_step(struct worker *w)
{
	struct collector *c = w->c;
	double now = time_mono();
	if (now < c->local_due) {
		double nap = c->local_due - now < 0.1 ? c->local_due - now : 0.1;
		struct timespec ts = {(time_t)nap, (long)((nap - (double)(time_t)nap) * 1e9)};
		nanosleep(&ts, NULL);
		return;
	}
	/* every interval after the time it was due; whole intervals skipped when late */
	c->local_due += c->interval_s;
	if (c->local_due <= now)
		c->local_due = now + c->interval_s;
	struct scrape_result res = {0};
	char err[256] = "";
	strbuf_reset(&c->local_body);
	double t0 = time_now();
	int rc = c->local.read(c->local.ud, &c->local_body, err, sizeof(err));
	struct timespec when;
	clock_gettime(CLOCK_REALTIME, &when);
	if (rc)
		snprintf(res.error, sizeof(res.error), "%s", err[0] ? err : strerror(-rc));
	else
		rc = on_scrape(w, 0, c->local.name, c->local_body.data ? c->local_body.data : "",
		               c->local_body.len, &when, &res);
	double t1 = time_now();
	pthread_mutex_lock(&c->lock);
	struct scrape_target_stats *t = &c->local_ts;
	t->last_attempt = t1;
	t->last_duration_s = t1 - t0;
	if (rc) {
		t->failed++;
		t->consecutive_failures++;
		t->last_error_time = t1;
		snprintf(t->last_error, sizeof(t->last_error), "%s", res.error);
		log_warn("collector: %s: %s", c->local.name, res.error);
	} else {
		t->ok++;
		t->consecutive_failures = 0;
		t->last_success = t1;
		t->last_bytes = c->local_body.len;
		t->last_samples = res.samples;
	}
	t->samples += res.samples;
	t->bad_lines += res.bad_lines;
	pthread_mutex_unlock(&c->lock);
}

static void refresh_stats(struct collector *c)
{
	struct producer_stats ps;
	if (c->prod)
		producer_stats(c->prod, &ps);
	size_t n = target_count(c), down = 0;
	struct scrape_target_stats *ts = n ? calloc(n, sizeof(*ts)) : NULL;
	if (ts) {
		size_t got = target_stats(c, ts, n);
		n = got < n ? got : n;
		for (size_t i = 0; i < n; i++)
			down += ts[i].consecutive_failures > 0;
	}
	uint64_t ok = 0, failed = 0, missed = 0;
	for (size_t i = 0; ts && i < n; i++) {
		ok += ts[i].ok;
		failed += ts[i].failed;
		missed += ts[i].missed;
	}
	free(ts);
	pthread_mutex_lock(&c->lock);
	if (c->prod)
		c->st.producer = ps;
	c->st.targets = n;
	c->st.targets_down = down;
	c->st.scrapes_ok = ok;
	c->st.scrapes_failed = failed;
	c->st.scrapes_missed = missed;
	pthread_mutex_unlock(&c->lock);
}

static void fail(struct collector *c, const char *what)
{
	pthread_mutex_lock(&c->lock);
	snprintf(c->st.last_error, sizeof(c->st.last_error), "%s", what);
	c->st.failed = true;
	pthread_mutex_unlock(&c->lock);
	atomic_store(&c->stop, true);
}

/* A scrape thread: its targets, until stop (or, with once, until each was tried). */
static void scrape_loop(struct worker *w)
{
	struct collector *c = w->c;
	double last_refresh = 0;
	while (!atomic_load(&c->stop)) {
		apply_pending(w);
		if (c->has_local) {
			local_step(w);
		} else if (scrape_run(w->scrape, 0.1) != 0) {
			log_error("collector: libcurl multi interface failed; stopping");
			fail(c, "libcurl multi failure");
			break;
		}
		/* delivery reports: whichever thread finds the producer free serves them */
		if (c->prod && pthread_mutex_trylock(&c->prod_lock) == 0) {
			producer_poll(c->prod, 0);
			pthread_mutex_unlock(&c->prod_lock);
		}
		if (w->id == 0) {
			double now = time_mono();
			if (now - last_refresh >= 0.25) {
				refresh_stats(c);
				last_refresh = now;
			}
		}
		if (c->once && (c->has_local ? c->local_ts.ok + c->local_ts.failed > 0
		                             : scrape_once_done(w->scrape)))
			break; /* local_ts is written by this thread only: read without the lock */
	}
}

static void *run_worker(void *arg)
{
	scrape_loop(arg);
	return NULL;
}

/* Waits for the scrape threads other than thread 0 to end. */
static void join_others(struct collector *c)
{
	for (unsigned k = 1; k < c->nw; k++)
		if (c->w[k].started) {
			pthread_join(c->w[k].thread, NULL);
			c->w[k].started = false;
		}
}

/* Thread 0: its targets, then the end of the others and of the output. */
static void *run(void *arg)
{
	struct worker *w0 = arg;
	struct collector *c = w0->c;
	scrape_loop(w0);
	join_others(c);
	if (c->prod)
		producer_close(c->prod); /* flush, then spool what is left */
	if (c->out)
		fflush(c->out);
	refresh_stats(c);
	pthread_mutex_lock(&c->lock);
	c->st.running = false;
	c->st.done = true;
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* The default number of scrape threads: the online CPUs, at most COLLECTOR_THREADS_MAX. */
static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > COLLECTOR_THREADS_MAX ? COLLECTOR_THREADS_MAX : (unsigned)n;
}

/* The shard's part of a target set given (urls/en borrowed; kept[], ken[] owned by the caller,
 * NULL when not sharded: use the set as given). Returns 0 or -ENOMEM. */
static int shard_filter(const struct collector *c, const char *const *urls,
                        const struct events_enrich *en, size_t n, const char ***kept,
                        struct events_enrich **ken, size_t *nk)
{
	*kept = NULL;
	*ken = NULL;
	*nk = n;
	if (!c->shard.count)
		return 0;
	*kept = calloc(n ? n : 1, sizeof(**kept));
	if (en)
		*ken = calloc(n ? n : 1, sizeof(**ken));
	if (!*kept || (en && !*ken)) {
		free(*kept);
		free(*ken);
		*kept = NULL;
		*ken = NULL;
		return -ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (!shard_keeps(&c->shard, urls[i]))
			continue;
		if (en)
			(*ken)[k] = en[i]; /* members borrowed */
		(*kept)[k++] = urls[i];
	}
	*nk = k;
	return 0;
}

/* split_targets() of the shard's part of a set; call with c->lock held */
static int split_shard(struct collector *c, const char *const *urls, const struct events_enrich *en,
                       size_t n)
{
	const char **kept;
	struct events_enrich *ken;
	size_t nk;
	int rc = shard_filter(c, urls, en, n, &kept, &ken, &nk);
	if (rc)
		return rc;
	rc = kept ? split_targets(c, kept, ken, nk) : split_targets(c, urls, en, n);
	if (!rc) {
		c->st.targets_listed = n;
		c->st.targets = nk;
		if (c->shard.count)
			log_info("collector: shard %u/%u keeps %zu of %zu targets", c->shard.index,
			         c->shard.count, nk, n);
	}
	free(kept);
	free(ken);
	return rc;
}

void collector_destroy(struct collector *c)
{
	if (!c)
		return;
	collector_stop(c);
	producer_destroy(c->prod);
	for (unsigned k = 0; c->w && k < c->nw; k++) {
		struct worker *w = &c->w[k];
		scrape_destroy(w->scrape);
		events_destroy(w->ev);
		prom_cache_free(w->pc);
		strbuf_free(&w->out);
		free(w->ends);
		free_enrich(w->pending_en, w->npending);
		free_list(w->pending, w->npending);
		free(w->pending_pos);
		free(w->pos);
		free_enrich(w->en, w->nen);
	}
	free(c->w);
	free_assign(c->assign, c->nassign);
	strbuf_free(&c->local_body);
	free((char *)c->local.name);
	events_enrich_clear(&c->en);
	pthread_mutex_destroy(&c->prod_lock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int collector_create(struct collector **out, const struct collector_options *o, char *err,
                     size_t errlen)
{
	*out = NULL;
	int rc = -ENOMEM;
	struct collector *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->prod_lock, NULL);
	c->out = o->out;
	c->once = o->once;
	c->max_body = o->max_body;
	c->tap = o->tap;
	c->tap_ud = o->tap_ud;
	strbuf_init(&c->local_body, 0);
	c->interval_s = o->interval_s;
	c->shard = o->shard;
	c->st.shard = o->shard;
	if (o->shard.count && (o->shard.index >= o->shard.count || o->shard.count > SHARD_MAX)) {
		snprintf(err, errlen, "collector: shard %u/%u: give %s", o->shard.index,
		         o->shard.count, SHARD_SYNTAX);
		rc = -EINVAL;
		goto fail;
	}
	if (o->threads > COLLECTOR_THREADS_MAX) {
		snprintf(err, errlen, "collector: %u scrape threads is too many (at most %u)",
		         o->threads, COLLECTOR_THREADS_MAX);
		rc = -EINVAL;
		goto fail;
	}
	c->nw = o->threads ? o->threads : default_threads();
	if (!o->threads && c->nw > o->ntargets) /* by default no idle threads */
		c->nw = o->ntargets ? (unsigned)o->ntargets : 1;
	if (o->local) {
		if (!o->local->read || !o->local->name || o->ntargets) {
			snprintf(err, errlen,
			         "collector: a local source needs a read function and a "
			         "name, and no targets");
			rc = -EINVAL;
			goto fail;
		}
		c->has_local = true;
		c->nw = 1; /* one source, one thread */
		c->local = *o->local;
		if (!(c->local.name = strdup(o->local->name)))
			goto fail;
		snprintf(c->local_ts.url, sizeof(c->local_ts.url), "%s", o->local->name);
	}
	const struct events_enrich fixed = {o->enrich.cluster, o->enrich.datacenter, o->enrich.rack,
	                                    NULL};
	if (events_enrich_copy(&c->en, &fixed))
		goto fail;
	if (!(c->w = calloc(c->nw, sizeof(*c->w))))
		goto fail;
	for (unsigned k = 0; k < c->nw; k++) {
		struct worker *w = &c->w[k];
		w->c = c;
		w->id = k;
		strbuf_init(&w->out, 0);
		if ((rc = events_create(&w->ev, &c->en)) != 0)
			goto fail;
		rc = -ENOMEM;
		if (!(w->pc = prom_cache_new()))
			goto fail;
		struct scrape_options so = {
		    .interval_s = o->interval_s,
		    .timeout_s = o->timeout_s,
		    .max_body = o->max_body,
		    .gzip = o->gzip,
		    .once = o->once,
		    .first_now = o->first_now,
		    .cb = on_scrape,
		    .ud = w,
		};
		if ((rc = scrape_create(&w->scrape, &so, err, errlen)) != 0)
			goto fail;
	}
	if (!c->has_local) {
		pthread_mutex_lock(&c->lock);
		rc = split_shard(c, o->targets, o->target_enrich, o->ntargets);
		pthread_mutex_unlock(&c->lock);
		if (rc)
			goto fail;
		for (unsigned k = 0; k < c->nw; k++)
			apply_pending(&c->w[k]); /* no thread yet: apply here */
	}
	if (!c->out) {
		if ((rc = producer_create(&c->prod, &o->kafka, err, errlen)) != 0)
			goto fail;
		c->st.kafka = true;
	}
	if (c->has_local)
		c->st.targets = c->st.targets_listed = 1;
	c->st.threads = c->nw;
	*out = c; /* caller owns */
	return 0;
fail:
	collector_destroy(c);
	return errmsg_oom(rc, err, errlen, "the collector");
}

int collector_start(struct collector *c)
{
	pthread_mutex_lock(&c->lock);
	c->st.running = true;
	pthread_mutex_unlock(&c->lock);
	int rc = 0;
	for (unsigned k = 1; k < c->nw && !rc; k++)
		if ((rc = pthread_create(&c->w[k].thread, NULL, run_worker, &c->w[k])) == 0)
			c->w[k].started = true;
	if (!rc && (rc = pthread_create(&c->w[0].thread, NULL, run, &c->w[0])) == 0) {
		c->w[0].started = true;
		return 0;
	}
	atomic_store(&c->stop, true);
	join_others(c);
	atomic_store(&c->stop, false);
	pthread_mutex_lock(&c->lock);
	c->st.running = false;
	pthread_mutex_unlock(&c->lock);
	return -rc;
}

int collector_set_targets(struct collector *c, const char *const *urls, size_t n)
{
	return collector_set_targets_enrich(c, urls, NULL, n);
}

int collector_set_targets_enrich(struct collector *c, const char *const *urls,
                                 const struct events_enrich *en, size_t n)
{
	if (c->has_local)
		return n ? -EINVAL : 0;
	pthread_mutex_lock(&c->lock);
	int rc = split_shard(c, urls, en, n);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void collector_stop(struct collector *c)
{
	if (!c->w || !c->w[0].started)
		return;
	atomic_store(&c->stop, true);
	pthread_join(c->w[0].thread, NULL); /* it joins the others */
	c->w[0].started = false;
}

struct producer *collector_producer(struct collector *c)
{
	return c->prod;
}

void collector_stats(struct collector *c, struct collector_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->st;
	pthread_mutex_unlock(&c->lock);
}

size_t collector_targets(struct collector *c, struct scrape_target_stats *out, size_t max)
{
	return target_stats(c, out, max);
}

static int family(struct strbuf *sb, const char *name, const char *type, const char *help)
{
	return strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int per_target(struct strbuf *sb, const struct scrape_target_stats *ts, size_t n,
                      const char *name, const char *type, const char *help, const char *extra_label,
                      double (*get)(const struct scrape_target_stats *, double now), double now)
{
	int rc = family(sb, name, type, help);
	for (size_t i = 0; i < n && !rc; i++) {
		double v = get(&ts[i], now);
		if (isnan(v))
			continue; /* not known (never succeeded): no series */
		rc = strbuf_printf(sb, "%s{target=\"", name);
		rc = rc ? rc : strbuf_put_label_value(sb, ts[i].url);
		rc =
		    rc ? rc : strbuf_printf(sb, "\"%s} %.17g\n", extra_label ? extra_label : "", v);
	}
	return rc;
}

static double g_too_large(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return (double)t->too_large;
}
static double g_up(const struct scrape_target_stats *t, double now)
{
	(void)now;
	if (!t->last_attempt)
		return NAN;
	return t->consecutive_failures == 0 ? 1 : 0;
}
static double g_consec(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return t->consecutive_failures;
}
static double g_last_ok(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return t->last_success ? t->last_success : NAN;
}
static double g_stale(const struct scrape_target_stats *t, double now)
{
	return t->last_success ? now - t->last_success : NAN;
}
static double g_dur(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return t->last_attempt ? t->last_duration_s : NAN;
}
static double g_samples(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return (double)t->samples;
}
static double g_bad(const struct scrape_target_stats *t, double now)
{
	(void)now;
	return (double)t->bad_lines;
}

int collector_render_metrics(struct collector *c, struct strbuf *sb)
{
	struct collector_stats st;
	collector_stats(c, &st);
	size_t n = target_count(c);
	struct scrape_target_stats *ts = calloc(n ? n : 1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	size_t got = target_stats(c, ts, n);
	if (got < n)
		n = got;
	double now = time_now();
	int rc = 0;
#define TGT(name, type, help, label, fn)                                                           \
	if (!rc)                                                                                   \
	rc = per_target(sb, ts, n, name, type, help, label, fn, now)
	rc = family(sb, "gpuhealth_collector_scrapes_total", "counter",
	            "Scrapes per target by result.");
	for (size_t i = 0; i < n && !rc; i++) {
		for (int r = 0; r < 2 && !rc; r++) {
			rc = strbuf_puts(sb, "gpuhealth_collector_scrapes_total{target=\"");
			rc = rc ? rc : strbuf_put_label_value(sb, ts[i].url);
			rc = rc ? rc
			        : strbuf_printf(sb, "\",result=\"%s\"} %" PRIu64 "\n",
			                        r ? "failed" : "ok", r ? ts[i].failed : ts[i].ok);
		}
	}
	TGT("gpuhealth_collector_scrapes_too_large_total", "counter",
	    "Scrapes aborted because the body passed --max-body.", NULL, g_too_large);
	TGT("gpuhealth_collector_target_up", "gauge",
	    "1 when the last scrape of the target succeeded, else 0.", NULL, g_up);
	TGT("gpuhealth_collector_target_consecutive_failures", "gauge", "Failed scrapes in a row.",
	    NULL, g_consec);
	TGT("gpuhealth_collector_target_last_success_timestamp_seconds", "gauge",
	    "Wall-clock time of the last successful scrape.", NULL, g_last_ok);
	TGT("gpuhealth_collector_target_staleness_seconds", "gauge",
	    "Seconds since the last successful scrape.", NULL, g_stale);
	TGT("gpuhealth_collector_target_scrape_duration_seconds", "gauge",
	    "Duration of the last scrape.", NULL, g_dur);
	TGT("gpuhealth_collector_target_samples_total", "counter",
	    "Samples parsed from the target.", NULL, g_samples);
	TGT("gpuhealth_collector_target_bad_lines_total", "counter",
	    "Lines of the target's bodies that the parser skipped.", NULL, g_bad);
#undef TGT
	free(ts);
	const struct producer_stats *p = &st.producer;
	struct {
		const char *name, *type, *help;
		double v;
		bool kafka;
	} rows[] = {
#define COLLECTOR_METRIC(name, type, help, value, kafka) {name, type, help, (double)(value), kafka},
#include "collect/collector_metrics.def"
#undef COLLECTOR_METRIC
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && !rc; i++) {
		if (rows[i].kafka && !st.kafka)
			continue;
		rc = family(sb, rows[i].name, rows[i].type, rows[i].help);
		rc = rc ? rc : strbuf_printf(sb, "%s %.17g\n", rows[i].name, rows[i].v);
	}
	if (!rc) {
		/* a collector that is not sharded is the one shard of one */
		rc = family(sb, "gpuhealth_collector_shard_info", "gauge",
		            "Always 1: this collector's shard (--shard I/N) of the target list.");
		rc = rc ? rc
		        : strbuf_printf(
		              sb, "gpuhealth_collector_shard_info{shard=\"%u\",of=\"%u\"} 1\n",
		              st.shard.count ? st.shard.index : 0,
		              st.shard.count ? st.shard.count : 1);
	}
	if (!rc && st.kafka) {
		rc = family(sb, "gpuhealth_collector_buffer_events", "gauge",
		            "Events waiting for the broker, by where they wait.");
		rc = rc ? rc
		        : strbuf_printf(
		              sb,
		              "gpuhealth_collector_buffer_events{where=\"librdkafka\"} %" PRIu64
		              "\ngpuhealth_collector_buffer_events{where=\"memory\"} %" PRIu64
		              "\ngpuhealth_collector_buffer_events{where=\"spool\"} %" PRIu64 "\n",
		              p->in_flight, p->queued, p->spool_events);
	}
	return rc;
}
