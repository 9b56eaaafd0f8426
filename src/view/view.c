#include "view/view.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/textcell.h"
#include "health/rules.h"

/* ---- sparklines */

size_t view_spark_levels(const float *v, size_t n, double lo, double hi, int *levels, size_t width)
{
	double span = hi - lo;
	for (size_t c = 0; c < width; c++) {
		/* cell c shows sample n - width + c (right-aligned) */
		if (c + n < width) {
			levels[c] = -1;
			continue;
		}
		double x = v[n - width + c];
		if (isnan(x) || !(span > 0)) {
			levels[c] = isnan(x) ? -1 : VIEW_SPARK_LEVELS / 2;
			continue;
		}
		double f = (x - lo) / span;
		int l = (int)floor(f * VIEW_SPARK_LEVELS);
		if (l < 0)
			l = 0;
		if (l >= VIEW_SPARK_LEVELS)
			l = VIEW_SPARK_LEVELS - 1;
		levels[c] = l;
	}
	return width;
}

const char *view_spark_glyph(int level, bool unicode)
{
	static const char *const u[VIEW_SPARK_LEVELS] = {"\u2581", "\u2582", "\u2583", "\u2584",
	                                                 "\u2585", "\u2586", "\u2587", "\u2588"};
	static const char *const a[VIEW_SPARK_LEVELS] = {"_", ".", ":", "-", "=", "+", "*", "#"};
	if (level < 0 || level >= VIEW_SPARK_LEVELS)
		return " ";
	return unicode ? u[level] : a[level];
}

size_t view_spark_text(const float *v, size_t n, double lo, double hi, size_t width, bool unicode,
                       char *buf, size_t len)
{
	int levels[256];
	if (width > sizeof(levels) / sizeof(levels[0]))
		width = sizeof(levels) / sizeof(levels[0]);
	view_spark_levels(v, n, lo, hi, levels, width);
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	for (size_t c = 0; c < width; c++) {
		const char *g = view_spark_glyph(levels[c], unicode);
		size_t gl = strlen(g);
		if (used + gl + 1 > len)
			return c;
		memcpy(buf + used, g, gl);
		used += gl;
		buf[used] = '\0';
	}
	return width;
}

void view_series_scale(const struct fleet_gpu *g, enum fleet_series s, double *lo, double *hi)
{
	*lo = 0;
	switch (s) {
	case FLEET_TEMP:
		*hi = 100;
		if (health_sample_has(&g->last, HS_SLOWDOWN_TEMP) &&
		    g->last.v[HS_SLOWDOWN_TEMP] > *hi)
			*hi = g->last.v[HS_SLOWDOWN_TEMP];
		break;
	case FLEET_POWER: {
		double m = 0;
		if (health_sample_has(&g->last, HS_POWER_LIMIT))
			m = g->last.v[HS_POWER_LIMIT];
		for (size_t i = 0; i < g->nhist && i < FLEET_HISTORY; i++)
			if (!isnan(g->hist[FLEET_POWER][i]) && g->hist[FLEET_POWER][i] > m)
				m = g->hist[FLEET_POWER][i];
		*hi = m > 0 ? m : 1;
		break;
	}
	case FLEET_UTIL:
	default: *hi = 100; break;
	}
}

/* ---- thresholds */

enum view_level view_temp_level(const struct fleet_gpu *g)
{
	if (!health_sample_has(&g->last, HS_GPU_TEMP))
		return VL_NONE;
	if (g->stale)
		return VL_DIM;
	double t = g->last.v[HS_GPU_TEMP];
	double slow =
	    health_sample_has(&g->last, HS_SLOWDOWN_TEMP) ? g->last.v[HS_SLOWDOWN_TEMP] : 90.0;
	if (t >= slow - 5)
		return VL_CRIT;
	if (t >= slow - 15)
		return VL_WARN;
	return VL_OK;
}

enum view_level view_power_level(const struct fleet_gpu *g)
{
	if (!health_sample_has(&g->last, HS_POWER))
		return VL_NONE;
	if (g->stale)
		return VL_DIM;
	if (!health_sample_has(&g->last, HS_POWER_LIMIT) || g->last.v[HS_POWER_LIMIT] <= 0)
		return VL_OK;
	double f = g->last.v[HS_POWER] / g->last.v[HS_POWER_LIMIT];
	if (f >= 0.98)
		return VL_CRIT;
	if (f >= 0.90)
		return VL_WARN;
	return VL_OK;
}

