#include "console.h"

#include <errno.h>
#include <langinfo.h>
#include <math.h>
#include <ncurses.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "core/signals.h"
#include "fleetview.h"
#include "health/rules.h"
#include "version.h"

/* SCR_OVERVIEW and SCR_ALERTS are drawn by fleetview.c (issue #25) */
enum ui_screen { SCR_MAIN = 0, SCR_DETAIL, SCR_PIPELINE, SCR_HELP, SCR_OVERVIEW, SCR_ALERTS };

/* colour pairs */
enum { CP_OK = 1, CP_WARN, CP_CRIT, CP_HEAD, CP_TITLE, CP_KEY, CP_KEYLABEL, CP_GROUP, CP_DIM };

#define FILTER_MAX 64

struct console {
	const struct view_source *src;
	struct console_opts o;
	bool unicode, color;
	/* the data of the last refresh */
	struct pipeline_view view;
	struct fleet_gpu *gpus;
	size_t ngpus, cap, total;
	size_t *order;
	size_t norder;
	/* what the user chose */
	enum ui_screen screen, back;
	enum view_sort_key sort;
	bool desc, group;
	char filter[FILTER_MAX];
	bool editing;
	char selected[HS_KEY_MAX]; /* key of the selected GPU */
	size_t sel;                /* its position in order[] */
	int scroll;                /* first line of the table (or of the pipeline/help screen) */
	struct view_rates rates;   /* scrape rate per target */
	/* where things are on the screen, for the mouse */
	long rowpos[512]; /* screen row -> position in order[] of the GPU drawn there, or -1 */
	struct {
		int x0, x1, key;
	} fkeys[8];
	int nfkeys;
	/* the fleet screens and the detail's history (fleetview.c) */
	struct fv *fv;
	struct fv_env env;
	enum ui_screen detail_back; /* where Esc leaves the detail for */
	/* a read-only viewer's fleet table from the database (issue #25): gpus holds a page of the
	 * ordered, filtered GPUs (ti says which), sel and top are positions in that order */
	bool dbt;
	struct viewdb_table *ti;
	struct viewdb_status tst;
	size_t top; /* the position of the first GPU row shown */
	struct {    /* the order of the last request: a change starts at the top */
		int sort;
		bool desc, group;
		char filter[FILTER_MAX];
	} asked;
	struct fleet_gpu *dgpu; /* the detail's GPU (viewdb_want_gpu) */
	bool have_dgpu;
	struct viewdb_status gst;
	/* measurement */
	double draw_cpu_s;
	unsigned long frames;
};

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the database's fleet table (a read-only viewer) */

/* Whether the page holds the order and filter the user chose now. */
static bool dbt_page_valid(const struct console *c)
{
	return c->ti->sort == (int)c->sort && c->ti->desc == c->desc && c->ti->group == c->group &&
	       strcmp(c->ti->filter, c->filter) == 0;
}

/* The GPU at position pos of the order, when the page holds it. */
static const struct fleet_gpu *dbt_row(const struct console *c, size_t pos)
{
	if (!dbt_page_valid(c) || pos < c->ti->offset || pos - c->ti->offset >= c->ngpus)
		return NULL;
	return &c->gpus[pos - c->ti->offset];
}

/* ---- drawing helpers */

static attr_t level_attr(const struct console *c, enum view_level l)
{
	switch (l) {
	case VL_OK: return c->color ? COLOR_PAIR(CP_OK) : A_NORMAL;
	case VL_WARN: return c->color ? COLOR_PAIR(CP_WARN) | A_BOLD : A_BOLD;
	case VL_CRIT: return c->color ? COLOR_PAIR(CP_CRIT) | A_BOLD : A_BOLD | A_UNDERLINE;
	case VL_DIM: return A_DIM;
	default: return A_NORMAL;
	}
}

/* Writes text (ASCII) at y, x, clipped to w cells and to the screen; pads with spaces when
 * pad. */
static void put(int y, int x, int w, attr_t a, bool pad, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void put(int y, int x, int w, attr_t a, bool pad, const char *fmt, ...)
{
	char buf[512];
	if (y < 0 || y >= LINES || x >= COLS || w <= 0)
		return;
	if (x + w > COLS)
		w = COLS - x;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	int n = (int)strlen(buf);
	/* keep to printable ASCII: names come from the network */
	for (int i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || (unsigned char)buf[i] > 0x7e)
			buf[i] = '?';
	if (n > w)
		n = w;
	attron(a);
	mvaddnstr(y, x, buf, n);
	if (pad)
		for (int i = n; i < w; i++)
			addch(' ');
	attroff(a);
}

/* One glyph cell of a sparkline or chart. */
static void put_level(const struct console *c, int y, int x, int level, attr_t a)
{
	if (y < 0 || y >= LINES || x < 0 || x >= COLS)
		return;
	if (level < 0) {
		mvaddch(y, x, ' ');
		return;
	}
	if (c->unicode) {
		wchar_t w[2] = {(wchar_t)(0x2581 + level), 0};
		cchar_t cc;
		setcchar(&cc, w, a, (short)PAIR_NUMBER(a), NULL);
		mvadd_wch(y, x, &cc);
	} else {
		mvaddch(y, x, (chtype)view_spark_glyph(level, false)[0] | a);
	}
}

static void spark(const struct console *c, int y, int x, int w, const struct fleet_gpu *g,
                  enum fleet_series s, attr_t a)
{
	int levels[256];
	double lo, hi;
	if (w <= 0)
		return;
	if (w > 256)
		w = 256;
	view_series_scale(g, s, &lo, &hi);
	view_spark_levels(g->hist[s], g->nhist, lo, hi, levels, (size_t)w);
	for (int i = 0; i < w; i++)
		put_level(c, y, x + i, levels[i], a);
}

/* A bar chart of a series h rows high and w cells wide at (y, x): the newest sample on the
 * right, eighth blocks for the top of each bar (ASCII: '#' and the ramp). */
static void chart(const struct console *c, int y, int x, int w, int h, const struct fleet_gpu *g,
                  enum fleet_series s, attr_t a)
{
	double lo, hi;
	view_series_scale(g, s, &lo, &hi);
	size_t n = g->nhist;
	for (int col = 0; col < w; col++) {
		long si = (long)n - w + col;
		double v = si >= 0 ? g->hist[s][si] : NAN;
		int eighths = 0;
		if (!isnan(v) && hi > lo) {
			double f = (v - lo) / (hi - lo);
			f = f < 0 ? 0 : f > 1 ? 1 : f;
			eighths = (int)lround(f * h * 8);
			if (eighths == 0 && v > lo)
				eighths = 1;
		}
		for (int r = 0; r < h; r++) {
			int cell = eighths - (h - 1 - r) * 8; /* eighths left for this row */
			int yy = y + r;
			if (cell >= 8)
				put_level(c, yy, x + col, 7, a);
			else if (cell > 0)
				put_level(c, yy, x + col, cell - 1, a);
			else if (r == h - 1 && si >= 0 && !isnan(v))
				put_level(c, yy, x + col, 0,
				          A_DIM); /* a baseline under a zero value */
			else
				mvaddch(yy, x + col, ' ');
		}
	}
}

static void title_bar(struct console *c, const char *what)
{
	char clock[16] = "";
	time_t now = (time_t)c->view.now;
	struct tm tm;
	/* local time, or UTC with --utc (then marked), like the charts and the alerts */
	if (now > 0 && (c->env.utc ? gmtime_r(&now, &tm) : localtime_r(&now, &tm)))
		strftime(clock, sizeof(clock), c->env.utc ? "%H:%M:%SZ" : "%H:%M:%S", &tm);
	char up[16];
	view_fmt_age(c->view.now - c->view.started, up, sizeof(up));
	size_t pass = 0, warn = 0, fail = 0;
	if (c->dbt) {
		pass = c->ti->pass;
		warn = c->ti->warn;
		fail = c->ti->fail;
	}
	for (size_t i = 0; !c->dbt && i < c->ngpus; i++) {
		if (!c->gpus[i].have_health)
			continue;
		if (c->gpus[i].health.status == HEALTH_FAIL)
			fail++;
		else if (c->gpus[i].health.status == HEALTH_WARN)
			warn++;
		else
			pass++;
	}
	attr_t a = c->color ? COLOR_PAIR(CP_TITLE) | A_BOLD : A_REVERSE;
	char left[256];
	int ll = snprintf(left, sizeof(left),
	                  " gpuhealth %s%s%s%s | %s | GPUs %zu  pass %zu warn %zu fail %zu",
	                  GPUHEALTH_VERSION, c->o.source_name ? " [" : "",
	                  c->o.source_name ? c->o.source_name : "", c->o.source_name ? "]" : "",
	                  what, c->total, pass, warn, fail);
	put(0, 0, COLS, a, true, "%s", left);
	/* the clock and the uptime on the right, as much as fits beside the counts */
	char right[48];
	snprintf(right, sizeof(right), " %s up %s ", clock, up);
	if (ll + (int)strlen(right) > COLS)
		snprintf(right, sizeof(right), " %s ", clock);
	int rl = (int)strlen(right);
	if (ll + rl <= COLS)
		put(0, COLS - rl, rl, a, false, "%s", right);
}

static void footer(struct console *c)
{
	int y = LINES - 1;
	if (y < 1)
		return;
	if (c->editing) {
		put(y, 0, COLS, A_NORMAL, true, "Filter: %s", c->filter);
		attron(A_REVERSE);
		int x = 8 + (int)strlen(c->filter);
		if (x < COLS)
			mvaddch(y, x, ' ');
		attroff(A_REVERSE);
		put(y, x + 2, COLS - x - 2, A_DIM, false, "Enter: keep  Esc: clear");
		return;
	}
	static const struct {
		const char *key, *label;
		unsigned screens; /* bit per screen */
		int code;         /* what a click on it does */
	} keys[] = {
	    {"F1", "Help", 0x3f, KEY_F(1)},     {"F2", "Pipeline", 0x3f, KEY_F(2)},
	    {"F4", "Filter", 0x11, KEY_F(4)},   {"F5", "Group", 0x1, KEY_F(5)},
	    {"F6", "SortBy", 0x11, KEY_F(6)},   {"Ent", "Detail", 0x31, '\n'},
	    {"Esc", "Back", 0x3e, 27},          {"F10", "Quit", 0x3f, KEY_F(10)},
	    {"F7", "Overview", 0x2f, KEY_F(7)}, {"F8", "Alerts", 0x1f, KEY_F(8)},
	};
	int x = 0;
	move(y, 0);
	clrtoeol();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!(keys[i].screens & (1u << c->screen)))
			continue;
		int kl = (int)strlen(keys[i].key), ll = (int)strlen(keys[i].label);
		if (x + kl + ll + 1 > COLS)
			break;
		put(y, x, kl, c->color ? COLOR_PAIR(CP_KEY) : A_NORMAL, false, "%s", keys[i].key);
		put(y, x + kl, ll + 1, c->color ? COLOR_PAIR(CP_KEYLABEL) : A_REVERSE, false, "%s ",
		    keys[i].label);
		if (c->nfkeys < (int)(sizeof(c->fkeys) / sizeof(c->fkeys[0]))) {
			c->fkeys[c->nfkeys].x0 = x;
			c->fkeys[c->nfkeys].x1 = x + kl + ll;
			c->fkeys[c->nfkeys].key = keys[i].code;
			c->nfkeys++;
		}
		x += kl + ll + 1;
	}
	if (c->screen == SCR_DETAIL) { /* the history's window and source, or why there is none */
		char hl[160];
		fv_history_label(c->fv, &c->env, hl, sizeof(hl));
		if (x + 2 < COLS) {
			attron(A_BOLD);
			mvaddnstr(y, x + 1, hl, COLS - x - 1);
			attroff(A_BOLD);
		}
	}
	if (c->screen == SCR_MAIN) {
		char st[160], flt[112] = "";
		if (c->filter[0])
			snprintf(flt, sizeof(flt), " /%s/ %zu/%zu", c->filter, c->norder,
			         c->dbt ? c->total : c->ngpus);
		snprintf(st, sizeof(st), " %s%s%s", view_sort_name(c->sort),
		         c->desc ? (c->unicode ? "\u2193" : "-") : (c->unicode ? "\u2191" : "+"),
		         flt);
		if (x + 12 < COLS) {
			attron(A_BOLD);
			mvaddnstr(y, x, st, COLS - x);
			attroff(A_BOLD);
		}
	}
}

