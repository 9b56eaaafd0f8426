/*
 * waiter: a service's own background thread that sleeps between rounds (a period, a retry's
 * backoff, or until there is work) and is woken early to stop. The lock is the owner's too:
 * it guards the stop flag and whatever the owner puts under it (a queue, a request), and the
 * owner wakes the thread (waiter_wake_locked) when it adds work. The condition runs on the
 * monotonic clock, so a wall-clock step neither stretches nor cuts a sleep.
 *
 *   waiter_init            (owner, before the thread)
 *   waiter_start(fn, arg)  (fn: lock; while (!w.stop) { ...; waiter_sleep_locked(...) }; unlock)
 *   waiter_stop            (sets stop, wakes, joins; a no-op when never started)
 *   waiter_destroy         (waiter_stop, then the lock and the condition)
 */
#ifndef GPUHEALTH_WAITER_H
#define GPUHEALTH_WAITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct waiter {
	pthread_mutex_t lock; /* guards stop, and the owner's shared state */
	pthread_cond_t cond;  /* CLOCK_MONOTONIC */
	pthread_t thread;
	bool stop;    /* under lock: set by waiter_stop */
	bool started; /* the owner's: between waiter_start and waiter_stop */
};

/* 0 or -errno (nothing to destroy then). */
int waiter_init(struct waiter *w);
/* A zeroed object of size bytes whose struct waiter at offset (offsetof) is initialised: the
 * owner of a waiter made in one step. NULL when out of memory (nothing to free then). */
void *waiter_calloc(size_t size, size_t offset);
/* Starts fn(arg). 0 or -errno (nothing started). */
int waiter_start(struct waiter *w, void *(*fn)(void *), void *arg);
/* With the lock held: sleeps until woken, stopping, or s seconds passed (s <= 0 or NaN: not
 * at all). Returns true while not stopping. A wake-up may come early (new work, or spurious):
 * the caller looks at its state again. */
bool waiter_sleep_locked(struct waiter *w, double s);
/* With the lock held: sleeps until woken (new work) or stopping, however long. Returns true
 * while not stopping. */
bool waiter_wait_locked(struct waiter *w);
/* With the lock held: sleeps until stopping or the time_mono() instant `until`, through any
 * early wake-up. Returns true while not stopping. */
bool waiter_sleep_until_locked(struct waiter *w, double until);
/* With the lock held: wakes the thread (new work). */
void waiter_wake_locked(struct waiter *w);
/* Tells the thread to stop, wakes it and waits for it to end; a no-op when not started. */
void waiter_stop(struct waiter *w);
/* waiter_stop, then frees the lock and the condition. */
void waiter_destroy(struct waiter *w);

#endif
