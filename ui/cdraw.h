/*
 * cdraw: the console's drawing primitives over ncurses (private to the console's files in ui/,
 * console*.c): text at a place clipped to a width in cells and to the screen, made safe for the
 * terminal and measured by textcell (core/textcell.h), or cut with a mark; the attribute of a
 * colour level; sparklines and bar charts of a GPU's history ring (eighth blocks, or the ASCII
 * ramp). Whether colour and Unicode are used is the console's (struct console, console_int.h).
 * They draw into stdscr; the caller refreshes.
 */
#ifndef GPUHEALTH_CDRAW_H
#define GPUHEALTH_CDRAW_H

#include <ncurses.h>
#include <stdbool.h>

#include "fleet/fleet.h"
#include "view/view.h"

struct console;

/* The attribute of a level: its colour pair (CP_*, console_int.h), or bold, underline or dim
 * without colour. */
attr_t cdraw_level_attr(const struct console *c, enum view_level l);

/* Writes text (ASCII) at y, x, clipped to w cells and to the screen; pads with spaces when
 * pad. */
void cdraw_put(int y, int x, int w, attr_t a, bool pad, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* text at (y, x) in w cells, made safe and measured by textcell; a longer one is cut, its last
 * cell a mark: '\u2026' in UTF-8, else '>'. */
void cdraw_put_cut(const struct console *c, int y, int x, int w, attr_t a, const char *text);

/* Cells of a text (as cdraw_put_cut counts them). */
int cdraw_text_cells(const char *text);

/* The sparkline of series s of g in w cells at (y, x). */
void cdraw_spark(const struct console *c, int y, int x, int w, const struct fleet_gpu *g,
                 enum fleet_series s, attr_t a);

/* A bar chart of a series h rows high and w cells wide at (y, x): the newest sample on the
 * right, eighth blocks for the top of each bar (ASCII: '#' and the ramp). */
void cdraw_chart(const struct console *c, int y, int x, int w, int h, const struct fleet_gpu *g,
                 enum fleet_series s, attr_t a);

#endif
