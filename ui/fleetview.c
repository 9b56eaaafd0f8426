#include "fleetview.h"

#include <math.h>
#include <ncurses.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "core/textcell.h"
#include "health/rules.h"
#include "view/view.h"

/* the console's colour pairs (ui/console_int.h) */
enum { CP_OK = 1, CP_WARN, CP_CRIT, CP_HEAD };

struct fv {
	/* overview */
	enum viewdb_level level;
	char path[VDB_LEVELS - 1][HS_HOST_MAX];
	size_t osel;
	char osel_name[HS_HOST_MAX];
	enum viewdb_sort sort;
	bool desc;
	struct viewdb_node nodes[VIEWDB_MAX_NODES];
	size_t nnodes;
	struct viewdb_status ost;
	/* alerts */
	struct viewdb_alert alerts[VIEWDB_MAX_ALERTS];
	size_t nalerts, asel;
	struct viewdb_status ast;
	/* history */
	enum viewdb_window window;
	double end; /* 0: now */
	char key[HS_KEY_MAX];
	struct viewdb_history hist;
	struct viewdb_status hst;
	char note[96]; /* said in the key bar: e.g. no database */
	bool waiting;  /* the last fv_refresh's screen has no answer from the database yet */
};

struct fv *fv_create(void)
{
	struct fv *f = calloc(1, sizeof(*f)); /* with its tables: one allocation */
	if (f)
		f->sort = VDBS_NAME;
	return f; /* caller owns */
}

void fv_destroy(struct fv *f)
{
	free(f);
}

