/*
 * tui: the console mode's runner. Creates and starts the embedded pipeline (pipeline.h),
 * runs the console over it, stops everything in order on q/F10/SIGINT/SIGTERM, and on SIGHUP
 * or EOF/EIO on the terminal (its terminal went away: the console's SIGHUP is no reload). With
 * GPUHEALTH_UI_FAKE=1 in the environment it runs the console over the fake source
 * (view/fake.h) instead: no simulator, broker or database (tests, benchmark, development).
 */
#ifndef GPUHEALTH_TUI_H
#define GPUHEALTH_TUI_H

#include "core/config.h"

/* Returns the exit status: 0 after a clean stop, 129 (128 + SIGHUP) after a clean stop because
 * the terminal hung up, 1 on a runtime failure, 2 when there is no terminal. */
int tui_run(struct config *cfg);

#endif