/* ---- the pipeline panel on the main screen: 4 lines */

static int first_error(const struct pipeline_view *v, int *count)
{
	int first = -1;
	*count = 0;
	for (int p = 0; p < PP_COUNT; p++)
		if (v->parts[p].last_error[0] || v->parts[p].state == PART_FAILED) {
			if (first < 0)
				first = p;
			(*count)++;
		}
	return first;
}

static void panel(struct console *c, int y)
{
	const struct pipeline_view *v = &c->view;
	char a[16], b[16], d[16], e[16];
	attr_t lab = A_BOLD;
	/* scrape */
	put(y, 0, 8, lab, true, "Scrape");
	size_t down = view_targets_down(v);
	double age = view_scrape_age(v);
	attr_t aa = age < 0 ? A_DIM : level_attr(c, down ? VL_WARN : VL_OK);
	char shard[64] = ""; /* --shard: this collector's part of the list */
	if (v->collector.shard.count)
		snprintf(shard, sizeof(shard), " (shard %u/%u of %zu)", v->collector.shard.index,
		         v->collector.shard.count, v->collector.targets_listed);
	put(y, 8, COLS - 8, aa, true,
	    "%zu/%zu targets up%s  age %s  %.1f scrapes/s  events %s (%.1f/s)", v->ntargets - down,
	    v->ntargets, shard, view_fmt_age(age, a, sizeof(a)), v->scrapes_per_s,
	    view_fmt_count((double)v->collector.events, b, sizeof(b)), v->events_per_s);
	/* Kafka */
	const struct producer_stats *ps = &v->collector.producer;
	put(y + 1, 0, 8, lab, true, "Kafka");
	char lag[160] = "lag -";
	/* what is left of the line after the producer's counters (about 40 cells) */
	size_t room = COLS > 8 + 40 + 12 ? (size_t)(COLS - 8 - 40) : 12;
	if (v->have_sink)
		view_fmt_lag(&v->sink, lag, room < sizeof(lag) ? room : sizeof(lag));
	uint64_t lost = ps->dropped + ps->refused + ps->failed + v->gate.lost;
	put(y + 1, 8, COLS - 8,
	    lost           ? level_attr(c, VL_CRIT)
	    : v->gate.held ? level_attr(c, VL_WARN)
	                   : A_NORMAL,
	    true, "prod %s dlv %s buf %s%s lost %s  %s",
	    view_fmt_count((double)ps->produced, a, sizeof(a)),
	    view_fmt_count((double)ps->delivered, b, sizeof(b)),
	    view_fmt_count((double)(ps->queued + ps->in_flight + ps->spool_events), d, sizeof(d)),
	    v->gate.held ? " HELD" : "", view_fmt_count((double)lost, e, sizeof(e)), lag);
	/* database */
	put(y + 2, 0, 8, lab, true, "DB");
	if (v->db_rows >= 0)
		put(y + 2, 8, COLS - 8, A_NORMAL, true,
		    "gpu_metrics rows %s%s (%+.1f/s)  DLQ %s  scored %s  open alerts %zu",
		    v->db_rows_estimate ? "~" : "",
		    view_fmt_count((double)v->db_rows, a, sizeof(a)), v->db_rows_per_s,
		    view_fmt_count((double)v->sink.dead_letters, b, sizeof(b)),
		    view_fmt_count((double)v->scorer.scored, d, sizeof(d)), v->scorer.open_alerts);
	else
		put(y + 2, 8, COLS - 8, A_DIM, true, "gpu_metrics rows -  %s",
		    v->parts[PP_DATABASE].detail);
	/* the first error */
	int nerr;
	int p = first_error(v, &nerr);
	if (p < 0) {
		put(y + 3, 0, COLS, A_DIM, true, "        every service is running");
	} else {
		put(y + 3, 0, 8, level_attr(c, VL_CRIT), true, "Error");
		put(y + 3, 8, COLS - 8,
		    level_attr(c, v->parts[p].state == PART_FAILED ? VL_CRIT : VL_WARN), true,
		    "%s %s: %s%s", view_part_name((enum pipeline_part)p),
		    view_state_name(v->parts[p].state),
		    v->parts[p].last_error[0] ? v->parts[p].last_error : v->parts[p].detail,
		    nerr > 1 ? "  (more: F2)" : "");
	}
}

/* ---- the fleet table */

struct line {
	int gpu;    /* index into gpus, or -1 for a host heading */
	size_t pos; /* position in order[] */
};

static void health_text(const struct fleet_gpu *g, char *buf, size_t len)
{
	if (!g->have_health)
		snprintf(buf, len, "%s", g->stale ? "stale" : "-");
	else if (g->health.status == HEALTH_PASS && g->action == ACT_KEEP)
		snprintf(buf, len, "pass%s", g->stale ? " stale" : "");
	else
		snprintf(buf, len, "%s %s", health_status_name(g->health.status),
		         health_action_name(g->action));
}

static void table_row(struct console *c, int y, const struct view_layout *L,
                      const struct fleet_gpu *g, bool sel)
{
	char buf[64], b2[16], b3[16];
	attr_t base = sel ? A_REVERSE : g->stale ? A_DIM : A_NORMAL;
	if (sel) {
		attron(A_REVERSE);
		mvhline(y, 0, ' ', COLS);
		attroff(A_REVERSE);
	}
	const struct health_sample *s = &g->last;
	for (int col = 0; col < VC_COUNT; col++) {
		int x = L->x[col], w = L->width[col];
		if (x < 0)
			continue;
		attr_t a = base;
		switch (col) {
		case VC_INDEX:
			if (g->index >= 0)
				put(y, x, w, a, true, "%3d", g->index);
			else
				put(y, x, w, a, true, "  ?");
			break;
		case VC_MODEL:
			put(y, x, w, a, true, "%s", g->model[0] ? view_model_short(g->model) : "?");
			break;
		case VC_TEMP:
			if (!sel)
				a |= level_attr(c, view_temp_level(g));
			if (health_sample_has(s, HS_GPU_TEMP))
				put(y, x, w, a, true, "%3.0fC", s->v[HS_GPU_TEMP]);
			else
				put(y, x, w, a, true, "   -");
			break;
		case VC_POWER:
			if (!sel)
				a |= level_attr(c, view_power_level(g));
			if (health_sample_has(s, HS_POWER) && health_sample_has(s, HS_POWER_LIMIT))
				snprintf(buf, sizeof(buf), "%.0f/%.0fW", s->v[HS_POWER],
				         s->v[HS_POWER_LIMIT]);
			else if (health_sample_has(s, HS_POWER))
				snprintf(buf, sizeof(buf), "%.0fW", s->v[HS_POWER]);
			else
				snprintf(buf, sizeof(buf), "-");
			if ((int)strlen(buf) > w && health_sample_has(s, HS_POWER))
				snprintf(buf, sizeof(buf), "%.0fW", s->v[HS_POWER]);
			put(y, x, w, a, true, "%*s", w, buf);
			break;
		case VC_UTIL:
			if (health_sample_has(s, HS_GPU_UTIL))
				put(y, x, w, a, true, "%3.0f%%", s->v[HS_GPU_UTIL]);
			else
				put(y, x, w, a, true, "   -");
			break;
		case VC_MEM:
			if (isnan(g->fb_used_mib))
				snprintf(buf, sizeof(buf), "-");
			else if (isnan(g->fb_total_mib))
				snprintf(buf, sizeof(buf), "%s",
				         view_fmt_mib(g->fb_used_mib, b2, sizeof(b2)));
			else
				snprintf(buf, sizeof(buf), "%.1f/%.0fG", g->fb_used_mib / 1024.0,
				         g->fb_total_mib / 1024.0);
			put(y, x, w, a, true, "%*s", w, buf);
			break;
		case VC_HEALTH:
			if (!sel)
				a |= level_attr(c, view_health_level(g));
			health_text(g, b3, sizeof(b3));
			put(y, x, w, a, true, "%s", b3);
			break;
		case VC_WORKLOAD:
			put(y, x, w, a, true, "%s", view_workload_text(g, w, buf, sizeof(buf)));
			break;
		case VC_SPARK_TEMP:
			spark(c, y, x, w, g, FLEET_TEMP,
			      sel ? A_REVERSE : level_attr(c, view_temp_level(g)));
			break;
		case VC_SPARK_POWER:
			spark(c, y, x, w, g, FLEET_POWER,
			      sel ? A_REVERSE : level_attr(c, view_power_level(g)));
			break;
		case VC_SPARK_UTIL:
			spark(c, y, x, w, g, FLEET_UTIL,
			      sel ? A_REVERSE : (c->color ? COLOR_PAIR(CP_OK) : A_NORMAL));
			break;
		}
	}
}

