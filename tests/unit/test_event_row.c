/* event_row: event-v1 JSON -> COPY text row, and every reason an event is refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/event_check.h"
#include "core/fields.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/event_row.h"

static const char *GOOD =
    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10.250Z\",\"hostname\":\"node\\t7\","
    "\"cluster\":\"c1\",\"datacenter\":null,\"rack\":\"r\\\\1\","
    "\"gpu\":{\"index\":3,\"uuid\":\"GPU-abc\",\"model\":\"NVIDIA H100\",\"pci_bus_id\":\"0:1\","
    "\"device\":\"nvidia3\",\"driver_version\":\"535\",\"mig_profile\":\"1g.10gb\",\"mig_"
    "instance\":2},"
    "\"metrics\":{\"gpu_temp\":65,\"power_usage\":301.25,\"memory_temp\":null,"
    "\"total_energy\":9223372036854775791,\"future_field\":7},"
    "\"extra\":{\"DCGM_FI_DEV_VGPU_LICENSE_STATUS\":0}}";

static struct event_row_opts opts(void)
{
	double t;
	assert_int_equal(time_parse_rfc3339("2026-11-28T12:05:00Z", &t), 0);
	struct event_row_opts o = {.now = t, .max_age_s = 7 * 86400, .max_future_s = 86400};
	return o;
}

/* Splits a COPY text line into its columns (in place). */
static int split(char *line, char **cols, int max)
{
	int n = 0;
	char *p = line;
	cols[n++] = p;
	while ((p = strchr(p, '\t')) && n < max) {
		*p++ = '\0';
		cols[n++] = p;
	}
	char *nl = strchr(cols[n - 1], '\n');
	if (nl)
		*nl = '\0';
	return n;
}

/* One field of a binary COPY tuple: len -1 is NULL. */
struct fld {
	int32_t len;
	const unsigned char *p;
};

static uint32_t rd32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const unsigned char *p)
{
	return (uint64_t)rd32(p) << 32 | rd32(p + 4);
}

/* Decodes one tuple; returns its field count and checks it used exactly len bytes. */
static int decode(const char *buf, size_t len, struct fld *f, int max)
{
	const unsigned char *p = (const unsigned char *)buf, *end = p + len;
	assert_true(len >= 2);
	int n = (p[0] << 8) | p[1];
	p += 2;
	assert_true(n <= max);
	for (int i = 0; i < n; i++) {
		assert_true(p + 4 <= end);
		f[i].len = (int32_t)rd32(p);
		p += 4;
		f[i].p = p;
		if (f[i].len > 0)
			p += f[i].len;
		assert_true(p <= end);
	}
	assert_true(p == end);
	return n;
}

static int64_t f_int8(const struct fld *f)
{
	assert_int_equal(f->len, 8);
	return (int64_t)rd64(f->p);
}

static int32_t f_int4(const struct fld *f)
{
	assert_int_equal(f->len, 4);
	return (int32_t)rd32(f->p);
}

