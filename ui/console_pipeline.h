/*
 * console_pipeline: the console's views of the pipeline (private to the console's files in ui/;
 * struct console is console_int.h's), from the copy of pipeline_view the console takes each
 * refresh: the 4-line panel above the fleet table (scrape, Kafka, database, the first error)
 * and the pipeline screen (p, F2: each part's state and last error, the scrape targets, the
 * producer, the sink's lag per partition, the database and the scorer, the fleet), scrolled by
 * c->scroll.
 */
#ifndef GPUHEALTH_CONSOLE_PIPELINE_H
#define GPUHEALTH_CONSOLE_PIPELINE_H

struct console;

/* The panel in lines y .. y + 3. */
void console_pipeline_panel(struct console *c, int y);
/* The pipeline screen from line 1 down to the key bar; clamps c->scroll to its content. */
void console_pipeline_screen(struct console *c);

#endif