/* Builds the table's lines (host headings when grouping and more than one host). */
static size_t build_lines(struct console *c, struct line *lines, size_t max)
{
	bool headings = false;
	if (c->group)
		for (size_t i = 1; i < c->norder; i++)
			if (strcmp(c->gpus[c->order[i]].host, c->gpus[c->order[0]].host) != 0) {
				headings = true;
				break;
			}
	size_t n = 0;
	for (size_t i = 0; i < c->norder && n < max; i++) {
		const struct fleet_gpu *g = &c->gpus[c->order[i]];
		if (headings && (i == 0 || strcmp(g->host, c->gpus[c->order[i - 1]].host) != 0)) {
			lines[n++] = (struct line){-1, i};
			if (n == max)
				break;
		}
		lines[n++] = (struct line){(int)c->order[i], i};
	}
	return n;
}

/* The cells GPU g's workload asks for in its column: "namespace/pod" (or the part it has), at
 * least the title's 8; 0 when it has none. */
static size_t workload_cells(const struct fleet_gpu *g)
{
	if (!g->has_workload)
		return 0;
	size_t n = g->wl_namespace[0] && g->wl_pod[0]
	               ? strlen(g->wl_namespace) + 1 + strlen(g->wl_pod)
	           : g->wl_pod[0]       ? strlen(g->wl_pod)
	           : g->wl_namespace[0] ? strlen(g->wl_namespace)
	                                : strlen(g->wl_container);
	return n < 8 ? 8 : n; /* "WORKLOAD" */
}

/* The cells the workload column asks for: the longest of the rows shown, 0 when no GPU has a
 * workload. */
static int workload_width(const struct console *c)
{
	size_t w = 0;
	for (size_t i = 0; i < c->norder; i++) {
		size_t n = workload_cells(&c->gpus[c->order[i]]);
		if (n > w)
			w = n;
	}
	return w > VIEW_WORKLOAD_MAX ? VIEW_WORKLOAD_MAX : (int)w;
}

static void dbt_table(struct console *c, int y0, int y1);

static void table(struct console *c, int y0, int y1)
{
	if (c->dbt) {
		dbt_table(c, y0, y1);
		return;
	}
	struct view_layout L;
	view_layout_workload(COLS, workload_width(c), &L);
	attr_t ha = c->color ? COLOR_PAIR(CP_HEAD) : A_REVERSE;
	attron(ha);
	mvhline(y0, 0, ' ', COLS);
	attroff(ha);
	for (int col = 0; col < VC_COUNT; col++) {
		if (L.x[col] < 0)
			continue;
		bool right = col == VC_POWER || col == VC_MEM;
		const char *t = view_col_title((enum view_col)col);
		attr_t a = ha;
		if ((col == VC_INDEX && c->sort == VS_INDEX) ||
		    (col == VC_MODEL && c->sort == VS_MODEL) ||
		    (col == VC_TEMP && c->sort == VS_TEMP) ||
		    (col == VC_POWER && c->sort == VS_POWER) ||
		    (col == VC_UTIL && c->sort == VS_UTIL) ||
		    (col == VC_MEM && c->sort == VS_MEM) ||
		    (col == VC_HEALTH && c->sort == VS_HEALTH))
			a |= A_BOLD | A_UNDERLINE;
		if (col >= VC_SPARK_TEMP)
			put(y0, L.x[col], L.width[col], a, false, "%s", t);
		else if (right)
			put(y0, L.x[col], L.width[col], a, false, "%*s", L.width[col], t);
		else
			put(y0, L.x[col], L.width[col], a, false, "%s", t);
	}
	int rows = y1 - y0 - 1;
	if (rows <= 0)
		return;
	size_t maxlines = c->norder * 2 + 1;
	struct line stackl[256];
	struct line *lines = maxlines <= 256 ? stackl : malloc(maxlines * sizeof(*lines));
	if (!lines)
		return;
	size_t n = build_lines(c, lines, maxlines);
	/* keep the selection in view */
	int sel_line = 0;
	for (size_t i = 0; i < n; i++)
		if (lines[i].gpu >= 0 && lines[i].pos == c->sel) {
			sel_line = (int)i;
			break;
		}
	if (sel_line > 0 && lines[sel_line - 1].gpu < 0 && c->scroll > sel_line - 1)
		c->scroll = sel_line - 1; /* show the heading above the first row */
	if (sel_line < c->scroll)
		c->scroll = sel_line;
	if (sel_line >= c->scroll + rows)
		c->scroll = sel_line - rows + 1;
	if (c->scroll > (int)n - rows)
		c->scroll = (int)n - rows;
	if (c->scroll < 0)
		c->scroll = 0;
	for (int r = 0; r < rows && c->scroll + r < (int)n; r++) {
		const struct line *ln = &lines[c->scroll + r];
		int y = y0 + 1 + r;
		if (ln->gpu < 0) {
			const char *host = c->gpus[c->order[ln->pos]].host;
			size_t cnt = 0, bad = 0;
			for (size_t i = ln->pos; i < c->norder; i++) {
				const struct fleet_gpu *g = &c->gpus[c->order[i]];
				if (strcmp(g->host, host) != 0)
					break;
				cnt++;
				bad += g->have_health && g->health.status != HEALTH_PASS;
			}
			put(y, 0, COLS, c->color ? COLOR_PAIR(CP_GROUP) | A_BOLD : A_BOLD, true,
			    "== %s  (%zu GPUs, %zu not passing)", host[0] ? host : "(unknown host)",
			    cnt, bad);
			continue;
		}
		table_row(c, y, &L, &c->gpus[ln->gpu], ln->pos == c->sel);
		if (y >= 0 && y < (int)(sizeof(c->rowpos) / sizeof(c->rowpos[0])))
			c->rowpos[y] = (long)ln->pos;
	}
	if (c->norder == 0)
		put(y0 + 1, 0, COLS, A_DIM, true, "%s",
		    c->total ? "no GPU matches the filter (Esc clears it)"
		             : "no GPU seen yet: waiting for the first samples");
	if (lines != stackl)
		free(lines);
}

/* The table's heading line (the sort key's title underlined). */
static void table_head(struct console *c, int y0, const struct view_layout *L)
{
	attr_t ha = c->color ? COLOR_PAIR(CP_HEAD) : A_REVERSE;
	attron(ha);
	mvhline(y0, 0, ' ', COLS);
	attroff(ha);
	static const enum view_sort_key key_of[VC_COUNT] = {
	    [VC_INDEX] = VS_INDEX,       [VC_MODEL] = VS_MODEL,     [VC_TEMP] = VS_TEMP,
	    [VC_POWER] = VS_POWER,       [VC_UTIL] = VS_UTIL,       [VC_MEM] = VS_MEM,
	    [VC_HEALTH] = VS_HEALTH,     [VC_WORKLOAD] = VS_COUNT,  [VC_SPARK_TEMP] = VS_COUNT,
	    [VC_SPARK_POWER] = VS_COUNT, [VC_SPARK_UTIL] = VS_COUNT};
	for (int col = 0; col < VC_COUNT; col++) {
		if (L->x[col] < 0)
			continue;
		bool right = col == VC_POWER || col == VC_MEM;
		const char *t = view_col_title((enum view_col)col);
		attr_t a = ha;
		if (key_of[col] == c->sort)
			a |= A_BOLD | A_UNDERLINE;
		if (right)
			put(y0, L->x[col], L->width[col], a, false, "%*s", L->width[col], t);
		else
			put(y0, L->x[col], L->width[col], a, false, "%s", t);
	}
}

/* Whether a host heading goes above the row at pos (grouped, several hosts, the first row of
 * its host). */
static bool dbt_heading_at(const struct console *c, size_t pos, bool headings)
{
	if (!headings)
		return false;
	const struct fleet_gpu *g = dbt_row(c, pos);
	if (!g)
		return false;
	if (pos == 0)
		return true;
	const struct fleet_gpu *p = dbt_row(c, pos - 1);
	return p && strcmp(p->host, g->host) != 0;
}

/* How many GPU rows fit in rows lines from position top (headings take lines too). */
static size_t dbt_fit(const struct console *c, size_t top, int rows, bool headings)
{
	size_t n = 0;
	int used = 0;
	for (size_t pos = top; pos < c->norder; pos++) {
		used += dbt_heading_at(c, pos, headings) ? 2 : 1;
		if (used > rows)
			break;
		n++;
	}
	return n;
}

