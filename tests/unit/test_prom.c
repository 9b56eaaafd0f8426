/* The Prometheus text parser: every edge case of the format, bad lines, limits, numbers. */
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

#include "prom/prom.h"

/* What the callback saw: copies, since the slices die with the callback. */
#define MAX_SEEN 64
struct seen_label {
	char name[64];
	char raw[256];   /* as written between the quotes */
	char value[256]; /* decoded */
	bool escaped;
};
struct seen {
	size_t line;
	char name[128];
	struct seen_label labels[16];
	size_t nlabels;
	struct prom_value v;
	bool has_ts;
	int64_t ts;
	enum prom_type type;
	bool has_help;
	char help[256];
};
struct rec {
	struct seen s[MAX_SEEN];
	size_t n;
	int stop_after; /* return -ECANCELED after this many, 0: never */
};

static void copy_slice(char *dst, size_t size, struct prom_slice s)
{
	assert_true(s.len < size);
	memcpy(dst, s.ptr, s.len);
	dst[s.len] = '\0';
}

static int record(const struct prom_sample *s, void *ud)
{
	struct rec *r = ud;
	assert_true(r->n < MAX_SEEN);
	struct seen *o = &r->s[r->n++];
	memset(o, 0, sizeof(*o));
	o->line = s->line;
	copy_slice(o->name, sizeof(o->name), s->name);
	assert_true(s->nlabels <= 16);
	o->nlabels = s->nlabels;
	for (size_t i = 0; i < s->nlabels; i++) {
		copy_slice(o->labels[i].name, sizeof(o->labels[i].name), s->labels[i].name);
		copy_slice(o->labels[i].raw, sizeof(o->labels[i].raw), s->labels[i].value);
		assert_int_equal(prom_unescape(s->labels[i].value, o->labels[i].value,
		                               sizeof(o->labels[i].value), NULL),
		                 0);
		o->labels[i].escaped = s->labels[i].escaped;
	}
	o->v = s->value;
	o->has_ts = s->has_timestamp;
	o->ts = s->timestamp_ms;
	o->type = s->type;
	o->has_help = s->has_help;
	if (s->has_help)
		assert_int_equal(prom_unescape(s->help, o->help, sizeof(o->help), NULL), 0);
	if (r->stop_after && (int)r->n >= r->stop_after)
		return -ECANCELED;
	return 0;
}

static struct rec R;
static struct prom_stats ST;

static int parse(const char *text)
{
	memset(&R, 0, sizeof(R));
	return prom_parse(text, strlen(text), NULL, record, &R, &ST);
}

static int parse_lim(const char *text, const struct prom_limits *lim)
{
	memset(&R, 0, sizeof(R));
	return prom_parse(text, strlen(text), lim, record, &R, &ST);
}

static void test_basic(void **state)
{
	(void)state;
	assert_int_equal(parse("DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-1\"} 31\n"), 0);
	assert_int_equal(R.n, 1);
	assert_int_equal(ST.samples, 1);
	assert_int_equal(ST.lines, 1);
	assert_int_equal(ST.bad_lines, 0);
	assert_string_equal(R.s[0].name, "DCGM_FI_DEV_GPU_TEMP");
	assert_int_equal(R.s[0].nlabels, 2);
	assert_string_equal(R.s[0].labels[0].name, "gpu");
	assert_string_equal(R.s[0].labels[0].value, "0");
	assert_string_equal(R.s[0].labels[1].name, "UUID");
	assert_string_equal(R.s[0].labels[1].value, "GPU-1");
	assert_false(R.s[0].labels[1].escaped);
	assert_int_equal(R.s[0].v.form, PROM_FORM_INT);
	assert_true(R.s[0].v.exact);
	assert_int_equal(R.s[0].v.i64, 31);
	assert_true(R.s[0].v.d == 31.0);
	assert_false(R.s[0].has_ts);
	assert_int_equal(R.s[0].type, PROM_TYPE_NONE);

	/* no labels, empty label set, blanks before the line and around the label set */
	assert_int_equal(parse("up 1\n  \t up2{} 2\nup3 {} 3\n"), 0);
	assert_int_equal(R.n, 3);
	assert_string_equal(R.s[1].name, "up2");
	assert_int_equal(R.s[1].nlabels, 0);
	assert_string_equal(R.s[2].name, "up3");
	assert_true(R.s[2].v.d == 3.0);
	assert_int_equal(ST.bad_lines, 0);
	/* a colon in a metric name */
	assert_int_equal(parse("job:rate5m{a=\"b\"} 0.5\n"), 0);
	assert_string_equal(R.s[0].name, "job:rate5m");
}

