#include "core/worker.h"

#include <stdlib.h>
#include <time.h>

#include "core/timeutil.h"

int worker_start(struct worker *w, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(&w->thread, NULL, fn, arg);
	if (rc)
		return -rc;
	w->started = true;
	return 0;
}

void worker_stop(struct worker *w, bool now)
{
	if (now)
		atomic_store(&w->stop_now, true);
	if (!w->started)
		return;
	atomic_store(&w->stop, true);
	pthread_join(w->thread, NULL);
	w->started = false;
}

bool worker_stopping(struct worker *w)
{
	return atomic_load(&w->stop);
}

bool worker_give_up(struct worker *w, double deadline)
{
	return atomic_load(&w->stop) && (time_mono() >= deadline || atomic_load(&w->stop_now));
}

bool worker_backoff(struct worker *w, int attempt, double min_s, double max_s, double deadline,
                    void (*poll)(void *ctx), void *ctx)
{
	double d = time_backoff_s(attempt, min_s, max_s, (double)rand() / RAND_MAX);
	double until = time_mono() + d;
	while (time_mono() < until) {
		if (worker_give_up(w, deadline))
			return false;
		if (poll)
			poll(ctx);
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return !worker_give_up(w, deadline);
}
