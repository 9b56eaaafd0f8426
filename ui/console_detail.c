#include "console_detail.h"

#include <math.h>
#include <ncurses.h>
#include <stdio.h>
#include <time.h>

#include "cdraw.h"
#include "console_int.h"
#include "fleetview.h"
#include "health/rules.h"
#include "view/view.h"

/* ---- detail */

const struct fleet_gpu *console_detail_gpu(const struct console *c)
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

void console_detail_draw(struct console *c)
{
	const struct fleet_gpu *g = console_detail_gpu(c);
	int y = 1;
	if (!g && c->dbt) {
		cdraw_put(y, 0, COLS, A_DIM, true,
		          c->gst.have ? "GPU %s is not in the fleet database: Esc"
		                      : "reading GPU %s from the fleet database...",
		          c->selected);
		if (c->gst.error[0])
			cdraw_put(y + 1, 0, COLS, cdraw_level_attr(c, VL_CRIT), true,
			          "database: %s", c->gst.error);
		return;
	}
	if (!g) {
		cdraw_put(y, 0, COLS, A_DIM, true,
		          "the GPU is gone (filter or fleet changed): Esc");
		return;
	}
	const struct health_sample *s = &g->last;
	cdraw_put(y++, 0, COLS, A_BOLD, true, "GPU %d  %s  %s  %s%s", g->index,
	          g->host[0] ? g->host : "?", g->model[0] ? g->model : "?", g->key,
	          g->stale ? "  [stale]" : "");
	if (g->has_workload)
		cdraw_put(
		    y++, 0, COLS, A_NORMAL, true, "Workload namespace %s  pod %s  container %s",
		    g->wl_namespace[0] ? g->wl_namespace : "-", g->wl_pod[0] ? g->wl_pod : "-",
		    g->wl_container[0] ? g->wl_container : "-");
	else
		cdraw_put(y++, 0, COLS, A_DIM, true, "Workload none");
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
		cdraw_put(y, 0, COLS, cdraw_level_attr(c, view_health_level(g)), true, "%s", line);
		char comps[160];
		int n = 0;
		for (int i = 0; i < HC_COUNT && n < (int)sizeof(comps); i++)
			n += snprintf(comps + n, sizeof(comps) - (size_t)n, "%s%s %d",
			              i ? "  " : "", short_comp[i], g->health.comp[i]);
		if (k > 0 && COLS > k + n)
			cdraw_put(y, k + 1, COLS - k - 1, A_DIM, true, "%s", comps);
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
			cdraw_put(y, 0, COLS, A_NORMAL, true, "Expected cost:%s", costs);
		} else {
			cdraw_put(y, 0, COLS, A_DIM, true,
			          "Expected cost: not evaluated (healthy, not at risk: keep)");
		}
	} else {
		cdraw_put(y, 0, COLS, A_DIM, true, "Health: not scored yet");
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
			cdraw_put(y, x, cw, A_BOLD, true, "%s %.0f%s (0-%.0f)", names[si],
			          s->v[fields[si]], units[si], hi);
		else
			cdraw_put(y, x, cw, A_BOLD, true, "%s - (0-%.0f)", names[si], hi);
		attr_t a = si == FLEET_TEMP    ? cdraw_level_attr(c, view_temp_level(g))
		           : si == FLEET_POWER ? cdraw_level_attr(c, view_power_level(g))
		                               : (c->color ? COLOR_PAIR(CP_OK) : A_NORMAL);
		cdraw_chart(c, y + 1, x, cw, ch, g, (enum fleet_series)si, a);
	}
	y += ch + 1;