static void test_escapes(void **state)
{
	(void)state;
	assert_int_equal(parse("m{a=\"x\\\\y\\\"z\\nw\",b=\"plain\"} 1\n"), 0);
	assert_int_equal(R.n, 1);
	assert_true(R.s[0].labels[0].escaped);
	assert_string_equal(R.s[0].labels[0].raw, "x\\\\y\\\"z\\nw");
	assert_string_equal(R.s[0].labels[0].value, "x\\y\"z\nw");
	assert_false(R.s[0].labels[1].escaped);
	assert_string_equal(R.s[0].labels[1].value, "plain");
	/* an escaped quote at the end of a value */
	assert_int_equal(parse("m{a=\"q\\\"\"} 1\n"), 0);
	assert_int_equal(R.n, 1);
	assert_string_equal(R.s[0].labels[0].value, "q\"");
	/* unknown escape: a bad line */
	assert_int_equal(parse("m{a=\"\\t\"} 1\nok 2\n"), 0);
	assert_int_equal(R.n, 1);
	assert_string_equal(R.s[0].name, "ok");
	assert_int_equal(ST.bad_lines, 1);
	assert_int_equal(ST.bad[0].reason, PROM_E_BAD_ESCAPE);
	assert_int_equal(ST.bad[0].line, 1);
	assert_int_equal(ST.bad[0].col, 6);
}

static void test_unescape_bounds(void **state)
{
	(void)state;
	char out[4];
	size_t n;
	struct prom_slice in = {"ab\\\\cd", 6};
	assert_int_equal(prom_unescape(in, out, sizeof(out), &n), -ENOSPC);
	assert_string_equal(out, "ab\\");
	assert_int_equal(n, 3);
	assert_int_equal(prom_unescape(in, out, 0, &n), -EINVAL);
	char big[16];
	assert_int_equal(prom_unescape(in, big, sizeof(big), &n), 0);
	assert_string_equal(big, "ab\\cd");
	assert_int_equal(n, 5);
}

static void test_specials_in_quotes(void **state)
{
	(void)state;
	assert_int_equal(parse("m{a=\"x,y=z}w\",b=\"}\",c=\"=\",d=\",\",e=\"{\"} 7\n"), 0);
	assert_int_equal(R.n, 1);
	assert_int_equal(R.s[0].nlabels, 5);
	assert_string_equal(R.s[0].labels[0].value, "x,y=z}w");
	assert_string_equal(R.s[0].labels[1].value, "}");
	assert_string_equal(R.s[0].labels[2].value, "=");
	assert_string_equal(R.s[0].labels[3].value, ",");
	assert_string_equal(R.s[0].labels[4].value, "{");
	assert_string_equal(R.s[0].labels[4].name, "e");
	assert_true(R.s[0].v.d == 7.0);
	/* a '#' inside a value is not a comment, nor is a value that looks like a label set */
	assert_int_equal(parse("m{a=\"# x\", b=\"c=\\\"d\\\"\"} 8\n"), 0);
	assert_int_equal(R.n, 1);
	assert_string_equal(R.s[0].labels[0].value, "# x");
	assert_string_equal(R.s[0].labels[1].value, "c=\"d\"");
}

static void test_spaces(void **state)
{
	(void)state;
	/* the old dcgm-exporter README: a space after the comma */
	assert_int_equal(parse("DCGM_FI_DEV_SM_CLOCK{gpu=\"0\", UUID=\"GPU-604ac76c\"} 139\n"
	                       "m{ a = \"1\" ,\tb=\"2\" , } 3\n"
	                       "m{a=\"1\",} 4\n"
	                       "m\t{a=\"1\"}\t5\t\n"),
	                 0);
	assert_int_equal(ST.bad_lines, 0);
	assert_int_equal(R.n, 4);
	assert_string_equal(R.s[0].labels[1].name, "UUID");
	assert_string_equal(R.s[0].labels[1].value, "GPU-604ac76c");
	assert_int_equal(R.s[1].nlabels, 2);
	assert_string_equal(R.s[1].labels[0].value, "1");
	assert_string_equal(R.s[1].labels[1].name, "b");
	assert_int_equal(R.s[2].nlabels, 1);
	assert_true(R.s[3].v.d == 5.0);
	assert_false(R.s[3].has_ts);
}

static void test_special_values(void **state)
{
	(void)state;
	assert_int_equal(parse("a NaN\nb +Inf\nc -Inf\nd Inf\ne nan\nf -infinity\ng +INF\n"), 0);
	assert_int_equal(ST.bad_lines, 0);
	assert_int_equal(R.n, 7);
	assert_true(isnan(R.s[0].v.d));
	assert_true(isinf(R.s[1].v.d) && R.s[1].v.d > 0);
	assert_true(isinf(R.s[2].v.d) && R.s[2].v.d < 0);
	assert_true(isinf(R.s[3].v.d) && R.s[3].v.d > 0);
	assert_true(isnan(R.s[4].v.d));
	assert_true(isinf(R.s[5].v.d) && R.s[5].v.d < 0);
	assert_true(isinf(R.s[6].v.d) && R.s[6].v.d > 0);
	for (size_t i = 0; i < R.n; i++) {
		assert_int_equal(R.s[i].v.form, PROM_FORM_SPECIAL);
		assert_false(R.s[i].v.exact);
	}
	/* not numbers */
	assert_int_equal(parse("a +NaN\nb infx\nc 1..2\nd 0x10\ne 1e\nf .\ng -\nh 1_000\ni 12a\n"),
	                 0);
	assert_int_equal(R.n, 0);
	assert_int_equal(ST.bad_lines, 9);
	for (size_t i = 0; i < ST.nbad; i++) {
		assert_int_equal(ST.bad[i].reason, PROM_E_BAD_VALUE);
		assert_int_equal(ST.bad[i].line, i + 1);
	}
}

