#include "console_pipeline.h"

#include <math.h>
#include <ncurses.h>
#include <stdio.h>
#include <string.h>

#include "cdraw.h"
#include "console_int.h"
#include "view/view.h"

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

void console_pipeline_panel(struct console *c, int y)
{
	const struct pipeline_view *v = &c->view;
	char a[16], b[16], d[16], e[16];
	attr_t lab = A_BOLD;
	/* scrape */
	cdraw_put(y, 0, 8, lab, true, "Scrape");
	size_t down = view_targets_down(v);
	double age = view_scrape_age(v);
	attr_t aa = age < 0 ? A_DIM : cdraw_level_attr(c, down ? VL_WARN : VL_OK);
	char shard[64] = ""; /* --shard: this collector's part of the list */
	if (v->collector.shard.count)
		snprintf(shard, sizeof(shard), " (shard %u/%u of %zu)", v->collector.shard.index,
		         v->collector.shard.count, v->collector.targets_listed);
	cdraw_put(y, 8, COLS - 8, aa, true,
	          "%zu/%zu targets up%s  age %s  %.1f scrapes/s  events %s (%.1f/s)",
	          v->ntargets - down, v->ntargets, shard, view_fmt_age(age, a, sizeof(a)),
	          v->scrapes_per_s, view_fmt_count((double)v->collector.events, b, sizeof(b)),
	          v->events_per_s);
	/* Kafka */
	const struct producer_stats *ps = &v->collector.producer;
	cdraw_put(y + 1, 0, 8, lab, true, "Kafka");
	char lag[160] = "lag -";
	/* what is left of the line after the producer's counters (about 40 cells) */
	size_t room = COLS > 8 + 40 + 12 ? (size_t)(COLS - 8 - 40) : 12;
	if (v->have_sink)
		view_fmt_lag(&v->sink, lag, room < sizeof(lag) ? room : sizeof(lag));
	uint64_t lost = ps->dropped + ps->refused + ps->failed + v->gate.lost;
	cdraw_put(
	    y + 1, 8, COLS - 8,
	    lost           ? cdraw_level_attr(c, VL_CRIT)
	    : v->gate.held ? cdraw_level_attr(c, VL_WARN)
	                   : A_NORMAL,
	    true, "prod %s dlv %s buf %s%s lost %s  %s",
	    view_fmt_count((double)ps->produced, a, sizeof(a)),
	    view_fmt_count((double)ps->delivered, b, sizeof(b)),
	    view_fmt_count((double)(ps->queued + ps->in_flight + ps->spool_events), d, sizeof(d)),
	    v->gate.held ? " HELD" : "", view_fmt_count((double)lost, e, sizeof(e)), lag);
	/* database */
	cdraw_put(y + 2, 0, 8, lab, true, "DB");
	if (v->db_rows >= 0 && c->dbt) {
		/* a read-only viewer runs no sink or scorer: the database's own figures (the
		 * scored GPUs and the open alerts of the fleet table's reader), the DLQ unknown */
		bool have = c->tst.queries > 0;
		char f[16];
		cdraw_put(y + 2, 8, COLS - 8, A_NORMAL, true,
		          "gpu_metrics rows %s%s (%+.1f/s)  DLQ -  scored GPUs %s  open alerts %s",
		          v->db_rows_estimate ? "~" : "",
		          view_fmt_count((double)v->db_rows, a, sizeof(a)), v->db_rows_per_s,
		          have ? view_fmt_count((double)(c->ti->pass + c->ti->warn + c->ti->fail),
		                                d, sizeof(d))
		               : "-",
		          have ? view_fmt_count((double)c->ti->open_alerts, f, sizeof(f)) : "-");
	} else if (v->db_rows >= 0)
		cdraw_put(y + 2, 8, COLS - 8, A_NORMAL, true,
		          "gpu_metrics rows %s%s (%+.1f/s)  DLQ %s  scored %s  open alerts %zu",
		          v->db_rows_estimate ? "~" : "",
		          view_fmt_count((double)v->db_rows, a, sizeof(a)), v->db_rows_per_s,
		          view_fmt_count((double)v->sink.dead_letters, b, sizeof(b)),
		          view_fmt_count((double)v->scorer.scored, d, sizeof(d)),
		          v->scorer.open_alerts);
	else
		cdraw_put(y + 2, 8, COLS - 8, A_DIM, true, "gpu_metrics rows -  %s",
		          v->parts[PP_DATABASE].detail);
	/* the first error */
	int nerr;
	int p = first_error(v, &nerr);
	if (p < 0) {
		cdraw_put(y + 3, 0, COLS, A_DIM, true, "        every service is running");
	} else {
		cdraw_put(y + 3, 0, 8, cdraw_level_attr(c, VL_CRIT), true, "Error");
		cdraw_put(y + 3, 8, COLS - 8,
		          cdraw_level_attr(c, v->parts[p].state == PART_FAILED ? VL_CRIT : VL_WARN),
		          true, "%s %s: %s%s", view_part_name((enum pipeline_part)p),
		          view_state_name(v->parts[p].state),
		          v->parts[p].last_error[0] ? v->parts[p].last_error : v->parts[p].detail,
		          nerr > 1 ? "  (more: F2)" : "");
	}
}

/* ---- the pipeline screen */

void console_pipeline_screen(struct console *c)
{
	const struct pipeline_view *v = &c->view;
	/* written into a virtual list of lines, scrolled by c->scroll */
	int y = 1 - c->scroll, top = 1, bottom = LINES - 1;
	char a[16], b[16], d[16], e[16], f[16];
#define LINE(attr, ...)                                                                            \
	do {                                                                                       \
		if (y >= top && y < bottom)                                                        \
			cdraw_put(y, 0, COLS, attr, true, __VA_ARGS__);                            \
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
		LINE(cdraw_level_attr(c, l), "%-10s %-9s %s", view_part_name((enum pipeline_part)p),
		     view_state_name(pv->state), pv->detail);
		if (pv->last_error[0]) {
			/* the whole message, wrapped: its end usually says what to do */
			int w = COLS - 23 > 20 ? COLS - 23 : 20;
			const char *msg = pv->last_error;
			int len = (int)strlen(msg);
			LINE(cdraw_level_attr(c, VL_CRIT), "%-10s %-9s error %s ago:", "", "",
			     view_fmt_age(v->now - pv->last_error_time, a, sizeof(a)));
			for (int off = 0; off < len; off += w)
				LINE(cdraw_level_attr(c, VL_CRIT), "%-10s %-9s   %.*s", "", "", w,
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
		LINE(cdraw_level_attr(c, t->consecutive_failures ? VL_WARN : VL_NONE),
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
		LINE(loss[0] == 'L' ? cdraw_level_attr(c, VL_CRIT) : A_NORMAL, "%s", loss);
		if (*view_fmt_gate(v, gate, sizeof(gate)))
			LINE(v->gate.held ? cdraw_level_attr(c, VL_WARN) : A_NORMAL, "%s", gate);
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
