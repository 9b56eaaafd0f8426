/* The API's time parameters: RFC 3339 (with a '+' that arrived as a blank) and Unix seconds,
 * 1970 to 9999; its UTF-8 check of every parameter and path; the status of a failed query. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "api/api.h"
#include "core/utf8.h"

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

	/* out of what RFC 3339 and the database's to_timestamp() take: refused up front */
	assert_int_equal(api_parse_time("253402300799", &t), 0);
	assert_int_equal(api_parse_time("9999-12-31T23:59:59Z", &t), 0);
	assert_int_not_equal(api_parse_time("253402300800", &t), 0);
	assert_int_not_equal(api_parse_time("100000000000000000000", &t), 0);
	assert_int_not_equal(api_parse_time("99999999999999", &t), 0);
	assert_int_not_equal(api_parse_time("0001-01-01T00:00:00Z", &t), 0);
	assert_int_not_equal(api_parse_time("1969-12-31T23:59:59Z", &t), 0);
	assert_int_equal(api_parse_time("1970-01-01T00:00:00Z", &t), 0);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(utf8_valid(""));
	assert_true(utf8_valid("node-a"));
	assert_true(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	assert_true(utf8_valid("\xf4\x8f\xbf\xbf"));      /* U+10FFFF */
	assert_false(utf8_valid("\xff"));                 /* never in UTF-8 */
	assert_false(utf8_valid("a\x80"));                /* a lone continuation */
	assert_false(utf8_valid("\xe2\x82"));             /* cut short */
	assert_false(utf8_valid("\xe2\x82x"));            /* cut by ASCII */
	assert_false(utf8_valid("\xc0\xaf"));             /* overlong '/' */
	assert_false(utf8_valid("\xe0\x80\xaf"));         /* overlong '/' */
	assert_false(utf8_valid("\xed\xa0\x80"));         /* a surrogate */
	assert_false(utf8_valid("\xf4\x90\x80\x80"));     /* past U+10FFFF */
	assert_false(utf8_valid("\xf8\x88\x80\x80\x80")); /* 5 bytes */
}

static void test_sqlstate(void **state)
{
	(void)state;
	assert_int_equal(api_sqlstate_status(NULL), 503);    /* no result: the connection */
	assert_int_equal(api_sqlstate_status("08006"), 503); /* connection failure */
	assert_int_equal(api_sqlstate_status("08001"), 503);
	assert_int_equal(api_sqlstate_status("57P01"), 503); /* admin shutdown */
	assert_int_equal(api_sqlstate_status("57P03"), 503); /* cannot connect now */
	assert_int_equal(api_sqlstate_status("53300"), 503); /* too many connections */
	assert_int_equal(api_sqlstate_status("22008"), 400); /* datetime field overflow */
	assert_int_equal(api_sqlstate_status("22021"), 400); /* bad byte sequence */
	assert_int_equal(api_sqlstate_status("22P02"), 400); /* invalid text representation */
	assert_int_equal(api_sqlstate_status("42501"), 500); /* insufficient privilege */
	assert_int_equal(api_sqlstate_status("42P01"), 500); /* undefined table */
	assert_int_equal(api_sqlstate_status("57014"), 500); /* statement timeout */
	assert_int_equal(api_sqlstate_status("53100"), 500); /* disk full */
	assert_int_equal(api_sqlstate_status("XX000"), 500); /* internal error */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_times),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_sqlstate),
	};
	return cmocka_run_group_tests_name("api parameters", tests, NULL, NULL);
}