static double f_float8(const struct fld *f)
{
	assert_int_equal(f->len, 8);
	uint64_t bits = rd64(f->p);
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

static void f_text(const struct fld *f, const char *want)
{
	assert_int_equal(f->len, (int32_t)strlen(want));
	assert_memory_equal(f->p, want, strlen(want));
}

static int col_of(const char *key)
{
	size_t n;
	fields_all(&n);
	const struct field_def *f = fields_by_key(key);
	return 6 + (int)fields_index(f);
}

static void test_good_event(void **state)
{
	(void)state;
	struct strbuf sb, id;
	strbuf_init(&sb, 0);
	strbuf_init(&id, 0);
	struct event_row_opts o = opts();
	struct event_row_info info;
	char reason[256] = "";
	assert_int_equal(
	    event_row_append(GOOD, strlen(GOOD), &o, &sb, &id, &info, reason, sizeof(reason)), 0);
	assert_string_equal(info.gpu_key, "GPU-abc/2");
	assert_true(info.time > o.now - 300);
	size_t nf;
	fields_all(&nf);
	struct fld f[128];
	int n = decode(sb.data, sb.len, f, 128);
	assert_int_equal(n, 6 + (int)nf + 1);
	double t;
	assert_int_equal(time_parse_rfc3339("2026-11-28T12:00:10.250Z", &t), 0);
	assert_int_equal(f_int8(&f[0]),
	                 (int64_t)((t - 946684800.0) * 1e6 + 0.5)); /* us since 2000 */
	f_text(&f[1], "GPU-abc/2");
	f_text(&f[2], "GPU-abc");
	assert_int_equal(f_int4(&f[3]), 2);
	f_text(&f[4], "node\t7"); /* binary: no escaping */
	assert_int_equal(f_int4(&f[5]), 3);
	assert_true(f_float8(&f[col_of("gpu_temp")]) == 65.0);
	assert_true(f_float8(&f[col_of("power_usage")]) == 301.25);
	assert_int_equal(f[col_of("memory_temp")].len, -1);
	assert_int_equal(f[col_of("sm_clock")].len, -1); /* absent */
	assert_int_equal(f_int8(&f[col_of("total_energy")]), INT64_C(9223372036854775791));
	/* extra: jsonb version 1, the unknown metric kept with the original extra */
	const struct fld *ex = &f[6 + nf];
	assert_true(ex->len > 1);
	assert_int_equal(ex->p[0], 1);
	char *extra = strndup((const char *)ex->p + 1, (size_t)ex->len - 1);
	assert_non_null(strstr(extra, "\"future_field\":7"));
	assert_non_null(strstr(extra, "DCGM_FI_DEV_VGPU_LICENSE_STATUS"));
	free(extra);
	/* identity: gpu_key, uuid, mig_instance, mig_profile, index, hostname, model, pci, device,
	 * driver, cluster, datacenter, rack */
	char *icols[16];
	char *iline = strdup(id.data);
	assert_int_equal(split(iline, icols, 16), 13);
	assert_string_equal(icols[0], "GPU-abc/2");
	assert_string_equal(icols[1], "GPU-abc");
	assert_string_equal(icols[2], "2");
	assert_string_equal(icols[3], "1g.10gb");
	assert_string_equal(icols[4], "3");
	assert_string_equal(icols[5], "node\\t7"); /* COPY text: escaped tab */
	assert_string_equal(icols[6], "NVIDIA H100");
	assert_string_equal(icols[10], "c1");
	assert_string_equal(icols[11], "\\N");
	assert_string_equal(icols[12], "r\\\\1"); /* COPY text: escaped backslash */
	free(iline);
	strbuf_free(&id);
	/* The column list names as many columns as the row has. */
	const char *sql = event_row_columns();
	int commas = 0;
	for (const char *p = sql; *p; p++)
		commas += *p == ',';
	assert_int_equal(commas + 1, n);
	strbuf_free(&sb);
}

/* Replaces the first occurrence of from with to in GOOD. */
static char *variant(const char *from, const char *to)
{
	const char *p = strstr(GOOD, from);
	assert_non_null(p);
	size_t n = strlen(GOOD) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);
	snprintf(out, n, "%.*s%s%s", (int)(p - GOOD), GOOD, to, p + strlen(from));
	return out;
}

static void expect_reject(const char *from, const char *to, const char *want)
{
	char *ev = variant(from, to);
	struct strbuf sb, id;
	strbuf_init(&sb, 0);
	strbuf_init(&id, 0);
	strbuf_puts(&sb, "previous row\n");
	strbuf_puts(&id, "previous identity\n");
	struct event_row_opts o = opts();
	struct event_row_info info;
	char reason[256] = "";
	int rc = event_row_append(ev, strlen(ev), &o, &sb, &id, &info, reason, sizeof(reason));
	if (rc != -22)
		fail_msg("'%s' -> '%s' was accepted (rc %d)", from, to, rc);
	if (!strstr(reason, want))
		fail_msg("reason '%s' lacks '%s'", reason, want);
	assert_string_equal(sb.data, "previous row\n"); /* never half a row */
	assert_string_equal(id.data, "previous identity\n");
	strbuf_free(&sb);
	strbuf_free(&id);
	free(ev);
}

