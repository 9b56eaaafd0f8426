#include "health/rules.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/grow.h"
#include "core/hash.h"

#define HIST_CAP 160              /* recent samples kept per GPU */
#define HIST_MIN_SPACING_S 5.0    /* ... at least this far apart: 160 x 5 s > the 10 min window */
#define SBE_WINDOW_S 300.0
#define SBE_RECENT_S 60.0
#define THERMAL_FRAC_WINDOW_S 600.0
#define HOURLY_CAP 26             /* correctable remapped rows, one per hour: 24 h and spare */
#define DAILY_CAP 9               /* retired DBE pages, one per day: a week and spare */
#define XID_HELD_MAX 4

const char *health_status_name(enum health_status s)
{
	switch (s) {
	case HEALTH_PASS:
		return "pass";
	case HEALTH_WARN:
		return "warn";
	case HEALTH_FAIL:
		return "fail";
	}
	return "?";
}

const char *health_component_name(enum health_component c)
{
	static const char *const n[HC_COUNT] = {"thermal", "memory", "power", "interconnect", "xid"};
	return (unsigned)c < HC_COUNT ? n[c] : "?";
}

const char *health_action_name(enum health_action a)
{
	static const char *const n[ACT_COUNT] = {"keep", "drain", "reset", "reboot", "rma"};
	return (unsigned)a < ACT_COUNT ? n[a] : "?";
}

/* ---- the XID catalog: DCGM's health watch lists, then NVIDIA's catalog actions */

struct xid_rule {
	unsigned code;
	enum health_status sev;
	enum health_action remedy;
	const char *what;
};

static const struct xid_rule xid_rules[] = {
	{13, HEALTH_PASS, ACT_KEEP, "graphics engine exception (application)"},
	{31, HEALTH_WARN, ACT_KEEP, "GPU memory page fault"},
	{32, HEALTH_WARN, ACT_KEEP, "invalid or corrupted push buffer stream"},
	{38, HEALTH_WARN, ACT_DRAIN, "driver firmware error (PCIe)"},
	{39, HEALTH_WARN, ACT_DRAIN, "PCIe error"},
	{42, HEALTH_WARN, ACT_DRAIN, "PCIe error"},
	{43, HEALTH_WARN, ACT_KEEP, "GPU stopped processing (application fault)"},
	{45, HEALTH_PASS, ACT_KEEP, "preemptive cleanup"},
	{48, HEALTH_FAIL, ACT_RESET, "double-bit ECC error"},
	{54, HEALTH_WARN, ACT_DRAIN, "auxiliary power not connected"},
	{56, HEALTH_WARN, ACT_DRAIN, "display engine error"},
	{57, HEALTH_WARN, ACT_DRAIN, "error programming video memory interface"},
	{58, HEALTH_WARN, ACT_DRAIN, "unstable video memory interface"},
	{60, HEALTH_WARN, ACT_DRAIN, "video processor exception"},
	{61, HEALTH_WARN, ACT_DRAIN, "PMU breakpoint"},
	{62, HEALTH_WARN, ACT_RESET, "internal micro-controller halt"},
	{63, HEALTH_WARN, ACT_RESET, "row remap / page retirement pending reset"},
	{64, HEALTH_FAIL, ACT_RMA, "row remap / page retirement failure"},
	{67, HEALTH_WARN, ACT_RESET, "NVLink error"},
	{73, HEALTH_WARN, ACT_RESET, "NVLink error"},
	{74, HEALTH_FAIL, ACT_RESET, "NVLink error"},
	{78, HEALTH_WARN, ACT_DRAIN, "power error"},
	{79, HEALTH_FAIL, ACT_REBOOT, "GPU fell off the bus"},
	{92, HEALTH_WARN, ACT_RMA, "high single-bit ECC error rate"},
	{93, HEALTH_WARN, ACT_KEEP, "non-fatal InfoROM violation"},
	{94, HEALTH_WARN, ACT_RESET, "contained ECC error"},
	{95, HEALTH_FAIL, ACT_RESET, "uncontained ECC error"},
	{119, HEALTH_FAIL, ACT_RESET, "GSP RPC timeout"},
	{120, HEALTH_FAIL, ACT_RESET, "GSP error"},
	{121, HEALTH_WARN, ACT_RESET, "NVLink C2C error"},
	{137, HEALTH_WARN, ACT_RESET, "NVLink FLA error"},
	{140, HEALTH_FAIL, ACT_RESET, "unrecovered ECC error"},
	{154, HEALTH_WARN, ACT_RESET, "GPU recovery action changed"},
};