static void put(int y, int x, int w, attr_t a, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void put(int y, int x, int w, attr_t a, const char *fmt, ...)
{
	if (y < 0 || y >= LINES || x >= COLS || w <= 0)
		return;
	if (x + w > COLS)
		w = COLS - x;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* text from the database: control characters and invalid UTF-8 as '?', UTF-8 kept where
	 * the locale's codeset is UTF-8 (else '?'), clipped by display columns */
	char cell[sizeof(buf)];
	enum textcell_charset cs = textcell_locale_charset();
	size_t n = textcell_fit(cs, buf, w, false, cell, sizeof(cell), NULL);
	attron(a);
	mvaddnstr(y, x, cell, (int)n);
	attroff(a);
}

static attr_t sev_attr(const struct fv_env *e, enum health_status s)
{
	if (s == HEALTH_FAIL)
		return e->color ? COLOR_PAIR(CP_CRIT) | A_BOLD : A_BOLD | A_UNDERLINE;
	if (s == HEALTH_WARN)
		return e->color ? COLOR_PAIR(CP_WARN) | A_BOLD : A_BOLD;
	return e->color ? COLOR_PAIR(CP_OK) : A_NORMAL;
}

static void fmt_time(const struct fv_env *e, double t, const char *fmt, char *buf, size_t len)
    __attribute__((format(strftime, 3, 0)));
static void fmt_time(const struct fv_env *e, double t, const char *fmt, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	buf[0] = '\0';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* fmt: the callers' literals, checked */
	if ((e->utc ? gmtime_r(&tt, &tm) : localtime_r(&tt, &tm)) != NULL)
		strftime(buf, len, fmt, &tm);
#pragma GCC diagnostic pop
}

/* ------------------------------------------------------------------ refresh */

static const char *const *path_of(const struct fv *f, const char **p)
{
	for (int l = 0; l < VDB_LEVELS - 1; l++)
		p[l] = f->path[l];
	return p;
}

void fv_refresh(struct fv *f, const struct fv_env *e, enum fv_screen s, const char *gpu_key,
                int chart_width)
{
	const char *p[VDB_LEVELS - 1];
	if (s == FV_HISTORY && gpu_key)
		snprintf(f->key, sizeof(f->key), "%s", gpu_key);
	bool hist = s == FV_HISTORY && gpu_key && (f->window != VDB_W10M || f->end > 0);
	if (e->db) {
		if (s == FV_OVERVIEW)
			viewdb_want_overview(e->db, f->level, path_of(f, p), e->filter);
		else if (s == FV_ALERTS)
			viewdb_want_alerts(e->db);
		else if (!hist || e->hist_db != e->db)
			viewdb_want_none(e->db);
	}
	if (e->hist_db) {
		if (hist)
			viewdb_want_history(e->hist_db, gpu_key, f->window, f->end,
			                    (size_t)(chart_width > 8 ? chart_width : 8));
		else if (e->hist_db != e->db)
			viewdb_want_none(e->hist_db);
	}
	f->waiting = false;
	if (s == FV_OVERVIEW) {
		f->nnodes = e->db ? viewdb_copy_overview(e->db, f->nodes, VIEWDB_MAX_NODES, &f->ost)
		                  : viewdb_live_overview(e->gpus, e->ngpus, f->level, path_of(f, p),
		                                         e->filter, f->nodes, VIEWDB_MAX_NODES);
		f->waiting = e->db && !f->ost.have && !f->ost.error[0];
		viewdb_sort_nodes(f->nodes, f->nnodes, f->sort, f->desc);
		/* follow the selected line by its name */
		for (size_t i = 0; i < f->nnodes; i++)
			if (strcmp(f->nodes[i].name, f->osel_name) == 0)
				f->osel = i;
		if (f->osel >= f->nnodes)
			f->osel = f->nnodes ? f->nnodes - 1 : 0;
		if (f->nnodes)
			snprintf(f->osel_name, sizeof(f->osel_name), "%s", f->nodes[f->osel].name);
	} else if (s == FV_ALERTS) {
		f->nalerts =
		    e->db ? viewdb_copy_alerts(e->db, f->alerts, VIEWDB_MAX_ALERTS, &f->ast)
		          : viewdb_live_alerts(e->gpus, e->ngpus, f->alerts, VIEWDB_MAX_ALERTS);
		f->waiting = e->db && !f->ast.have && !f->ast.error[0];
		if (f->asel >= f->nalerts)
			f->asel = f->nalerts ? f->nalerts - 1 : 0;
	} else if (s == FV_HISTORY && e->hist_db) {
		viewdb_copy_history(e->hist_db, &f->hist, &f->hst);
		f->waiting = hist && !f->hst.have && !f->hst.error[0];
	}
}

bool fv_waiting(const struct fv *f)
{
	return f->waiting;
}

/* ------------------------------------------------------------------ overview */

static void status_line(const struct fv_env *e, int y, const struct viewdb_status *st,
                        const char *what)
{
	if (!e->db) {
		put(y, 0, COLS, A_DIM,
		    "%s: the live fleet (no database: clusters, datacenters and racks "
		    "unknown)",
		    what);
		return;
	}
	if (st->error[0])
		put(y, 0, COLS, sev_attr(e, HEALTH_FAIL), "%s: database error: %s", what,
		    st->error);
	else if (!st->have)
		put(y, 0, COLS, A_DIM, "%s: reading the fleet database...", what);
	else
		put(y, 0, COLS, A_DIM, "%s: fleet database, query %.0f ms", what, st->query_ms);
}

void fv_draw_overview(struct fv *f, const struct fv_env *e, int y0, int y1)
{
	char crumbs[400] = "fleet";
	size_t cl = strlen(crumbs);
	for (int l = 0; l < (int)f->level && l < VDB_LEVELS - 1; l++)
		cl += (size_t)snprintf(crumbs + cl, sizeof(crumbs) - cl, " > %s %s",
		                       viewdb_level_name((enum viewdb_level)l), f->path[l]);
	put(y0, 0, COLS, A_BOLD, "%s   (by %s%s%s; %s%s)", crumbs, viewdb_level_name(f->level),
	    e->filter && e->filter[0] ? ", filter /" : "", e->filter ? e->filter : "",
	    viewdb_sort_name(f->sort), f->desc ? " desc" : "");
	status_line(e, y0 + 1, &f->ost, "source");
	int y = y0 + 2;
	/* NAME GPUS PASS WARN FAIL HOTTEST P_FAIL STRIP */
	int nw = COLS >= 160 ? 28 : 16;
	int hw = COLS >= 160 ? 30 : 16;
	attr_t head = e->color ? COLOR_PAIR(CP_HEAD) | A_BOLD : A_REVERSE;
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "%-*s %6s %5s %5s %5s %-*s %6s  %s", nw,
	         viewdb_level_name(f->level), "GPUS", "PASS", "WARN", "FAIL", hw + 5, "HOTTEST",
	         "P_FAIL", "HEALTH (one letter per GPU)");
	move(y, 0);
	clrtoeol();
	put(y, 0, COLS, head, "%-*s", COLS, hdr);
	y++;
	int rows = y1 - y;
	if (rows <= 0)
		return;
	size_t first = f->osel >= (size_t)rows ? f->osel - (size_t)rows + 1 : 0;
	if (!f->nnodes)
		put(y, 0, COLS, A_DIM, "%s",
		    e->filter && e->filter[0] ? "nothing matches the filter" : "no GPU");
	for (size_t i = first; i < f->nnodes && y < y1; i++, y++) {
		const struct viewdb_node *n = &f->nodes[i];
		char hot[64] = "-", pf[16] = "-";
		if (!isnan(n->hottest_c))
			snprintf(hot, sizeof(hot), "%3.0fC %.*s", n->hottest_c, hw, n->hottest);
		if (!isnan(n->p_fail_max))
			snprintf(pf, sizeof(pf), "%5.1f%%", n->p_fail_max * 100);
		attr_t a = i == f->osel ? A_REVERSE : A_NORMAL;
		char line[256];
		int k = snprintf(line, sizeof(line), "%-*.*s %6zu %5zu %5zu %5zu %-*s %6s  ", nw,
		                 nw, n->name, n->gpus, n->pass, n->warn, n->fail, hw + 5, hot, pf);
		move(y, 0);
		clrtoeol();
		put(y, 0, COLS, a, "%s", line);
		/* the strip: a letter per GPU, coloured by its health; cut to the line, the GPUs
		 * not shown counted after it (+N) */
		int x = k;
		size_t show = n->strip_n;
		if (k < COLS && (n->gpus > show || (int)show > COLS - k)) {
			char more[24];
			if ((int)show > COLS - k)
				show = (size_t)(COLS - k);
			while (show > 0 &&
			       (int)show + snprintf(more, sizeof(more), "+%zu", n->gpus - show) >
			           COLS - k)
				show--;
		}
		for (size_t j = 0; j < show && x < COLS; j++, x++) {
			char ch = n->strip[j];
			enum health_status s = ch == 'F'   ? HEALTH_FAIL
			                       : ch == 'W' ? HEALTH_WARN
			                                   : HEALTH_PASS;
			attr_t sa = ch == '?' ? A_DIM : sev_attr(e, s);
			mvaddch(y, x, (chtype)(unsigned char)ch | sa);
		}
		if (n->gpus > show && x + 1 < COLS)
			put(y, x, COLS - x, A_DIM, "+%zu", n->gpus - show);
	}
}