static void test_rejections(void **state)
{
	(void)state;
	expect_reject("\"schema_version\":1", "\"schema_version\":2", "schema_version 2");
	expect_reject("\"schema_version\":1,", "", "schema_version missing");
	expect_reject("\"uuid\":\"GPU-abc\"", "\"uuid\":\"\"", "gpu.uuid missing");
	expect_reject("\"uuid\":\"GPU-abc\"", "\"uuid\":5", "gpu.uuid must be a string");
	expect_reject("\"time\":\"2026-11-28T12:00:10.250Z\"", "\"time\":\"yesterday\"",
	              "not RFC 3339");
	expect_reject("\"time\":\"2026-11-28T12:00:10.250Z\"", "\"time\":\"2026-02-30T00:00:00Z\"",
	              "not RFC 3339");
	expect_reject("\"time\":\"2026-11-28T12:00:10.250Z\"", "\"time\":\"2020-01-01T00:00:00Z\"",
	              "older than the retention");
	expect_reject("\"time\":\"2026-11-28T12:00:10.250Z\"", "\"time\":\"2027-01-01T00:00:00Z\"",
	              "in the future");
	/* #19 item 7: the value as given and the bound it broke */
	expect_reject("\"gpu_temp\":65", "\"gpu_temp\":65,\"gpu_util\":100.0001",
	              "metrics.gpu_util = 100.0001: utilization outside 0..100 %");
	expect_reject(
	    "\"time\":\"2026-11-28T12:00:10.250Z\"", "\"time\":\"1900-01-01T00:00:00Z\"",
	    "time 1900-01-01T00:00:00Z is older than the retention: the oldest accepted is "
	    "2026-11-21T12:05:00.000Z");
	expect_reject("\"time\":\"2026-11-28T12:00:10.250Z\"", "\"time\":\"9999-12-31T23:59:59Z\"",
	              "time 9999-12-31T23:59:59Z is more than 86400 s in the future: the newest "
	              "accepted is 2026-11-29T12:05:00.000Z");
	expect_reject("\"power_usage\":301.25", "\"power_usage\":-1", "negative power");
	expect_reject("\"gpu_temp\":65", "\"gpu_temp\":201", "temperature outside");
	expect_reject("\"gpu_temp\":65", "\"gpu_temp\":-41", "temperature outside");
	expect_reject("\"gpu_temp\":65", "\"gpu_temp\":65,\"gpu_util\":100.5",
	              "utilization outside");
	expect_reject("\"gpu_temp\":65", "\"gpu_temp\":\"65\"", "must be a number");
	expect_reject("\"total_energy\":9223372036854775791", "\"total_energy\":-3",
	              "cannot be negative");
	expect_reject("\"total_energy\":9223372036854775791", "\"total_energy\":1.5",
	              "whole number");
	expect_reject("\"mig_instance\":2", "\"mig_instance\":-2", "mig_instance");
	expect_reject("\"metrics\":{", "\"metrics\":[1],\"x\":{", "metrics must be an object");
	expect_reject("{\"schema_version\"", "[{\"schema_version\"", "invalid JSON");
	expect_reject("\"hostname\":\"node\\t7\",", "\"hostname\":\"a\",\"hostname\":\"b\",",
	              "invalid JSON");
}

static void test_utilization_bounds_inclusive(void **state)
{
	(void)state;
	/* the limits themselves are possible values */
	char *ev;
	ev = variant("\"gpu_temp\":65", "\"gpu_temp\":200,\"gpu_util\":0");
	struct strbuf sb;
	strbuf_init(&sb, 0);
	struct event_row_opts o = opts();
	struct event_row_info info;
	char reason[256] = "";
	struct strbuf id;
	strbuf_init(&id, 0);
	assert_int_equal(
	    event_row_append(ev, strlen(ev), &o, &sb, &id, &info, reason, sizeof(reason)), 0);
	strbuf_free(&sb);
	strbuf_free(&id);
	free(ev);
}