const char *rules_xid_what(unsigned code)
{
	for (size_t i = 0; i < sizeof(xid_rules) / sizeof(xid_rules[0]); i++)
		if (xid_rules[i].code == code)
			return xid_rules[i].what;
	return NULL;
}

static struct xid_rule xid_lookup(unsigned code)
{
	for (size_t i = 0; i < sizeof(xid_rules) / sizeof(xid_rules[0]); i++)
		if (xid_rules[i].code == code)
			return xid_rules[i];
	/* not in DCGM's lists nor the catalog rows above: warn, investigate */
	struct xid_rule other = {code, HEALTH_WARN, ACT_DRAIN, "XID not in the catalog"};
	return other;
}

/* ---- PCIe generation by model (the event carries no link generation) */

double rules_pcie_limit_per_min(const char *model)
{
	/* DCGM per-lane replays per minute: Gen3 0.48, Gen4 0.96, Gen5 1.92 */
	static const struct {
		const char *needle;
		double per_lane;
	} gen[] = {
		{"H100", 1.92}, {"H200", 1.92}, {"H800", 1.92}, {"H20", 1.92}, {"B100", 1.92},
		{"B200", 1.92}, {"GB200", 1.92}, {"L40", 0.96}, {"L4", 0.96}, {"A100", 0.96},
		{"A800", 0.96}, {"A30", 0.96}, {"A10", 0.96}, {"A40", 0.96}, {"V100", 0.48},
		{"T4", 0.48},
	};
	double per_lane = 0.96; /* unknown model: Gen4 */
	for (size_t i = 0; model && i < sizeof(gen) / sizeof(gen[0]); i++)
		if (strcasestr(model, gen[i].needle)) {
			per_lane = gen[i].per_lane;
			break;
		}
	return ceil(per_lane * RULES_PCIE_LANES);
}

/* ---- per-GPU state */

struct hist {
	double t;
	uint32_t valid; /* hs_field bits of the counters below */
	uint64_t sbe, pcie, tv, pv, flit, data;
};

struct held_xid {
	unsigned code;
	double t;
};

struct host;

struct gpu {
	char key[HS_KEY_MAX];
	char model[HS_MODEL_MAX];
	struct host *host;
	double last_t;
	bool missing;       /* flagged fell off the bus */
	struct health_sample prev;
	bool have_prev;
	bool temp_warn_on;  /* hysteresis of the temperature warning */
	double pcie_limit;
	/* recent history, a ring */
	struct hist hist[HIST_CAP];
	size_t hn, hhead;   /* entries, index of the oldest */
	/* hourly correctable remapped rows, daily retired DBE pages */
	struct {
		double t;
		uint64_t v;
	} hourly[HOURLY_CAP], daily[DAILY_CAP];
	size_t nhourly, ndaily;
	struct held_xid xids[XID_HELD_MAX];
	size_t nxids;
	struct health_trends trends;
};

struct host {
	char name[HS_HOST_MAX];
	double last_tick;
	struct gpu **gpus;
	size_t n, cap;
};

/* A string-keyed open-addressing table of pointers. */
struct map {
	const char **keys; /* borrowed from the values */
	void **vals;
	size_t cap, n;
};

struct rules {
	struct rules_opts o;
	struct map gpus, hosts;
};

static uint64_t hash_str(const char *k)
{
	return hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, k); /* FNV-1a, our basis */
}

static void *map_get(const struct map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	for (size_t j = hash_str(key) & (m->cap - 1); m->keys[j]; j = (j + 1) & (m->cap - 1))
		if (strcmp(m->keys[j], key) == 0)
			return m->vals[j];
	return NULL;
}

/* Adds key (borrowed: must live as long as the entry) -> val. Returns 0 or -ENOMEM. */
static int map_put(struct map *m, const char *key, void *val)
{
	if ((m->n + 1) * 10 > m->cap * 7) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		const char **keys = calloc(cap, sizeof(*keys));
		void **vals = calloc(cap, sizeof(*vals));
		if (!keys || !vals) {
			free(keys);
			free(vals);
			return -ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->keys[i])
				continue;
			size_t j = hash_str(m->keys[i]) & (cap - 1);
			while (keys[j])
				j = (j + 1) & (cap - 1);
			keys[j] = m->keys[i];
			vals[j] = m->vals[i];
		}
		free(m->keys);
		free(m->vals);
		m->keys = keys;
		m->vals = vals;
		m->cap = cap;
	}
	size_t j = hash_str(key) & (m->cap - 1);
	while (m->keys[j])
		j = (j + 1) & (m->cap - 1);
	m->keys[j] = key;
	m->vals[j] = val;
	m->n++;
	return 0;
}

