/* The signal flags: SIGHUP is a reload until signals_hup_stops() (the console), then a stop
 * that signals_stop_signal() reports as SIGHUP; the first stop's signal stays; the wake-up
 * descriptor turns readable. One process, one set of flags: the tests run in this order. */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/signals.h"

static bool readable(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void test_hup_is_a_reload_by_default(void **state)
{
	(void)state;
	signals_install();
	assert_true(signals_wake_fd() >= 0);
	raise(SIGHUP);
	assert_true(readable(signals_wake_fd()));
	signals_wait(0.01); /* drains the pipe */
	assert_false(readable(signals_wake_fd()));
	assert_true(signals_take_hup());
	assert_false(signals_take_hup());
	assert_false(signals_stop_requested());
	assert_int_equal(signals_stop_signal(), 0);
}

static void test_hup_stops_the_console(void **state)
{
	(void)state;
	signals_hup_stops();
	raise(SIGHUP);
	assert_true(signals_stop_requested());
	assert_int_equal(signals_stop_signal(), SIGHUP);
	assert_false(signals_take_hup());
	assert_true(readable(signals_wake_fd()));
}

static void test_first_stop_stays(void **state)
{
	(void)state;
	raise(SIGTERM); /* after the hangup: still a hangup */
	signals_request_stop(SIGINT);
	assert_int_equal(signals_stop_signal(), SIGHUP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hup_is_a_reload_by_default),
	    cmocka_unit_test(test_hup_stops_the_console),
	    cmocka_unit_test(test_first_stop_stays),
	};
	return cmocka_run_group_tests_name("signals", tests, NULL, NULL);
}