/* time_parse_rfc3339 of y-m-d (at a time of day from d, second 60 on the 30th) against
 * timegm(); a day the month does not have must be refused. Returns 1 for a real day checked. */
static int same_as_timegm(int y, int m, int d)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	int hh = (d * 7) % 24, mi = (d * 13) % 60, ss = d == 30 ? 60 : d;
	char buf[80]; /* room for any int, so -Wformat-truncation has nothing to say at -O1 */
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, hh, mi, ss);
	double t;
	if (d > mdays[m - 1] + (m == 2 && leap)) {
		assert_int_not_equal(time_parse_rfc3339(buf, &t), 0);
		return 0;
	}
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = m - 1,
	                .tm_mday = d,
	                .tm_hour = hh,
	                .tm_min = mi,
	                .tm_sec = ss};
	assert_int_equal(time_parse_rfc3339(buf, &t), 0);
	assert_true(t == (double)timegm(&tm));
	return 1;
}

static void test_time_parsing(void **state)
{
	(void)state;
	double a, b;
	assert_int_equal(time_parse_rfc3339("2026-11-28T12:00:00Z", &a), 0);
	assert_int_equal(time_parse_rfc3339("2026-11-28T13:30:00+01:30", &b), 0);
	assert_true(a == b);
	assert_int_equal(time_parse_rfc3339("2026-11-28 12:00:00.5z", &b), 0);
	assert_true(b == a + 0.5);
	assert_int_not_equal(time_parse_rfc3339("2026-11-28T12:00:00", &b), 0); /* no zone */
	assert_int_not_equal(time_parse_rfc3339("2026-13-01T00:00:00Z", &b), 0);
	assert_int_not_equal(time_parse_rfc3339("2026-11-28T12:00:00Zjunk", &b), 0);
	char buf[40];
	assert_int_equal(time_format_rfc3339(a + 0.9996, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-28T12:00:01.000Z");
	/* the calendar arithmetic against the C library's timegm(): every day of the years
	 * around each century rule (1600, 1900, 2000, 2100) and of a run of ordinary ones, the
	 * leap second, and the first and last years the grammar allows */
	static const int years[][2] = {{1, 3},       {1599, 1601}, {1899, 1901}, {1969, 1972},
	                               {1999, 2001}, {2023, 2030}, {2099, 2101}, {9998, 9999}};
	int checked = 0;
	for (size_t r = 0; r < sizeof(years) / sizeof(years[0]); r++)
		for (int y = years[r][0]; y <= years[r][1]; y++)
			for (int m = 1; m <= 12; m++)
				for (int d = 1; d <= 31; d++)
					checked += same_as_timegm(y, m, d);
	assert_true(checked > 10000);
}

/* Both paths must write the same tuple: every field byte for byte, extra as equal JSON. len
 * bytes of ev (which may hold NUL bytes: a payload is bytes, not a C string). */
static void same_row_n(const char *ev, size_t len)
{
	struct strbuf a, b, ida, idb;
	strbuf_init(&a, 0);
	strbuf_init(&b, 0);
	strbuf_init(&ida, 0);
	strbuf_init(&idb, 0);
	struct event_row_opts fast = opts(), slow = opts();
	slow.general_only = true;
	struct event_row_info ia, ib;
	char ra[256] = "", rb[256] = "";
	int rca = event_row_append(ev, len, &fast, &a, &ida, &ia, ra, sizeof(ra));
	int rcb = event_row_append(ev, len, &slow, &b, &idb, &ib, rb, sizeof(rb));
	if (rca != rcb)
		fail_msg("paths disagree on %s: %d (%s) vs %d (%s)", ev, rca, ra, rcb, rb);
	if (rca) {
		assert_string_equal(ra, rb);
		goto out;
	}
	assert_string_equal(ia.gpu_key, ib.gpu_key);
	assert_string_equal(ida.data, idb.data);
	struct fld fa[128], fb[128];
	int na = decode(a.data, a.len, fa, 128), nb = decode(b.data, b.len, fb, 128);
	assert_int_equal(na, nb);
	size_t nf;
	fields_all(&nf);
	for (int i = 0; i < na; i++) {
		if (i == 6 + (int)nf && fa[i].len > 0 && fb[i].len > 0) { /* extra: equal JSON */
			char *sa = strndup((const char *)fa[i].p + 1, (size_t)fa[i].len - 1);
			char *sbj = strndup((const char *)fb[i].p + 1, (size_t)fb[i].len - 1);
			json_t *ja = json_loads(sa, 0, NULL), *jb = json_loads(sbj, 0, NULL);
			assert_non_null(ja);
			assert_non_null(jb);
			if (!json_equal(ja, jb))
				fail_msg("extra differs: %s vs %s", sa, sbj);
			json_decref(ja);
			json_decref(jb);
			free(sa);
			free(sbj);
			continue;
		}
		if (fa[i].len != fb[i].len ||
		    (fa[i].len > 0 && memcmp(fa[i].p, fb[i].p, (size_t)fa[i].len)))
			fail_msg("field %d differs between the fast and the general path for %s", i,
			         ev);
	}
out:
	strbuf_free(&a);
	strbuf_free(&b);
	strbuf_free(&ida);
	strbuf_free(&idb);
}

static void same_row(const char *ev)
{
	same_row_n(ev, strlen(ev));
}

static void test_fast_and_general_paths_agree(void **state)
{
	(void)state;
	static const char *events[] = {
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10.000Z\",\"hostname\":\"n1\","
	    "\"cluster\":null,"
	    "\"datacenter\":\"dc\",\"rack\":\"r1\",\"gpu\":{\"index\":0,\"uuid\":\"GPU-1\","
	    "\"model\":\"A100\","
	    "\"pci_bus_id\":\"00000000:31:00.0\",\"device\":\"nvidia0\",\"driver_version\":\"535."
	    "129.03\","
	    "\"mig_profile\":null,\"mig_instance\":null},\"metrics\":{\"gpu_temp\":65,\"power_"
	    "usage\":301.25,"
	    "\"sm_clock\":1410,\"memory_temp\":null,\"total_energy\":9223372036854775791,\"gr_"
	    "engine_active\":0.1,"
	    "\"pcie_tx_bytes\":1e5,\"clocks_event_reasons\":4,\"xid\":0},\"extra\":{\"DCGM_FI_X\":"
	    "0}}",
	    /* whitespace, MIG, nested extra with escapes, no optional fields */
	    " { \"schema_version\" : 1 , \"time\" : \"2026-11-28T12:00:10.5+01:00\" ,\n \"gpu\" : "
	    "{ \"uuid\" : "
	    "\"GPU-2\" , \"mig_instance\" : 3 , \"mig_profile\" : \"1g.10gb\" } , \"metrics\" : { "
	    "\"gpu_util\" : "
	    "100 , \"power_usage\" : 0.0 } , \"extra\" : { \"a\" : [1, 2.5, "
	    "\"x\\\"y\\\\z\\u00e9\"], \"b\" : {\"c\": "
	    "true, \"d\": null} } }\r\n",
	    /* a GPU index of several digits */
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-17\","
	    "\"index\":1234567}}",
	    /* no metrics at all, empty extra */
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-3\"},"
	    "\"extra\":{}}",
	    /* what the fast path leaves to the general one: escapes, unknown keys, bad values */
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"hostname\":\"a\\tb\","
	    "\"gpu\":{\"uuid\":\"GPU-4\"}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-5\"},"
	    "\"metrics\":{\"new_one\":1}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-6\"},"
	    "\"metrics\":{\"gpu_temp\":999}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-7\"},"
	    "\"metrics\":{\"pcie_replay\":2.5}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-8\"},"
	    "\"metrics\":{\"pcie_replay\":-1}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-9\"},"
	    "\"metrics\":{\"gpu_temp\":01}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-9\"},"
	    "\"gpu\":{\"uuid\":\"GPU-9\"}}",
	    "{\"schema_version\":2,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-10\"}"
	    "}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-11\"}}"
	    " x",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-12\"},"
	    "\"extra\":{\"a\":}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-13\","
	    "\"index\":-1}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-14\"},"
	    "\"metrics\":{\"gpu_temp\":1e999}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-15\"},"
	    "\"metrics\":{\"total_energy\":92233720368547758070}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"\"}}",
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-"
	    "\xc3\xa9\"}}",
	};
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		same_row(events[i]);
	/* a NUL byte where an escape continues (found by fuzz_event_check: the fast path took the
	 * terminator of its own set of escape letters for one and wrote an invalid event) */
	static const char nul_escape[] =
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-16\"},"
	    "\"extra\":{\"pad\":\"ab\\\0cd\"}}";
	static const char nul_unicode[] =
	    "{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-16\"},"
	    "\"extra\":{\"pad\":\"ab\\u00\0d\"}}";
	same_row_n(nul_escape, sizeof(nul_escape) - 1);
	same_row_n(nul_unicode, sizeof(nul_unicode) - 1);
	char r[256] = "";
	struct strbuf rows, ident;
	strbuf_init(&rows, 0);
	strbuf_init(&ident, 0);
	struct event_row_opts o = opts();
	struct event_row_info info;
	assert_int_equal(event_row_append(nul_escape, sizeof(nul_escape) - 1, &o, &rows, &ident,
	                                  &info, r, sizeof(r)),
	                 -EINVAL);
	assert_non_null(strstr(r, "invalid escape"));
	strbuf_free(&rows);
	strbuf_free(&ident);
	/* and every prefix of a good event (truncated payloads) */
	for (size_t n = 0; n < strlen(events[0]); n++) {
		char *cut = strndup(events[0], n);
		same_row(cut);
		free(cut);
	}
}

/* The fast path reads numbers without strtod: the same doubles and integers as the general
 * path for every form (integers up to 20 digits, fractions up to 25 digits, exponents, -0). */
static void test_numbers_agree(void **state)
{
	(void)state;
	static const char *fixed[] = {"0",
	                              "-0",
	                              "0.0",
	                              "-0.0",
	                              "1",
	                              "0.1",
	                              "0.3",
	                              "1e5",
	                              "1E-3",
	                              "2.5e+2",
	                              "123456789012345678",
	                              "1234567890123456789",
	                              "12345678901234567890",
	                              "9007199254740993",
	                              "0.000000000000000000000001",
	                              "123456789012345.6",
	                              "1.7976931348623157e308",
	                              "4.9e-324",
	                              "100.00000000000000000001",
	                              "65.49999999999999"};
#define NUM_EVENT                                                                                  \
	"{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10Z\",\"gpu\":{\"uuid\":\"GPU-n\"},"    \
	"\"metrics\":{\"power_usage\":%s,\"memory_temp\":-%s,\"total_energy\":%s}}"
	char ev[512], num[64];
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		snprintf(ev, sizeof(ev), NUM_EVENT, fixed[i], "1.5", fixed[i]);
		same_row(ev);
		snprintf(ev, sizeof(ev), NUM_EVENT, "1", fixed[i], "1");
		same_row(ev);
	}
	uint64_t x = 88172645463325252ull; /* xorshift: the same numbers every run */
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int ilen = 1 + (int)(x % 20), flen = (int)((x >> 8) % 26);
		size_t o = 0;
		num[o++] = (char)('1' + (x >> 16) % 9);
		uint64_t y = x;
		for (int k = 1; k < ilen;
		     k++, y = y * 6364136223846793005ull + 1442695040888963407ull)
			num[o++] = (char)('0' + (y >> 33) % 10);
		if (flen && (x >> 40) % 3) {
			num[o++] = '.';
			for (int k = 0; k < flen;
			     k++, y = y * 6364136223846793005ull + 1442695040888963407ull)
				num[o++] = (char)('0' + (y >> 33) % 10);
		}
		num[o] = '\0';
		/* the counter gets the integer part: a fractional counter sends the whole event to
		 * the general path, and the gauge would not be read by the fast one */
		char whole[64];
		snprintf(whole, sizeof(whole), "%.*s", (int)strcspn(num, "."), num);
		snprintf(ev, sizeof(ev), NUM_EVENT, num, ilen < 3 ? num : "7.25",
		         ilen < 19 ? whole : "1");
		same_row(ev);
	}
}