/* The fleet table of a read-only viewer: the page the database reader holds, and the request
 * for the page around what is shown now (a screen above and one below). */
static void dbt_table(struct console *c, int y0, int y1)
{
	bool valid = dbt_page_valid(c);
	size_t n0 = c->ti->offset;
	/* the workload column: the longest of the page's */
	size_t wl = 0;
	for (size_t i = 0; valid && i < c->ngpus; i++) {
		size_t n = workload_cells(&c->gpus[i]);
		if (n > wl)
			wl = n;
	}
	struct view_layout L;
	view_layout_workload(COLS, wl > VIEW_WORKLOAD_MAX ? VIEW_WORKLOAD_MAX : (int)wl, &L);
	table_head(c, y0, &L);
	int rows = y1 - y0 - 1;
	if (rows <= 0)
		return;
	/* headings: grouped, and more than one host (in the page, or beyond it) */
	bool headings = false;
	if (c->group && valid && c->ngpus) {
		headings = c->ti->matched > c->ngpus;
		for (size_t i = 1; i < c->ngpus && !headings; i++)
			headings = strcmp(c->gpus[i].host, c->gpus[0].host) != 0;
	}
	/* keep the selection in view */
	if (c->sel < c->top)
		c->top = c->sel;
	if (c->sel >= c->top + (size_t)rows)
		c->top = c->sel - (size_t)rows + 1;
	while (c->top < c->sel && c->sel >= c->top + dbt_fit(c, c->top, rows, headings))
		c->top++;
	if (c->norder > (size_t)rows && c->top > c->norder - (size_t)rows)
		c->top = c->norder - (size_t)rows;
	if (c->norder <= (size_t)rows)
		c->top = 0;
	/* the page asked: one screen above what is shown and one below */
	size_t off = c->top > (size_t)rows ? c->top - (size_t)rows : 0;
	viewdb_want_table(c->src->table_db, (int)c->sort, c->desc, c->group, c->filter, off,
	                  3 * (size_t)rows);
	int y = y0 + 1;
	for (size_t pos = c->top; pos < c->norder && y < y1; pos++) {
		const struct fleet_gpu *g = dbt_row(c, pos);
		if (!g) {
			put(y, 0, COLS, A_DIM, true, "  ...");
			y++;
			continue;
		}
		if (dbt_heading_at(c, pos, headings)) {
			put(y, 0, COLS, c->color ? COLOR_PAIR(CP_GROUP) | A_BOLD : A_BOLD, true,
			    "== %s  (%zu GPUs, %zu not passing)",
			    g->host[0] ? g->host : "(unknown host)", c->ti->host_gpus[pos - n0],
			    c->ti->host_bad[pos - n0]);
			if (++y >= y1)
				break;
		}
		table_row(c, y, &L, g, pos == c->sel);
		if (y >= 0 && y < (int)(sizeof(c->rowpos) / sizeof(c->rowpos[0])))
			c->rowpos[y] = (long)pos;
		y++;
	}
	if (c->norder == 0)
		put(y0 + 1, 0, COLS, A_DIM, true, "%s",
		    !c->tst.have || !valid ? "reading the fleet database..."
		    : c->total             ? "no GPU matches the filter (Esc clears it)"
		                           : "no GPU in the fleet database yet");
	if (c->tst.error[0])
		put(y1 - 1, 0, COLS, level_attr(c, VL_CRIT), true, "database: %s", c->tst.error);
}

/* ---- detail */

static const struct fleet_gpu *selected_gpu(const struct console *c)
{
	if (c->dbt)
		return c->have_dgpu ? c->dgpu : NULL;
	if (c->sel < c->norder)
		return &c->gpus[c->order[c->sel]];
	return NULL;
}

static void yesno_count(const struct health_sample *s, enum hs_field f, char *buf, size_t len)
{
	if (!health_sample_has(s, f))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%llu", (unsigned long long)s->u[f]);
}