int rules_create(struct rules **out, const struct rules_opts *opts)
{
	struct rules *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->o.interval_s = opts && opts->interval_s > 0 ? opts->interval_s : 10.0;
	r->o.missing_intervals =
		opts && opts->missing_intervals > 0 ? opts->missing_intervals : RULES_MISSING_INTERVALS;
	*out = r; /* caller owns: rules_destroy */
	return 0;
}

void rules_destroy(struct rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->gpus.cap; i++)
		if (r->gpus.keys[i])
			free(r->gpus.vals[i]);
	for (size_t i = 0; i < r->hosts.cap; i++)
		if (r->hosts.keys[i]) {
			struct host *h = r->hosts.vals[i];
			free(h->gpus);
			free(h);
		}
	free(r->gpus.keys);
	free(r->gpus.vals);
	free(r->hosts.keys);
	free(r->hosts.vals);
	free(r);
}

size_t rules_gpu_count(const struct rules *r) { return r->gpus.n; }

static struct host *host_get(struct rules *r, const char *name)
{
	struct host *h = map_get(&r->hosts, name);
	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->last_tick = -INFINITY;
	if (map_put(&r->hosts, h->name, h)) {
		free(h);
		return NULL;
	}
	return h;
}

static int host_add_gpu(struct host *h, struct gpu *g)
{
	if (grow_array((void **)&h->gpus, &h->cap, h->n + 1, sizeof(*h->gpus), 8))
		return -ENOMEM;
	h->gpus[h->n++] = g;
	g->host = h;
	return 0;
}

static void host_remove_gpu(struct host *h, struct gpu *g)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->gpus[i] == g) {
			h->gpus[i] = h->gpus[--h->n];
			break;
		}
	g->host = NULL;
}

/* ---- history */

static struct hist *hist_at(struct gpu *g, size_t i) { return &g->hist[(g->hhead + i) % HIST_CAP]; }

static void hist_push(struct gpu *g, const struct health_sample *s)
{
	if (g->hn && s->time - hist_at(g, g->hn - 1)->t < HIST_MIN_SPACING_S)
		return;
	struct hist *e;
	if (g->hn < HIST_CAP) {
		e = hist_at(g, g->hn);
		g->hn++;
	} else {
		e = &g->hist[g->hhead];
		g->hhead = (g->hhead + 1) % HIST_CAP;
	}
	e->t = s->time;
	e->valid = s->valid;
	e->sbe = s->u[HS_SBE_VOL];
	e->pcie = s->u[HS_PCIE_REPLAY];
	e->tv = s->u[HS_THERMAL_VIOLATION];
	e->pv = s->u[HS_POWER_VIOLATION];
	e->flit = s->u[HS_NVLINK_CRC_FLIT];
	e->data = s->u[HS_NVLINK_CRC_DATA];
}

/* The newest history entry at or before t - window, else the oldest; NULL when empty. */
static const struct hist *hist_base(struct gpu *g, double now, double window)
{
	if (!g->hn)
		return NULL;
	const struct hist *best = hist_at(g, 0);
	for (size_t i = g->hn; i-- > 0;) {
		const struct hist *e = hist_at(g, i);
		if (e->t <= now - window + 1e-6) {
			best = e;
			break;
		}
	}
	return best;
}

