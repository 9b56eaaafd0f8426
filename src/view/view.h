/*
 * view: the console's pure logic, no ncurses and no I/O, so unit tests can link it.
 *
 *   - sparkline levels over a history (eighth blocks, with an ASCII ramp as the fallback)
 *   - the fleet table's order (sort keys, grouping by host), filter and column layout
 *   - threshold levels for colours
 *   - formatting of counts, rates, ages and sizes
 *   - XID meanings and decoded clock-event (throttle) reasons
 *   - the source interface: the console copies its data through two function pointers, which
 *     the embedded pipeline and the fake source used by tests both provide
 */
#ifndef GPUHEALTH_VIEW_H
#define GPUHEALTH_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet/fleet.h"
#include "pipeline/pipeline.h"

struct viewdb; /* src/viewdb/viewdb.h */

/* ---- the source of the console's data: every call copies; none blocks on I/O */
struct view_source {
	void *ctx;
	/* Copies the pipeline's view into *out. */
	void (*copy_view)(void *ctx, struct pipeline_view *out);
	/* Copies up to max GPUs (ordered by host, index, key) into out; returns how many exist. */
	size_t (*copy_gpus)(void *ctx, struct fleet_gpu *out, size_t max);
	/* issue #25: the fleet database's screens (overview, alerts, history); NULL: none */
	struct viewdb *db;
	/* issue #24: copies up to max processes of GPU key (local GPUs through NVML) and returns
	 * how many it has, -1 when not reported; NULL: none */
	int (*copy_processes)(void *ctx, const char *key, struct fleet_process *out, size_t max);
	/* the history's database: db, or the console's private PostgreSQL; NULL: none */
	struct viewdb *hist_db;
	/* a reader of the fleet table and the GPU detail (viewdb_create_table): a read-only
	 * viewer's table is paged, sorted and filtered in SQL instead of copy_gpus; NULL: none */
	struct viewdb *table_db;
};

/* ---- sparklines */
#define VIEW_SPARK_LEVELS 8
/* Levels 0..7 of the last `width` values of v[0..n) (oldest first) scaled over [lo, hi];
 * -1 for a missing value (NAN) or a cell before the first sample (right-aligned: the newest
 * value sits in the last cell). Returns the number of cells written (= width). */
size_t view_spark_levels(const float *v, size_t n, double lo, double hi, int *levels, size_t width);
/* The glyph of a level: "▁".."█" (UTF-8) or " .:-=+*#" (ASCII); " " for -1. */
const char *view_spark_glyph(int level, bool unicode);
/* Writes a sparkline as text into buf (NUL-terminated, truncated to len). Returns cells. */
size_t view_spark_text(const float *v, size_t n, double lo, double hi, size_t width, bool unicode,
                       char *buf, size_t len);
/* The fixed scale of a series for one GPU: temperature 0..max(100, slowdown), power
 * 0..limit (or the history's maximum), utilization 0..100. */
void view_series_scale(const struct fleet_gpu *g, enum fleet_series s, double *lo, double *hi);

/* ---- thresholds: the colour class of a value */
enum view_level { VL_NONE = 0, VL_OK, VL_WARN, VL_CRIT, VL_DIM };
enum view_level view_temp_level(const struct fleet_gpu *g);
enum view_level view_power_level(const struct fleet_gpu *g);
enum view_level view_health_level(const struct fleet_gpu *g);

/* ---- sort and filter */
enum view_sort_key {
	VS_INDEX = 0, /* host, then index, then key: the fleet's own order */
	VS_MODEL,
	VS_TEMP,
	VS_POWER,
	VS_UTIL,
	VS_MEM,
	VS_HEALTH, /* worst first when descending: status, then score */
	VS_COUNT
};
const char *view_sort_name(enum view_sort_key k); /* "index", "temp", ... */
/* Whether a key sorts descending by default (hot, busy and sick GPUs first). */
bool view_sort_default_desc(enum view_sort_key k);

/* True when the GPU matches the filter: every space-separated word must occur
 * (case-insensitive) in its host, model, key, "gpuN", health status or action name, or its
 * workload's namespace, pod or container, except a word "host=NAME", which matches the host
 * NAME exactly ("host=-": the GPUs of no known host); an empty filter matches everything. */
bool view_filter_match(const struct fleet_gpu *g, const char *filter);

/* Fills order[0..n) with the indices into gpus of the rows that match filter, sorted by key
 * (descending when desc; ties by host, index, key); grouped by host first when group_hosts.
 * Returns the number of rows. */
size_t view_order(const struct fleet_gpu *gpus, size_t n, const char *filter,
                  enum view_sort_key key, bool desc, bool group_hosts, size_t *order);

