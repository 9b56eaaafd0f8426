/* The API's time parameters: RFC 3339 (with a '+' that arrived as a blank) and Unix seconds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/api.h"

static void test_times(void **state)
{
	double t = 0;
	assert_int_equal(api_parse_time("1764331200", &t), 0);
	assert_true(t == 1764331200.0);
	assert_int_equal(api_parse_time("1764331200.25", &t), 0);
	assert_true(t == 1764331200.25);
	assert_int_equal(api_parse_time("2025-11-28T12:00:00Z", &t), 0);
	assert_true(t == 1764331200.0);
	assert_int_equal(api_parse_time("2025-11-28T13:00:00+01:00", &t), 0);
	assert_true(t == 1764331200.0);
	/* "+01:00" sent unescaped in a query string reads as " 01:00" */
	assert_int_equal(api_parse_time("2025-11-28T13:00:00 01:00", &t), 0);
	assert_true(t == 1764331200.0);
	assert_int_equal(api_parse_time("2025-11-28T12:00:00.500Z", &t), 0);
	assert_true(fabs(t - 1764331200.5) < 1e-6);

	assert_int_not_equal(api_parse_time("", &t), 0);
	assert_int_not_equal(api_parse_time(NULL, &t), 0);
	assert_int_not_equal(api_parse_time("yesterday", &t), 0);
	assert_int_not_equal(api_parse_time("1.2.3", &t), 0);
	assert_int_not_equal(api_parse_time("-5", &t), 0);
	assert_int_not_equal(api_parse_time("2025-13-01T00:00:00Z", &t), 0);
	assert_int_not_equal(api_parse_time("2025-11-28", &t), 0);
	char longtext[200];
	for (size_t i = 0; i < sizeof(longtext) - 1; i++)
		longtext[i] = 'x';
	longtext[sizeof(longtext) - 1] = '\0';
	assert_int_not_equal(api_parse_time(longtext, &t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_times),
	};
	return cmocka_run_group_tests_name("api parameters", tests, NULL, NULL);
}