static void detail(struct console *c)
{
	const struct fleet_gpu *g = selected_gpu(c);
	int y = 1;
	if (!g && c->dbt) {
		put(y, 0, COLS, A_DIM, true,
		    c->gst.have ? "GPU %s is not in the fleet database: Esc"
		                : "reading GPU %s from the fleet database...",
		    c->selected);
		if (c->gst.error[0])
			put(y + 1, 0, COLS, level_attr(c, VL_CRIT), true, "database: %s",
			    c->gst.error);
		return;
	}
	if (!g) {
		put(y, 0, COLS, A_DIM, true, "the GPU is gone (filter or fleet changed): Esc");
		return;
	}
	const struct health_sample *s = &g->last;
	put(y++, 0, COLS, A_BOLD, true, "GPU %d  %s  %s  %s%s", g->index,
	    g->host[0] ? g->host : "?", g->model[0] ? g->model : "?", g->key,
	    g->stale ? "  [stale]" : "");
	if (g->has_workload)
		put(y++, 0, COLS, A_NORMAL, true, "Workload namespace %s  pod %s  container %s",
		    g->wl_namespace[0] ? g->wl_namespace : "-", g->wl_pod[0] ? g->wl_pod : "-",
		    g->wl_container[0] ? g->wl_container : "-");
	else
		put(y++, 0, COLS, A_DIM, true, "Workload none");
	char pf[32] = "-";
	if (!isnan(g->p_fail))
		snprintf(pf, sizeof(pf), "%.1f%%", g->p_fail * 100);
	if (g->have_health) {
		/* the status, then the component scores in what room is left (short names) */
		static const char *const short_comp[HC_COUNT] = {"therm", "mem", "power", "link",
		                                                 "xid"};
		char line[256];
		int k =
		    snprintf(line, sizeof(line), "Health %s  score %d  recommended: %s  p_fail %s ",
		             health_status_name(g->health.status), g->health.score,
		             health_action_name(g->action), pf);
		put(y, 0, COLS, level_attr(c, view_health_level(g)), true, "%s", line);
		char comps[160];
		int n = 0;
		for (int i = 0; i < HC_COUNT && n < (int)sizeof(comps); i++)
			n += snprintf(comps + n, sizeof(comps) - (size_t)n, "%s%s %d",
			              i ? "  " : "", short_comp[i], g->health.comp[i]);
		if (k > 0 && COLS > k + n)
			put(y, k + 1, COLS - k - 1, A_DIM, true, "%s", comps);
		y++;
		/* the economics behind the recommendation (issue #7): expected cost of each action
		 */
		if (!isnan(g->cost[ACT_KEEP])) {
			char costs[200];
			int m = 0;
			for (int a = 0; a < ACT_COUNT && m < (int)sizeof(costs); a++)
				m += snprintf(costs + m, sizeof(costs) - (size_t)m, "  %s %.4g%s",
				              health_action_name((enum health_action)a), g->cost[a],
				              a == (int)g->action ? "*" : "");
			put(y, 0, COLS, A_NORMAL, true, "Expected cost:%s", costs);
		} else {
			put(y, 0, COLS, A_DIM, true,
			    "Expected cost: not evaluated (healthy, not at risk: keep)");
		}
	} else {
		put(y, 0, COLS, A_DIM, true, "Health: not scored yet");
	}
	y++;
	/* the processes of a local GPU (NVML): the list shows up to 4 */
	struct fleet_process procs[4];
	int nprocs =
	    c->src->copy_processes ? c->src->copy_processes(c->src->ctx, g->key, procs, 4) : -1;
	int proc_rows = nprocs < 0 ? 0 : 1 + (nprocs == 0 ? 1 : nprocs < 4 ? nprocs : 4);
	/* room for the charts: what the text below leaves, 3..12 rows */
	size_t nreasons = g->have_health ? g->health.nreasons : 0;
	int text_rows = 7 + 1 + 1 /* the workload */ + proc_rows +
	                (int)(nreasons ? (nreasons < 4 ? nreasons : 4) : 1) + 1 +
	                (int)(g->nalerts ? (g->nalerts < 3 ? g->nalerts : 3) : 1);
	int ch = LINES - 1 - y - 1 - text_rows;
	if (ch > 12)
		ch = 12;
	if (ch < 3)
		ch = 3;
	int hrows = ch + 1 < 7 ? 7 : ch + 1;
	if (fv_draw_history(c->fv, &c->env, y, hrows)) {
		y += hrows;
		goto below_charts;
	}
	int cw = (COLS - 2) / 3;
	static const char *const names[FLEET_NSERIES] = {"Temperature", "Power", "Utilization"};
	static const enum hs_field fields[FLEET_NSERIES] = {HS_GPU_TEMP, HS_POWER, HS_GPU_UTIL};
	static const char *const units[FLEET_NSERIES] = {"C", "W", "%"};
	for (int si = 0; si < FLEET_NSERIES; si++) {
		int x = si * (cw + 1);
		double lo, hi;
		view_series_scale(g, (enum fleet_series)si, &lo, &hi);
		if (health_sample_has(s, fields[si]))
			put(y, x, cw, A_BOLD, true, "%s %.0f%s (0-%.0f)", names[si],
			    s->v[fields[si]], units[si], hi);
		else
			put(y, x, cw, A_BOLD, true, "%s - (0-%.0f)", names[si], hi);
		attr_t a = si == FLEET_TEMP    ? level_attr(c, view_temp_level(g))
		           : si == FLEET_POWER ? level_attr(c, view_power_level(g))
		                               : (c->color ? COLOR_PAIR(CP_OK) : A_NORMAL);
		chart(c, y + 1, x, cw, ch, g, (enum fleet_series)si, a);
	}
	y += ch + 1;
below_charts:;
	char b1[16], b2[16], b3[16], b4[16], b5[16];
	put(y++, 0, COLS, A_NORMAL, true,
	    "ECC      single-bit volatile %s aggregate %s   double-bit volatile %s aggregate %s",
	    (yesno_count(s, HS_SBE_VOL, b1, sizeof(b1)), b1),
	    (yesno_count(s, HS_SBE_AGG, b2, sizeof(b2)), b2),
	    (yesno_count(s, HS_DBE_VOL, b3, sizeof(b3)), b3),
	    (yesno_count(s, HS_DBE_AGG, b4, sizeof(b4)), b4));
	yesno_count(s, HS_RETIRED_SBE, b1, sizeof(b1));
	yesno_count(s, HS_RETIRED_DBE, b2, sizeof(b2));
	yesno_count(s, HS_RETIRED_PENDING, b3, sizeof(b3));
	put(y++, 0, COLS, A_NORMAL, true, "Retired  pages single-bit %s double-bit %s pending %s",
	    b1, b2, b3);
	yesno_count(s, HS_CORR_ROWS, b1, sizeof(b1));
	yesno_count(s, HS_UNCORR_ROWS, b2, sizeof(b2));
	yesno_count(s, HS_REMAP_PENDING, b3, sizeof(b3));
	yesno_count(s, HS_REMAP_FAILURE, b4, sizeof(b4));
	put(y++, 0, COLS, A_NORMAL, true,
	    "Remapped rows correctable %s uncorrectable %s  pending %s failure %s", b1, b2, b3, b4);
	yesno_count(s, HS_PCIE_REPLAY, b1, sizeof(b1));
	yesno_count(s, HS_NVLINK_CRC_FLIT, b2, sizeof(b2));
	yesno_count(s, HS_NVLINK_CRC_DATA, b3, sizeof(b3));
	snprintf(b4, sizeof(b4), isnan(g->sm_clock_mhz) ? "-" : "%.0f", g->sm_clock_mhz);
	snprintf(b5, sizeof(b5), isnan(g->mem_clock_mhz) ? "-" : "%.0f", g->mem_clock_mhz);
	put(y++, 0, COLS, A_NORMAL, true,
	    "Links    PCIe replays %s  NVLink CRC flit %s data %s   Clocks SM %s MEM %s MHz", b1,
	    b2, b3, b4, b5);
	if (health_sample_has(s, HS_XID) && s->u[HS_XID] != 0)
		put(y++, 0, COLS, level_attr(c, VL_WARN), true, "Last XID %llu: %s",
		    (unsigned long long)s->u[HS_XID], view_xid_meaning((unsigned)s->u[HS_XID]));
	else
		put(y++, 0, COLS, A_NORMAL, true, "Last XID none");
	char thr[160];
	if (health_sample_has(s, HS_CLOCK_REASONS))
		view_clock_reasons(s->u[HS_CLOCK_REASONS], thr, sizeof(thr));
	else
		snprintf(thr, sizeof(thr), "-");
	put(y++, 0, COLS, A_NORMAL, true, "Throttle %s", thr);
	if (nprocs >= 0) {
		put(y++, 0, COLS, A_BOLD, true,
		    "Processes (%d)   PID  TYPE      GPU MEM  USER      "
		    "  COMMAND",
		    nprocs);
		if (nprocs == 0)
			put(y++, 0, COLS, A_DIM, true, "  none");
		for (int i = 0; i < nprocs && i < 4 && y < LINES - 1; i++) {
			const struct fleet_process *pr = &procs[i];
			char mem[24];
			if (isnan(pr->used_mib))
				snprintf(mem, sizeof(mem), "-");
			else
				view_fmt_mib(pr->used_mib, mem, sizeof(mem));
			put(y++, 0, COLS, A_NORMAL, true, "  %17u  %-8s %8s  %-11.11s %s", pr->pid,
			    pr->type == FLEET_PROC_GRAPHICS ? "graphics"
			    : pr->type == FLEET_PROC_BOTH   ? "comp+gfx"
			                                    : "compute",
			    mem, pr->user[0] ? pr->user : "-", pr->command[0] ? pr->command : "-");
		}
	}
	put(y++, 0, COLS, A_BOLD, true, "Reasons (worst first) and remedies");
	if (!nreasons)
		put(y++, 0, COLS, A_DIM, true, "  none");
	for (size_t i = 0; i < nreasons && y < LINES - 1; i++) {
		const struct health_reason *r = &g->health.reasons[i];
		enum view_level l = r->sev == HEALTH_FAIL   ? VL_CRIT
		                    : r->sev == HEALTH_WARN ? VL_WARN
		                                            : VL_NONE;
		put(y++, 0, COLS, level_attr(c, l), true, "  %-4s %-12s %-18s -> %-6s %s",
		    r->sev == HEALTH_PASS ? "info" : health_status_name(r->sev),
		    health_component_name(r->comp), r->code, health_action_name(r->remedy),
		    r->text);
	}
	if (y < LINES - 1)
		put(y++, 0, COLS, A_BOLD, true, "Recent alerts");
	if (!g->nalerts && y < LINES - 1)
		put(y++, 0, COLS, A_DIM, true, "  none");
	for (size_t i = 0; i < g->nalerts && y < LINES - 1; i++) {
		const struct fleet_alert *al = &g->alerts[i];
		char when[16] = "";
		time_t t = (time_t)al->time;
		struct tm tm;
		if (c->env.utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%H:%M:%S", &tm);
		put(y++, 0, COLS,
		    al->cleared ? A_DIM
		                : level_attr(c, al->severity == HEALTH_FAIL ? VL_CRIT : VL_WARN),
		    true, "  %s %-4s %-18s %s%s", when, health_status_name(al->severity), al->kind,
		    al->text, al->cleared ? " (cleared)" : "");
	}
}

/* ---- the pipeline screen */

static void pipeline_screen(struct console *c)
{
	const struct pipeline_view *v = &c->view;
	/* written into a virtual list of lines, scrolled by c->scroll */
	int y = 1 - c->scroll, top = 1, bottom = LINES - 1;
	char a[16], b[16], d[16], e[16], f[16];
#define LINE(attr, ...)                                                                            \
	do {                                                                                       \
		if (y >= top && y < bottom)                                                        \
			put(y, 0, COLS, attr, true, __VA_ARGS__);                                  \
		y++;                                                                               \
	} while (0)
	if (v->mode[0])
		LINE(v->read_only ? A_BOLD : A_NORMAL, "MODE: %s", v->mode);
	LINE(A_BOLD, "%-10s %-9s %s", "PART", "STATE", "DETAIL / LAST ERROR");
	for (int p = 0; p < PP_COUNT; p++) {
		const struct pipeline_part_view *pv = &v->parts[p];
		enum view_level l = pv->state == PART_FAILED ? VL_CRIT
		                    : pv->state == PART_DEGRADED || pv->state == PART_STUCK
		                        ? VL_WARN
		                    : pv->state == PART_RUNNING ? VL_OK
		                                                : VL_DIM;
		LINE(level_attr(c, l), "%-10s %-9s %s", view_part_name((enum pipeline_part)p),
		     view_state_name(pv->state), pv->detail);
		if (pv->last_error[0]) {
			/* the whole message, wrapped: its end usually says what to do */
			int w = COLS - 23 > 20 ? COLS - 23 : 20;
			const char *msg = pv->last_error;
			int len = (int)strlen(msg);
			LINE(level_attr(c, VL_CRIT), "%-10s %-9s error %s ago:", "", "",
			     view_fmt_age(v->now - pv->last_error_time, a, sizeof(a)));
			for (int off = 0; off < len; off += w)
				LINE(level_attr(c, VL_CRIT), "%-10s %-9s   %.*s", "", "", w,
				     msg + off);
		}
	}
	y++;
	LINE(A_BOLD, "%-40s %6s %6s %7s %6s %6s  %s", "SCRAPE TARGET", "AGE", "RATE", "OK",
	     "FAILED", "LAST", "LAST ERROR");
	for (size_t i = 0; i < v->ntargets && i < PIPELINE_MAX_TARGETS; i++) {
		const struct scrape_target_stats *t = &v->targets[i];
		char dur[16], rate[16];
		snprintf(dur, sizeof(dur), "%.0fms", t->last_duration_s * 1000);
		double r = view_rate_of(&c->rates, t->url);
		snprintf(rate, sizeof(rate), isnan(r) ? "-" : "%.2f/s", r);
		LINE(level_attr(c, t->consecutive_failures ? VL_WARN : VL_NONE),
		     "%-40.40s %6s %6s %7s %6s %6s  %s", t->url,
		     t->last_success > 0 ? view_fmt_age(v->now - t->last_success, a, sizeof(a))
		                         : "never",
		     rate, view_fmt_count((double)t->ok, b, sizeof(b)),
		     view_fmt_count((double)t->failed, d, sizeof(d)), dur, t->last_error);
	}
	if (!v->ntargets)
		LINE(A_DIM, "no target yet");
	LINE(A_NORMAL, "scrapes %.1f/s  events %.1f/s  samples %s  bad lines %s  unusable %s",
	     v->scrapes_per_s, v->events_per_s,
	     view_fmt_count((double)v->collector.samples, a, sizeof(a)),
	     view_fmt_count((double)v->collector.bad_lines, b, sizeof(b)),
	     view_fmt_count((double)v->collector.unusable, d, sizeof(d)));
	y++;
	const struct producer_stats *ps = &v->collector.producer;
	LINE(A_BOLD, "KAFKA PRODUCER");
	LINE(A_NORMAL, "produced %s  delivered %s  failed %llu  retried %llu  dropped %llu",
	     view_fmt_count((double)ps->produced, a, sizeof(a)),
	     view_fmt_count((double)ps->delivered, b, sizeof(b)), (unsigned long long)ps->failed,
	     (unsigned long long)ps->retried, (unsigned long long)ps->dropped);
	LINE(A_NORMAL, "buffered: queued %llu  in flight %llu  spooled %llu (%s bytes)%s%s",
	     (unsigned long long)ps->queued, (unsigned long long)ps->in_flight,
	     (unsigned long long)ps->spool_events,
	     view_fmt_count((double)ps->spool_bytes, e, sizeof(e)),
	     ps->last_error[0] ? "  last error: " : "", ps->last_error);
	{ /* losses with their reasons, and the in-process broker's gate */
		char loss[256], gate[320];
		view_fmt_losses(v, loss, sizeof(loss));
		LINE(loss[0] == 'L' ? level_attr(c, VL_CRIT) : A_NORMAL, "%s", loss);
		if (*view_fmt_gate(v, gate, sizeof(gate)))
			LINE(v->gate.held ? level_attr(c, VL_WARN) : A_NORMAL, "%s", gate);
	}
	y++;
	LINE(A_BOLD, "SINK (consumer lag per partition)");
	if (v->have_sink) {
		char lagt[24] = "- (unknown)";
		if (v->sink.lag_total >= 0)
			snprintf(lagt, sizeof(lagt), "%lld", (long long)v->sink.lag_total);
		LINE(A_NORMAL,
		     "lag total %s  consumed %s  rows %s (%.1f/s)  duplicates %s  DLQ %llu", lagt,
		     view_fmt_count((double)v->sink.consumed, a, sizeof(a)),
		     view_fmt_count((double)v->sink.rows_written, b, sizeof(b)), v->sink.rows_per_s,
		     view_fmt_count((double)v->sink.duplicates, d, sizeof(d)),
		     (unsigned long long)v->sink.dead_letters);
		int per = COLS / 28 > 0 ? COLS / 28 : 1;
		int np = v->sink.nparts < SINK_MAX_PARTS ? v->sink.nparts : SINK_MAX_PARTS;
		for (int p = 0; p < np; p += per) {
			char ln[512];
			size_t k = 0;
			for (int q = p; q < p + per && q < np && k < sizeof(ln); q++) {
				char off[24], lg[24];
				snprintf(off, sizeof(off),
				         v->sink.parts[q].offset < 0 ? "-" : "%lld",
				         (long long)v->sink.parts[q].offset);
				snprintf(lg, sizeof(lg), v->sink.parts[q].lag < 0 ? "?" : "%lld",
				         (long long)v->sink.parts[q].lag);
				int w =
				    snprintf(ln + k, sizeof(ln) - k, "  p%-3d lag %-6s off %-9s",
				             (int)v->sink.parts[q].partition, lg, off);
				if (w > 0)
					k += (size_t)w;
			}
			LINE(A_NORMAL, "%s", ln);
		}
		LINE(A_NORMAL, "batches %s  db errors %llu  database %s%s%s%s",
		     view_fmt_count((double)v->sink.batches, a, sizeof(a)),
		     (unsigned long long)v->sink.db_errors,
		     v->sink.db_connected ? "connected" : "not connected",
		     v->sink.paused ? " (paused)" : "",
		     v->sink.last_error[0] ? "  last error: " : "", v->sink.last_error);
	} else {
		LINE(A_DIM, "no sink: %s", v->parts[PP_SINK].detail);
	}
	y++;
	LINE(A_BOLD, "DATABASE AND SCORER");
	if (v->db_rows >= 0)
		LINE(A_NORMAL, "gpu_metrics rows %s%s (%+.1f/s)%s", v->db_rows_estimate ? "~" : "",
		     view_fmt_count((double)v->db_rows, a, sizeof(a)), v->db_rows_per_s,
		     v->fleet_db ? "  fleet database: every host's GPUs" : "");
	else
		LINE(A_DIM, "gpu_metrics rows unknown: %s", v->parts[PP_DATABASE].detail);
	if (v->have_scorer)
		LINE(A_NORMAL,
		     "scored %s (pass %s warn %s fail %s)  alerts raised %llu cleared %llu open "
		     "%zu%s%s",
		     view_fmt_count((double)v->scorer.scored, a, sizeof(a)),
		     view_fmt_count((double)v->scorer.pass, b, sizeof(b)),
		     view_fmt_count((double)v->scorer.warn, d, sizeof(d)),
		     view_fmt_count((double)v->scorer.fail, f, sizeof(f)),
		     (unsigned long long)v->scorer.alerts_raised,
		     (unsigned long long)v->scorer.alerts_cleared, v->scorer.open_alerts,
		     v->scorer.last_error[0] ? "  last error: " : "", v->scorer.last_error);
	if (c->dbt) /* a read-only viewer: the pipeline's fleet stays empty */
		LINE(A_NORMAL,
		     "fleet: %zu GPUs in the fleet database; the table reads those on screen",
		     c->total);
	else
		LINE(A_NORMAL, "fleet: %zu GPUs on %zu hosts, %s events, %llu bad%s%s",
		     v->fleet.gpus, v->fleet.hosts,
		     view_fmt_count((double)v->fleet.events, a, sizeof(a)),
		     (unsigned long long)v->fleet.bad_events,
		     v->fleet.last_error[0] ? "  last error: " : "", v->fleet.last_error);
#undef LINE
	/* clamp the scroll to the content */
	int content = y + c->scroll - 1;
	if (c->scroll > 0 && c->scroll > content - (bottom - top))
		c->scroll = content - (bottom - top) > 0 ? content - (bottom - top) : 0;
}

/* ---- help */

static void help_screen(struct console *c)
{
	static const char *const lines[] = {
	    "Keys (htop/nvtop style; every F-key has a letter alias)",
	    "",
	    "  q  F10          quit (also Ctrl-C, SIGTERM)",
	    "  h  ?  F1        this help",
	    "  p  F2           pipeline: services, targets, lag per partition, errors",
	    "  /  \\  F3  F4    filter: words in host, model, UUID, gpuN, health, action",
	    "  g  F5           group the GPUs by host (on/off)",
	    "  s  F6  >        sort by the next column;  <  the previous one",
	    "  I  r            invert the sort order",
	    "  Enter           detail: charts, ECC, XID, throttling, reasons, alerts",
	    "  o  F7           fleet overview: cluster > datacenter > rack > host;",
	    "                  Enter: down one level, Esc: up; / and s < > I as in the table",
	    "  a  F8           open alerts, worst and newest first; Enter: the GPU's detail",
	    "  1-5             detail: history 10 min (live), 1 h, 6 h, 24 h, 7 d (--db)",
	    "  [  ]            detail: one window back / forward in time",
	    "  Esc  Backspace  back (in the filter: clear it)",
	    "  Up Down j k     select;  PgUp PgDn Home End",
	    "  Ctrl-L          redraw the screen",
	    "  mouse           click: select, again: detail; wheel: scroll; click the key",
	    "                  bar to press a key (-M/--no-mouse: leave it to the terminal)",
	    "Colours: green normal, yellow warning, red critical (temperature near slowdown,",
	    "power at its limit, health warn/fail). NO_COLOR or --no-color: none.",
	    "-U/--no-unicode or a non-UTF-8 locale: ASCII sparklines ( _.:-=+*# ).",
	    "--refresh S / --delay N (tenths): how often the screen takes a new copy.",
	    "Health column: status and the recommended action (keep, drain, reset, reboot,",
	    "rma); the detail lists each reason with its remedy and the failure probability.",
	};
	int n = (int)(sizeof(lines) / sizeof(lines[0]));
	for (int i = 0; i < n && 1 + i < LINES - 1; i++)
		put(1 + i, 0, COLS, i == 0 ? A_BOLD : A_NORMAL, true, "%s", lines[i]);
}

/* ---- data and frames */

static void refresh_data(struct console *c)
{
	c->src->copy_view(c->src->ctx, &c->view);
	view_rates_update(&c->rates, &c->view, 5.0);
	if (c->src->table_db && c->view.read_only && c->ti && c->dgpu) {
		if (!c->dbt && c->cap < VIEWDB_TABLE_MAX) { /* the page's room, once */
			struct fleet_gpu *g = realloc(c->gpus, VIEWDB_TABLE_MAX * sizeof(*g));
			if (!g)
				return;
			c->gpus = g;
			c->cap = VIEWDB_TABLE_MAX;
		}
		if (!c->dbt)
			c->sel = c->top = 0;
		c->dbt = true;
		return; /* the page: dbt_copy() at each frame */
	}
	size_t total = c->src->copy_gpus(c->src->ctx, c->gpus, c->cap);
	if (total > c->cap) {
		size_t cap = total + 16;
		struct fleet_gpu *g = realloc(c->gpus, cap * sizeof(*g));
		size_t *o = g ? realloc(c->order, cap * sizeof(*o)) : NULL;
		if (g)
			c->gpus = g;
		if (o) {
			c->order = o;
			c->cap = cap;
		}
		total = c->src->copy_gpus(c->src->ctx, c->gpus, c->cap);
	}
	c->total = total;
	c->ngpus = total < c->cap ? total : c->cap;
}

/* A read-only viewer's frame: takes the reader's last page (or the detail's GPU) and says what
 * the screen shows (the table asks for its page as it draws it). */
static void dbt_copy(struct console *c)
{
	struct viewdb *t = c->src->table_db;
	if (c->screen == SCR_DETAIL) {
		viewdb_want_gpu(t, c->selected);
		c->have_dgpu = viewdb_copy_gpu(t, c->selected, c->dgpu, &c->gst);
	} else if (c->screen != SCR_MAIN) {
		/* the title's counts only */
		viewdb_want_table(t, (int)c->sort, c->desc, c->group, c->filter, 0, 0);
	}
	c->ngpus = viewdb_copy_table(t, c->gpus, c->cap, c->ti, &c->tst);
	c->total = c->ti->total;
	/* a new order or filter starts at the top */
	if (c->asked.sort != (int)c->sort || c->asked.desc != c->desc ||
	    c->asked.group != c->group || strcmp(c->asked.filter, c->filter) != 0) {
		c->asked.sort = (int)c->sort;
		c->asked.desc = c->desc;
		c->asked.group = c->group;
		snprintf(c->asked.filter, sizeof(c->asked.filter), "%s", c->filter);
		c->sel = c->top = 0;
	}
	if (dbt_page_valid(c))
		c->norder = c->ti->matched;
	else if (c->screen == SCR_MAIN)
		c->norder = 0;
	if (c->norder && c->sel >= c->norder)
		c->sel = c->norder - 1;
	const struct fleet_gpu *g = dbt_row(c, c->sel);
	if (g && c->screen == SCR_MAIN)
		snprintf(c->selected, sizeof(c->selected), "%s", g->key);
}

/* Whether a read-only viewer's screen waits for the database's answer to what it asks. */
static bool dbt_waiting(const struct console *c)
{
	return c->dbt && viewdb_pending(c->src->table_db);
}

static void reorder(struct console *c)
{
	if (c->dbt) {
		dbt_copy(c);
		return;
	}
	c->norder = view_order(c->gpus, c->ngpus, c->filter, c->sort, c->desc, c->group, c->order);
	/* follow the selected GPU */
	c->sel = 0;
	for (size_t i = 0; i < c->norder; i++)
		if (strcmp(c->gpus[c->order[i]].key, c->selected) == 0) {
			c->sel = i;
			break;
		}
	if (c->norder)
		snprintf(c->selected, sizeof(c->selected), "%s", c->gpus[c->order[c->sel]].key);
}

static void draw(struct console *c)
{
	erase();
	for (size_t i = 0; i < sizeof(c->rowpos) / sizeof(c->rowpos[0]); i++)
		c->rowpos[i] = -1;
	c->nfkeys = 0;
	static const char *const what[] = {"fleet", "GPU detail", "pipeline",
	                                   "help",  "overview",   "alerts"};
	c->env.gpus = c->gpus;
	c->env.ngpus = c->ngpus;
	c->env.now = c->view.now;
	c->env.filter = c->filter;
	{
		const struct fleet_gpu *sg = c->screen == SCR_DETAIL ? selected_gpu(c) : NULL;
		enum fv_screen fs = c->screen == SCR_OVERVIEW ? FV_OVERVIEW
		                    : c->screen == SCR_ALERTS ? FV_ALERTS
		                    : sg                      ? FV_HISTORY
		                                              : FV_OTHER;
		fv_refresh(c->fv, &c->env, fs, sg ? sg->key : NULL, (COLS - 2) / 3 - 6);
	}
	title_bar(c, what[c->screen]);
	switch (c->screen) {
	case SCR_MAIN:
		if (LINES >= 12) {
			panel(c, 1);
			table(c, 5, LINES - 1);
		} else {
			table(c, 1, LINES - 1);
		}
		break;
	case SCR_DETAIL: detail(c); break;
	case SCR_PIPELINE: pipeline_screen(c); break;
	case SCR_HELP: help_screen(c); break;
	case SCR_OVERVIEW: fv_draw_overview(c->fv, &c->env, 1, LINES - 1); break;
	case SCR_ALERTS: fv_draw_alerts(c->fv, &c->env, 1, LINES - 1); break;
	}
	footer(c);
	refresh();
}

static void select_move(struct console *c, long delta)
{
	if (!c->norder)
		return;
	long s = (long)c->sel + delta;
	if (s < 0)
		s = 0;
	if (s >= (long)c->norder)
		s = (long)c->norder - 1;
	c->sel = (size_t)s;
	if (c->dbt) {
		const struct fleet_gpu *g = dbt_row(c, c->sel);
		if (g)
			snprintf(c->selected, sizeof(c->selected), "%s", g->key);
		return;
	}
	snprintf(c->selected, sizeof(c->selected), "%s", c->gpus[c->order[c->sel]].key);
}

static void set_sort(struct console *c, int k)
{
	k = (k + VS_COUNT) % VS_COUNT;
	c->sort = (enum view_sort_key)k;
	c->desc = view_sort_default_desc(c->sort);
}

/* Handles one key; returns false to quit. */
static bool on_key(struct console *c, int ch)
{
	if (c->editing) {
		size_t l = strlen(c->filter);
		if (ch == 27) { /* Esc: clear */
			c->filter[0] = '\0';
			c->editing = false;
		} else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
			c->editing = false;
		} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
			if (l)
				c->filter[l - 1] = '\0';
		} else if (ch == 21) { /* Ctrl-U */
			c->filter[0] = '\0';
		} else if (ch >= 0x20 && ch < 0x7f && l + 1 < sizeof(c->filter)) {
			c->filter[l] = (char)ch;
			c->filter[l + 1] = '\0';
		}
		return true;
	}
	if (ch == KEY_MOUSE) {
		MEVENT ev;
		if (getmouse(&ev) != OK)
			return true;
		if (ev.bstate & (BUTTON4_PRESSED | BUTTON5_PRESSED)) { /* the wheel */
			int d = ev.bstate & BUTTON4_PRESSED ? -3 : 3;
			if (c->screen == SCR_PIPELINE || c->screen == SCR_HELP)
				c->scroll = c->scroll + d > 0 ? c->scroll + d : 0;
			else if (c->screen == SCR_MAIN)
				select_move(c, d);
			return true;
		}
		if (!(ev.bstate & (BUTTON1_RELEASED | BUTTON1_CLICKED)))
			return true;
		if (ev.y == LINES - 1) { /* the key bar */
			for (int i = 0; i < c->nfkeys; i++)
				if (ev.x >= c->fkeys[i].x0 && ev.x <= c->fkeys[i].x1)
					return on_key(c, c->fkeys[i].key);
			return true;
		}
		if (c->screen == SCR_MAIN && !c->editing && ev.y >= 0 &&
		    ev.y < (int)(sizeof(c->rowpos) / sizeof(c->rowpos[0])) &&
		    c->rowpos[ev.y] >= 0) {
			/* a click on the selected GPU opens its detail */
			if (c->rowpos[ev.y] == (long)c->sel)
				c->screen = SCR_DETAIL;
			else
				select_move(c, c->rowpos[ev.y] - (long)c->sel);
		}
		return true;
	}
	if (c->screen == SCR_HELP && ch != KEY_RESIZE && ch != 'q' && ch != KEY_F(10)) {
		c->screen = c->back;
		c->scroll = 0;
		return true;
	}
	if (c->screen == SCR_OVERVIEW || c->screen == SCR_ALERTS) {
		char arg[HS_KEY_MAX];
		switch (fv_key(c->fv, &c->env, c->screen == SCR_OVERVIEW ? FV_OVERVIEW : FV_ALERTS,
		               ch, arg, sizeof(arg))) {
		case FV_TAKEN: return true;
		case FV_BACK: c->screen = SCR_MAIN; return true;
		case FV_DETAIL: /* the alert's GPU, whatever the filter hid */
			c->filter[0] = '\0';
			snprintf(c->selected, sizeof(c->selected), "%s", arg);
			c->detail_back = c->screen;
			c->screen = SCR_DETAIL;
			return true;
		case FV_HOST: /* the host's GPUs in the fleet table */
			snprintf(c->filter, sizeof(c->filter), "%.*s", FILTER_MAX - 1, arg);
			c->screen = SCR_MAIN;
			return true;
		case FV_NONE: break;
		}
	}
	if (c->screen == SCR_DETAIL && fv_history_key(c->fv, &c->env, ch))
		return true;
	switch (ch) {
	case 'q':
	case KEY_F(10): return false;
	case 'h':
	case '?':
	case KEY_F(1):
		c->back = c->screen;
		c->screen = SCR_HELP;
		break;
	case 'p':
	case KEY_F(2):
		c->screen = c->screen == SCR_PIPELINE ? SCR_MAIN : SCR_PIPELINE;
		c->scroll = 0;
		break;
	case '/':
	case '\\':
	case KEY_F(3):
	case KEY_F(4):
		if (c->screen != SCR_OVERVIEW)
			c->screen = SCR_MAIN;
		c->editing = true;
		break;
	case 'o':
	case KEY_F(7): c->screen = c->screen == SCR_OVERVIEW ? SCR_MAIN : SCR_OVERVIEW; break;
	case 'a':
	case KEY_F(8): c->screen = c->screen == SCR_ALERTS ? SCR_MAIN : SCR_ALERTS; break;
	case 'g':
	case KEY_F(5): c->group = !c->group; break;
	case 's':
	case '>':
	case '.':
	case KEY_F(6): set_sort(c, (int)c->sort + 1); break;
	case '<':
	case ',': set_sort(c, (int)c->sort - 1); break;
	case 'I':
	case 'r': c->desc = !c->desc; break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (c->screen == SCR_MAIN && c->norder && (!c->dbt || dbt_row(c, c->sel))) {
			c->detail_back = SCR_MAIN;
			c->screen = SCR_DETAIL;
		}
		break;
	case 27:
	case KEY_BACKSPACE:
	case 127:
		if (c->screen != SCR_MAIN) {
			c->screen = c->screen == SCR_DETAIL ? c->detail_back : SCR_MAIN;
			c->scroll = 0;
		} else if (c->filter[0]) {
			c->filter[0] = '\0';
		}
		break;
	case KEY_UP:
	case 'k':
		if (c->screen == SCR_PIPELINE)
			c->scroll = c->scroll > 0 ? c->scroll - 1 : 0;
		else
			select_move(c, -1);
		break;
	case KEY_DOWN:
	case 'j':
		if (c->screen == SCR_PIPELINE)
			c->scroll++;
		else
			select_move(c, 1);
		break;
	case KEY_PPAGE: select_move(c, -(LINES - 7 > 1 ? LINES - 7 : 1)); break;
	case KEY_NPAGE: select_move(c, LINES - 7 > 1 ? LINES - 7 : 1); break;
	case KEY_HOME: select_move(c, -(long)c->norder); break;
	case KEY_END: select_move(c, (long)c->norder); break;
	case 12: /* Ctrl-L */ clearok(curscr, TRUE); break;
	case KEY_RESIZE: clearok(curscr, TRUE); break;
	default: break;
	}
	return true;
}