static void test_numbers(void **state)
{
	(void)state;
	assert_int_equal(parse("a 9223372036854775791\n"
	                       "b 9223372036854775807\n"
	                       "c 18446744073709551615\n"
	                       "d 18446744073709551616\n"
	                       "e -9223372036854775808\n"
	                       "f 16.365000\n"
	                       "g 1.5e3\n"
	                       "h 140737488355328.0\n"
	                       "i -0.000008\n"
	                       "j +42\n"
	                       "k 1E-2\n"
	                       "l 0.1\n"
	                       "m 123456789012345678901234567890.5\n"
	                       "n .5\n"
	                       "o 5.\n"),
	                 0);
	assert_int_equal(ST.bad_lines, 0);
	assert_int_equal(R.n, 15);
	assert_int_equal(R.s[0].v.form, PROM_FORM_INT);
	assert_true(R.s[0].v.exact);
	assert_true(R.s[0].v.i64 == INT64_C(9223372036854775791));
	assert_true(R.s[0].v.u64 == UINT64_C(9223372036854775791));
	assert_true(R.s[1].v.exact && R.s[1].v.i64 == INT64_MAX);
	assert_true(R.s[2].v.exact && !R.s[2].v.negative && R.s[2].v.u64 == UINT64_MAX);
	assert_int_equal(R.s[3].v.form, PROM_FORM_INT);
	assert_false(R.s[3].v.exact);
	assert_true(R.s[3].v.d == 18446744073709551616.0);
	assert_true(R.s[4].v.exact && R.s[4].v.negative && R.s[4].v.i64 == INT64_MIN);
	assert_int_equal(R.s[5].v.form, PROM_FORM_FLOAT);
	assert_true(R.s[5].v.d == strtod("16.365000", NULL));
	assert_false(R.s[5].v.exact);
	assert_int_equal(R.s[6].v.form, PROM_FORM_FLOAT);
	assert_true(R.s[6].v.d == 1500.0);
	assert_true(R.s[7].v.d == 140737488355328.0);
	assert_true(R.s[8].v.d == -0.000008);
	assert_true(R.s[9].v.exact && R.s[9].v.i64 == 42);
	assert_true(R.s[10].v.d == 0.01);
	assert_true(R.s[11].v.d == 0.1);
	assert_true(R.s[12].v.d == strtod("123456789012345678901234567890.5", NULL));
	assert_true(R.s[13].v.d == 0.5);
	assert_true(R.s[14].v.d == 5.0);
	assert_int_equal(R.s[14].v.form, PROM_FORM_FLOAT);
}

static int collect_values(const struct prom_sample *s, void *ud)
{
	double *vals = ud;
	vals[s->line - 1] = s->value.d;
	return 0;
}

/* The fast path must give strtod's correctly rounded result for every decimal it takes. */
static void test_numbers_vs_strtod(void **state)
{
	(void)state;
	char text[64 * 1024];
	char tokens[1000][40];
	size_t off = 0;
	uint64_t x = 88172645463325252ULL;
	for (size_t i = 0; i < 1000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int ip = (int)(x % 100000000ULL), fp = (int)((x >> 27) % 1000000ULL);
		int e = (int)((x >> 50) % 60) - 30, kind = (int)((x >> 45) % 4);
		switch (kind) {
		case 0: snprintf(tokens[i], sizeof(tokens[i]), "%d.%06d", ip, fp); break;
		case 1: snprintf(tokens[i], sizeof(tokens[i]), "%d.%de%d", ip % 1000, fp, e); break;
		case 2: snprintf(tokens[i], sizeof(tokens[i]), "0.%09d%06d", ip, fp); break;
		default:
			snprintf(tokens[i], sizeof(tokens[i]), "-%d%06d.%d", ip, fp, ip % 97);
			break;
		}
		off += (size_t)snprintf(text + off, sizeof(text) - off, "v %s\n", tokens[i]);
	}
	struct prom_stats st;
	double vals[1000];
	assert_int_equal(prom_parse(text, off, NULL, collect_values, vals, &st), 0);
	assert_int_equal(st.samples, 1000);
	assert_int_equal(st.bad_lines, 0);
	for (size_t i = 0; i < 1000; i++) {
		double want = strtod(tokens[i], NULL);
		if (vals[i] != want)
			fail_msg("'%s': parser %.17g, strtod %.17g", tokens[i], vals[i], want);
	}
}

