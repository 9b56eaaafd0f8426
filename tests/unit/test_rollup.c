/* rollup: a batch's 1-minute rollups computed from its binary COPY rows, checked field by field
 * against hand-computed aggregates (including NULLs, two GPUs, a minute boundary). */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/event_row.h"
#include "sink/rollup.h"

static void add_event(struct strbuf *rows, const char *uuid, const char *time, const char *metrics)
{
	char json[1024], reason[256];
	snprintf(json, sizeof(json),
	         "{\"schema_version\":1,\"time\":\"%s\",\"hostname\":\"n1\","
	         "\"gpu\":{\"index\":0,\"uuid\":\"%s\"},\"metrics\":{%s}}",
	         time, uuid, metrics);
	double now;
	assert_int_equal(time_parse_rfc3339("2026-11-28T12:05:00Z", &now), 0);
	struct event_row_opts o = {.now = now, .max_age_s = 7 * 86400, .max_future_s = 86400};
	struct strbuf ident;
	strbuf_init(&ident, 1 << 20);
	struct event_row_info info;
	int rc =
	    event_row_append(json, strlen(json), &o, rows, &ident, &info, reason, sizeof(reason));
	if (rc)
		fail_msg("event refused: %s", reason);
	strbuf_free(&ident);
}

/* One decoded rollup tuple: column name -> (is null, raw 8/4 bytes as integer). */
struct col {
	char name[64];
	int null;
	uint32_t len;
	const unsigned char *p;
};