/* ---- the fleet table's columns */
enum view_col {
	VC_INDEX = 0,
	VC_MODEL,
	VC_TEMP,
	VC_POWER,
	VC_UTIL,
	VC_MEM,
	VC_HEALTH,
	VC_WORKLOAD, /* the Kubernetes workload: only when the fleet has one (view_layout_workload)
	              */
	VC_SPARK_TEMP,
	VC_SPARK_POWER,
	VC_SPARK_UTIL,
	VC_COUNT
};
struct view_layout {
	int x[VC_COUNT];     /* start column, -1 when hidden */
	int width[VC_COUNT]; /* cells */
	int total;           /* cells used (<= the screen's width) */
};
/* Places the columns on a line of `cols` cells: fixed columns first, the model when there is
 * room, the three sparklines share what is left (each at least 4 cells, else hidden). */
void view_layout(int cols, struct view_layout *out);
/* The same with a workload column of up to `workload` cells (0: none) after the health: it
 * gets what it asks (at most VIEW_WORKLOAD_MAX) while the model keeps 9 cells and each
 * sparkline 5, else less down to 8 cells, else it is hidden. */
#define VIEW_WORKLOAD_MAX 32
void view_layout_workload(int cols, int workload, struct view_layout *out);
/* The workload of a GPU in at most width cells (display columns, by textcell under the locale's
 * charset; control characters and invalid UTF-8 as '?'): "namespace/pod" when it fits, else the
 * pod (cut to width at a character boundary); "" when the GPU has none. Returns buf. */
char *view_workload_text(const struct fleet_gpu *g, int width, char *buf, size_t len);
const char *view_col_title(enum view_col c);

/* ---- formatting (into buf, NUL-terminated; return buf) */
/* 1234567 -> "1.23M", 12345 -> "12.3k", 999 -> "999" */
char *view_fmt_count(double v, char *buf, size_t len);
/* seconds -> "0.4s", "12s", "3m05s", "2h03m", "4d02h"; "-" for a negative or NAN value */
char *view_fmt_age(double s, char *buf, size_t len);
/* The model without its vendor prefix: "NVIDIA A100-SXM4-80GB" -> "A100-SXM4-80GB". */
const char *view_model_short(const char *model);
/* MiB -> "812M", "61.2G" */
char *view_fmt_mib(double mib, char *buf, size_t len);

/* ---- decoding */
/* Meaning of an XID code (NVIDIA's catalog, as the health rules read it). */
const char *view_xid_meaning(unsigned code);
/* Clock event (throttle) reasons as words: "idle, SW power cap, HW slowdown"; "none" for 0. */
char *view_clock_reasons(uint64_t mask, char *buf, size_t len);

/* ---- the pipeline panel */
const char *view_part_name(enum pipeline_part p);
const char *view_state_name(enum part_state s);
/* The age of the newest successful scrape over all targets (now - last_success); -1 when none
 * has succeeded. */
double view_scrape_age(const struct pipeline_view *v);
/* The number of targets whose last attempt failed. */
size_t view_targets_down(const struct pipeline_view *v);

/* The consumer lag for the panel: the total and the partitions that lag, e.g.
 * "lag 12 [p1:5 p3:7]", "lag 0 [8 partitions]", "lag 40 [p0:3 p1:4 +6 more]" when they do not
 * fit in len; "lag -" when unknown. Returns buf. */
char *view_fmt_lag(const struct sink_stats *s, char *buf, size_t len);

/* Every event the pipeline lost, by reason: "no loss" or "LOST 12: 10 dropped (buffer full),
 * 2 forgotten by the in-process broker". Returns buf. */
char *view_fmt_losses(const struct pipeline_view *v, char *buf, size_t len);
/* The in-process broker's gate (pipeline.h): "" when it does not run, else e.g. "in-process
 * broker: HOLDING events (uncommitted 1850 events, 2.5 of 2.5 MiB in one partition), 1 hold;
 * memory bound 230400 events / 1024 MiB". Returns buf. */
char *view_fmt_gate(const struct pipeline_view *v, char *buf, size_t len);

/* Scrape rate per target, measured by the console from the targets' counters over a window
 * (the view carries totals). */
struct view_rates {
	size_t n;
	struct {
		char url[sizeof(((struct scrape_target_stats *)0)->url)];
		uint64_t count; /* ok + failed at t */
		double t;
		double rate; /* attempts per second over the last window; NAN before the first */
	} e[PIPELINE_MAX_TARGETS];
};
/* Takes the counters of v (at v->now); a target's rate is renewed once window_s has passed
 * since its last renewal. Targets that left the view are forgotten. */
void view_rates_update(struct view_rates *r, const struct pipeline_view *v, double window_s);
/* The rate of a target; NAN when not known yet. */
double view_rate_of(const struct view_rates *r, const char *url);

#endif
