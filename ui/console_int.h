/*
 * console_int: private to the console's files in ui/ (console.c, console_table.c,
 * console_detail.c, console_pipeline.c, cdraw.c); nothing else includes it. struct console: the
 * options, the copies of the last refresh (the pipeline's view, the GPUs; owned, reused from
 * refresh to refresh), what the user chose (screen, order, filter, selection, scroll), where
 * things were drawn (for the mouse), and a read-only viewer's database table. One thread, the
 * console's, uses it.
 */
#ifndef GPUHEALTH_CONSOLE_INT_H
#define GPUHEALTH_CONSOLE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "console.h"
#include "fleetview.h"
#include "health/sample.h"
#include "view/view.h"
#include "viewdb/viewdb.h"

/* SCR_OVERVIEW and SCR_ALERTS are drawn by fleetview.c (issue #25) */
enum ui_screen { SCR_MAIN = 0, SCR_DETAIL, SCR_PIPELINE, SCR_HELP, SCR_OVERVIEW, SCR_ALERTS };

/* colour pairs */
enum { CP_OK = 1, CP_WARN, CP_CRIT, CP_HEAD, CP_TITLE, CP_KEY, CP_KEYLABEL, CP_GROUP, CP_DIM };

#define FILTER_MAX VIEWDB_FILTER_MAX

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
	int host_w;             /* the ungrouped table's host column (cells; 0: none) */
	struct fleet_gpu *dgpu; /* the detail's GPU (viewdb_want_gpu) */
	struct console_db_copies *dbc; /* owns what ti and dgpu point at (one allocation) */
	bool have_dgpu;
	struct viewdb_status gst;
	/* measurement */
	double draw_cpu_s;
	unsigned long frames;
};

#endif
