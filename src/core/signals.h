/* signals: SIGINT/SIGTERM ask for a clean stop, SIGHUP for a reload; handlers only set flags. */
#ifndef GPUHEALTH_SIGNALS_H
#define GPUHEALTH_SIGNALS_H

#include <stdbool.h>

/* Installs the handlers (and ignores SIGPIPE). */
void signals_install(void);
bool signals_stop_requested(void);
/* Returns true once per SIGHUP received. */
bool signals_take_hup(void);
/* Sleeps up to max_s seconds, returning early when SIGINT/SIGTERM/SIGHUP arrives (after
 * signals_install(); before it, or without a pipe, the whole time). Then read the flags. */
void signals_wait(double max_s);
/* Which signal asked to stop (0 if none), for the log. */
int signals_stop_signal(void);

#endif
