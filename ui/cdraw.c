#include "cdraw.h"

#include <math.h>
#include <ncurses.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "console_int.h"
#include "core/textcell.h"

attr_t cdraw_level_attr(const struct console *c, enum view_level l)
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
void cdraw_put(int y, int x, int w, attr_t a, bool pad, const char *fmt, ...)
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
	/* names come from the network: control characters and invalid UTF-8 as '?', UTF-8 kept
	 * where the locale's codeset is UTF-8 (else '?'), clipped and padded by display columns */
	char cell[sizeof(buf)];
	int used;
	enum textcell_charset cs = textcell_locale_charset();
	size_t n = textcell_fit(cs, buf, w, false, cell, sizeof(cell), &used);
	attron(a);
	mvaddnstr(y, x, cell, (int)n);
	if (pad)
		for (int i = used; i < w; i++)
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

void cdraw_spark(const struct console *c, int y, int x, int w, const struct fleet_gpu *g,
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
void cdraw_chart(const struct console *c, int y, int x, int w, int h, const struct fleet_gpu *g,
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
/* text at (y, x) in w cells, made safe and measured by textcell; a longer one is cut, its last
 * cell a mark: '\u2026' in UTF-8, else '>'. */
void cdraw_put_cut(const struct console *c, int y, int x, int w, attr_t a, const char *text)
{
	if (w <= 0 || x >= COLS)
		return;
	enum textcell_charset cs = textcell_locale_charset();
	if (textcell_width(cs, text) <= w) {
		cdraw_put(y, x, w, a, false, "%s", text);
		return;
	}
	char cell[512];
	int used = 0;
	size_t n = textcell_fit(cs, text, w - 1, false, cell, sizeof(cell), &used);
	attron(a);
	mvaddnstr(y, x, cell, (int)n);
	addstr(c->unicode ? "\u2026" : ">");
	attroff(a);
}

/* Cells of a text (as put_cut counts them). */
int cdraw_text_cells(const char *text)
{
	int n = 0;
	for (size_t i = 0; text[i]; i++)
		n += ((unsigned char)text[i] & 0xc0) != 0x80;
	return n;
}
