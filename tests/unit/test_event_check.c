/* event_check: one validator for the sink and the scorer (#19 item 2): the same events refused
 * with the same reasons; the time window is this host's clock; the dead-letter shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/event_check.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "health/sample.h"
#include "sink/event_row.h"

#define EV(time, metrics)                                                                          \
	"{\"schema_version\":1,\"time\":\"" time "\",\"hostname\":\"n1\",\"gpu\":{\"index\":0,"    \
	"\"uuid\":\"GPU-1\"},\"metrics\":{" metrics "}}"

/* a good event with more top-level members */
#define EVX(members) EV("2026-11-28T12:00:00.000Z", "\"gpu_temp\":60}," members ",\"x\":{")

static const char *const events[] = {
    EV("2026-11-28T12:00:00.000Z", "\"gpu_temp\":60"),         /* good */
    EV("2026-11-28T12:04:59.000Z", "\"gpu_temp\":60"),         /* good: within skew */
    EV("9999-12-31T23:59:59.000Z", "\"gpu_temp\":60"),         /* far future */
    EV("2026-11-28T12:05:01.000Z", "\"gpu_temp\":60"),         /* past the skew */
    EV("1900-01-01T00:00:00.000Z", "\"gpu_temp\":60"),         /* before retention */
    EV("2026-11-28T12:00:00.000Z", "\"gpu_util\":100.0001"),   /* out of range */
    EV("2026-11-28T12:00:00.000Z", "\"ecc_dbe_volatile\":-1"), /* negative counter */
    EV("2026-11-28T12:00:00.000Z", "\"gpu_temp\":\"hot\""),    /* not a number */
    EV("2026-11-28T1:00:00.000Z", "\"gpu_temp\":60"),          /* not RFC 3339 */
    "{\"schema_version\":2}",
    "[1,2]",
    "{\"schema_version\":1,\"schema_version\":1}",
    "not json",
    /* labels and workload (event-v1, added); the good ones last (NGOOD_TAIL) */
    EVX("\"labels\":{\"team\":1}"),
    EVX("\"workload\":\"ns/pod\""),
    EVX("\"workload\":{\"pod\":[]}"),
    EVX("\"workload\":{\"pod\":\"a\",\"pod\":\"b\"}"),
    EVX("\"workload\":null"),
    EVX("\"labels\":{\"team\":\"vision\"},\"workload\":{\"namespace\":\"training\",\"pod\":"
        "\"llm-7b-worker-3\",\"container\":\"trainer\"}"),
};
#define NGOOD_TAIL 2 /* the good events at the end of events[] */

static void test_sink_and_scorer_agree(void **state)
{
	(void)state;
	double now;
	assert_int_equal(time_parse_rfc3339("2026-11-28T12:00:00Z", &now), 0);
	struct event_row_opts ro = {.now = now, .max_age_s = 7 * 86400, .max_future_s = 300};
	struct event_check_opts co = {.now = now, .max_age_s = 7 * 86400, .max_skew_s = 300};
	int refused = 0;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		const char *ev = events[i];
		struct strbuf rows, ident;
		strbuf_init(&rows, 0);
		strbuf_init(&ident, 0);
		struct event_row_info info;
		char r1[256] = "", r2[256] = "";
		int a = event_row_append(ev, strlen(ev), &ro, &rows, &ident, &info, r1, sizeof(r1));
		struct health_sample hs;
		int b = health_sample_parse_checked(ev, strlen(ev), &co, &hs, r2, sizeof(r2));
		if (a != b)
			fail_msg("event %zu: sink %d, scorer %d (%s | %s)", i, a, b, r1, r2);
		if (a) {
			refused++;
			assert_string_equal(r1, r2);
		}
		strbuf_free(&rows);
		strbuf_free(&ident);
	}
	assert_int_equal(refused, (int)(sizeof(events) / sizeof(events[0])) - 2 - NGOOD_TAIL);
}

static void test_far_future_reason(void **state)
{
	(void)state;
	double now, t;
	assert_int_equal(time_parse_rfc3339("2026-11-28T12:00:00Z", &now), 0);
	struct event_check_opts co = {.now = now, .max_age_s = 7 * 86400, .max_skew_s = 300};
	char r[256];
	assert_int_equal(event_check_time("9999-12-31T23:59:59Z", &co, &t, r, sizeof(r)), -22);
	assert_string_equal(r, "time 9999-12-31T23:59:59Z is more than 300 s in the future: the "
	                       "newest accepted is 2026-11-28T12:05:00.000Z (now + the allowed "
	                       "clock skew, --max-clock-skew)");
	assert_int_equal(event_check_time("2026-11-28T12:05:00Z", &co, &t, r, sizeof(r)), 0);
}

static void test_numbers_as_given(void **state)
{
	(void)state;
	char b[40];
	const double v[] = {100.0001, 0.1, 1e300, -41, 201, 3.0};
	const char *want[] = {"100.0001", "0.1", "1e+300", "-41", "201", "3"};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		event_check_format_number(v[i], b, sizeof(b));
		assert_string_equal(b, want[i]);
	}
}

static void test_dead_letter_shape(void **state)
{
	(void)state;
	size_t n = 1 << 20;
	char *big = malloc(n);
	memset(big, 'x', n);
	struct event_dead_letter d;
	event_check_dead_letter(big, n, 0, &d);
	assert_true(d.cut);
	assert_int_equal(d.len, EVENT_CHECK_DLQ_PAYLOAD_MAX);
	assert_int_equal(d.original_size, n);
	assert_int_equal(strlen(d.hash), 16);
	char h1[17];
	memcpy(h1, d.hash, sizeof(h1));
	big[n - 1] = 'y'; /* past the cut: the hash still tells the payloads apart */
	event_check_dead_letter(big, n, 0, &d);
	assert_string_not_equal(h1, d.hash);
	event_check_dead_letter("{}", 2, 0, &d);
	assert_false(d.cut);
	assert_int_equal(d.len, 2);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sink_and_scorer_agree),
	    cmocka_unit_test(test_far_future_reason),
	    cmocka_unit_test(test_numbers_as_given),
	    cmocka_unit_test(test_dead_letter_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