/* ------------------------------------------------------------------ alerts */

void fv_draw_alerts(struct fv *f, const struct fv_env *e, int y0, int y1)
{
	size_t fails = 0;
	for (size_t i = 0; i < f->nalerts; i++)
		fails += f->alerts[i].severity == HEALTH_FAIL;
	put(y0, 0, COLS, A_BOLD, "Open alerts: %zu (%zu fail), worst and newest first%s",
	    f->nalerts, fails, f->nalerts >= VIEWDB_MAX_ALERTS ? " (the first 256)" : "");
	status_line(e, y0 + 1, &f->ast, "source");
	int y = y0 + 2;
	attr_t head = e->color ? COLOR_PAIR(CP_HEAD) | A_BOLD : A_REVERSE;
	int hw = COLS >= 160 ? 24 : 12, ww = COLS >= 160 ? 20 : 8;
	char hdr[256];
	snprintf(hdr, sizeof(hdr), "%-4s %-14s %-*s %3s %-*s %-16s %s", "SEV", "SINCE", hw, "HOST",
	         "GPU", ww, "WORKLOAD", "KIND", "REASON");
	put(y, 0, COLS, head, "%-*s", COLS, hdr);
	y++;
	int rows = y1 - y;
	if (rows <= 0)
		return;
	if (!f->nalerts)
		put(y, 0, COLS, A_DIM, "no open alert");
	size_t first = f->asel >= (size_t)rows ? f->asel - (size_t)rows + 1 : 0;
	for (size_t i = first; i < f->nalerts && y < y1; i++, y++) {
		const struct viewdb_alert *a = &f->alerts[i];
		char when[16], age[16], since[40];
		fmt_time(e, a->since, "%H:%M", when, sizeof(when));
		view_fmt_age(e->now - a->since, age, sizeof(age));
		snprintf(since, sizeof(since), "%s %s", when, age);
		attr_t at = sev_attr(e, a->severity);
		if (i == f->asel)
			at |= A_REVERSE;
		char gpu[16] = "-";
		if (a->index >= 0)
			snprintf(gpu, sizeof(gpu), "%d", a->index);
		put(y, 0, COLS, at, "%-4s %-14.14s %-*.*s %3s %-*.*s %-16.16s %s",
		    health_status_name(a->severity), since, hw, hw, a->host[0] ? a->host : "-", gpu,
		    ww, ww, a->workload[0] ? a->workload : "-", a->kind, a->text);
	}
}