static void test_timestamps(void **state)
{
	(void)state;
	assert_int_equal(parse("a 1 1700000000000\nb{x=\"y\"} 2.5 -5\nc 3 9223372036854775807\n"
	                       "d 4 12x\ne 5 1.5\nf 6 9223372036854775808\ng 7 1 2\n"),
	                 0);
	assert_int_equal(R.n, 3);
	assert_true(R.s[0].has_ts && R.s[0].ts == INT64_C(1700000000000));
	assert_true(R.s[1].has_ts && R.s[1].ts == -5);
	assert_true(R.s[2].has_ts && R.s[2].ts == INT64_MAX);
	assert_int_equal(ST.bad_lines, 4);
	assert_int_equal(ST.bad[0].line, 4);
	assert_int_equal(ST.bad[0].reason, PROM_E_BAD_TIMESTAMP);
	assert_int_equal(ST.bad[1].reason, PROM_E_BAD_TIMESTAMP);
	assert_int_equal(ST.bad[2].reason, PROM_E_BAD_TIMESTAMP);
	assert_int_equal(ST.bad[3].line, 7);
	assert_int_equal(ST.bad[3].reason, PROM_E_TRAILING);
}

static void test_crlf_and_final_newline(void **state)
{
	(void)state;
	assert_int_equal(
	    parse("# HELP a The a.\r\n# TYPE a gauge\r\na{l=\"v\"} 1\r\n\r\nb 2\r\nc 3"), 0);
	assert_int_equal(ST.bad_lines, 0);
	assert_int_equal(ST.lines, 6);
	assert_int_equal(R.n, 3);
	assert_string_equal(R.s[0].help, "The a.");
	assert_int_equal(R.s[0].type, PROM_TYPE_GAUGE);
	assert_string_equal(R.s[0].labels[0].value, "v");
	assert_true(R.s[1].v.exact && R.s[1].v.i64 == 2);
	assert_string_equal(R.s[2].name, "c");
	assert_true(R.s[2].v.exact && R.s[2].v.i64 == 3);
	assert_int_equal(R.s[2].line, 6);
	/* a final line with a timestamp and no newline, a final CR */
	assert_int_equal(parse("x 1 42"), 0);
	assert_true(R.n == 1 && R.s[0].has_ts && R.s[0].ts == 42);
	assert_int_equal(parse("x 1\r"), 0);
	assert_true(R.n == 1 && R.s[0].v.i64 == 1);
	/* empty input */
	assert_int_equal(prom_parse(NULL, 0, NULL, record, &R, &ST), 0);
	assert_int_equal(ST.lines, 0);
	assert_int_equal(parse("\n\n"), 0);
	assert_int_equal(ST.lines, 2);
	assert_int_equal(ST.samples, 0);
}

static void test_help_type(void **state)
{
	(void)state;
	assert_int_equal(parse("# HELP DCGM_FI_DEV_SLOWDOWN_TEMP\n"
	                       "# TYPE DCGM_FI_DEV_SLOWDOWN_TEMP gauge\n"
	                       "DCGM_FI_DEV_SLOWDOWN_TEMP{gpu=\"0\"} 93\n"
	                       "# HELP h Line one\\nback\\\\slash.\n"
	                       "# TYPE h counter\n"
	                       "h 1\n"
	                       "# NOTE this is just a comment\n"
	                       "#\n"
	                       "# HELP s A summary.\n"
	                       "# TYPE s summary\n"
	                       "s_sum 1.5\n"
	                       "s_count 3\n"
	                       "s_bucket 3\n"
	                       "other 9\n"
	                       "# HELP e   \n"
	                       "e 1\n"),
	                 0);
	assert_int_equal(ST.bad_lines, 0);
	assert_int_equal(ST.comments, 9);
	assert_int_equal(R.n, 7);
	assert_true(R.s[0].has_help);
	assert_string_equal(R.s[0].help, "");
	assert_int_equal(R.s[0].type, PROM_TYPE_GAUGE);
	assert_true(R.s[1].has_help);
	assert_string_equal(R.s[1].help, "Line one\nback\\slash.");
	assert_int_equal(R.s[1].type, PROM_TYPE_COUNTER);
	assert_int_equal(R.s[2].type, PROM_TYPE_SUMMARY);
	assert_string_equal(R.s[2].help, "A summary.");
	assert_int_equal(R.s[3].type, PROM_TYPE_SUMMARY);
	assert_true(R.s[3].has_help);
	assert_int_equal(R.s[4].type, PROM_TYPE_NONE); /* _bucket is not a summary series */
	assert_int_equal(R.s[5].type, PROM_TYPE_NONE);
	assert_false(R.s[5].has_help);
	assert_true(R.s[6].has_help);
	assert_string_equal(R.s[6].help, "");

	/* only the exact words HELP and TYPE matter; blanks after '#' are optional */
	assert_int_equal(parse("# HELPX x not help\n#HELP x  Yes.\n#\tTYPE x counter\n"
	                       "# TYPEx x gauge\n# help x no\nx 1\n"),
	                 0);
	assert_int_equal(ST.bad_lines, 0);
	assert_int_equal(ST.comments, 5);
	assert_int_equal(R.n, 1);
	assert_string_equal(R.s[0].help, "Yes.");
	assert_int_equal(R.s[0].type, PROM_TYPE_COUNTER);

	/* bad HELP / TYPE lines are counted, the samples still parse */
	assert_int_equal(parse("# HELP\n# TYPE 9x gauge\n# TYPE a gauged\n# TYPE a gauge extra\n"
	                       "# HELP a{ x\na 1\n"),
	                 0);
	assert_int_equal(R.n, 1);
	assert_int_equal(R.s[0].type, PROM_TYPE_NONE);
	assert_int_equal(ST.bad_lines, 5);
	assert_int_equal(ST.bad[0].reason, PROM_E_BAD_HELP_TYPE);
	assert_int_equal(ST.bad[1].reason, PROM_E_BAD_HELP_TYPE);
	assert_int_equal(ST.bad[2].reason, PROM_E_BAD_TYPE);
	assert_int_equal(ST.bad[3].reason, PROM_E_BAD_TYPE);
	assert_int_equal(ST.bad[4].reason, PROM_E_BAD_HELP_TYPE);
	assert_int_equal(ST.bad[4].line, 5);
}