enum view_level view_health_level(const struct fleet_gpu *g)
{
	if (!g->have_health)
		return VL_NONE;
	switch (g->health.status) {
	case HEALTH_FAIL: return VL_CRIT;
	case HEALTH_WARN: return VL_WARN;
	default: return g->stale ? VL_DIM : VL_OK;
	}
}

/* ---- sort and filter */

const char *view_sort_name(enum view_sort_key k)
{
	static const char *const n[VS_COUNT] = {"index", "model",  "temp",  "power",
	                                        "util",  "memory", "health"};
	return (unsigned)k < VS_COUNT ? n[k] : "?";
}

bool view_sort_default_desc(enum view_sort_key k)
{
	return k == VS_TEMP || k == VS_POWER || k == VS_UTIL || k == VS_MEM || k == VS_HEALTH;
}

static bool contains_ci(const char *hay, const char *needle, size_t nlen)
{
	size_t hl = strlen(hay);
	if (nlen == 0)
		return true;
	for (size_t i = 0; i + nlen <= hl; i++)
		if (strncasecmp(hay + i, needle, nlen) == 0)
			return true;
	return false;
}

static bool word_match(const struct fleet_gpu *g, const char *w, size_t wl)
{
	/* "host=NAME": exactly that host (Enter on a host of the overview); "host=-": unknown */
	if (wl >= 5 && strncmp(w, "host=", 5) == 0) {
		const char *h = g->host[0] ? g->host : "-";
		return strlen(h) == wl - 5 && strncmp(h, w + 5, wl - 5) == 0;
	}
	char idx[24];
	snprintf(idx, sizeof(idx), "gpu%d", g->index);
	if (contains_ci(g->host, w, wl) || contains_ci(g->model, w, wl) ||
	    contains_ci(g->key, w, wl) || contains_ci(idx, w, wl))
		return true;
	if (g->has_workload &&
	    (contains_ci(g->wl_namespace, w, wl) || contains_ci(g->wl_pod, w, wl) ||
	     contains_ci(g->wl_container, w, wl)))
		return true;
	if (g->have_health && (contains_ci(health_status_name(g->health.status), w, wl) ||
	                       contains_ci(health_action_name(g->action), w, wl)))
		return true;
	return false;
}

bool view_filter_match(const struct fleet_gpu *g, const char *filter)
{
	if (!filter)
		return true;
	const char *p = filter;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			return true;
		const char *e = p;
		while (*e && *e != ' ' && *e != '\t')
			e++;
		if (!word_match(g, p, (size_t)(e - p)))
			return false;
		p = e;
	}
}

/* qsort has no context argument in C17: the comparison reads these (UI thread only). */
struct order_ctx {
	const struct fleet_gpu *gpus;
	enum view_sort_key key;
	bool desc, group;
};
static _Thread_local struct order_ctx g_octx;

static double metric(const struct fleet_gpu *g, enum view_sort_key k)
{
	switch (k) {
	case VS_TEMP:
		return health_sample_has(&g->last, HS_GPU_TEMP) ? g->last.v[HS_GPU_TEMP]
		                                                : -INFINITY;
	case VS_POWER:
		return health_sample_has(&g->last, HS_POWER) ? g->last.v[HS_POWER] : -INFINITY;
	case VS_UTIL:
		return health_sample_has(&g->last, HS_GPU_UTIL) ? g->last.v[HS_GPU_UTIL]
		                                                : -INFINITY;
	case VS_MEM: return isnan(g->fb_used_mib) ? -INFINITY : g->fb_used_mib;
	case VS_HEALTH:
		/* worse is larger: status first, then a lower score */
		if (!g->have_health)
			return -INFINITY;
		return (double)g->health.status * 1000.0 + (100 - g->health.score);
	default: return 0;
	}
}

static int cmp_order(const void *pa, const void *pb)
{
	const struct fleet_gpu *a = &g_octx.gpus[*(const size_t *)pa];
	const struct fleet_gpu *b = &g_octx.gpus[*(const size_t *)pb];
	int c = 0;
	if (g_octx.group) {
		c = strcmp(a->host, b->host);
		if (c)
			return c;
	}
	if (g_octx.key == VS_MODEL) {
		c = strcmp(a->model, b->model);
	} else if (g_octx.key != VS_INDEX) {
		double x = metric(a, g_octx.key), y = metric(b, g_octx.key);
		c = x < y ? -1 : x > y ? 1 : 0;
	} else {
		c = fleet_gpu_cmp(a, b);
	}
	if (g_octx.desc)
		c = -c;
	return c ? c : fleet_gpu_cmp(a, b);
}