static void write_stats(const struct console *c, double wall_s)
{
	if (!c->o.stats_path || !c->o.stats_path[0])
		return;
	FILE *f = fopen(c->o.stats_path, "w");
	if (!f)
		return;
	long hwm = -1, rss = -1;
	FILE *st = fopen("/proc/self/status", "r");
	if (st) {
		char ln[256];
		while (fgets(ln, sizeof(ln), st)) {
			if (strncmp(ln, "VmHWM:", 6) == 0)
				hwm = strtol(ln + 6, NULL, 10);
			else if (strncmp(ln, "VmRSS:", 6) == 0)
				rss = strtol(ln + 6, NULL, 10);
		}
		fclose(st);
	}
	struct viewdb_status vs = {0};
	if (c->env.db)
		viewdb_copy_status(c->env.db, &vs);
	fprintf(f, "db_queries %llu\ndb_query_ms_total %.3f\ndb_query_ms_max %.3f\n",
	        (unsigned long long)vs.queries, vs.total_query_ms, vs.max_query_ms);
	struct viewdb_status ts = {0}; /* the fleet table's reader (a read-only viewer) */
	if (c->src->table_db)
		viewdb_copy_status(c->src->table_db, &ts);
	fprintf(f, "table_queries %llu\ntable_query_ms_total %.3f\ntable_query_ms_max %.3f\n",
	        (unsigned long long)ts.queries, ts.total_query_ms, ts.max_query_ms);
	fprintf(
	    f,
	    "frames %lu\nwall_s %.3f\ndraw_cpu_s %.6f\ndraw_cpu_pct %.4f\nui_thread_cpu_s %.6f\n"
	    "refresh_s %.3f\ngpus %zu\nvm_rss_kb %ld\nvm_hwm_kb %ld\n",
	    c->frames, wall_s, c->draw_cpu_s, wall_s > 0 ? 100.0 * c->draw_cpu_s / wall_s : 0.0,
	    thread_cpu_s(), c->o.refresh_s, c->total, rss, hwm);
	fclose(f);
}