/* ------------------------------------------------------------------ history */

void fv_history_label(const struct fv *f, const struct fv_env *e, char *buf, size_t len)
{
	if (!e->hist_db) {
		snprintf(buf, len, "1-5 [ ]: history needs a database (--db); live ring");
		return;
	}
	if (f->window == VDB_W10M && f->end <= 0) {
		snprintf(buf, len, "history: live ring, 10 min (1-5 [ ])");
		return;
	}
	char to[32];
	double end = f->end > 0 ? f->end : e->now;
	if (f->window == VDB_W7D)
		fmt_time(e, end, "%m-%d %H:%M", to, sizeof(to));
	else
		fmt_time(e, end, "%H:%M:%S", to, sizeof(to));
	snprintf(buf, len, "history %s to %s%s, %s%s", viewdb_window_name(f->window), to,
	         e->utc ? " UTC" : "", viewdb_window_source(f->window),
	         f->window <= VDB_W6H ? " (raw)" : " (min/mean/max)");
}

bool fv_history_key(struct fv *f, const struct fv_env *e, int ch)
{
	if (ch >= '1' && ch <= '5') {
		f->window = (enum viewdb_window)(ch - '1');
		f->end = 0;
		return true;
	}
	if (ch == '[' || ch == ']') {
		double span = viewdb_window_s(f->window);
		double end = f->end > 0 ? f->end : e->now;
		end += ch == '[' ? -span : span;
		f->end =
		    end >= e->now - 1 ? 0 : end; /* never past now: back to the moving window */
		return true;
	}
	return false;
}

static void series_range(const struct viewdb_history *h, int s, double *lo, double *hi)
{
	*lo = NAN;
	*hi = NAN;
	for (size_t i = 0; i < h->n; i++) {
		if (!isnan(h->min[s][i]) && (isnan(*lo) || h->min[s][i] < *lo))
			*lo = h->min[s][i];
		if (!isnan(h->max[s][i]) && (isnan(*hi) || h->max[s][i] > *hi))
			*hi = h->max[s][i];
	}
}

static void cell(const struct fv_env *e, int y, int x, bool full, attr_t a)
{
	if (e->unicode) {
		wchar_t w[2] = {full ? (wchar_t)0x2588 : (wchar_t)0x2591, 0};
		cchar_t cc;
		setcchar(&cc, w, a, (short)PAIR_NUMBER(a), NULL);
		mvadd_wch(y, x, &cc);
	} else {
		mvaddch(y, x, (chtype)(full ? '#' : ':') | a);
	}
}