struct bad_case {
	const char *line;
	enum prom_err why;
	size_t col;
};

static void test_bad_lines_counted(void **state)
{
	(void)state;
	static const struct bad_case cases[] = {
	    {"curl localhost:9400/metrics", PROM_E_BAD_VALUE, 6},
	    {"...", PROM_E_BAD_NAME, 1},
	    {"9abc 1", PROM_E_BAD_NAME, 1},
	    {"a-b 1", PROM_E_BAD_NAME, 2},
	    {"m{9=\"x\"} 1", PROM_E_BAD_LABEL_NAME, 3},
	    {"m{a \"x\"} 1", PROM_E_NO_EQUALS, 5},
	    {"m{a=x} 1", PROM_E_NO_QUOTE, 5},
	    {"m{a=\"x} 1", PROM_E_UNTERMINATED, 10},
	    {"m{a=\"x\" 1", PROM_E_BAD_LABEL_SEP, 9},
	    {"m{a=\"x\",", PROM_E_UNTERMINATED, 9},
	    {"m{a=\"x\",a=\"y\"} 1", PROM_E_DUP_LABEL, 9},
	    {"m{a=\"x\"}", PROM_E_NO_VALUE, 9},
	    {"m", PROM_E_NO_VALUE, 2},
	    {"m{a=\"x\\", PROM_E_UNTERMINATED, 8},
	    {"m{a=\"x\"} 1 2 3", PROM_E_TRAILING, 14},
	};
	const size_t n = sizeof(cases) / sizeof(cases[0]);
	char text[4096];
	size_t off = 0;
	/* each bad line followed by a good one: every good line must still be parsed */
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\ngood%zu %zu\n",
		                        cases[i].line, i, i);
	assert_int_equal(parse(text), 0);
	assert_int_equal(R.n, n);
	assert_int_equal(ST.bad_lines, n);
	assert_int_equal(ST.nbad, n < PROM_BAD_RECORDED ? n : PROM_BAD_RECORDED);
	for (size_t i = 0; i < n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "good%zu", i);
		assert_string_equal(R.s[i].name, want);
		assert_int_equal(R.s[i].line, 2 * i + 2);
		assert_true(R.s[i].v.i64 == (int64_t)i);
		if (i < ST.nbad) {
			if (ST.bad[i].reason != cases[i].why || ST.bad[i].col != cases[i].col)
				fail_msg("'%s': reason %d (%s) col %zu, want %d col %zu",
				         cases[i].line, ST.bad[i].reason,
				         prom_strerror(ST.bad[i].reason), ST.bad[i].col,
				         cases[i].why, cases[i].col);
			assert_int_equal(ST.bad[i].line, 2 * i + 1);
		}
	}
	/* every reason has a message */
	for (int e = PROM_E_NONE; e <= PROM_E_ABORTED; e++)
		assert_true(strlen(prom_strerror((enum prom_err)e)) > 5);
}

static void test_bad_list_bounded(void **state)
{
	(void)state;
	char text[8192];
	size_t off = 0;
	for (int i = 0; i < 40; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "bad line %d\n", i);
	off += (size_t)snprintf(text + off, sizeof(text) - off, "ok 1\n");
	assert_int_equal(parse(text), 0);
	assert_int_equal(ST.bad_lines, 40);
	assert_int_equal(ST.nbad, PROM_BAD_RECORDED);
	assert_int_equal(ST.bad[PROM_BAD_RECORDED - 1].line, PROM_BAD_RECORDED);
	assert_int_equal(R.n, 1);
	assert_int_equal(R.s[0].line, 41);
}