/* labels and workload (event-v1, added): checked but not stored. The collector writes
 * "workload" in every event, so the fast path must read both, write the row it writes without
 * them, and leave only what the general path must judge; the verdict and reason agree. */
#define WL_EV(members)                                                                             \
	"{\"schema_version\":1,\"time\":\"2026-11-28T12:00:10.000Z\",\"hostname\":\"n1\","         \
	"\"cluster\":\"c1\",\"datacenter\":null,\"rack\":\"r1\",\"gpu\":{\"index\":0,\"uuid\":"    \
	"\"GPU-1\",\"model\":\"A100\",\"mig_profile\":null,\"mig_instance\":null},\"metrics\":{"   \
	"\"gpu_temp\":65,\"power_usage\":301.25,\"total_energy\":123},\"extra\":{\"DCGM_FI_X\":"   \
	"0}" members "}"

/* Appends ev by the default path: its rc, whether the fast path built it, and the row. */
static int append_default(const char *ev, bool *fast, struct strbuf *row, struct strbuf *id,
                          char *r, size_t rl)
{
	struct event_row_opts o = opts();
	struct event_row_info info;
	memset(&info, 0, sizeof(info));
	int rc = event_row_append(ev, strlen(ev), &o, row, id, &info, r, rl);
	*fast = rc == 0 && info.fast;
	return rc;
}