size_t view_order(const struct fleet_gpu *gpus, size_t n, const char *filter,
                  enum view_sort_key key, bool desc, bool group_hosts, size_t *order)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (view_filter_match(&gpus[i], filter))
			order[m++] = i;
	g_octx = (struct order_ctx){gpus, key, desc, group_hosts};
	if (m > 1)
		qsort(order, m, sizeof(*order), cmp_order);
	return m;
}

/* ---- columns */

const char *view_col_title(enum view_col c)
{
	static const char *const t[VC_COUNT] = {"GPU",  "MODEL", "TEMP",   "POWER/LIMIT",
	                                        "UTIL", "MEM",   "HEALTH", "WORKLOAD",
	                                        "TEMP", "POWER", "UTIL"};
	return (unsigned)c < VC_COUNT ? t[c] : "";
}

void view_layout(int cols, struct view_layout *out)
{
	view_layout_workload(cols, 0, out);
}

char *view_workload_text(const struct fleet_gpu *g, int width, char *buf, size_t len)
{
	if (!len)
		return buf;
	buf[0] = '\0';
	if (!g->has_workload || width <= 0)
		return buf;
	/* cells are display columns as the console shows them (textcell, the locale's charset):
	 * a UTF-8 name is measured by its characters' widths and never cut inside one */
	enum textcell_charset cs = textcell_locale_charset();
	char both[FLEET_NS_MAX + FLEET_POD_MAX + 2];
	const char *text = g->wl_pod[0]         ? g->wl_pod
	                   : g->wl_namespace[0] ? g->wl_namespace
	                                        : g->wl_container;
	if (g->wl_namespace[0] && g->wl_pod[0]) {
		snprintf(both, sizeof(both), "%s/%s", g->wl_namespace, g->wl_pod);
		if (textcell_width(cs, both) <= width)
			text = both;
	}
	textcell_fit(cs, text, width, false, buf, len, NULL);
	return buf;
}

void view_layout_workload(int cols, int workload, struct view_layout *out)
{
	/* fixed widths; one space between columns */
	static const int w[VC_COUNT] = {3, 0, 4, 9, 4, 9, 11, 0, 0, 0, 0};
	int x = 0;
	for (int c = 0; c < VC_COUNT; c++) {
		out->x[c] = -1;
		out->width[c] = 0;
	}
	if (cols < 1) {
		out->total = 0;
		return;
	}
	int fixed = 0;
	for (int c = 0; c < VC_COUNT; c++)
		if (w[c])
			fixed += w[c] + 1;
	/* room left for the model and the sparklines: the model gets 14 cells ("A100-SXM4-80GB")
	 * when the sparklines keep 5 each, 20 when they keep 12, at least 9 or none */
	int left = cols - fixed;
	/* the workload: what it asks while the model keeps 9 cells and the sparklines 5 each */
	int wl = workload > VIEW_WORKLOAD_MAX ? VIEW_WORKLOAD_MAX : workload;
	int spare = left - (9 + 1) - 3 * (5 + 1) - 1;
	if (wl > spare)
		wl = spare;
	if (wl < (workload < 8 ? workload : 8) || wl <= 0)
		wl = 0; /* too narrow: hidden */
	left -= wl ? wl + 1 : 0;
	int model = 0;
	if (left - 20 - 1 >= 3 * (12 + 1))
		model = 20;
	else if (left - 14 - 1 >= 3 * (5 + 1))
		model = 14;
	else if (left - 9 - 1 >= 3 * (5 + 1))
		model = left - 1 - 3 * (5 + 1);
	int spark_room = left - (model ? model + 1 : 0);
	int spark = spark_room / 3 - 1;
	if (spark > 60)
		spark = 60;
	for (int c = 0; c < VC_COUNT; c++) {
		int cw = w[c];
		if (c == VC_MODEL)
			cw = model;
		else if (c == VC_WORKLOAD)
			cw = wl;
		else if (c >= VC_SPARK_TEMP)
			cw = spark >= 4 ? spark : 0;
		if (cw <= 0 || x + cw > cols)
			continue;
		out->x[c] = x;
		out->width[c] = cw;
		x += cw + 1;
	}
	out->total = x > 0 ? x - 1 : 0;
}

/* ---- formatting */

char *view_fmt_count(double v, char *buf, size_t len)
{
	double a = fabs(v);
	if (isnan(v))
		snprintf(buf, len, "-");
	else if (a < 1000)
		snprintf(buf, len, "%.0f", v);
	else if (a < 1e4)
		snprintf(buf, len, "%.2fk", v / 1e3);
	else if (a < 1e6)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else if (a < 1e7)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (a < 1e9)
		snprintf(buf, len, "%.1fM", v / 1e6);
	else
		snprintf(buf, len, "%.2fG", v / 1e9);
	return buf;
}