static void test_limits(void **state)
{
	(void)state;
	struct prom_limits lim;
	prom_limits_default(&lim);
	assert_int_equal(lim.max_line, PROM_DEFAULT_MAX_LINE);
	assert_int_equal(lim.max_labels, PROM_DEFAULT_MAX_LABELS);
	assert_int_equal(lim.max_body, PROM_DEFAULT_MAX_BODY);

	/* line length: the limit counts the bytes before the line end (CR excluded) */
	lim.max_line = 10;
	assert_int_equal(parse_lim("abcdef 123\r\nabcdef 1234\nz 1\n", &lim), 0);
	assert_int_equal(R.n, 2);
	assert_string_equal(R.s[0].name, "abcdef");
	assert_string_equal(R.s[1].name, "z");
	assert_int_equal(ST.bad_lines, 1);
	assert_int_equal(ST.bad[0].line, 2);
	assert_int_equal(ST.bad[0].reason, PROM_E_LINE_TOO_LONG);
	assert_int_equal(ST.bad[0].col, 11);

	/* label count */
	prom_limits_default(&lim);
	lim.max_labels = 2;
	assert_int_equal(
	    parse_lim("m{a=\"1\",b=\"2\"} 1\nm{a=\"1\",b=\"2\",c=\"3\"} 2\nn 3\n", &lim), 0);
	assert_int_equal(R.n, 2);
	assert_int_equal(ST.bad_lines, 1);
	assert_int_equal(ST.bad[0].line, 2);
	assert_int_equal(ST.bad[0].reason, PROM_E_TOO_MANY_LABELS);
	lim.max_labels = 0;
	assert_int_equal(parse_lim("m 1\n", &lim), -EINVAL);
	lim.max_labels = PROM_LABELS_CAP + 1;
	assert_int_equal(parse_lim("m 1\n", &lim), -EINVAL);
	lim.max_labels = PROM_LABELS_CAP;
	assert_int_equal(parse_lim("m 1\n", &lim), 0);

	/* body size: refused whole, nothing parsed */
	prom_limits_default(&lim);
	lim.max_body = 8;
	assert_int_equal(parse_lim("m 1\nn 2\n", &lim), 0);
	assert_int_equal(R.n, 2);
	assert_int_equal(parse_lim("m 1\nn 22\n", &lim), -EFBIG);
	assert_int_equal(R.n, 0);
	assert_int_equal(ST.bytes, 9);
	assert_int_equal(ST.samples, 0);

	/* argument checks */
	assert_int_equal(prom_parse("m 1", 3, NULL, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(prom_parse(NULL, 3, NULL, NULL, NULL, &ST), -EINVAL);
	assert_int_equal(prom_parse("m 1", 3, NULL, NULL, NULL, &ST), 0);
	assert_int_equal(ST.samples, 1);
}

static void test_many_labels_default(void **state)
{
	(void)state;
	char text[16384];
	size_t off = (size_t)snprintf(text, sizeof(text), "m{");
	for (size_t i = 0; i < PROM_DEFAULT_MAX_LABELS + 1; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "l%zu=\"%zu\",", i, i);
	off += (size_t)snprintf(text + off, sizeof(text) - off, "} 1\n");
	memset(&R, 0, sizeof(R));
	assert_int_equal(prom_parse(text, off, NULL, NULL, NULL, &ST), 0);
	assert_int_equal(ST.samples, 0);
	assert_int_equal(ST.bad[0].reason, PROM_E_TOO_MANY_LABELS);
}

static void test_callback_stops(void **state)
{
	(void)state;
	memset(&R, 0, sizeof(R));
	R.stop_after = 2;
	const char *t = "a 1\nb 2\nc 3\n";
	assert_int_equal(prom_parse(t, strlen(t), NULL, record, &R, &ST), -ECANCELED);
	assert_int_equal(R.n, 2);
	assert_int_equal(ST.samples, 2);
}

/* The slices point into the caller's buffer, never into a copy. */
static int check_zero_copy(const struct prom_sample *s, void *ud)
{
	const char *buf = ud;
	assert_true(s->name.ptr >= buf && s->name.ptr < buf + 64);
	for (size_t i = 0; i < s->nlabels; i++)
		assert_true(s->labels[i].value.ptr > buf && s->labels[i].value.ptr < buf + 64);
	return 0;
}

static void test_zero_copy(void **state)
{
	(void)state;
	const char buf[64] = "m{a=\"x\",b=\"y\"} 1\n";
	struct prom_stats st;
	assert_int_equal(prom_parse(buf, strlen(buf), NULL, check_zero_copy, (void *)buf, &st), 0);
	assert_int_equal(st.samples, 1);
}

/* Bytes after the length are never read: parse a prefix of a buffer whose tail is garbage. */
static void test_length_respected(void **state)
{
	(void)state;
	const char buf[] = "m{a=\"x\"} 12345";
	for (size_t len = 0; len <= strlen(buf); len++) {
		char *copy = malloc(len ? len : 1); /* exact size: ASan catches any overread */
		assert_non_null(copy);
		memcpy(copy, buf, len);
		struct prom_stats st;
		assert_int_equal(prom_parse(copy, len, NULL, NULL, NULL, &st), 0);
		assert_int_equal(st.samples + st.bad_lines, len ? 1 : 0);
		free(copy);
	}
}

/* The man page states the limits the code has. */
static void test_man_page_limits(void **state)
{
	(void)state;
	FILE *f = fopen("man/gpuhealth.1", "r");
	/* the whole page (it outgrew a 64 KiB buffer, which cut off the section read below) */
	size_t cap = 1024 * 1024;
	char *text = malloc(cap), want[128];
	size_t n;
	assert_non_null(f);
	assert_non_null(text);
	n = fread(text, 1, cap - 1, f);
	fclose(f);
	assert_true(n < cap - 1);
	text[n] = '\0';
	assert_non_null(strstr(text, ".SH PROMETHEUS INPUT"));
	snprintf(want, sizeof(want), "%zu bytes per line", PROM_DEFAULT_MAX_LINE);
	if (!strstr(text, want))
		fail_msg("man page lacks '%s'", want);
	snprintf(want, sizeof(want), "%zu labels per sample", PROM_DEFAULT_MAX_LABELS);
	if (!strstr(text, want))
		fail_msg("man page lacks '%s'", want);
	assert_int_equal(PROM_DEFAULT_MAX_BODY % (1024 * 1024), 0);
	snprintf(want, sizeof(want), "%zu MiB per scrape", PROM_DEFAULT_MAX_BODY / (1024 * 1024));
	if (!strstr(text, want))
		fail_msg("man page lacks '%s'", want);
	free(text);
}

/* ---- the label-set cache: the same samples as without it, and ids that keep their promise */

struct trace {
	char *text; /* every sample, serialized */
	size_t len, cap;
	char *lab[PROM_CACHE_SLOTS]; /* label text last given to each id */
	size_t hits, news;
};

static void tput(struct trace *t, const char *p, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->text = realloc(t->text, t->cap);
		assert_non_null(t->text);
	}
	memcpy(t->text + t->len, p, n);
	t->len += n;
	t->text[t->len] = '\0';
}

static char *labels_text(const struct prom_sample *s)
{
	struct trace t = {0};
	for (size_t i = 0; i < s->nlabels; i++) {
		tput(&t, s->labels[i].name.ptr, s->labels[i].name.len);
		tput(&t, s->labels[i].escaped ? "=\\" : "=", s->labels[i].escaped ? 2 : 1);
		tput(&t, s->labels[i].value.ptr, s->labels[i].value.len);
		tput(&t, "\x01", 1);
	}
	if (!t.text)
		tput(&t, "", 0);
	return t.text;
}

static int trace_cb(const struct prom_sample *s, void *ud)
{
	struct trace *t = ud;
	char *lt = labels_text(s);
	char head[512];
	int n = snprintf(head, sizeof(head), "%zu %.*s %.17g %d %d %lld %d %d %.*s|", s->line,
	                 (int)s->name.len, s->name.ptr, s->value.d, (int)s->value.form,
	                 (int)s->has_timestamp, (long long)s->timestamp_ms, (int)s->type,
	                 (int)s->has_help, (int)s->help.len, s->help.ptr ? s->help.ptr : "");
	tput(t, head, (size_t)n);
	tput(t, lt, strlen(lt));
	tput(t, "\n", 1);
	if (s->label_set >= 0) {
		assert_true(s->label_set < PROM_CACHE_SLOTS);
		if (s->label_set_new) {
			free(t->lab[s->label_set]);
			t->lab[s->label_set] = lt;
			t->news++;
			return 0;
		}
		/* the promise: the labels of the sample that last got this id, byte for byte */
		assert_non_null(t->lab[s->label_set]);
		if (strcmp(t->lab[s->label_set], lt) != 0)
			fail_msg("line %zu: label set %d is not the one it stands for", s->line,
			         s->label_set);
		t->hits++;
	} else {
		assert_false(s->label_set_new);
	}
	free(lt);
	return 0;
}

static void trace_free(struct trace *t)
{
	free(t->text);
	for (size_t i = 0; i < PROM_CACHE_SLOTS; i++)
		free(t->lab[i]);
	memset(t, 0, sizeof(*t));
}

/* Parses text with and without the cache (twice with it: the cache forgets the body before);
 * returns the hits. */
static size_t same_with_cache(struct prom_cache *c, const char *text, size_t len)
{
	struct trace a = {0}, b = {0};
	struct prom_stats sa, sb;
	assert_int_equal(prom_parse(text, len, NULL, trace_cb, &a, &sa), 0);
	assert_int_equal(a.hits + a.news, 0); /* no cache, no ids */
	for (int round = 0; round < 2; round++) {
		trace_free(&b);
		assert_int_equal(prom_parse_cached(text, len, NULL, trace_cb, &b, &sb, c), 0);
		assert_int_equal(sa.samples, sb.samples);
		assert_int_equal(sa.bad_lines, sb.bad_lines);
		assert_int_equal(sa.lines, sb.lines);
		assert_memory_equal(sa.bad, sb.bad, sizeof(sa.bad));
		if (a.len != b.len || (a.len && memcmp(a.text, b.text, a.len) != 0))
			fail_msg("the cache changed the samples:\n%s\n---\n%s", a.text, b.text);
	}
	size_t hits = b.hits;
	trace_free(&a);
	trace_free(&b);
	return hits;
}

static void test_label_cache(void **state)
{
	(void)state;
	struct prom_cache *c = prom_cache_new();
	assert_non_null(c);
	/* an exporter's shape: each family for every GPU in the same order */
	const char *gpus =
	    "# HELP a A\n# TYPE a gauge\n"
	    "a{gpu=\"0\",UUID=\"GPU-0\"} 1\na{gpu=\"1\",UUID=\"GPU-1\"} 2\n"
	    "a{gpu=\"2\",UUID=\"GPU-2\"} 3\n"
	    "# HELP b B\n# TYPE b counter\n"
	    "b{gpu=\"0\",UUID=\"GPU-0\"} 4\nb{gpu=\"1\",UUID=\"GPU-1\"} 5 1700000000000\n"
	    "b{gpu=\"2\",UUID=\"GPU-2\"} 6\n"
	    "c{gpu=\"0\",UUID=\"GPU-0\"} 7\nc{gpu=\"1\",UUID=\"GPU-1\"} 8\n"
	    "c{gpu=\"2\",UUID=\"GPU-2\"} 9\n";
	assert_int_equal(same_with_cache(c, gpus, strlen(gpus)), 6);
	/* what could fool a byte comparison: '}' and escapes inside values, a longer label set
	 * that starts like the cached one, bad lines (never cached), blanks, CRLF, 17 labels
	 * (not cached), a family that comes back, values right after '}' */
	const char *tricky =
	    "m{a=\"x}\"} 1\nm{a=\"y\"} 2\nm{a=\"q\\\"}\"} 3\n"
	    "n{a=\"x}\"} 4\nn{a=\"y\",b=\"1\"} 5\nn{a=\"q\\\"}\"} 6\n"
	    "o{a=\"x}\"}7\no{a=\"y\"} 8\r\no{a=\"q\\\"}\"} 9\n"
	    "p{a=\"z\"} bad\np{a=\"z\"} 10\np{a=\"q\\\"}\"}\n"
	    "q{a=\"z\"} 11\nq{a=\"z\"} 12\nq{a=\"q\\\"}\"} x 13\n"
	    "r{ a = \"1\" , } 14\nr{a=\"1\",a=\"2\"} 15\n"
	    "s{ a = \"1\" , } 16\ns{a=\"1\",a=\"2\"} 17\ns{a=\"1\"} 18\n"
	    "t{l1=\"1\",l2=\"2\",l3=\"3\",l4=\"4\",l5=\"5\",l6=\"6\",l7=\"7\",l8=\"8\",l9=\"9\","
	    "l10=\"10\",l11=\"11\",l12=\"12\",l13=\"13\",l14=\"14\",l15=\"15\",l16=\"16\",l17="
	    "\"17\"} 19\n"
	    "u{l1=\"1\",l2=\"2\",l3=\"3\",l4=\"4\",l5=\"5\",l6=\"6\",l7=\"7\",l8=\"8\",l9=\"9\","
	    "l10=\"10\",l11=\"11\",l12=\"12\",l13=\"13\",l14=\"14\",l15=\"15\",l16=\"16\",l17="
	    "\"17\"} 20\n"
	    "m{a=\"x}\"} 21\nm{a=\"y\"} 22\n"
	    "v 23\nv{} 24\nw{} 25\nw{a=\"x}\"} 26\n"
	    "x{a=\"x}\"";
	size_t hits = same_with_cache(c, tricky, strlen(tricky));
	assert_true(hits >= 6);
	/* every prefix of both (a line cut anywhere) */
	for (size_t n = 0; n <= strlen(tricky); n++)
		same_with_cache(c, tricky, n);
	for (size_t n = 0; n <= strlen(gpus); n++)
		same_with_cache(c, gpus, n);
	prom_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_unescape_bounds),
	    cmocka_unit_test(test_specials_in_quotes),
	    cmocka_unit_test(test_spaces),
	    cmocka_unit_test(test_special_values),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_numbers_vs_strtod),
	    cmocka_unit_test(test_timestamps),
	    cmocka_unit_test(test_crlf_and_final_newline),
	    cmocka_unit_test(test_help_type),
	    cmocka_unit_test(test_bad_lines_counted),
	    cmocka_unit_test(test_bad_list_bounded),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_many_labels_default),
	    cmocka_unit_test(test_callback_stops),
	    cmocka_unit_test(test_zero_copy),
	    cmocka_unit_test(test_length_respected),
	    cmocka_unit_test(test_man_page_limits),
	    cmocka_unit_test(test_label_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