static uint64_t growth(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

static void slow_push(double t, uint64_t v, size_t cap, double spacing, void *ring_, size_t *n)
{
	struct {
		double t;
		uint64_t v;
	} *ring = ring_;
	if (*n && t - ring[*n - 1].t < spacing)
		return;
	if (*n == cap) {
		memmove(&ring[0], &ring[1], (cap - 1) * sizeof(ring[0]));
		(*n)--;
	}
	ring[*n].t = t;
	ring[*n].v = v;
	(*n)++;
}

/* Growth of a slow ring's value since now - window (or since its oldest entry). */
static uint64_t slow_growth(double now, uint64_t v, double window, const void *ring_, size_t n)
{
	const struct {
		double t;
		uint64_t v;
	} *ring = ring_;
	if (!n)
		return 0;
	size_t base = 0;
	for (size_t i = n; i-- > 0;)
		if (ring[i].t <= now - window) {
			base = i;
			break;
		}
	return growth(v, ring[base].v);
}

/* ---- evaluation */

static void add_reason(struct health_result *res, const char *code, enum health_component comp,
		       enum health_status sev, enum health_action remedy, bool event, const char *fmt,
		       ...) __attribute__((format(printf, 7, 8)));
static void add_reason(struct health_result *res, const char *code, enum health_component comp,
		       enum health_status sev, enum health_action remedy, bool event, const char *fmt,
		       ...)
{
	if (event)
		res->event = true;
	if (res->nreasons == HEALTH_MAX_REASONS) {
		/* full: replace the mildest reason if this one is worse */
		size_t mild = 0;
		for (size_t i = 1; i < res->nreasons; i++)
			if (res->reasons[i].sev < res->reasons[mild].sev)
				mild = i;
		if (res->reasons[mild].sev >= sev)
			return;
		res->nreasons--;
		res->reasons[mild] = res->reasons[res->nreasons];
	}
	struct health_reason *r = &res->reasons[res->nreasons++];
	snprintf(r->code, sizeof(r->code), "%s", code);
	r->comp = comp;
	r->sev = sev;
	r->remedy = remedy;
	r->event = event;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* Component scores, overall score and status, strongest remedy; reasons worst first. */
static void finish(struct health_result *res)
{
	int deduct[HC_COUNT] = {0};
	enum health_status worst[HC_COUNT] = {HEALTH_PASS};
	res->status = HEALTH_PASS;
	res->remedy = ACT_KEEP;
	for (size_t i = 0; i < res->nreasons; i++) {
		const struct health_reason *r = &res->reasons[i];
		deduct[r->comp] += r->sev == HEALTH_FAIL ? 20 : r->sev == HEALTH_WARN ? 10
										 : RULES_SCORE_INFO_DEDUCT;
		if (r->sev > worst[r->comp])
			worst[r->comp] = r->sev;
		if (r->sev > res->status)
			res->status = r->sev;
		if (r->sev != HEALTH_PASS && r->remedy > res->remedy)
			res->remedy = r->remedy;
	}
	res->score = 100;
	for (int c = 0; c < HC_COUNT; c++) {
		int s = 100 - deduct[c];
		if (worst[c] == HEALTH_FAIL && s > RULES_SCORE_FAIL_MAX)
			s = RULES_SCORE_FAIL_MAX;
		else if (worst[c] == HEALTH_WARN && s > RULES_SCORE_WARN_MAX)
			s = RULES_SCORE_WARN_MAX;
		res->comp[c] = s < 0 ? 0 : s;
		if (res->comp[c] < res->score)
			res->score = res->comp[c];
	}
	/* worst first, stable (insertion sort of at most HEALTH_MAX_REASONS) */
	for (size_t i = 1; i < res->nreasons; i++) {
		struct health_reason t = res->reasons[i];
		size_t j = i;
		while (j > 0 && res->reasons[j - 1].sev < t.sev) {
			res->reasons[j] = res->reasons[j - 1];
			j--;
		}
		res->reasons[j] = t;
	}
}

static bool has(const struct health_sample *s, enum hs_field f) { return health_sample_has(s, f); }

static void eval_thermal(struct gpu *g, const struct health_sample *s, const struct hist *b60,
			 struct health_result *res)
{
	unsigned reasons = has(s, HS_CLOCK_REASONS) ? (unsigned)s->u[HS_CLOCK_REASONS] : 0;
	double slowdown = has(s, HS_SLOWDOWN_TEMP) && s->v[HS_SLOWDOWN_TEMP] > 0 ? s->v[HS_SLOWDOWN_TEMP]
										   : NAN;
	double maxop = has(s, HS_MAX_OP_TEMP) && s->v[HS_MAX_OP_TEMP] > 0
			       ? s->v[HS_MAX_OP_TEMP]
			       : slowdown - RULES_MAX_OP_BELOW_SLOWDOWN_C;
	double temp = has(s, HS_GPU_TEMP) ? s->v[HS_GPU_TEMP] : NAN;
	g->trends.temp_margin_c = slowdown - temp;
	if (isfinite(temp) && isfinite(slowdown) && temp >= slowdown)
		add_reason(res, "temp_slowdown", HC_THERMAL, HEALTH_FAIL, ACT_DRAIN, false,
			   "GPU at %.0f C, at or above its slowdown temperature %.0f C", temp, slowdown);
	else if (reasons & RULES_CLK_HW_THERMAL)
		add_reason(res, "hw_thermal_slowdown", HC_THERMAL, HEALTH_FAIL, ACT_DRAIN, false,
			   "hardware thermal slowdown: clocks cut by half or more");
	if (isfinite(temp) && isfinite(maxop)) {
		double on = maxop - RULES_TEMP_WARN_MARGIN_C;
		if (temp >= on)
			g->temp_warn_on = true;
		else if (temp < on - RULES_TEMP_HYST_C)
			g->temp_warn_on = false;
		if (g->temp_warn_on && !(isfinite(slowdown) && temp >= slowdown))
			add_reason(res, "temp_high", HC_THERMAL, HEALTH_WARN, ACT_DRAIN, false,
				   "GPU at %.0f C, near its max operating temperature %.0f C", temp, maxop);
	}
	if (reasons & RULES_CLK_SW_THERMAL)
		add_reason(res, "sw_thermal_slowdown", HC_THERMAL, HEALTH_WARN, ACT_DRAIN, false,
			   "software thermal slowdown: clocks held under the max operating temperature");
	if (b60 && has(s, HS_THERMAL_VIOLATION) && (b60->valid >> HS_THERMAL_VIOLATION & 1u) &&
	    s->u[HS_THERMAL_VIOLATION] > b60->tv)
		add_reason(res, "thermal_violation", HC_THERMAL, HEALTH_WARN, ACT_DRAIN, false,
			   "thermal violation time grew in the last %.0f s", s->time - b60->t);
}

static void eval_memory(struct gpu *g, const struct health_sample *s, struct health_result *res)
{
	const struct health_sample *p = g->have_prev ? &g->prev : NULL;
	if (has(s, HS_DBE_VOL) && s->u[HS_DBE_VOL] > 0) {
		bool ev = !p || !has(p, HS_DBE_VOL) || s->u[HS_DBE_VOL] > p->u[HS_DBE_VOL];
		add_reason(res, "dbe_volatile", HC_MEMORY, HEALTH_FAIL, ACT_RESET, ev,
			   "%llu volatile double-bit ECC error(s)", (unsigned long long)s->u[HS_DBE_VOL]);
	}
	if (has(s, HS_REMAP_FAILURE) && s->u[HS_REMAP_FAILURE]) {
		bool ev = !p || !has(p, HS_REMAP_FAILURE) || !p->u[HS_REMAP_FAILURE];
		add_reason(res, "row_remap_failure", HC_MEMORY, HEALTH_FAIL, ACT_RMA, ev,
			   "row remapping failed: memory cannot be repaired");
	}
	uint64_t rs = has(s, HS_RETIRED_SBE) ? s->u[HS_RETIRED_SBE] : 0;
	uint64_t rd = has(s, HS_RETIRED_DBE) ? s->u[HS_RETIRED_DBE] : 0;
	if (rs + rd >= RULES_RETIRED_PAGES_FAIL)
		add_reason(res, "retired_pages", HC_MEMORY, HEALTH_FAIL, ACT_RMA, false,
			   "%llu retired pages (limit %d)", (unsigned long long)(rs + rd),
			   RULES_RETIRED_PAGES_FAIL);
	else if (rd > RULES_RETIRED_DBE_FAIL &&
		 slow_growth(s->time, rd, 7 * 86400.0, g->daily, g->ndaily) > RULES_RETIRED_DBE_NEW_WEEK)
		add_reason(res, "retired_dbe_pages", HC_MEMORY, HEALTH_FAIL, ACT_RMA, false,
			   "%llu DBE retired pages, more than %d new this week", (unsigned long long)rd,
			   RULES_RETIRED_DBE_NEW_WEEK);
	if (has(s, HS_RETIRED_PENDING) && s->u[HS_RETIRED_PENDING])
		add_reason(res, "retired_pages_pending", HC_MEMORY, HEALTH_WARN, ACT_RESET, false,
			   "pages pending retirement: reset the GPU to retire them");
	if (has(s, HS_UNCORR_ROWS) && s->u[HS_UNCORR_ROWS] >= RULES_UNCORR_ROWS_WARN)
		add_reason(res, "uncorrectable_rows", HC_MEMORY, HEALTH_WARN, ACT_RMA, false,
			   "%llu uncorrectable remapped rows (limit %d)",
			   (unsigned long long)s->u[HS_UNCORR_ROWS], RULES_UNCORR_ROWS_WARN);
	if (has(s, HS_REMAP_PENDING) && s->u[HS_REMAP_PENDING])
		add_reason(res, "row_remap_pending", HC_MEMORY, HEALTH_WARN, ACT_RESET, false,
			   "row remap pending: takes effect at the next GPU reset");
	if (g->trends.sbe_per_h > RULES_SBE_INFO_PER_H)
		add_reason(res, "sbe_rate", HC_MEMORY, HEALTH_PASS, ACT_KEEP, false,
			   "%.0f single-bit ECC errors per hour", g->trends.sbe_per_h);
}

static void eval_power(const struct health_sample *s, const struct hist *b60,
		       struct health_result *res)
{
	unsigned reasons = has(s, HS_CLOCK_REASONS) ? (unsigned)s->u[HS_CLOCK_REASONS] : 0;
	if (!has(s, HS_POWER))
		add_reason(res, "power_unreadable", HC_POWER, HEALTH_WARN, ACT_KEEP, false,
			   "power usage cannot be read");
	bool grew = b60 && has(s, HS_POWER_VIOLATION) && (b60->valid >> HS_POWER_VIOLATION & 1u) &&
		    s->u[HS_POWER_VIOLATION] > b60->pv;
	bool hw = (reasons & RULES_CLK_HW_POWER_BRAKE) ||
		  ((reasons & RULES_CLK_HW_SLOWDOWN) && !(reasons & RULES_CLK_HW_THERMAL));
	if (reasons & RULES_CLK_HW_POWER_BRAKE)
		add_reason(res, "power_brake", HC_POWER, HEALTH_WARN, ACT_DRAIN, false,
			   "external power brake: clocks cut by half or more");
	else if (hw)
		add_reason(res, "hw_slowdown", HC_POWER, HEALTH_WARN, ACT_DRAIN, false,
			   "hardware slowdown not explained by temperature");
	if (grew && hw)
		add_reason(res, "power_violation", HC_POWER, HEALTH_WARN, ACT_DRAIN, false,
			   "power violation time grew in the last %.0f s", s->time - b60->t);
	else if (grew)
		add_reason(res, "power_capped", HC_POWER, HEALTH_PASS, ACT_KEEP, false,
			   "held at the power limit under load");
}

static void eval_interconnect(struct gpu *g, const struct health_sample *s, const struct hist *b60,
			      struct health_result *res)
{
	if (b60 && has(s, HS_PCIE_REPLAY) && (b60->valid >> HS_PCIE_REPLAY & 1u)) {
		uint64_t d = growth(s->u[HS_PCIE_REPLAY], b60->pcie);
		double span = s->time - b60->t;
		g->trends.pcie_ratio = span > 0 ? (double)d * 60.0 / fmax(span, 60.0) / g->pcie_limit : 0;
		if ((double)d > g->pcie_limit)
			add_reason(res, "pcie_replay", HC_INTERCONNECT, HEALTH_WARN, ACT_DRAIN, false,
				   "%llu PCIe replays in %.0f s (limit %.0f per minute)",
				   (unsigned long long)d, span, g->pcie_limit);
	}
	const struct health_sample *p = g->have_prev ? &g->prev : NULL;
	if (p && b60) {
		uint64_t d = 0;
		double per_s = 0;
		if (has(s, HS_NVLINK_CRC_FLIT) && has(p, HS_NVLINK_CRC_FLIT))
			d += growth(s->u[HS_NVLINK_CRC_FLIT], p->u[HS_NVLINK_CRC_FLIT]);
		if (has(s, HS_NVLINK_CRC_DATA) && has(p, HS_NVLINK_CRC_DATA))
			d += growth(s->u[HS_NVLINK_CRC_DATA], p->u[HS_NVLINK_CRC_DATA]);
		uint64_t dw = growth(s->u[HS_NVLINK_CRC_FLIT], b60->flit) +
			      growth(s->u[HS_NVLINK_CRC_DATA], b60->data);
		if (s->time > p->time)
			per_s = (double)d / (s->time - p->time);
		if (per_s >= RULES_NVLINK_CRC_FAIL_PER_S)
			add_reason(res, "nvlink_crc_rate", HC_INTERCONNECT, HEALTH_FAIL, ACT_RESET, false,
				   "%.0f NVLink CRC errors per second", per_s);
		else if (dw > 0)
			add_reason(res, "nvlink_crc", HC_INTERCONNECT, HEALTH_WARN, ACT_RESET, false,
				   "%llu NVLink CRC errors in the last %.0f s", (unsigned long long)dw,
				   s->time - b60->t);
	}
}

static void eval_xid(struct gpu *g, const struct health_sample *s, struct health_result *res)
{
	const struct health_sample *p = g->have_prev ? &g->prev : NULL;
	if (has(s, HS_XID) && s->u[HS_XID] != 0) {
		/* the gauge is sticky: a new value (or the first one seen) is the event */
		bool changed = !p || !has(p, HS_XID) || p->u[HS_XID] != s->u[HS_XID];
		if (changed) {
			if (g->nxids == XID_HELD_MAX) {
				memmove(&g->xids[0], &g->xids[1], (XID_HELD_MAX - 1) * sizeof(g->xids[0]));
				g->nxids--;
			}
			g->xids[g->nxids].code = (unsigned)s->u[HS_XID];
			g->xids[g->nxids].t = s->time;
			g->nxids++;
		}
	}
	size_t keep = 0;
	for (size_t i = 0; i < g->nxids; i++) {
		struct held_xid *h = &g->xids[i];
		struct xid_rule xr = xid_lookup(h->code);
		double hold = xr.sev == HEALTH_FAIL ? RULES_XID_FAIL_HOLD_S : RULES_XID_WARN_HOLD_S;
		if (s->time - h->t > hold)
			continue;
		g->xids[keep++] = *h;
		char code[HEALTH_REASON_CODE];
		snprintf(code, sizeof(code), "xid_%u", h->code);
		bool fresh = h->t == s->time;
		add_reason(res, code, HC_XID, xr.sev, xr.remedy, fresh && xr.sev == HEALTH_FAIL,
			   "XID %u: %s (%.0f s ago)", h->code, xr.what, s->time - h->t);
	}
	g->nxids = keep;
}

static void trends_update(struct gpu *g, const struct health_sample *s)
{
	struct health_trends *t = &g->trends;
	const struct hist *b5 = hist_base(g, s->time, SBE_WINDOW_S);
	const struct hist *b1 = hist_base(g, s->time, SBE_RECENT_S);
	t->sbe_count = t->sbe_per_h = t->sbe_per_h_recent = 0;
	if (b5 && has(s, HS_SBE_VOL) && (b5->valid >> HS_SBE_VOL & 1u)) {
		/* per hour over the whole window: time not yet seen counts as error-free */
		t->sbe_count = (double)growth(s->u[HS_SBE_VOL], b5->sbe);
		t->sbe_per_h = t->sbe_count * 3600.0 / SBE_WINDOW_S;
		t->sbe_per_h_recent = (double)growth(s->u[HS_SBE_VOL], b1->sbe) * 3600.0 / SBE_RECENT_S;
	}
	t->corr_rows_24h = has(s, HS_CORR_ROWS) ? (double)slow_growth(s->time, s->u[HS_CORR_ROWS],
								      86400.0, g->hourly, g->nhourly)
						: 0;
	t->pending = (has(s, HS_REMAP_PENDING) && s->u[HS_REMAP_PENDING]) ||
		     (has(s, HS_RETIRED_PENDING) && s->u[HS_RETIRED_PENDING]);
	/* share of the last 10 min with thermal violation growth, time-weighted */
	double grew = 0, span = 0;
	const struct hist *prev = NULL;
	for (size_t i = 0; i < g->hn; i++) {
		const struct hist *e = hist_at(g, i);
		if (e->t < s->time - THERMAL_FRAC_WINDOW_S)
			continue;
		if (prev) {
			span += e->t - prev->t;
			if (e->tv > prev->tv)
				grew += e->t - prev->t;
		}
		prev = e;
	}
	if (prev && s->time > prev->t) {
		span += s->time - prev->t;
		if (has(s, HS_THERMAL_VIOLATION) && s->u[HS_THERMAL_VIOLATION] > prev->tv)
			grew += s->time - prev->t;
	}
	t->thermal_frac = grew / THERMAL_FRAC_WINDOW_S;
	(void)span;
	t->pcie_ratio = 0; /* set by eval_interconnect */
	t->temp_margin_c = NAN; /* set by eval_thermal */
}

static void result_init(struct health_result *res, const struct gpu *g, double t)
{
	memset(res, 0, sizeof(*res));
	snprintf(res->key, sizeof(res->key), "%s", g->key);
	snprintf(res->host, sizeof(res->host), "%s", g->host ? g->host->name : "");
	res->time = t;
}

/* A counter that went down: the driver was reloaded (or the GPU reset): start over. */
static bool counters_reset(const struct gpu *g, const struct health_sample *s)
{
	static const enum hs_field vol[] = {HS_SBE_VOL, HS_DBE_VOL, HS_PCIE_REPLAY};
	if (!g->have_prev)
		return false;
	for (size_t i = 0; i < sizeof(vol) / sizeof(vol[0]); i++)
		if (has(s, vol[i]) && has(&g->prev, vol[i]) && s->u[vol[i]] < g->prev.u[vol[i]])
			return true;
	return false;
}

int rules_update(struct rules *r, const struct health_sample *s, struct health_result *res)
{
	struct gpu *g = map_get(&r->gpus, s->key);
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return -ENOMEM;
		snprintf(g->key, sizeof(g->key), "%s", s->key);
		g->last_t = -INFINITY;
		if (map_put(&r->gpus, g->key, g)) {
			free(g);
			return -ENOMEM;
		}
	}
	if (!(s->time > g->last_t))
		return -EALREADY;
	const char *hname = s->host;
	if (!g->host || strcmp(g->host->name, hname) != 0) {
		if (g->host)
			host_remove_gpu(g->host, g);
		struct host *h = host_get(r, hname);
		if (!h || host_add_gpu(h, g))
			return -ENOMEM;
	}
	if (strcmp(g->model, s->model) != 0 || !g->pcie_limit) {
		snprintf(g->model, sizeof(g->model), "%s", s->model);
		g->pcie_limit = rules_pcie_limit_per_min(s->model);
	}
	result_init(res, g, s->time);
	if (counters_reset(g, s)) {
		g->hn = g->hhead = 0;
		g->nxids = 0;
		add_reason(res, "counters_reset", HC_XID, HEALTH_PASS, ACT_KEEP, false,
			   "volatile counters went down: driver reload or GPU reset");
	}
	g->last_t = s->time;
	g->missing = false;

	trends_update(g, s);
	const struct hist *b60 = hist_base(g, s->time, RULES_VIOLATION_WINDOW_S);
	eval_thermal(g, s, b60, res);
	eval_memory(g, s, res);
	eval_power(s, b60, res);
	eval_interconnect(g, s, b60, res);
	eval_xid(g, s, res);
	res->trends = g->trends;
	finish(res);

	hist_push(g, s);
	if (has(s, HS_CORR_ROWS))
		slow_push(s->time, s->u[HS_CORR_ROWS], HOURLY_CAP, 3600.0, g->hourly, &g->nhourly);
	if (has(s, HS_RETIRED_DBE))
		slow_push(s->time, s->u[HS_RETIRED_DBE], DAILY_CAP, 86400.0, g->daily, &g->ndaily);
	g->prev = *s;
	g->have_prev = true;
	return 0;
}

size_t rules_missing(struct rules *r, const char *host, double now, struct health_result *res,
		     size_t max)
{
	struct host *h = map_get(&r->hosts, host ? host : "");
	if (!h || !(now > h->last_tick))
		return 0;
	h->last_tick = now;
	double limit = r->o.missing_intervals * r->o.interval_s;
	size_t n = 0;
	for (size_t i = 0; i < h->n && n < max; i++) {
		struct gpu *g = h->gpus[i];
		if (!(now - g->last_t > limit))
			continue;
		struct health_result *o = &res[n++];
		result_init(o, g, now);
		add_reason(o, "fell_off_bus", HC_INTERCONNECT, HEALTH_FAIL, ACT_REBOOT, !g->missing,
			   "no sample for %.0f s while other GPUs of %s report", now - g->last_t,
			   h->name[0] ? h->name : "its host");
		o->missing = true;
		o->trends = g->trends;
		finish(o);
		g->missing = true;
	}
	return n;
}
