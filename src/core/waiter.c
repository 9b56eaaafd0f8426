#include "core/waiter.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "core/timeutil.h"

void *waiter_calloc(size_t size, size_t offset)
{
	char *p = calloc(1, size);
	if (p && waiter_init((struct waiter *)(p + offset))) {
		free(p);
		p = NULL;
	}
	return p;
}

int waiter_init(struct waiter *w)
{
	w->stop = false;
	w->started = false;
	int rc = pthread_mutex_init(&w->lock, NULL);
	if (rc)
		return -rc;
	pthread_condattr_t ca;
	rc = pthread_condattr_init(&ca);
	if (!rc) {
		rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (!rc)
			rc = pthread_cond_init(&w->cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc) {
		pthread_mutex_destroy(&w->lock);
		return -rc;
	}
	return 0;
}

int waiter_start(struct waiter *w, void *(*fn)(void *), void *arg)
{
	w->stop = false; /* no thread yet: nobody else reads it */
	int rc = pthread_create(&w->thread, NULL, fn, arg);
	if (rc)
		return -rc;
	w->started = true;
	return 0;
}

/* The monotonic instant `until` (time_mono() seconds) as a timespec for the condition. */
static struct timespec abs_time(double until)
{
	if (!(until > 0)) /* (NaN too) */
		until = 0;
	double whole = floor(until);
	struct timespec ts = {.tv_sec = (time_t)whole, .tv_nsec = (long)((until - whole) * 1e9)};
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

bool waiter_sleep_locked(struct waiter *w, double s)
{
	if (!w->stop && s > 0) { /* (false for NaN) */
		struct timespec ts = abs_time(time_mono() + s);
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
	}
	return !w->stop;
}

bool waiter_wait_locked(struct waiter *w)
{
	if (!w->stop)
		pthread_cond_wait(&w->cond, &w->lock);
	return !w->stop;
}

bool waiter_sleep_until_locked(struct waiter *w, double until)
{
	struct timespec ts = abs_time(until);
	while (!w->stop && time_mono() < until)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	return !w->stop;
}

void waiter_wake_locked(struct waiter *w)
{
	pthread_cond_broadcast(&w->cond);
}

void waiter_stop(struct waiter *w)
{
	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->started = false;
}

void waiter_destroy(struct waiter *w)
{
	waiter_stop(w);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}
