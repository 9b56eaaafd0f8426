/*
 * console_detail: the console's GPU detail screen (Enter; private to the console's files in
 * ui/; struct console is console_int.h's): identity and workload, health with the component
 * scores, the expected cost of each action, the charts (the history of fleetview.c when it has
 * one, else the live ring), ECC, retired pages, remapped rows, links and clocks, the last XID and
 * its meaning, throttle reasons, a local GPU's processes (through the view_source), the reasons
 * with their remedies and the recent alerts.
 */
#ifndef GPUHEALTH_CONSOLE_DETAIL_H
#define GPUHEALTH_CONSOLE_DETAIL_H

#include "fleet/fleet.h"

struct console;

/* The GPU the detail shows: the selected one of the table, or a read-only viewer's GPU read on
 * its own (c->dgpu); NULL when there is none. Borrowed from the console's copies. */
const struct fleet_gpu *console_detail_gpu(const struct console *c);

/* Draws the detail from line 1 down to the key bar. */
void console_detail_draw(struct console *c);

#endif
