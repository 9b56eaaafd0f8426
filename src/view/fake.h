/*
 * fake: a stand-in for the embedded pipeline that the console's tests, its benchmark and
 * development use (GPUHEALTH_UI_FAKE=1). A thread moves N simulated GPUs and the pipeline's
 * counters every step; the console reads them through view_source, as it reads the real
 * pipeline. Some GPUs carry health reasons, XIDs, throttle reasons and alerts, one part of the
 * pipeline reports an error, so every screen has something to show. No I/O.
 */
#ifndef GPUHEALTH_VIEW_FAKE_H
#define GPUHEALTH_VIEW_FAKE_H

#include <stddef.h>

#include "view/view.h"

struct fake_opts {
	size_t gpus;     /* 1..4096 */
	size_t per_host; /* GPUs per host (0: all on one host) */
	double step_s;   /* real seconds between updates (> 0) */
};

struct fake;

/* Creates the fake with a first sample of every GPU and starts its thread. Returns 0, -EINVAL
 * or -ENOMEM (or -errno of pthread_create). *out is owned by the caller (fake_destroy). */
int fake_create(struct fake **out, const struct fake_opts *opts);
/* Advances the simulation by one step at once (tests; the thread does it on its own). */
void fake_step(struct fake *f);
/* The source the console reads. Valid until fake_destroy. */
struct view_source fake_source(struct fake *f);
/* Stops the thread and frees. NULL is fine. */
void fake_destroy(struct fake *f);

#endif
