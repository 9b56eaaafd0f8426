/*
 * console: the interactive ncurses screens (fleet table, GPU detail, pipeline, help). Only
 * ui/ includes ncurses: console.c runs the loop, the keys, the title and the key bar; the
 * screens are console_table.c, console_detail.c and console_pipeline.c over cdraw.c's
 * primitives (sharing the private console_int.h), the fleet screens fleetview.c. It draws
 * copies of the data it takes through a view_source (view.h) once per refresh; it never holds a
 * service's lock while it draws.
 */
#ifndef GPUHEALTH_CONSOLE_H
#define GPUHEALTH_CONSOLE_H

#include <stdbool.h>

#include "view/view.h"

struct console_opts {
	double refresh_s;  /* time between two copies of the data (0.05..60) */
	bool unicode;      /* allowed (-U turns it off); used only when the locale is UTF-8 */
	bool color;        /* allowed (--no-color / NO_COLOR turn it off) */
	bool mouse;        /* click to select (twice: detail), wheel to scroll, click the key bar */
	double duration_s; /* quit after this long (0: never) */
	const char *stats_path;  /* write the drawing's CPU time here on exit (NULL: don't) */
	const char *source_name; /* shown in the title, e.g. "fake" (NULL: nothing) */
	bool utc;                /* times in UTC (--utc), else local time */
};

/* Runs the console until q/F10, SIGINT/SIGTERM (signals_install() must be called first;
 * SIGHUP too after signals_hup_stops()), the duration, or its terminal going away (hangup,
 * EOF, EIO), which it records as signals_request_stop(SIGHUP). Restores the terminal. The caller
 * has called setlocale(LC_CTYPE, "") before starting any thread (the console reads the locale's
 * character set). Returns 0, or -errno when the terminal cannot be set up (message on stderr). */
int console_run(const struct view_source *src, const struct console_opts *opts);

#endif
