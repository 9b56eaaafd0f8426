/*
 * console_table: the console's fleet table (private to the console's files in ui/; struct
 * console is console_int.h's): the GPUs of the last refresh in the chosen order, one row each
 * (host when not grouped, index, model, temperature, power, utilization, memory, health,
 * workload, sparklines; the columns fitted to the width by view_layout_workload), host headings
 * when grouped, the selection kept in view, the screen row of each GPU noted for the mouse.
 * A read-only viewer's table (c->dbt) is the page its database reader holds (viewdb_create_table,
 * copied by the console each frame): drawing it asks the reader for the page around what is
 * shown, a screen above and one below.
 */
#ifndef GPUHEALTH_CONSOLE_TABLE_H
#define GPUHEALTH_CONSOLE_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "fleet/fleet.h"

struct console;

/* Draws the table's heading at y0 and its rows below, up to y1 (exclusive). */
void console_table_draw(struct console *c, int y0, int y1);

/* A read-only viewer: whether the page holds the order and filter the user chose now. */
bool console_table_page_valid(const struct console *c);
/* A read-only viewer: the GPU at position pos of the order, when the page holds it (borrowed
 * from c->gpus until the next copy), else NULL. */
const struct fleet_gpu *console_table_row(const struct console *c, size_t pos);

#endif