static void test_labels_and_workload(void **state)
{
	(void)state;
	static const char *const good[] = {
	    WL_EV(",\"workload\":null"),
	    WL_EV(",\"workload\":{\"namespace\":\"training\",\"pod\":\"llm-7b-worker-3\","
	          "\"container\":\"trainer\"}"),
	    WL_EV(",\"labels\":{\"team\":\"vision\",\"zone\":\"b\"},\"workload\":null"),
	    WL_EV(",\"labels\":{},\"workload\":{}"),
	    WL_EV(",\"labels\":null,\"workload\":{\"namespace\":null,\"pod\":\"p\","
	          "\"container\":null}"),
	    WL_EV(" , \"workload\" : { \"pod\" : \"p\" } , \"labels\" : { \"a\" : \"\" } "),
	};
	struct strbuf base, bid;
	strbuf_init(&base, 0);
	strbuf_init(&bid, 0);
	char r[256] = "";
	bool fast;
	assert_int_equal(append_default(WL_EV(""), &fast, &base, &bid, r, sizeof(r)), 0);
	assert_true(fast);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct strbuf row, id;
		strbuf_init(&row, 0);
		strbuf_init(&id, 0);
		int rc = append_default(good[i], &fast, &row, &id, r, sizeof(r));
		if (rc)
			fail_msg("refused %s: %s", good[i], r);
		if (!fast)
			fail_msg("the fast path gave up on %s", good[i]);
		/* not stored: the same row and identity as without the fields */
		assert_int_equal(row.len, base.len);
		assert_memory_equal(row.data, base.data, base.len);
		assert_string_equal(id.data, bid.data);
		strbuf_free(&row);
		strbuf_free(&id);
		same_row(good[i]);
	}
	strbuf_free(&base);
	strbuf_free(&bid);

	/* accepted, but for the general path to judge (escapes, a member of a newer contract) */
	static const char *const general[] = {
	    WL_EV(",\"labels\":{\"team\":\"a\\tb\"}"),
	    WL_EV(",\"labels\":{\"t\\u00e9am\":\"x\"}"),
	    WL_EV(",\"workload\":{\"pod\":\"p\",\"node\":\"n7\"}"),
	};
	for (size_t i = 0; i < sizeof(general) / sizeof(general[0]); i++) {
		struct strbuf row, id;
		strbuf_init(&row, 0);
		strbuf_init(&id, 0);
		if (append_default(general[i], &fast, &row, &id, r, sizeof(r)))
			fail_msg("refused %s: %s", general[i], r);
		strbuf_free(&row);
		strbuf_free(&id);
		same_row(general[i]);
	}

	/* refused by both paths with the same reason */
	char long_text[EVENT_CHECK_MAX_TEXT + 2];
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	char long_pod[1024], long_label[1024], many[4096];
	snprintf(long_pod, sizeof(long_pod), WL_EV(",\"workload\":{\"pod\":\"%s\"}"), long_text);
	snprintf(long_label, sizeof(long_label), WL_EV(",\"labels\":{\"a\":\"%s\"}"), long_text);
	size_t o = (size_t)snprintf(many, sizeof(many), "%s", WL_EV(",\"labels\":{"));
	o -= 1; /* before the event's closing brace */
	for (int i = 0; i <= EVENT_CHECK_MAX_LABELS; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "%s\"k%d\":\"v\"", i ? "," : "",
		                      i);
	snprintf(many + o, sizeof(many) - o, "}}");
	const struct {
		const char *ev, *want;
	} bad[] = {
	    {WL_EV(",\"labels\":{\"team\":7}"), "labels.team must be a string, got an integer"},
	    {WL_EV(",\"labels\":{\"team\":null}"), "labels.team must be a string, got null"},
	    {WL_EV(",\"labels\":\"team=vision\""),
	     "labels must be an object of strings, got a string"},
	    {WL_EV(",\"labels\":[]"), "labels must be an object of strings, got an array"},
	    {WL_EV(",\"workload\":\"training/llm\""),
	     "workload must be null or an object {namespace, pod, container}, got a string"},
	    {WL_EV(",\"workload\":{\"pod\":3}"),
	     "workload.pod must be a string or null, got an integer"},
	    {WL_EV(",\"workload\":{\"namespace\":{}}"),
	     "workload.namespace must be a string or null, got an object"},
	    {long_pod, "workload.pod is longer than 512 characters (513)"},
	    {long_label, "labels.a is longer than 512 characters (513)"},
	    {many, "labels has 65 members: at most 64 are accepted"},
	    {WL_EV(",\"labels\":{\"a\":\"x\",\"a\":\"y\"}"), "duplicate object key"},
	    {WL_EV(",\"workload\":{\"pod\":\"x\",\"pod\":\"y\"}"), "duplicate object key"},
	    {WL_EV(",\"workload\":null,\"workload\":null"), "duplicate object key"},
	    {WL_EV(",\"labels\":{},\"labels\":{}"), "duplicate object key"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct strbuf row, id;
		strbuf_init(&row, 0);
		strbuf_init(&id, 0);
		int rc = append_default(bad[i].ev, &fast, &row, &id, r, sizeof(r));
		if (rc != -EINVAL || !strstr(r, bad[i].want))
			fail_msg("%s: rc %d, reason '%s', wanted '%s'", bad[i].ev, rc, r,
			         bad[i].want);
		assert_int_equal(row.len, 0);
		strbuf_free(&row);
		strbuf_free(&id);
		same_row(bad[i].ev);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good_event),
	    cmocka_unit_test(test_rejections),
	    cmocka_unit_test(test_utilization_bounds_inclusive),
	    cmocka_unit_test(test_time_parsing),
	    cmocka_unit_test(test_fast_and_general_paths_agree),
	    cmocka_unit_test(test_numbers_agree),
	    cmocka_unit_test(test_labels_and_workload),
	};
	return cmocka_run_group_tests_name("event_row", tests, NULL, NULL);
}
