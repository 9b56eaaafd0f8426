/*
 * fleetview: the console's fleet screens of issue #25, drawn with ncurses from copies:
 *   - the fleet overview (o, F7): cluster -> datacenter -> rack -> host, one line per group
 *   - the alerts screen (a, F8): open alerts, worst and newest first
 *   - the GPU detail's history (keys 1-5, [ and ]): charts over a window from the database
 * The data comes from viewdb (src/viewdb): its thread queries the database; this module only
 * tells it what is on screen and draws the copy it takes. Without a database the overview and
 * the alerts come from the live fleet, and the history stays the live ring.
 */
#ifndef GPUHEALTH_FLEETVIEW_H
#define GPUHEALTH_FLEETVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "fleet/fleet.h"
#include "viewdb/viewdb.h"

struct fv_env {
	bool color, unicode, utc;
	struct viewdb *db;      /* the fleet database (--db): overview, alerts; NULL: none */
	struct viewdb *hist_db; /* the history's: --db's, or the private PostgreSQL's; NULL: none */
	const struct fleet_gpu *gpus;
	size_t ngpus;
	double now;
	const char *filter;
};

enum fv_screen { FV_OVERVIEW = 0, FV_ALERTS, FV_HISTORY, FV_OTHER };

enum fv_action {
	FV_NONE = 0,
	FV_TAKEN,  /* the key was used */
	FV_BACK,   /* Esc at the top: back to the fleet table */
	FV_DETAIL, /* Enter on an alert: the detail of the GPU whose key is in out */
	FV_HOST,   /* Enter on a host: the fleet table filtered to the host named in out */
};

struct fv;
struct fv *fv_create(void); /* NULL: out of memory */
void fv_destroy(struct fv *f);

/* Once per refresh: takes the copies the screen draws (and tells viewdb what it shows). */
void fv_refresh(struct fv *f, const struct fv_env *e, enum fv_screen s, const char *gpu_key,
                int chart_width);

void fv_draw_overview(struct fv *f, const struct fv_env *e, int y0, int y1);
void fv_draw_alerts(struct fv *f, const struct fv_env *e, int y0, int y1);
/* The history charts of a GPU in rows [y0, y0 + rows); false when the live ring is shown
 * instead (the 10-minute window now, or no database). */
bool fv_draw_history(struct fv *f, const struct fv_env *e, int y0, int rows);
/* "history 1 h, gpu_metrics (raw), to 19:06" or "live ring" or the reason there is none. */
void fv_history_label(const struct fv *f, const struct fv_env *e, char *buf, size_t len);

/* Whether the screen of the last fv_refresh waits for the database's first answer to what it
 * asks (the console then draws again soon, not a whole refresh period later). */
bool fv_waiting(const struct fv *f);

/* A key on the overview or the alerts screen. */
enum fv_action fv_key(struct fv *f, const struct fv_env *e, enum fv_screen s, int ch, char *out,
                      size_t outlen);
/* A key of the detail's history (1-5, [, ]); true when taken. */
bool fv_history_key(struct fv *f, const struct fv_env *e, int ch);

#endif