char *view_fmt_age(double s, char *buf, size_t len)
{
	if (isnan(s) || s < 0)
		snprintf(buf, len, "-");
	else if (s < 10)
		snprintf(buf, len, "%.1fs", s);
	else if (s < 60)
		snprintf(buf, len, "%.0fs", s);
	else if (s < 3600)
		snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
	else if (s < 86400)
		snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
	else
		snprintf(buf, len, "%dd%02dh", (int)(s / 86400), (int)fmod(s / 3600, 24));
	return buf;
}

const char *view_model_short(const char *model)
{
	static const char prefix[] = "NVIDIA ";
	if (strncasecmp(model, prefix, sizeof(prefix) - 1) == 0 && model[sizeof(prefix) - 1])
		return model + sizeof(prefix) - 1;
	return model;
}

char *view_fmt_mib(double mib, char *buf, size_t len)
{
	if (isnan(mib))
		snprintf(buf, len, "-");
	else if (mib < 1000)
		snprintf(buf, len, "%.0fM", mib);
	else
		snprintf(buf, len, "%.1fG", mib / 1024.0);
	return buf;
}

/* ---- decoding */

const char *view_xid_meaning(unsigned code)
{
	const char *w = rules_xid_what(code);
	return w ? w : "not in the catalog: see NVIDIA's XID list";
}

char *view_clock_reasons(uint64_t mask, char *buf, size_t len)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} bits[] = {
	    {0x001, "idle"},        {0x002, "app clocks"},     {0x004, "SW power cap"},
	    {0x008, "HW slowdown"}, {0x010, "sync boost"},     {0x020, "SW thermal"},
	    {0x040, "HW thermal"},  {0x080, "HW power brake"}, {0x100, "display clocks"},
	};
	size_t used = 0;
	if (len)
		buf[0] = '\0';
	if (mask == 0) {
		snprintf(buf, len, "none");
		return buf;
	}
	uint64_t known = 0;
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		known |= bits[i].bit;
		if (!(mask & bits[i].bit))
			continue;
		int k = snprintf(buf + used, len > used ? len - used : 0, "%s%s", used ? ", " : "",
		                 bits[i].name);
		if (k < 0 || (size_t)k >= len - used)
			return buf;
		used += (size_t)k;
	}
	if (mask & ~known)
		snprintf(buf + used, len > used ? len - used : 0, "%sother 0x%llx",
		         used ? ", " : "", (unsigned long long)(mask & ~known));
	return buf;
}

/* ---- pipeline panel */

const char *view_part_name(enum pipeline_part p)
{
	static const char *const n[PP_COUNT] = {"simulator", "collector", "broker",
	                                        "database",  "sink",      "scorer"};
	return (unsigned)p < PP_COUNT ? n[p] : "?";
}

const char *view_state_name(enum part_state s)
{
	static const char *const n[] = {"off",    "starting", "running", "degraded",
	                                "failed", "stopped",  "stuck"};
	return (unsigned)s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

double view_scrape_age(const struct pipeline_view *v)
{
	double newest = 0;
	for (size_t i = 0; i < v->ntargets && i < PIPELINE_MAX_TARGETS; i++)
		if (v->targets[i].last_success > newest)
			newest = v->targets[i].last_success;
	if (newest <= 0)
		return -1;
	double age = v->now - newest;
	return age < 0 ? 0 : age;
}

size_t view_targets_down(const struct pipeline_view *v)
{
	size_t down = 0;
	for (size_t i = 0; i < v->ntargets && i < PIPELINE_MAX_TARGETS; i++)
		if (v->targets[i].consecutive_failures > 0)
			down++;
	return down;
}

void view_rates_update(struct view_rates *r, const struct pipeline_view *v, double window_s)
{
	/* the new list, in the view's order, keeping what is known of each target */
	static _Thread_local struct view_rates next;
	next.n = 0;
	for (size_t i = 0; i < v->ntargets && i < PIPELINE_MAX_TARGETS; i++) {
		const struct scrape_target_stats *t = &v->targets[i];
		uint64_t count = t->ok + t->failed;
		size_t k = next.n++;
		snprintf(next.e[k].url, sizeof(next.e[k].url), "%s", t->url);
		next.e[k].count = count;
		next.e[k].t = v->now;
		next.e[k].rate = NAN;
		for (size_t j = 0; j < r->n; j++) {
			if (strcmp(r->e[j].url, t->url) != 0)
				continue;
			next.e[k] = r->e[j];
			double dt = v->now - r->e[j].t;
			if (dt >= window_s && dt > 0 && count >= r->e[j].count) {
				next.e[k].rate = (double)(count - r->e[j].count) / dt;
				next.e[k].count = count;
				next.e[k].t = v->now;
			} else if (count < r->e[j].count) { /* counters restarted */
				next.e[k].count = count;
				next.e[k].t = v->now;
			}
			break;
		}
	}
	r->n = next.n;
	memcpy(r->e, next.e, next.n * sizeof(next.e[0]));
}

double view_rate_of(const struct view_rates *r, const char *url)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->e[i].url, url) == 0)
			return r->e[i].rate;
	return NAN;
}

