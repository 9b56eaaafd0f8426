/* textcell: text from the network made safe for a terminal and measured in display columns
 * (issue #24): ASCII kept byte for byte, control characters and invalid UTF-8 as '?', UTF-8
 * widths (wide CJK 2, combining marks 0) whatever the process' locale, '?' per non-ASCII
 * character for a terminal that is not UTF-8, cut at a character boundary, padded by columns. */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/textcell.h"

static void check(enum textcell_charset cs, const char *src, int cols, bool pad, const char *want,
                  int want_width)
{
	char buf[256];
	int w = -1;
	size_t n = textcell_fit(cs, src, cols, pad, buf, sizeof(buf), &w);
	assert_string_equal(buf, want);
	assert_int_equal(n, strlen(want));
	assert_int_equal(w, want_width);
}

static void ascii_unchanged(void **state)
{
	(void)state;
	for (int cs = TEXTCELL_ASCII; cs <= TEXTCELL_UTF8; cs++) {
		check(cs, "training/llm-7b-worker-3", 40, false, "training/llm-7b-worker-3", 24);
		check(cs, "training/llm-7b-worker-3", 8, false, "training", 8);
		check(cs, "abc", 6, true, "abc   ", 6);
		check(cs, "", 3, true, "   ", 3);
		check(cs, NULL, 2, false, "", 0);
		check(cs, "abc", 0, true, "", 0);
		check(cs, "abc", -3, true, "", 0);
		char all[96];
		for (int i = 0; i < 95; i++)
			all[i] = (char)(0x20 + i);
		all[95] = '\0';
		check(cs, all, 95, false, all, 95);
		assert_int_equal(textcell_width(cs, all), 95);
	}
}

static void controls(void **state)
{
	(void)state;
	for (int cs = TEXTCELL_ASCII; cs <= TEXTCELL_UTF8; cs++) {
		/* C0, newline, tab, ESC (a terminal escape), DEL */
		check(cs, "a\nb\tc\x1b[2Jd\x7f", 20, false, "a?b?c?[2Jd?", 11);
		/* C1 (U+0085 NEL, U+009B CSI) as UTF-8 */
		check(cs, "x\xc2\x85y\xc2\x9b", 20, false, "x?y?", 4);
		/* U+2028 line separator, U+202E right-to-left override, U+2066 isolate */
		check(cs, "p\xe2\x80\xa8q\xe2\x80\xaer\xe2\x81\xa6", 20, false, "p?q?r?", 6);
	}
}

static void invalid_utf8(void **state)
{
	(void)state;
	for (int cs = TEXTCELL_ASCII; cs <= TEXTCELL_UTF8; cs++) {
		check(cs,
		      "a\xff"
		      "b",
		      20, false, "a?b", 3); /* never valid */
		check(cs,
		      "a\xc0\xaf"
		      "b",
		      20, false, "a??b", 4); /* overlong '/' */
		check(cs,
		      "a\xed\xa0\x80"
		      "b",
		      20, false, "a???b", 5); /* a surrogate */
		check(cs,
		      "a\xf4\x90\x80\x80"
		      "b",
		      20, false, "a????b", 6);              /* above U+10FFFF */
		check(cs, "a\xe4\xb8", 20, false, "a?", 2); /* cut short at the end */
		check(cs,
		      "\xe4\xb8"
		      "b",
		      20, false, "?b", 2);                 /* cut short before 'b' */
		check(cs, "\x80\x80", 20, false, "??", 2); /* lone continuations */
	}
}

static void utf8_widths(void)
{
	/* "é" (2 bytes, 1 column), "日本" (3 bytes and 2 columns each), "e\u0301" (a combining
	 * acute: 1 column), "😀" (U+1F600, 4 bytes, 2 columns) */
	check(TEXTCELL_UTF8, "caf\xc3\xa9", 10, false, "caf\xc3\xa9", 4);
	check(TEXTCELL_UTF8, "caf\xc3\xa9", 6, true, "caf\xc3\xa9  ", 6);
	check(TEXTCELL_UTF8, "\xe6\x97\xa5\xe6\x9c\xac", 10, true, "\xe6\x97\xa5\xe6\x9c\xac      ",
	      10);
	/* a wide character that does not fit whole is left out, the pad fills its column */
	check(TEXTCELL_UTF8, "\xe6\x97\xa5\xe6\x9c\xac", 3, false, "\xe6\x97\xa5", 2);
	check(TEXTCELL_UTF8, "\xe6\x97\xa5\xe6\x9c\xac", 3, true, "\xe6\x97\xa5 ", 3);
	check(TEXTCELL_UTF8, "e\xcc\x81x", 2, false, "e\xcc\x81x", 2);
	check(TEXTCELL_UTF8, "\xf0\x9f\x98\x80!", 3, false, "\xf0\x9f\x98\x80!", 3);
	assert_int_equal(textcell_width(TEXTCELL_UTF8, "ns/\xe6\x97\xa5\xe6\x9c\xac-caf\xc3\xa9"),
	                 12);
	/* cut inside "é": never half a character */
	check(TEXTCELL_UTF8, "caf\xc3\xa9", 3, false, "caf", 3);
}

static void utf8_widths_c_locale(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C");
	assert_int_equal(textcell_locale_charset(), TEXTCELL_ASCII);
	utf8_widths();
}

static void utf8_widths_utf8_locale(void **state)
{
	(void)state;
	/* the build machines have C.UTF-8 (glibc >= 2.35 and Debian's have it); its absence is a
	 * failure here, not a skip */
	assert_non_null(setlocale(LC_CTYPE, "C.UTF-8"));
	assert_int_equal(textcell_locale_charset(), TEXTCELL_UTF8);
	utf8_widths();
	setlocale(LC_CTYPE, "C");
}

static void ascii_terminal(void **state)
{
	(void)state;
	/* one '?' per character, one column each: not one per byte */
	check(TEXTCELL_ASCII, "caf\xc3\xa9", 10, false, "caf?", 4);
	check(TEXTCELL_ASCII, "\xe6\x97\xa5\xe6\x9c\xac/x", 10, true,
	      "?"
	      "?/x      ",
	      10);
	check(TEXTCELL_ASCII, "\xf0\x9f\x98\x80!", 1, false, "?", 1);
	assert_int_equal(textcell_width(TEXTCELL_ASCII, "ns/\xe6\x97\xa5\xe6\x9c\xac"), 5);
}

static void small_buffer(void **state)
{
	(void)state;
	char buf[5];
	int w;
	/* cut to the buffer at a character boundary, still NUL-terminated */
	size_t n = textcell_fit(TEXTCELL_UTF8, "ab\xe6\x97\xa5", 10, true, buf, sizeof(buf), &w);
	assert_string_equal(buf, "ab  ");
	assert_int_equal(n, 4);
	assert_int_equal(w, 4);
	n = textcell_fit(TEXTCELL_UTF8, "abc", 10, false, buf, 1, &w);
	assert_string_equal(buf, "");
	assert_int_equal(n, 0);
	assert_int_equal(w, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ascii_unchanged),
	    cmocka_unit_test(controls),
	    cmocka_unit_test(invalid_utf8),
	    cmocka_unit_test(utf8_widths_c_locale),
	    cmocka_unit_test(utf8_widths_utf8_locale),
	    cmocka_unit_test(ascii_terminal),
	    cmocka_unit_test(small_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
