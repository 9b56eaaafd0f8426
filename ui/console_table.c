#include "console_table.h"

#include <math.h>
#include <ncurses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdraw.h"
#include "console_int.h"
#include "core/textcell.h"
#include "health/rules.h"
#include "view/view.h"
#include "viewdb/viewdb.h"

/* ---- the database's fleet table (a read-only viewer) */

/* Whether the page holds the order and filter the user chose now. */
bool console_table_page_valid(const struct console *c)
{
	return c->ti->sort == (int)c->sort && c->ti->desc == c->desc && c->ti->group == c->group &&
	       strcmp(c->ti->filter, c->filter) == 0;
}

/* The GPU at position pos of the order, when the page holds it. */
const struct fleet_gpu *console_table_row(const struct console *c, size_t pos)
{
	if (!console_table_page_valid(c) || pos < c->ti->offset || pos - c->ti->offset >= c->ngpus)
		return NULL;
	return &c->gpus[pos - c->ti->offset];
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

/* The ungrouped table's host column (no headings say the host): the longest host of the rows
 * (at least the title's 4 cells, at most 24: longer ones are cut with a '>'), before the
 * others, which share what is left of the line as usual (view_layout_workload trims the model
 * and the sparklines); none when grouped. Sets c->host_w and the layout. */
#define HOST_COL_MAX 24
static void layout(struct console *c, const struct fleet_gpu *const *rows, size_t n, int wl,
                   struct view_layout *L)
{
	int hw = 0;
	if (!c->group) {
		hw = 4; /* "HOST" */
		for (size_t i = 0; i < n; i++) {
			int l = rows[i]->host[0] ? (int)strlen(rows[i]->host) : 1;
			if (l > hw)
				hw = l;
		}
		if (hw > HOST_COL_MAX)
			hw = HOST_COL_MAX;
		if (COLS < 40 + hw)
			hw = 0; /* too narrow: the GPU's own columns first */
	}
	c->host_w = hw;
	view_layout_workload(COLS - (hw ? hw + 1 : 0), wl, L);
	for (int col = 0; hw && col < VC_COUNT; col++)
		if (L->x[col] >= 0)
			L->x[col] += hw + 1;
}

/* A sample's value, three digits and its unit, or "-" where the GPU did not report it. */
static void put_sample(int y, int x, int w, attr_t a, const struct health_sample *s,
                       enum hs_field f, const char *unit)
{
	if (health_sample_has(s, f))
		cdraw_put(y, x, w, a, true, "%3.0f%s", s->v[f], unit);
	else
		cdraw_put(y, x, w, a, true, "   -");
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
	if (c->host_w) {
		const char *h = g->host[0] ? g->host : "-";
		if ((int)strlen(h) > c->host_w)
			cdraw_put(y, 0, c->host_w, base, true, "%.*s>", c->host_w - 1, h);
		else
			cdraw_put(y, 0, c->host_w, base, true, "%s", h);
	}
	for (int col = 0; col < VC_COUNT; col++) {
		int x = L->x[col], w = L->width[col];
		if (x < 0)
			continue;
		attr_t a = base;
		switch (col) {
		case VC_INDEX:
			if (g->index >= 0)
				cdraw_put(y, x, w, a, true, "%3d", g->index);
			else
				cdraw_put(y, x, w, a, true, "  ?");
			break;
		case VC_MODEL:
			cdraw_put(y, x, w, a, true, "%s",
			          g->model[0] ? view_model_short(g->model) : "?");
			break;
		case VC_TEMP:
			if (!sel)
				a |= cdraw_level_attr(c, view_temp_level(g));
			put_sample(y, x, w, a, s, HS_GPU_TEMP, "C");
			break;
		case VC_POWER:
			if (!sel)
				a |= cdraw_level_attr(c, view_power_level(g));
			if (health_sample_has(s, HS_POWER) && health_sample_has(s, HS_POWER_LIMIT))
				snprintf(buf, sizeof(buf), "%.0f/%.0fW", s->v[HS_POWER],
				         s->v[HS_POWER_LIMIT]);
			else if (health_sample_has(s, HS_POWER))
				snprintf(buf, sizeof(buf), "%.0fW", s->v[HS_POWER]);
			else
				snprintf(buf, sizeof(buf), "-");
			if ((int)strlen(buf) > w && health_sample_has(s, HS_POWER))
				snprintf(buf, sizeof(buf), "%.0fW", s->v[HS_POWER]);
			cdraw_put(y, x, w, a, true, "%*s", w, buf);
			break;
		case VC_UTIL: put_sample(y, x, w, a, s, HS_GPU_UTIL, "%"); break;
		case VC_MEM:
			if (isnan(g->fb_used_mib))
				snprintf(buf, sizeof(buf), "-");
			else if (isnan(g->fb_total_mib))
				snprintf(buf, sizeof(buf), "%s",
				         view_fmt_mib(g->fb_used_mib, b2, sizeof(b2)));
			else
				snprintf(buf, sizeof(buf), "%.1f/%.0fG", g->fb_used_mib / 1024.0,
				         g->fb_total_mib / 1024.0);
			cdraw_put(y, x, w, a, true, "%*s", w, buf);
			break;
		case VC_HEALTH:
			if (!sel)
				a |= cdraw_level_attr(c, view_health_level(g));
			health_text(g, b3, sizeof(b3));
			cdraw_put(y, x, w, a, true, "%s", b3);
			break;
		case VC_WORKLOAD:
			cdraw_put(y, x, w, a, true, "%s",
			          view_workload_text(g, w, buf, sizeof(buf)));
			break;
		case VC_SPARK_TEMP:
			cdraw_spark(c, y, x, w, g, FLEET_TEMP,
			            sel ? A_REVERSE : cdraw_level_attr(c, view_temp_level(g)));
			break;
		case VC_SPARK_POWER:
			cdraw_spark(c, y, x, w, g, FLEET_POWER,
			            sel ? A_REVERSE : cdraw_level_attr(c, view_power_level(g)));
			break;
		case VC_SPARK_UTIL:
			cdraw_spark(c, y, x, w, g, FLEET_UTIL,
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
	/* in display columns, as the cell is drawn (a UTF-8 name takes fewer than its bytes) */
	enum textcell_charset cs = textcell_locale_charset();
	int n = g->wl_namespace[0] && g->wl_pod[0]
	            ? textcell_width(cs, g->wl_namespace) + 1 + textcell_width(cs, g->wl_pod)
	        : g->wl_pod[0]       ? textcell_width(cs, g->wl_pod)
	        : g->wl_namespace[0] ? textcell_width(cs, g->wl_namespace)
	                             : textcell_width(cs, g->wl_container);
	return n < 8 ? 8 : (size_t)n; /* "WORKLOAD" */
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

void console_table_draw(struct console *c, int y0, int y1)
{
	if (c->dbt) {
		dbt_table(c, y0, y1);
		return;
	}
	struct view_layout L;
	const struct fleet_gpu *stackr[256];
	const struct fleet_gpu **rowsv =
	    c->norder <= 256 ? stackr : malloc(c->norder * sizeof(*rowsv));
	for (size_t i = 0; rowsv && i < c->norder; i++)
		rowsv[i] = &c->gpus[c->order[i]];
	layout(c, rowsv, rowsv ? c->norder : 0, workload_width(c), &L);
	if (rowsv != stackr)
		free(rowsv);
	attr_t ha = c->color ? COLOR_PAIR(CP_HEAD) : A_REVERSE;
	attron(ha);
	mvhline(y0, 0, ' ', COLS);
	attroff(ha);
	if (c->host_w)
		cdraw_put(y0, 0, c->host_w, ha, false, "HOST");
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
			cdraw_put(y0, L.x[col], L.width[col], a, false, "%s", t);
		else if (right)
			cdraw_put(y0, L.x[col], L.width[col], a, false, "%*s", L.width[col], t);
		else
			cdraw_put(y0, L.x[col], L.width[col], a, false, "%s", t);
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
			cdraw_put(y, 0, COLS, c->color ? COLOR_PAIR(CP_GROUP) | A_BOLD : A_BOLD,
			          true, "== %s  (%zu GPUs, %zu not passing)",
			          host[0] ? host : "(unknown host)", cnt, bad);
			continue;
		}
		table_row(c, y, &L, &c->gpus[ln->gpu], ln->pos == c->sel);
		if (y >= 0 && y < (int)(sizeof(c->rowpos) / sizeof(c->rowpos[0])))
			c->rowpos[y] = (long)ln->pos;
	}
	if (c->norder == 0)
		cdraw_put(y0 + 1, 0, COLS, A_DIM, true, "%s",
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
	if (c->host_w)
		cdraw_put(y0, 0, c->host_w, ha, false, "HOST");
	for (int col = 0; col < VC_COUNT; col++) {
		if (L->x[col] < 0)
			continue;
		bool right = col == VC_POWER || col == VC_MEM;
		const char *t = view_col_title((enum view_col)col);
		attr_t a = ha;
		if (key_of[col] == c->sort)
			a |= A_BOLD | A_UNDERLINE;
		if (right)
			cdraw_put(y0, L->x[col], L->width[col], a, false, "%*s", L->width[col], t);
		else
			cdraw_put(y0, L->x[col], L->width[col], a, false, "%s", t);
	}
}

/* Whether a host heading goes above the row at pos (grouped, several hosts, the first row of
 * its host). */
static bool dbt_heading_at(const struct console *c, size_t pos, bool headings)
{
	if (!headings)
		return false;
	const struct fleet_gpu *g = console_table_row(c, pos);
	if (!g)
		return false;
	if (pos == 0)
		return true;
	const struct fleet_gpu *p = console_table_row(c, pos - 1);
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
	bool valid = console_table_page_valid(c);
	size_t n0 = c->ti->offset;
	/* the workload column: the longest of the page's */
	size_t wl = 0;
	for (size_t i = 0; valid && i < c->ngpus; i++) {
		size_t n = workload_cells(&c->gpus[i]);
		if (n > wl)
			wl = n;
	}
	struct view_layout L;
	const struct fleet_gpu *rowsv[VIEWDB_TABLE_MAX];
	size_t nr = 0;
	for (size_t i = 0; valid && i < c->ngpus && nr < VIEWDB_TABLE_MAX; i++)
		rowsv[nr++] = &c->gpus[i];
	layout(c, rowsv, nr, wl > VIEW_WORKLOAD_MAX ? VIEW_WORKLOAD_MAX : (int)wl, &L);
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
		const struct fleet_gpu *g = console_table_row(c, pos);
		if (!g) {
			cdraw_put(y, 0, COLS, A_DIM, true, "  ...");
			y++;
			continue;
		}
		if (dbt_heading_at(c, pos, headings)) {
			cdraw_put(y, 0, COLS, c->color ? COLOR_PAIR(CP_GROUP) | A_BOLD : A_BOLD,
			          true, "== %s  (%zu GPUs, %zu not passing)",
			          g->host[0] ? g->host : "(unknown host)",
			          c->ti->host_gpus[pos - n0], c->ti->host_bad[pos - n0]);
			if (++y >= y1)
				break;
		}
		table_row(c, y, &L, g, pos == c->sel);
		if (y >= 0 && y < (int)(sizeof(c->rowpos) / sizeof(c->rowpos[0])))
			c->rowpos[y] = (long)pos;
		y++;
	}
	if (c->norder == 0)
		cdraw_put(y0 + 1, 0, COLS, A_DIM, true, "%s",
		          !c->tst.have || !valid ? "reading the fleet database..."
		          : c->total             ? "no GPU matches the filter (Esc clears it)"
		                                 : "no GPU in the fleet database yet");
	if (c->tst.error[0])
		cdraw_put(y1 - 1, 0, COLS, cdraw_level_attr(c, VL_CRIT), true, "database: %s",
		          c->tst.error);
}
