#include "console.h"

#include <errno.h>
#include <langinfo.h>
#include <math.h>
#include <ncurses.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cdraw.h"
#include "console_detail.h"
#include "console_int.h"
#include "console_pipeline.h"
#include "console_table.h"
#include "core/signals.h"
#include "fleetview.h"
#include "health/rules.h"
#include "version.h"

/* A read-only viewer's copies from the database: the fleet table's page and the detail's GPU. */
struct console_db_copies {
	struct viewdb_table ti;
	struct fleet_gpu gpu;
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
	cdraw_put(0, 0, COLS, a, true, "%s", left);
	/* the clock and the uptime on the right, as much as fits beside the counts */
	char right[48];
	snprintf(right, sizeof(right), " %s up %s ", clock, up);
	if (ll + (int)strlen(right) > COLS)
		snprintf(right, sizeof(right), " %s ", clock);
	int rl = (int)strlen(right);
	if (ll + rl <= COLS)
		cdraw_put(0, COLS - rl, rl, a, false, "%s", right);
}

static void footer(struct console *c)
{
	int y = LINES - 1;
	if (y < 1)
		return;
	if (c->editing) {
		cdraw_put(y, 0, COLS, A_NORMAL, true, "Filter: %s", c->filter);
		attron(A_REVERSE);
		int x = 8 + (int)strlen(c->filter);
		if (x < COLS)
			mvaddch(y, x, ' ');
		attroff(A_REVERSE);
		cdraw_put(y, x + 2, COLS - x - 2, A_DIM, false, "Enter: keep  Esc: clear");
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
	/* the fleet table's sort and filter (a filter shown before the keys that do not fit:
	 * at least 24 cells of keys stay) */
	char st[FILTER_MAX + 96], flt[FILTER_MAX + 56] = "";
	int reserve = 0;
	if (c->screen == SCR_MAIN) {
		if (c->filter[0])
			snprintf(flt, sizeof(flt), " /%s/ %zu/%zu", c->filter, c->norder,
			         c->dbt ? c->total : c->ngpus);
		snprintf(st, sizeof(st), " %s%s%s", view_sort_name(c->sort),
		         c->desc ? (c->unicode ? "\u2193" : "-") : (c->unicode ? "\u2191" : "+"),
		         flt);
		if (c->filter[0]) {
			reserve = cdraw_text_cells(st);
			if (reserve > COLS - 24)
				reserve = COLS - 24 > 0 ? COLS - 24 : 0;
		}
	}
	int x = 0;
	move(y, 0);
	clrtoeol();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!(keys[i].screens & (1u << c->screen)))
			continue;
		int kl = (int)strlen(keys[i].key), ll = (int)strlen(keys[i].label);
		if (x + kl + ll + 1 > COLS - reserve)
			break;
		cdraw_put(y, x, kl, c->color ? COLOR_PAIR(CP_KEY) : A_NORMAL, false, "%s",
		          keys[i].key);
		cdraw_put(y, x + kl, ll + 1, c->color ? COLOR_PAIR(CP_KEYLABEL) : A_REVERSE, false,
		          "%s ", keys[i].label);
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
		if (x + 2 < COLS)
			cdraw_put_cut(c, y, x + 1, COLS - x - 1, A_BOLD, hl);
	}
	if (c->screen == SCR_MAIN && (reserve || x + 12 < COLS))
		cdraw_put_cut(c, y, x, COLS - x, A_BOLD, st);
}

/* ---- help */

static void help_screen(struct console *c)
{
	static const char *const lines[] = {
	    "Keys (htop/nvtop style; every F-key has a letter alias)",
	    "",
	    "  q  F10          quit (also Ctrl-C, SIGTERM);  Ctrl-L  redraw the screen",
	    "  h  ?  F1        this help (Up Down PgUp PgDn scroll it; other keys: back)",
	    "  p  F2           pipeline: services, targets, lag per partition, errors",
	    "  /  \\  F3  F4    filter: words in host, model, UUID, gpuN, health, action,",
	    "                  workload; every word must match; host=NAME: that host only",
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
	/* lines 1 .. LINES - 2; a terminal too short for all of them scrolls (the title stays,
	 * saying so) */
	int rows = LINES - 3, max = n - 1 - rows > 0 ? n - 1 - rows : 0;
	if (c->scroll > max)
		c->scroll = max;
	cdraw_put(1, 0, COLS, A_BOLD, true, "%s%s", lines[0],
	          max == 0 ? "" : c->scroll < max ? "  [Down: more]" : "  [Up: back]");
	for (int i = 0; i < rows && 1 + c->scroll + i < n; i++)
		cdraw_put(2 + i, 0, COLS, A_NORMAL, true, "%s", lines[1 + c->scroll + i]);
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
	if (console_table_page_valid(c))
		c->norder = c->ti->matched;
	else if (c->screen == SCR_MAIN)
		c->norder = 0;
	if (c->norder && c->sel >= c->norder)
		c->sel = c->norder - 1;
	const struct fleet_gpu *g = console_table_row(c, c->sel);
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
		const struct fleet_gpu *sg = c->screen == SCR_DETAIL ? console_detail_gpu(c) : NULL;
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
			console_pipeline_panel(c, 1);
			console_table_draw(c, 5, LINES - 1);
		} else {
			console_table_draw(c, 1, LINES - 1);
		}
		break;
	case SCR_DETAIL: console_detail_draw(c); break;
	case SCR_PIPELINE: console_pipeline_screen(c); break;
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
		const struct fleet_gpu *g = console_table_row(c, c->sel);
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
	if (c->screen == SCR_HELP && (ch == KEY_UP || ch == KEY_DOWN || ch == 'j' || ch == 'k' ||
	                              ch == KEY_PPAGE || ch == KEY_NPAGE)) {
		int d = ch == KEY_UP || ch == 'k' ? -1 : ch == KEY_DOWN || ch == 'j' ? 1
		        : ch == KEY_PPAGE                 ? -(LINES - 3)
		                                          : LINES - 3;
		c->scroll = c->scroll + d > 0 ? c->scroll + d : 0; /* the screen clamps it */
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
		case FV_HOST: /* the host's GPUs in the fleet table: that host exactly */
			snprintf(c->filter, sizeof(c->filter), "host=%.*s", FILTER_MAX - 6, arg);
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
		if (c->screen == SCR_MAIN && c->norder &&
		    (!c->dbt || console_table_row(c, c->sel))) {
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
		if (!(c->dbc = calloc(1, sizeof(*c->dbc)))) {
			rc = -ENOMEM;
			goto out;
		}
		c->ti = &c->dbc->ti;
		c->dgpu = &c->dbc->gpu;
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
	free(c->dbc); /* ti's and dgpu's */
	free(c);
	return rc;
}