bool fv_draw_history(struct fv *f, const struct fv_env *e, int y0, int rows)
{
	if (!e->hist_db || (f->window == VDB_W10M && f->end <= 0))
		return false;
	const struct viewdb_history *h = &f->hist;
	if (!f->hst.have || strcmp(h->key, f->key) != 0) {
		put(y0, 0, COLS, f->hst.error[0] ? sev_attr(e, HEALTH_FAIL) : A_DIM, "%s",
		    f->hst.error[0] ? f->hst.error : "reading the history from the database...");
		return true;
	}
	static const char *const names[VIEWDB_NSERIES] = {"Temperature", "Power", "Utilization"};
	static const char *const units[VIEWDB_NSERIES] = {"C", "W", "%"};
	int cw = (COLS - 2) / 3;
	int ch = rows - 3; /* header, chart, time axis, marks */
	if (ch < 1)
		ch = 1;
	const int gut = 6; /* the value axis */
	int w = cw - gut;
	if (w < 4)
		w = 4;
	for (int s = 0; s < VIEWDB_NSERIES; s++) {
		int x = s * (cw + 1);
		double lo, hi;
		series_range(h, s, &lo, &hi);
		if (isnan(lo)) {
			put(y0, x, cw, A_BOLD, "%s (%s): no samples", names[s], units[s]);
			continue;
		}
		static const char *const shorts[VIEWDB_NSERIES] = {"Temp", "Power", "Util"};
		/* the extremes as stored, with as many significant digits (6 at most) as the
		 * column holds: 93.25 stays 93.25, not a rounded 93 below the true maximum */
		char head[96];
		for (int prec = 6; prec >= 3; prec--) {
			int n = snprintf(head, sizeof(head), "%s %s %smin %.*g max %.*g",
			                 cw >= 30 ? names[s] : shorts[s], units[s],
			                 cw >= 30 ? " " : "", prec, lo, prec, hi);
			if (n >= 0 && n <= cw)
				break;
		}
		put(y0, x, cw, A_BOLD, "%s", head);
		/* the value axis: max at the top, min at the bottom */
		put(y0 + 1, x, gut, A_DIM, "%5.0f", hi);
		if (ch > 1)
			put(y0 + ch, x, gut, A_DIM, "%5.0f", lo);
		double span = hi > lo ? hi - lo : 1;
		attr_t band = e->color ? COLOR_PAIR(CP_OK) | A_DIM : A_DIM;
		attr_t mean = e->color ? COLOR_PAIR(CP_OK) | A_BOLD : A_BOLD;
		for (int col = 0; col < w; col++) {
			/* the buckets that fall in this cell */
			size_t b0 = (size_t)((double)col * (double)h->n / (double)w);
			size_t b1 = (size_t)((double)(col + 1) * (double)h->n / (double)w);
			if (b1 <= b0)
				b1 = b0 + 1;
			double mn = NAN, mx = NAN, sum = 0;
			int cnt = 0;
			for (size_t b = b0; b < b1 && b < h->n; b++) {
				if (isnan(h->min[s][b]))
					continue;
				mn = isnan(mn) || h->min[s][b] < mn ? h->min[s][b] : mn;
				mx = isnan(mx) || h->max[s][b] > mx ? h->max[s][b] : mx;
				sum += h->mean[s][b];
				cnt++;
			}
			if (!cnt)
				continue;
			double mv = sum / cnt;
			int rmin = (int)lround((mn - lo) / span * (ch - 1));
			int rmax = (int)lround((mx - lo) / span * (ch - 1));
			int rmean = (int)lround((mv - lo) / span * (ch - 1));
			for (int r = rmin; r <= rmax; r++)
				cell(e, y0 + ch - r, x + gut + col, r == rmean,
				     r == rmean ? mean : band);
			if (rmean < rmin || rmean > rmax)
				cell(e, y0 + ch - rmean, x + gut + col, true, mean);
		}
		/* the time axis: the window's start, middle and end */
		char t0[24], tm[24], t1[24];
		bool days = h->window == VDB_W7D;
		fmt_time(e, h->t0, days ? "%m-%d %H:%M" : "%H:%M", t0, sizeof(t0));
		fmt_time(e, (h->t0 + h->t1) / 2, days ? "%m-%d %H:%M" : "%H:%M", tm, sizeof(tm));
		fmt_time(e, h->t1, days ? "%m-%d %H:%M" : "%H:%M", t1, sizeof(t1));
		int ty = y0 + ch + 1;
		put(ty, x + gut, w, A_DIM, "%s", t0);
		int ml = (int)strlen(tm), el = (int)strlen(t1);
		if (w > (int)strlen(t0) + ml + el + 2)
			put(ty, x + gut + (w - ml) / 2, ml, A_DIM, "%s", tm);
		if (w > (int)strlen(t0) + el + 1)
			put(ty, x + gut + w - el, el, A_DIM, "%s", t1);
		/* the events: X an XID, S a status change, A an alert raised */
		int my = y0 + ch + 2;
		put(my, x, gut, A_DIM, "%s", "event");
		/* several events in one column: the most severe (X, then A, then S) is drawn,
		 * underlined when the column holds more than one */
		enum { MARK_COLS = 1024 };
		unsigned char best[MARK_COLS], many[MARK_COLS];
		int wm = w < MARK_COLS ? w : MARK_COLS;
		memset(best, 0, sizeof(best));
		memset(many, 0, sizeof(many));
		for (size_t m = 0; m < h->nmarks; m++) {
			double fr = (h->marks[m].t - h->t0) / (h->t1 - h->t0);
			if (fr < 0 || fr >= 1)
				continue;
			int col = (int)(fr * w);
			if (col >= wm)
				continue;
			char k = h->marks[m].kind;
			int rank = k == 'X' ? 3 : k == 'A' ? 2 : 1;
			int had = best[col] == 'X' ? 3 : best[col] == 'A' ? 2 : best[col] ? 1 : 0;
			many[col] |= had != 0;
			if (rank > had)
				best[col] = (unsigned char)k;
		}
		for (int col = 0; col < wm; col++) {
			if (!best[col])
				continue;
			enum health_status sv = best[col] == 'X'   ? HEALTH_FAIL
			                        : best[col] == 'A' ? HEALTH_WARN
			                                           : HEALTH_PASS;
			mvaddch(my, x + gut + col,
			        (chtype)best[col] | sev_attr(e, sv) |
			            (many[col] ? A_UNDERLINE : 0));
		}
	}
	return true;
}