char *view_fmt_lag(const struct sink_stats *s, char *buf, size_t len)
{
	if (!len)
		return buf;
	if (s->lag_total < 0) {
		snprintf(buf, len, "lag -");
		return buf;
	}
	int nparts = s->nparts < SINK_MAX_PARTS ? s->nparts : SINK_MAX_PARTS;
	int lagging = 0;
	for (int p = 0; p < nparts; p++)
		lagging += s->parts[p].lag != 0;
	size_t k = (size_t)snprintf(buf, len, "lag %lld [", (long long)s->lag_total);
	if (k >= len)
		return buf;
	if (!lagging) {
		snprintf(buf + k, len - k, "%d partition%s]", nparts, nparts == 1 ? "" : "s");
		return buf;
	}
	int shown = 0;
	for (int p = 0; p < nparts; p++) {
		if (s->parts[p].lag == 0)
			continue;
		char item[48], more[24];
		if (s->parts[p].lag < 0)
			snprintf(item, sizeof(item), "%sp%d:?", shown ? " " : "",
			         (int)s->parts[p].partition);
		else
			snprintf(item, sizeof(item), "%sp%d:%lld", shown ? " " : "",
			         (int)s->parts[p].partition, (long long)s->parts[p].lag);
		int rest = lagging - shown - 1; /* after this one */
		snprintf(more, sizeof(more), " +%d more]", rest);
		/* this item must leave room for "]" or for the "+N more]" of the rest */
		size_t need = strlen(item) + (rest ? strlen(more) : 1);
		if (k + need >= len) {
			snprintf(buf + k, len - k, "%s+%d more]", shown ? " " : "",
			         lagging - shown);
			return buf;
		}
		memcpy(buf + k, item, strlen(item) + 1);
		k += strlen(item);
		shown++;
	}
	snprintf(buf + k, len - k, "]");
	return buf;
}

char *view_fmt_losses(const struct pipeline_view *v, char *buf, size_t len)
{
	const struct producer_stats *ps = &v->collector.producer;
	uint64_t n[4] = {ps->dropped, ps->refused, ps->failed, v->gate.lost};
	static const char *const why[4] = {"dropped (past the memory/spool bounds)",
	                                   "refused (larger than the broker takes)",
	                                   "failed delivery", "forgotten by the in-process broker"};
	uint64_t all = n[0] + n[1] + n[2] + n[3];
	if (len == 0)
		return buf;
	if (!all) {
		snprintf(buf, len, "no loss");
		return buf;
	}
	size_t k = (size_t)snprintf(buf, len, "LOST %llu:", (unsigned long long)all);
	bool first = true;
	for (int i = 0; i < 4 && k < len; i++) {
		if (!n[i])
			continue;
		k += (size_t)snprintf(buf + k, len - k, "%s %llu %s", first ? "" : ",",
		                      (unsigned long long)n[i], why[i]);
		first = false;
	}
	return buf;
}

char *view_fmt_gate(const struct pipeline_view *v, char *buf, size_t len)
{
	const struct pipeline_gate_view *g = &v->gate;
	if (len == 0)
		return buf;
	if (!g->active) {
		buf[0] = '\0';
		return buf;
	}
	snprintf(buf, len,
	         "in-process broker: %s (one partition: %lld uncommitted, %.1f of %.1f MiB), %llu "
	         "hold%s; memory bound %llu events / %llu MiB%s%s",
	         g->held ? "HOLDING events" : "open", (long long)g->backlog,
	         (double)g->backlog_bytes / 1048576.0, (double)g->high_bytes / 1048576.0,
	         (unsigned long long)g->holds, g->holds == 1 ? "" : "s",
	         (unsigned long long)g->buffer_events, (unsigned long long)(g->buffer_bytes >> 20),
	         g->error[0] ? "; " : "", g->error);
	return buf;
}
