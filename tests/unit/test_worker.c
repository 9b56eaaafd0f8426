/* worker: the sink's and the scorer's thread and stop flags: start and stop, "stop now"
 * remembered, the give-up rule, and a backoff that ends early when told to stop now. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "core/worker.h"

struct ctx {
	struct worker w;
	atomic_int loops;
	atomic_bool saw_now;
};

static void *run(void *arg)
{
	struct ctx *c = arg;
	while (!worker_stopping(&c->w)) {
		atomic_fetch_add(&c->loops, 1);
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
	atomic_store(&c->saw_now, atomic_load(&c->w.stop_now));
	return NULL;
}

static void start_and_stop(void **state)
{
	(void)state;
	static struct ctx c;
	assert_int_equal(worker_start(&c.w, run, &c), 0);
	assert_true(c.w.started);
	while (atomic_load(&c.loops) < 3)
		;
	worker_stop(&c.w, false);
	assert_false(c.w.started);
	assert_true(worker_stopping(&c.w));
	assert_false(atomic_load(&c.saw_now)); /* a clean stop */
	worker_stop(&c.w, false);              /* twice: a no-op */
}

static void stop_now_is_seen_by_the_thread(void **state)
{
	(void)state;
	static struct ctx c;
	assert_int_equal(worker_start(&c.w, run, &c), 0);
	worker_stop(&c.w, true);
	assert_true(atomic_load(&c.saw_now));
}

static void give_up_rule(void **state)
{
	(void)state;
	struct worker w = {0};
	double now = time_mono();
	assert_false(worker_give_up(&w, now - 1)); /* not stopping: never */
	atomic_store(&w.stop, true);
	assert_false(worker_give_up(&w, now + 60)); /* stopping, before the deadline */
	assert_true(worker_give_up(&w, now - 1));   /* stopping, past it */
	atomic_store(&w.stop_now, true);
	assert_true(worker_give_up(&w, now + 60)); /* stopping now: at once */
	/* "now" on a worker never started is remembered for when it is */
	struct worker v = {0};
	worker_stop(&v, true);
	assert_true(atomic_load(&v.stop_now));
	assert_false(worker_stopping(&v));
}

static void count(void *ctx)
{
	(*(int *)ctx)++;
}

static void backoff_sleeps_and_ends_early(void **state)
{
	(void)state;
	struct worker w = {0};
	int polls = 0;
	double t0 = time_mono();
	assert_true(worker_backoff(&w, 0, 0.2, 0.2, 0, count, &polls));
	double slept = time_mono() - t0;
	assert_true(slept >= 0.09); /* at least the jittered minimum */
	assert_true(polls >= 1);
	/* stopping with the deadline passed: false at once, no full sleep */
	atomic_store(&w.stop, true);
	t0 = time_mono();
	assert_false(worker_backoff(&w, 5, 10, 10, 0, NULL, NULL));
	assert_true(time_mono() - t0 < 1.0);
	/* stopping but before the deadline: sleeps and goes on */
	assert_true(worker_backoff(&w, 0, 0.1, 0.1, time_mono() + 60, NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(start_and_stop),
	    cmocka_unit_test(stop_now_is_seen_by_the_thread),
	    cmocka_unit_test(give_up_rule),
	    cmocka_unit_test(backoff_sleeps_and_ends_early),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