/* ------------------------------------------------------------------ keys */

enum fv_action fv_key(struct fv *f, const struct fv_env *e, enum fv_screen s, int ch, char *out,
                      size_t outlen)
{
	(void)e;
	size_t *sel = s == FV_OVERVIEW ? &f->osel : &f->asel;
	size_t n = s == FV_OVERVIEW ? f->nnodes : f->nalerts;
	long page = LINES - 6 > 1 ? LINES - 6 : 1;
	long d = 0;
	switch (ch) {
	case KEY_UP:
	case 'k': d = -1; break;
	case KEY_DOWN:
	case 'j': d = 1; break;
	case KEY_PPAGE: d = -page; break;
	case KEY_NPAGE: d = page; break;
	case KEY_HOME: d = -(long)n; break;
	case KEY_END: d = (long)n; break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (!n)
			return FV_TAKEN;
		if (s == FV_ALERTS) {
			snprintf(out, outlen, "%s", f->alerts[*sel].key);
			return FV_DETAIL;
		}
		if (f->level == VDB_HOST) {
			snprintf(out, outlen, "%s", f->nodes[*sel].name);
			return FV_HOST;
		}
		/* two members of f: copied, not printed (snprintf's arguments must not overlap) */
		size_t len = strnlen(f->nodes[*sel].name, sizeof(f->path[f->level]) - 1);
		memcpy(f->path[f->level], f->nodes[*sel].name, len);
		f->path[f->level][len] = '\0';
		f->level++;
		f->osel = 0;
		f->osel_name[0] = '\0';
		f->nnodes = 0;
		return FV_TAKEN;
	case 27:
	case KEY_BACKSPACE:
	case 127:
		if (s == FV_OVERVIEW && f->level > 0) {
			f->level--;
			snprintf(f->osel_name, sizeof(f->osel_name), "%s", f->path[f->level]);
			f->path[f->level][0] = '\0';
			f->nnodes = 0;
			return FV_TAKEN;
		}
		return FV_BACK;
	case 's':
	case '>':
	case '.':
	case KEY_F(6):
	case '<':
	case ',':
		if (s != FV_OVERVIEW)
			return FV_TAKEN;
		f->sort = (enum viewdb_sort)(
		    ((int)f->sort + (ch == '<' || ch == ',' ? VDBS_COUNT - 1 : 1)) % VDBS_COUNT);
		f->desc = f->sort != VDBS_NAME;
		return FV_TAKEN;
	case 'I':
	case 'r':
		if (s == FV_OVERVIEW)
			f->desc = !f->desc;
		return FV_TAKEN;
	default: return FV_NONE;
	}
	long v = (long)*sel + d;
	if (v >= (long)n)
		v = (long)n - 1;
	if (v < 0)
		v = 0;
	*sel = (size_t)v;
	if (s == FV_OVERVIEW && n)
		snprintf(f->osel_name, sizeof(f->osel_name), "%s", f->nodes[*sel].name);
	return FV_TAKEN;
}
