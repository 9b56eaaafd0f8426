/* signals: SIGINT/SIGTERM ask for a clean stop, SIGHUP for a reload; handlers only set flags. */
#ifndef GPUHEALTH_SIGNALS_H
#define GPUHEALTH_SIGNALS_H

#include <stdbool.h>

/* Installs the handlers (and ignores SIGPIPE). */
void signals_install(void);
bool signals_stop_requested(void);
/* Returns true once per SIGHUP received. */
bool signals_take_hup(void);
/* Which signal asked to stop (0 if none), for the log. */
int signals_stop_signal(void);

#endif
