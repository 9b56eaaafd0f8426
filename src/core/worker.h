/* worker: the one thread of a consuming service (the sink, the scorer) and how it is told to
 * stop: "stop" finishes what is held (the open batch written, up to a deadline), "stop now"
 * gives up at once what the database does not take (Kafka redelivers it). */
#ifndef GPUHEALTH_WORKER_H
#define GPUHEALTH_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct worker {
	pthread_t thread;
	bool started;         /* the owner's: between worker_start and worker_stop */
	atomic_bool stop;     /* set by worker_stop, or by the thread itself (a fatal error) */
	atomic_bool stop_now; /* with stop: give up a batch the database does not take at once */
};

/* Starts fn(arg) on w's thread. 0 or -errno (nothing started). */
int worker_start(struct worker *w, void *(*fn)(void *), void *arg);
/* Asks the thread to stop (now: give up what is held) and waits for it; a no-op for a worker
 * never started, except that "now" is remembered. */
void worker_stop(struct worker *w, bool now);
/* Whether the thread was asked to stop. */
bool worker_stopping(struct worker *w);
/* Whether to give up the work at hand: stopping and past deadline (a time_mono() value), or
 * stopping now. */
bool worker_give_up(struct worker *w, double deadline);
/*
 * Sleeps the attempt's backoff (time_backoff_s between min_s and max_s, with jitter) in 50 ms
 * slices, calling poll(ctx) in each (a producer's delivery reports; poll may be NULL). Returns
 * false as soon as worker_give_up(w, deadline), else true when the time is up.
 */
bool worker_backoff(struct worker *w, int attempt, double min_s, double max_s, double deadline,
                    void (*poll)(void *ctx), void *ctx);

#endif