below_charts:;
	char b1[16], b2[16], b3[16], b4[16], b5[16];
	cdraw_put(
	    y++, 0, COLS, A_NORMAL, true,
	    "ECC      single-bit volatile %s aggregate %s   double-bit volatile %s aggregate %s",
	    (yesno_count(s, HS_SBE_VOL, b1, sizeof(b1)), b1),
	    (yesno_count(s, HS_SBE_AGG, b2, sizeof(b2)), b2),
	    (yesno_count(s, HS_DBE_VOL, b3, sizeof(b3)), b3),
	    (yesno_count(s, HS_DBE_AGG, b4, sizeof(b4)), b4));
	yesno_count(s, HS_RETIRED_SBE, b1, sizeof(b1));
	yesno_count(s, HS_RETIRED_DBE, b2, sizeof(b2));
	yesno_count(s, HS_RETIRED_PENDING, b3, sizeof(b3));
	cdraw_put(y++, 0, COLS, A_NORMAL, true,
	          "Retired  pages single-bit %s double-bit %s pending %s", b1, b2, b3);
	yesno_count(s, HS_CORR_ROWS, b1, sizeof(b1));
	yesno_count(s, HS_UNCORR_ROWS, b2, sizeof(b2));
	yesno_count(s, HS_REMAP_PENDING, b3, sizeof(b3));
	yesno_count(s, HS_REMAP_FAILURE, b4, sizeof(b4));
	cdraw_put(y++, 0, COLS, A_NORMAL, true,
	          "Remapped rows correctable %s uncorrectable %s  pending %s failure %s", b1, b2,
	          b3, b4);
	yesno_count(s, HS_PCIE_REPLAY, b1, sizeof(b1));
	yesno_count(s, HS_NVLINK_CRC_FLIT, b2, sizeof(b2));
	yesno_count(s, HS_NVLINK_CRC_DATA, b3, sizeof(b3));
	snprintf(b4, sizeof(b4), isnan(g->sm_clock_mhz) ? "-" : "%.0f", g->sm_clock_mhz);
	snprintf(b5, sizeof(b5), isnan(g->mem_clock_mhz) ? "-" : "%.0f", g->mem_clock_mhz);
	cdraw_put(y++, 0, COLS, A_NORMAL, true,
	          "Links    PCIe replays %s  NVLink CRC flit %s data %s   Clocks SM %s MEM %s MHz",
	          b1, b2, b3, b4, b5);
	if (health_sample_has(s, HS_XID) && s->u[HS_XID] != 0)
		cdraw_put(y++, 0, COLS, cdraw_level_attr(c, VL_WARN), true, "Last XID %llu: %s",
		          (unsigned long long)s->u[HS_XID],
		          view_xid_meaning((unsigned)s->u[HS_XID]));
	else
		cdraw_put(y++, 0, COLS, A_NORMAL, true, "Last XID none");
	char thr[160];
	if (health_sample_has(s, HS_CLOCK_REASONS))
		view_clock_reasons(s->u[HS_CLOCK_REASONS], thr, sizeof(thr));
	else
		snprintf(thr, sizeof(thr), "-");
	cdraw_put(y++, 0, COLS, A_NORMAL, true, "Throttle %s", thr);
	if (nprocs >= 0) {
		cdraw_put(y++, 0, COLS, A_BOLD, true,
		          "Processes (%d)   PID  TYPE      GPU MEM  USER      "
		          "  COMMAND",
		          nprocs);
		if (nprocs == 0)
			cdraw_put(y++, 0, COLS, A_DIM, true, "  none");
		for (int i = 0; i < nprocs && i < 4 && y < LINES - 1; i++) {
			const struct fleet_process *pr = &procs[i];
			char mem[24];
			if (isnan(pr->used_mib))
				snprintf(mem, sizeof(mem), "-");
			else
				view_fmt_mib(pr->used_mib, mem, sizeof(mem));
			cdraw_put(
			    y++, 0, COLS, A_NORMAL, true, "  %17u  %-8s %8s  %-11.11s %s", pr->pid,
			    pr->type == FLEET_PROC_GRAPHICS ? "graphics"
			    : pr->type == FLEET_PROC_BOTH   ? "comp+gfx"
			                                    : "compute",
			    mem, pr->user[0] ? pr->user : "-", pr->command[0] ? pr->command : "-");
		}
	}
	cdraw_put(y++, 0, COLS, A_BOLD, true, "Reasons (worst first) and remedies");
	if (!nreasons)
		cdraw_put(y++, 0, COLS, A_DIM, true, "  none");
	for (size_t i = 0; i < nreasons && y < LINES - 1; i++) {
		const struct health_reason *r = &g->health.reasons[i];
		enum view_level l = r->sev == HEALTH_FAIL   ? VL_CRIT
		                    : r->sev == HEALTH_WARN ? VL_WARN
		                                            : VL_NONE;
		cdraw_put(y++, 0, COLS, cdraw_level_attr(c, l), true,
		          "  %-4s %-12s %-18s -> %-6s %s",
		          r->sev == HEALTH_PASS ? "info" : health_status_name(r->sev),
		          health_component_name(r->comp), r->code, health_action_name(r->remedy),
		          r->text);
	}
	if (y < LINES - 1)
		cdraw_put(y++, 0, COLS, A_BOLD, true, "Recent alerts");
	if (!g->nalerts && y < LINES - 1)
		cdraw_put(y++, 0, COLS, A_DIM, true, "  none");
	for (size_t i = 0; i < g->nalerts && y < LINES - 1; i++) {
		const struct fleet_alert *al = &g->alerts[i];
		char when[16] = "";
		time_t t = (time_t)al->time;
		struct tm tm;
		if (c->env.utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm))
			strftime(when, sizeof(when), "%H:%M:%S", &tm);
		cdraw_put(y++, 0, COLS,
		          al->cleared ? A_DIM
		                      : cdraw_level_attr(c, al->severity == HEALTH_FAIL ? VL_CRIT
		                                                                        : VL_WARN),
		          true, "  %s %-4s %-18s %s%s", when, health_status_name(al->severity),
		          al->kind, al->text, al->cleared ? " (cleared)" : "");
	}
}