/* Sleeps up to ms for a key on the terminal (in: its input, out: its output) or a signal that
 * asks for a stop (signals_wake_fd()); *readable says whether a key may be waiting. Returns false
 * when the terminal is gone: hung up (the ssh connection dropped, the tmux pane killed: a read
 * gives EOF, a write EIO, poll says POLLHUP) or closed. Without this, getch() returned ERR at
 * once, for ever, and the console spun on a core with nobody to see it. */
static bool wait_input(int in, int out, int ms, bool *readable)
{
	struct pollfd p[3] = {{in, POLLIN, 0}, {out, 0, 0}, {signals_wake_fd(), POLLIN, 0}};
	nfds_t n = p[2].fd >= 0 ? 3 : 2;
	*readable = false;
	if (poll(p, n, ms) < 0)
		return true; /* EINTR: a signal (SIGWINCH, a stop); the caller reads what it left */
	if ((p[0].revents | p[1].revents) & (POLLHUP | POLLERR | POLLNVAL))
		return false;
	*readable = (p[0].revents & POLLIN) != 0;
	if (n == 3 && (p[2].revents & POLLIN) && !signals_stop_requested()) {
		/* a wake-up that asks nothing of the console (a SIGHUP where it is a reload: a
		 * caller that did not call signals_hup_stops()): take it, or the next poll would
		 * not sleep */
		char drain[64];
		while (read(p[2].fd, drain, sizeof(drain)) > 0) {
		}
	}
	return true;
}

