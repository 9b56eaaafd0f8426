#include "view/fake.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/timeutil.h"
#include "core/waiter.h"
#include "health/rules.h"

struct fake {
	struct fake_opts o;
	struct waiter wt; /* the stepping thread; its lock guards the GPUs and the view */
	unsigned long step;
	double started;
	struct fleet_gpu *gpus; /* o.gpus */
	struct pipeline_view view;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void add_reason(struct health_result *h, const char *code, enum health_component comp,
                       enum health_status sev, enum health_action remedy, const char *text)
{
	if (h->nreasons >= HEALTH_MAX_REASONS)
		return;
	struct health_reason *r = &h->reasons[h->nreasons++];
	snprintf(r->code, sizeof(r->code), "%s", code);
	r->comp = comp;
	r->sev = sev;
	r->remedy = remedy;
	snprintf(r->text, sizeof(r->text), "%s", text);
	if (sev > h->status)
		h->status = sev;
	if (remedy > h->remedy)
		h->remedy = remedy;
	int cap = sev == HEALTH_FAIL ? RULES_SCORE_FAIL_MAX : RULES_SCORE_WARN_MAX;
	if (sev != HEALTH_PASS && h->comp[comp] > cap)
		h->comp[comp] = cap;
}

static void add_alert(struct fleet_gpu *g, double t, const char *kind, enum health_status sev,
                      const char *text)
{
	if (g->nalerts == FLEET_ALERTS)
		g->nalerts--;
	memmove(&g->alerts[1], &g->alerts[0], g->nalerts * sizeof(g->alerts[0]));
	struct fleet_alert *a = &g->alerts[0];
	memset(a, 0, sizeof(*a));
	a->time = t;
	snprintf(a->kind, sizeof(a->kind), "%s", kind);
	a->severity = sev;
	/* worded as the health engine words an alert */
	snprintf(a->text, sizeof(a->text), "%s: %s", health_status_name(sev), text);
	g->nalerts++;
}

/* One GPU at step k; called under the lock. */
static void gpu_update(struct fake *f, size_t i, double t)
{
	struct fleet_gpu *g = &f->gpus[i];
	double k = (double)f->step;
	double ph = (double)i * 0.7;
	double util = 55 + 40 * sin(k / 6.0 + ph) + 5 * sin(k * 1.3 + ph * 3);
	util = util < 0 ? 0 : util > 100 ? 100 : util;
	double limit = 400;
	double power = 60 + (limit - 60) * util / 100.0 + 8 * sin(k * 0.9 + ph);
	if (power > limit)
		power = limit;
	double temp = 34 + 0.11 * power + 3 * sin(k / 9.0 + ph);
	if (i % 16 == 3) /* runs hot */
		temp += 18;
	struct health_sample *s = &g->last;
	s->time = t;
	health_sample_set(s, HS_GPU_TEMP, round(temp));
	health_sample_set(s, HS_MEMORY_TEMP, round(temp + 4));
	health_sample_set(s, HS_SLOWDOWN_TEMP, 87);
	health_sample_set(s, HS_SHUTDOWN_TEMP, 92);
	health_sample_set(s, HS_MAX_OP_TEMP, 85);
	health_sample_set(s, HS_POWER, power);
	health_sample_set(s, HS_POWER_LIMIT, limit);
	health_sample_set(s, HS_GPU_UTIL, round(util));
	health_sample_set(s, HS_PCIE_REPLAY, (double)(i % 16 == 9 ? f->step / 3 : 0));
	health_sample_set(s, HS_SBE_VOL, (double)(i % 16 == 7 ? 12 + f->step / 2 : 0));
	health_sample_set(s, HS_DBE_VOL, (double)(i % 16 == 5 ? 1 : 0));
	health_sample_set(s, HS_SBE_AGG, (double)(i % 16 == 7 ? 840 + f->step / 2 : 3));
	health_sample_set(s, HS_DBE_AGG, (double)(i % 16 == 5 ? 2 : 0));
	health_sample_set(s, HS_RETIRED_SBE, (double)(i % 16 == 7 ? 4 : 0));
	health_sample_set(s, HS_RETIRED_DBE, (double)(i % 16 == 5 ? 1 : 0));
	health_sample_set(s, HS_RETIRED_PENDING, 0);
	health_sample_set(s, HS_CORR_ROWS, (double)(i % 16 == 7 ? 2 : 0));
	health_sample_set(s, HS_UNCORR_ROWS, (double)(i % 16 == 5 ? 1 : 0));
	health_sample_set(s, HS_REMAP_FAILURE, 0);
	health_sample_set(s, HS_REMAP_PENDING, i % 16 == 5 ? 1 : 0);
	unsigned clk = util < 5 ? 0x001u : 0;
	if (power >= limit * 0.98)
		clk |= 0x004u;
	if (temp >= 82)
		clk |= 0x020u | 0x008u;
	health_sample_set(s, HS_CLOCK_REASONS, clk);
	if (i % 16 == 5)
		health_sample_set(s, HS_XID, 48);
	else if (i % 16 == 11)
		health_sample_set(s, HS_XID, 79);
	g->fb_total_mib = 81920;
	g->fb_used_mib = 2048 + 76000 * util / 100.0;
	g->sm_clock_mhz = util < 5 ? 210 : 1410 - (clk & 0x024u ? 300 : 0);
	g->mem_clock_mhz = 1593;
	g->last_seen = t;
	g->stale = i % 16 == 11 && f->step % 20 > 10;

	/* history: shift when full */
	if (g->nhist == FLEET_HISTORY) {
		for (int se = 0; se < FLEET_NSERIES; se++)
			memmove(&g->hist[se][0], &g->hist[se][1],
			        (FLEET_HISTORY - 1) * sizeof(g->hist[se][0]));
		memmove(&g->hist_time[0], &g->hist_time[1],
		        (FLEET_HISTORY - 1) * sizeof(g->hist_time[0]));
		g->nhist--;
	}
	g->hist[FLEET_TEMP][g->nhist] = (float)s->v[HS_GPU_TEMP];
	g->hist[FLEET_POWER][g->nhist] = (float)power;
	g->hist[FLEET_UTIL][g->nhist] = (float)s->v[HS_GPU_UTIL];
	g->hist_time[g->nhist] = t;
	g->nhist++;

	/* health */
	struct health_result *h = &g->health;
	memset(h, 0, sizeof(*h));
	snprintf(h->key, sizeof(h->key), "%s", g->key);
	snprintf(h->host, sizeof(h->host), "%s", g->host);
	h->time = t;
	for (int c = 0; c < HC_COUNT; c++)
		h->comp[c] = 100;
	g->have_health = true;
	if (i % 16 == 3 && temp >= 82)
		add_reason(h, "temp_slowdown", HC_THERMAL, HEALTH_WARN, ACT_DRAIN,
		           "GPU temperature within 5 C of the slowdown threshold");
	if (i % 16 == 5) {
		add_reason(h, "xid_48", HC_XID, HEALTH_FAIL, ACT_RESET,
		           "XID 48: double-bit ECC error");
		add_reason(h, "remap_pending", HC_MEMORY, HEALTH_WARN, ACT_RESET,
		           "a row remap waits for the next GPU reset");
	}
	if (i % 16 == 7)
		add_reason(h, "sbe_rate", HC_MEMORY, HEALTH_PASS, ACT_KEEP,
		           "single-bit ECC errors at 61/h");
	if (i % 16 == 9)
		add_reason(h, "pcie_replay", HC_INTERCONNECT, HEALTH_WARN, ACT_DRAIN,
		           "PCIe replays above the link's limit");
	if (i % 16 == 11)
		add_reason(h, "xid_79", HC_XID, HEALTH_FAIL, ACT_REBOOT,
		           "XID 79: GPU fell off the bus");
	int score = 100;
	for (int c = 0; c < HC_COUNT; c++)
		if (h->comp[c] < score)
			score = h->comp[c];
	h->score = score;
	g->action = h->remedy;
	g->p_fail = i % 16 == 5 ? 0.62 : i % 16 == 11 ? 0.91 : i % 16 == 7 ? 0.18 : 0.004;

	if (f->step == 0 && h->nreasons && h->reasons[0].sev != HEALTH_PASS)
		add_alert(g, t - 120, HEALTH_KIND_HEALTH, h->reasons[0].sev, h->reasons[0].text);
}

static void view_update(struct fake *f, double t)
{
	struct pipeline_view *v = &f->view;
	double k = (double)f->step;
	v->now = t;
	v->started = f->started;
	for (int p = 0; p < PP_COUNT; p++) {
		v->parts[p].state = PART_RUNNING;
		v->parts[p].last_error[0] = '\0';
	}
	snprintf(v->parts[PP_SIM].detail, sizeof(v->parts[PP_SIM].detail),
	         "fake: %zu GPUs, one step every %.1f s", f->o.gpus, f->o.step_s);
	snprintf(v->parts[PP_COLLECTOR].detail, sizeof(v->parts[0].detail), "1 target");
	snprintf(v->parts[PP_BROKER].detail, sizeof(v->parts[0].detail),
	         "fake: no broker (GPUHEALTH_UI_FAKE)");
	snprintf(v->parts[PP_DATABASE].detail, sizeof(v->parts[0].detail),
	         "fake: no database (GPUHEALTH_UI_FAKE)");
	snprintf(v->parts[PP_SINK].detail, sizeof(v->parts[0].detail), "fake sink");
	snprintf(v->parts[PP_SCORER].detail, sizeof(v->parts[0].detail), "fake scorer");
	/* the scorer reports an error now and then, so the panel shows one */
	if (f->step % 40 >= 20) {
		v->parts[PP_SCORER].state = PART_DEGRADED;
		snprintf(v->parts[PP_SCORER].last_error, sizeof(v->parts[0].last_error),
		         "fake: could not write a batch (connection reset), retrying");
		v->parts[PP_SCORER].last_error_time = t - 1;
	}
	uint64_t events = (uint64_t)(f->o.gpus * (f->step + 1));
	v->have_exporter = true;
	v->exporter.requests = f->step + 1;
	v->exporter.metrics = f->step + 1;
	v->exporter.renders = f->step + 1;
	v->have_collector = true;
	v->collector.scrapes_ok = f->step + 1;
	v->collector.samples = events * 30;
	v->collector.events = events;
	v->collector.targets = 1;
	v->collector.kafka = true;
	v->collector.running = true;
	v->collector.producer.produced = events;
	v->collector.producer.delivered = events - (f->step % 3) * 2;
	v->collector.producer.in_flight = (f->step % 3) * 2;
	v->ntargets = 1;
	struct scrape_target_stats *ts = &v->targets[0];
	snprintf(ts->url, sizeof(ts->url), "http://127.0.0.1:9400/metrics");
	ts->ok = f->step + 1;
	ts->last_success = t;
	ts->last_attempt = t;
	ts->last_duration_s = 0.004;
	ts->samples = events * 30;
	ts->last_samples = f->o.gpus * 30;
	v->scrapes_per_s = 1.0 / f->o.step_s;
	v->events_per_s = (double)f->o.gpus / f->o.step_s;
	v->have_sink = true;
	v->sink.consumed = events;
	v->sink.rows_written = events > 8 ? events - 8 : 0;
	v->sink.rows_per_s = v->events_per_s;
	v->sink.batches = f->step;
	v->sink.dead_letters = f->step / 25;
	v->sink.db_connected = true;
	v->sink.running = true;
	v->sink.nparts = 3;
	int64_t total = 0;
	for (int p = 0; p < 3; p++) {
		v->sink.parts[p].partition = p;
		v->sink.parts[p].lag = (int64_t)(3 + 4 * (1 + sin(k / 3.0 + p)));
		v->sink.parts[p].offset = (int64_t)(events / 3);
		total += v->sink.parts[p].lag;
	}
	v->sink.lag_total = total;
	v->have_scorer = true;
	v->scorer.consumed = events;
	v->scorer.scored = events;
	v->scorer.gpus = f->o.gpus;
	v->scorer.open_alerts = 2;
	v->scorer.running = true;
	v->db_rows = (int64_t)v->sink.rows_written;
	v->db_rows_estimate = false;
	v->db_rows_per_s = v->sink.rows_per_s;
	v->fleet.events = events;
	v->fleet.gpus = f->o.gpus;
	v->fleet.hosts = f->o.per_host ? (f->o.gpus + f->o.per_host - 1) / f->o.per_host : 1;
}

static void step_locked(struct fake *f)
{
	double t = now_s();
	for (size_t i = 0; i < f->o.gpus; i++)
		gpu_update(f, i, t);
	view_update(f, t);
	f->step++;
}

void fake_step(struct fake *f)
{
	pthread_mutex_lock(&f->wt.lock);
	step_locked(f);
	pthread_mutex_unlock(&f->wt.lock);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	pthread_mutex_lock(&f->wt.lock);
	while (waiter_sleep_until_locked(&f->wt, time_mono() + f->o.step_s))
		step_locked(f);
	pthread_mutex_unlock(&f->wt.lock);
	return NULL;
}

static void copy_view(void *ctx, struct pipeline_view *out)
{
	struct fake *f = ctx;
	pthread_mutex_lock(&f->wt.lock);
	*out = f->view;
	pthread_mutex_unlock(&f->wt.lock);
}

static size_t copy_gpus(void *ctx, struct fleet_gpu *out, size_t max)
{
	struct fake *f = ctx;
	pthread_mutex_lock(&f->wt.lock);
	size_t n = f->o.gpus < max ? f->o.gpus : max;
	memcpy(out, f->gpus, n * sizeof(*out));
	size_t total = f->o.gpus;
	pthread_mutex_unlock(&f->wt.lock);
	return total;
}

struct view_source fake_source(struct fake *f)
{
	return (struct view_source){.ctx = f, .copy_view = copy_view, .copy_gpus = copy_gpus};
}

int fake_create(struct fake **out, const struct fake_opts *opts)
{
	int rc = -EINVAL;
	struct fake *f = NULL;
	if (!opts || opts->gpus < 1 || opts->gpus > 4096 || !(opts->step_s > 0))
		goto fail;
	rc = -ENOMEM;
	f = calloc(1, sizeof(*f));
	if (!f)
		goto fail;
	f->o = *opts;
	f->gpus = calloc(opts->gpus, sizeof(*f->gpus));
	if (!f->gpus)
		goto fail;
	if ((rc = waiter_init(&f->wt)) != 0)
		goto fail;
	f->started = now_s();
	static const char *const models[] = {"A100-SXM4-80GB", "H100-SXM5-80GB", "H200"};
	for (size_t i = 0; i < opts->gpus; i++) {
		struct fleet_gpu *g = &f->gpus[i];
		size_t host = opts->per_host ? i / opts->per_host : 0;
		size_t idx = opts->per_host ? i % opts->per_host : i;
		snprintf(g->key, sizeof(g->key), "GPU-fa4e%04zx-0000-4000-8000-%012zx", i,
		         i * 7919);
		snprintf(g->host, sizeof(g->host), "node%02zu", host + 1);
		snprintf(g->model, sizeof(g->model), "%s", models[host % 3]);
		g->index = (int)idx;
		snprintf(g->last.key, sizeof(g->last.key), "%s", g->key);
		snprintf(g->last.host, sizeof(g->last.host), "%s", g->host);
		snprintf(g->last.model, sizeof(g->last.model), "%s", g->model);
		g->last.index = g->index;
		g->first_seen = f->started;
		g->p_fail = NAN;
		g->nprocs = -1; /* no processes reported */
	}
	step_locked(f); /* a first sample before anyone looks */
	rc = waiter_start(&f->wt, fake_main, f);
	if (rc) {
		waiter_destroy(&f->wt);
		goto fail;
	}
	*out = f; /* caller owns */
	return 0;
fail:
	if (f)
		free(f->gpus);
	free(f);
	return rc;
}

void fake_destroy(struct fake *f)
{
	if (!f)
		return;
	waiter_destroy(&f->wt);
	free(f->gpus);
	free(f);
}