static uint64_t be(const unsigned char *p, uint32_t n)
{
	uint64_t v = 0;
	for (uint32_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Splits rollup_columns() into names. */
static int names(char out[][64], int max)
{
	const char *c = rollup_columns() + 1; /* skip "(" */
	int n = 0;
	while (*c && *c != ')' && n < max) {
		while (*c == ' ' || *c == ',')
			c++;
		size_t l = strcspn(c, ",)");
		snprintf(out[n++], 64, "%.*s", (int)l, c);
		c += l;
	}
	return n;
}

/* Finds the tuple of (key, minute "12:MM") in the COPY output and fills cols. */
static int find(const struct strbuf *sb, const char *key, int64_t minute_us, struct col *cols,
                int ncols)
{
	char nm[128][64];
	int nn = names(nm, 128);
	assert_int_equal(nn, ncols);
	const unsigned char *p = (const unsigned char *)sb->data, *end = p + sb->len;
	while (p < end) {
		int nf = (int)be(p, 2);
		p += 2;
		assert_int_equal(nf, ncols);
		for (int i = 0; i < nf; i++) {
			uint32_t l = (uint32_t)be(p, 4);
			p += 4;
			memcpy(cols[i].name, nm[i], sizeof(cols[i].name));
			cols[i].null = l == 0xffffffffu;
			cols[i].len = cols[i].null ? 0 : l;
			cols[i].p = p;
			if (!cols[i].null)
				p += l;
		}
		if (cols[0].len == strlen(key) && memcmp(cols[0].p, key, cols[0].len) == 0 &&
		    (int64_t)be(cols[1].p, 8) == minute_us)
			return 0;
	}
	return -1;
}

static const struct col *get(const struct col *cols, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(cols[i].name, name) == 0)
			return &cols[i];
	fail_msg("no column %s", name);
	return NULL;
}

static double f8(const struct col *c)
{
	assert_false(c->null);
	assert_int_equal(c->len, 8);
	uint64_t bits = be(c->p, 8);
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

static int64_t i8(const struct col *c)
{
	assert_false(c->null);
	assert_int_equal(c->len, 8);
	return (int64_t)be(c->p, 8);
}

static int32_t i4(const struct col *c)
{
	assert_false(c->null);
	assert_int_equal(c->len, 4);
	return (int32_t)be(c->p, 4);
}

/* 2026-11-28T12:MM:00Z as microseconds since 2000-01-01 UTC. */
static int64_t minute_us(int mm)
{
	char ts[32];
	snprintf(ts, sizeof(ts), "2026-11-28T12:%02d:00Z", mm);
	double t;
	assert_int_equal(time_parse_rfc3339(ts, &t), 0);
	return ((int64_t)t - 946684800) * 1000000;
}

static void test_aggregates(void **state)
{
	(void)state;
	struct strbuf rows, out;
	strbuf_init(&rows, 1 << 20);
	strbuf_init(&out, 1 << 20);
	add_event(&rows, "GPU-a", "2026-11-28T12:00:10Z",
	          "\"gpu_temp\":60,\"power_usage\":100.5,\"total_energy\":1000");
	add_event(&rows, "GPU-a", "2026-11-28T12:00:59.999Z",
	          "\"gpu_temp\":70,\"power_usage\":null,\"total_energy\":1500");
	add_event(&rows, "GPU-a", "2026-11-28T12:00:30Z",
	          "\"gpu_temp\":65,\"total_energy\":1200,\"xid\":13");
	add_event(&rows, "GPU-a", "2026-11-28T12:01:00Z", "\"gpu_temp\":80");
	add_event(&rows, "GPU-b", "2026-11-28T12:00:20Z", "\"gpu_util\":42");

	struct rollup *r;
	assert_int_equal(rollup_create(&r), 0);
	/* added in two pieces, as the sink adds row by row */
	size_t half = 0;
	{
		/* the first tuple's length: re-encode just the first event */
		struct strbuf one;
		strbuf_init(&one, 1 << 20);
		add_event(&one, "GPU-a", "2026-11-28T12:00:10Z",
		          "\"gpu_temp\":60,\"power_usage\":100.5,\"total_energy\":1000");
		half = one.len;
		strbuf_free(&one);
	}
	assert_int_equal(rollup_add(r, rows.data, half), 0);
	assert_int_equal(rollup_add(r, rows.data + half, rows.len - half), 0);
	assert_int_equal(rollup_groups(r), 3);
	assert_int_equal(rollup_copy(r, &out), 0);

	struct col c[128];
	int n = 3 + 4 * 9 + 2 * 12;
	assert_int_equal(find(&out, "GPU-a", minute_us(0), c, n), 0);
	assert_int_equal(i4(get(c, n, "samples")), 3);
	assert_true(f8(get(c, n, "gpu_temp_min")) == 60);
	assert_true(f8(get(c, n, "gpu_temp_max")) == 70);
	assert_true(f8(get(c, n, "gpu_temp_sum")) == 195);
	assert_int_equal(i4(get(c, n, "gpu_temp_n")), 3);
	assert_true(f8(get(c, n, "power_usage_min")) == 100.5);
	assert_true(f8(get(c, n, "power_usage_sum")) == 100.5);
	assert_int_equal(i4(get(c, n, "power_usage_n")), 1);
	assert_true(get(c, n, "gpu_util_min")->null);
	assert_true(get(c, n, "gpu_util_sum")->null);
	assert_int_equal(i4(get(c, n, "gpu_util_n")), 0);
	assert_int_equal(i8(get(c, n, "total_energy_min")), 1000);
	assert_int_equal(i8(get(c, n, "total_energy_max")), 1500);
	assert_true(get(c, n, "pcie_replay_min")->null);

	assert_int_equal(find(&out, "GPU-a", minute_us(1), c, n), 0);
	assert_int_equal(i4(get(c, n, "samples")), 1);
	assert_true(f8(get(c, n, "gpu_temp_max")) == 80);
	assert_true(get(c, n, "total_energy_min")->null);

	assert_int_equal(find(&out, "GPU-b", minute_us(0), c, n), 0);
	assert_int_equal(i4(get(c, n, "samples")), 1);
	assert_true(f8(get(c, n, "gpu_util_sum")) == 42);
	assert_true(get(c, n, "gpu_temp_min")->null);

	/* reset forgets everything; a malformed tuple is refused, not guessed at */
	rollup_reset(r);
	assert_int_equal(rollup_groups(r), 0);
	assert_int_equal(rollup_add(r, "\0\3\0\0", 4), -EINVAL);
	assert_int_equal(rollup_add(r, rows.data, half - 3), -EINVAL);
	rollup_destroy(r);
	strbuf_free(&rows);
	strbuf_free(&out);
}

static void test_many_groups(void **state)
{
	(void)state;
	struct strbuf rows, out;
	strbuf_init(&rows, 64 << 20);
	strbuf_init(&out, 64 << 20);
	for (int g = 0; g < 3000; g++) {
		char uuid[32];
		snprintf(uuid, sizeof(uuid), "GPU-%04d", g);
		add_event(&rows, uuid, "2026-11-28T12:02:01Z", "\"gpu_temp\":50");
		add_event(&rows, uuid, "2026-11-28T12:02:02Z", "\"gpu_temp\":52");
	}
	struct rollup *r;
	assert_int_equal(rollup_create(&r), 0);
	assert_int_equal(rollup_add(r, rows.data, rows.len), 0);
	assert_int_equal(rollup_groups(r), 3000);
	assert_int_equal(rollup_copy(r, &out), 0);
	struct col c[128];
	int n = 3 + 4 * 9 + 2 * 12;
	assert_int_equal(find(&out, "GPU-2999", minute_us(2), c, n), 0);
	assert_int_equal(i4(get(c, n, "samples")), 2);
	assert_true(f8(get(c, n, "gpu_temp_sum")) == 102);
	rollup_destroy(r);
	strbuf_free(&rows);
	strbuf_free(&out);
}

/* The sink's open minutes: batches merged in (only from the mark on), counted, copied and
 * dropped by minute range; merging in pieces gives what adding everything at once gives. */
static void test_open_minutes(void **state)
{
	(void)state;
	struct strbuf b1, b2, whole, got, want;
	strbuf_init(&b1, 1 << 20);
	strbuf_init(&b2, 1 << 20);
	strbuf_init(&whole, 1 << 20);
	strbuf_init(&got, 1 << 20);
	strbuf_init(&want, 1 << 20);
	const char *ev[][3] = {
	    {"GPU-a", "2026-11-28T12:00:10Z", "\"gpu_temp\":60,\"total_energy\":5"},
	    {"GPU-a", "2026-11-28T12:01:10Z", "\"gpu_temp\":61,\"total_energy\":7"},
	    {"GPU-b", "2026-11-28T12:01:20Z", "\"gpu_util\":40"},
	    {"GPU-a", "2026-11-28T12:01:50Z", "\"gpu_temp\":59,\"total_energy\":9"},
	    {"GPU-b", "2026-11-28T12:02:20Z", "\"gpu_util\":41,\"pcie_replay\":3"},
	    {"GPU-a", "2026-11-28T12:02:30Z", "\"gpu_temp\":63"},
	};
	for (int i = 0; i < 6; i++) {
		add_event(i < 3 ? &b1 : &b2, ev[i][0], ev[i][1], ev[i][2]);
		if (i >= 1) /* minute 0 is before the mark below */
			add_event(&whole, ev[i][0], ev[i][1], ev[i][2]);
	}
	struct rollup *r1, *r2, *open, *all;
	assert_int_equal(rollup_create(&r1), 0);
	assert_int_equal(rollup_create(&r2), 0);
	assert_int_equal(rollup_create(&open), 0);
	assert_int_equal(rollup_create(&all), 0);
	assert_int_equal(rollup_add(r1, b1.data, b1.len), 0);
	assert_int_equal(rollup_add(r2, b2.data, b2.len), 0);
	assert_int_equal(rollup_add(all, whole.data, whole.len), 0);
	int64_t mark = minute_us(1);
	assert_int_equal(rollup_merge(open, r1, mark), 0);
	assert_int_equal(rollup_merge(open, r2, mark), 0);
	assert_int_equal(rollup_groups(open), 4); /* a@1, b@1, b@2, a@2; a@0 stayed out */
	assert_int_equal(rollup_samples(open, INT64_MIN, INT64_MAX), 5);
	assert_int_equal(rollup_samples(open, minute_us(1), minute_us(2)), 3);
	assert_int_equal(rollup_samples(open, minute_us(2), minute_us(3)), 2);
	assert_int_equal(rollup_samples(open, minute_us(3), INT64_MAX), 0);
	/* the same tuples, byte for byte, as adding the rows at once */
	assert_int_equal(rollup_copy(open, &got), 0);
	assert_int_equal(rollup_copy(all, &want), 0);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	/* a range: only minute 1's groups */
	strbuf_reset(&got);
	assert_int_equal(rollup_copy_range(open, minute_us(1), minute_us(2), &got), 0);
	struct col c[128];
	int n = 3 + 4 * 9 + 2 * 12;
	assert_int_equal(find(&got, "GPU-a", minute_us(1), c, n), 0);
	assert_int_equal(i4(get(c, n, "samples")), 2);
	assert_true(f8(get(c, n, "gpu_temp_min")) == 59);
	assert_true(f8(get(c, n, "gpu_temp_max")) == 61);
	assert_int_equal(i8(get(c, n, "total_energy_min")), 7);
	assert_int_equal(i8(get(c, n, "total_energy_max")), 9);
	assert_int_not_equal(find(&got, "GPU-b", minute_us(2), c, n), 0);
	/* dropping minute 1: minute 2 stays and is still found (probe chains intact) */
	assert_int_equal(rollup_drop_below(open, minute_us(2)), 0);
	assert_int_equal(rollup_groups(open), 2);
	assert_int_equal(rollup_samples(open, INT64_MIN, INT64_MAX), 2);
	/* minute 2's groups found again: merged, not new */
	assert_int_equal(rollup_merge(open, r2, minute_us(2)), 0);
	assert_int_equal(rollup_groups(open), 2);
	assert_int_equal(rollup_samples(open, minute_us(2), minute_us(3)), 4);
	/* rollup_minute floors like date_trunc, and the infinities of the mark */
	assert_true(rollup_minute((double)minute_us(2) / 1e6 + 946684800.0 + 59.999) ==
	            minute_us(2));
	assert_true(rollup_minute(-INFINITY) == INT64_MIN);
	assert_true(rollup_minute(INFINITY) == INT64_MAX);
	assert_true(rollup_minute(946684799.0) == -60000000LL);
	rollup_destroy(r1);
	rollup_destroy(r2);
	rollup_destroy(open);
	rollup_destroy(all);
	strbuf_free(&b1);
	strbuf_free(&b2);
	strbuf_free(&whole);
	strbuf_free(&got);
	strbuf_free(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aggregates),
	    cmocka_unit_test(test_many_groups),
	    cmocka_unit_test(test_open_minutes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