/* After poll said that the terminal's input is readable and getch() found no key: an input
 * that is still readable with nothing in it is at its end (EOF without a hangup). */
static bool input_at_eof(int in)
{
	struct pollfd p = {in, POLLIN, 0};
	int avail = 0;
	if (poll(&p, 1, 0) != 1)
		return false;
	if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
		return true;
	return (p.revents & POLLIN) && ioctl(in, FIONREAD, &avail) == 0 && avail == 0;
}

int console_run(const struct view_source *src, const struct console_opts *opts)
{
	int rc = 0;
	struct console *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->src = src;
	c->o = *opts;
	if (!(c->o.refresh_s >= 0.05))
		c->o.refresh_s = 0.05;
	c->group = true;
	c->sort = VS_INDEX;
	c->env.db = src->db;
	c->env.hist_db = src->hist_db;
	c->env.utc = opts->utc;
	if (!(c->fv = fv_create())) {
		rc = -ENOMEM;
		goto out;
	}
	c->cap = 64;
	c->gpus = calloc(c->cap, sizeof(*c->gpus));
	c->order = calloc(c->cap, sizeof(*c->order));
	if (!c->gpus || !c->order) {
		rc = -ENOMEM;
		goto out;
	}
	if (src->table_db) {
		c->ti = calloc(1, sizeof(*c->ti));
		c->dgpu = calloc(1, sizeof(*c->dgpu));
		if (!c->ti || !c->dgpu) {
			rc = -ENOMEM;
			goto out;
		}
	}

	/* the caller has called setlocale(LC_CTYPE, "") before any thread started */
	const char *cs = nl_langinfo(CODESET);
	c->unicode = opts->unicode && cs && strcmp(cs, "UTF-8") == 0;
	int in_fd = fileno(stdin), out_fd = fileno(stdout);
	SCREEN *scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		fprintf(stderr,
		        "gpuhealth: cannot set up the terminal (TERM=%s): set TERM to "
		        "your terminal's type, e.g. xterm-256color\n",
		        getenv("TERM") ? getenv("TERM") : "");
		rc = -ENOTTY;
		goto out;
	}
	/* a quick Esc: ncurses waits this long for the rest of an escape sequence (ESCDELAY in
	 * the environment wins) */
	if (!getenv("ESCDELAY"))
		set_escdelay(25);
	cbreak(); /* not raw: Ctrl-C stays SIGINT */
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	curs_set(0);
	if (opts->mouse) {
		/* no click resolution: a press and a release that arrive together would merge into
		 * a click that the mask drops */
		mouseinterval(0);
		mousemask(BUTTON1_RELEASED | BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
	}
	c->color = opts->color && has_colors();
	c->env.color = c->color;
	c->env.unicode = c->unicode;
	if (c->color) {
		start_color();
		use_default_colors();
		init_pair(CP_OK, COLOR_GREEN, -1);
		init_pair(CP_WARN, COLOR_YELLOW, -1);
		init_pair(CP_CRIT, COLOR_RED, -1);
		init_pair(CP_HEAD, COLOR_BLACK, COLOR_GREEN);
		init_pair(CP_TITLE, COLOR_BLACK, COLOR_CYAN);
		init_pair(CP_KEY, -1, -1);
		init_pair(CP_KEYLABEL, COLOR_BLACK, COLOR_CYAN);
		init_pair(CP_GROUP, COLOR_CYAN, -1);
		init_pair(CP_DIM, COLOR_BLUE, -1);
	}

	double start = mono_s(), next = start, soon = INFINITY;
	bool dirty = true;
	for (;;) {
		if (signals_stop_requested())
			break;
		double now = mono_s();
		if (opts->duration_s > 0 && now - start >= opts->duration_s)
			break;
		if (now >= next || now >= soon || dirty) {
			double t0 = thread_cpu_s();
			if (now >= next) {
				refresh_data(c);
				next = now + c->o.refresh_s;
			}
			reorder(c);
			draw(c);
			c->draw_cpu_s += thread_cpu_s() - t0;
			c->frames++;
			dirty = false;
			/* a database screen without its first answer: drawn again in 50 ms, not a
			 * whole refresh period later */
			soon = fv_waiting(c->fv) || dbt_waiting(c) ? mono_s() + 0.05 : INFINITY;
		}
		double wait = (soon < next ? soon : next) - mono_s();
		if (opts->duration_s > 0 && start + opts->duration_s - mono_s() < wait)
			wait = start + opts->duration_s - mono_s();
		int ms = wait <= 0 ? 0 : (int)ceil(wait * 1000);
		/* the wait is ours (poll on the terminal and the signals' pipe), not getch()'s: a
		 * SIGTERM or SIGHUP that another thread took ends it at once, and a terminal that
		 * went away is seen instead of an endless ERR */
		bool readable = false;
		if (!wait_input(in_fd, out_fd, ms, &readable)) {
			signals_request_stop(
			    SIGHUP); /* the same stop and exit status as a SIGHUP */
			break;
		}
		timeout(0); /* also picks up a KEY_RESIZE after SIGWINCH */
		int ch = getch();
		if (ch == ERR) {
			if (readable && input_at_eof(in_fd)) {
				signals_request_stop(SIGHUP);
				break;
			}
			continue;
		}
		double t0 = thread_cpu_s();
		bool go_on = on_key(c, ch);
		/* drain what else is waiting before one redraw */
		timeout(0);
		while (go_on && (ch = getch()) != ERR)
			go_on = on_key(c, ch);
		c->draw_cpu_s += thread_cpu_s() - t0;
		if (!go_on)
			break;
		dirty = true;
	}
	endwin();
	delscreen(scr);
	write_stats(c, mono_s() - start);
out:
	fv_destroy(c->fv);
	free(c->gpus);
	free(c->order);
	free(c->ti);
	free(c->dgpu);
	free(c);
	return rc;
}
