/* signals: SIGINT/SIGTERM ask for a clean stop, SIGHUP for a reload (or, in the console, for a
 * stop: its terminal hung up); handlers only set flags. */
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
/* Which signal asked to stop first (0 if none): for the log, and the console's exit status. */
int signals_stop_signal(void);

/* From now on SIGHUP asks for a stop like SIGTERM (signals_stop_signal() then says SIGHUP)
 * instead of a reload: the console, whose SIGHUP means that its terminal went away. The
 * commands that reload on SIGHUP (--daemon, collector) never call it. */
void signals_hup_stops(void);
/* A stop as if signal sig had arrived (first one wins), from any thread: the console when it
 * finds its terminal gone (EOF/EIO) without a SIGHUP. */
void signals_request_stop(int sig);
/* A descriptor that turns readable when a signal above arrives (after signals_install(); -1
 * before, or without a pipe): poll it next to other descriptors, then read the flags. Only
 * signals_wait() reads from it. */
int signals_wake_fd(void);

#endif
