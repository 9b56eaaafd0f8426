/* utf8: the one strict decoder (RFC 3629) textfile, textcell and the API share. Checked
 * against an encoder written here: every scalar value round-trips, and of every 1-, 2- and
 * 3-byte sequence exactly the canonical encodings decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/utf8.h"

/* The canonical encoding of a scalar value (not a surrogate, at most U+10FFFF). */
static size_t encode(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

static bool scalar(int64_t cp)
{
	return cp >= 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
}

static void every_scalar_round_trips(void **state)
{
	(void)state;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		if (!scalar(cp))
			continue;
		unsigned char b[5] = {0};
		size_t n = encode(cp, b);
		int32_t got = -2;
		assert_int_equal(utf8_decode(b, n, &got), n);
		assert_int_equal(got, (int32_t)cp);
		/* the same with the NUL-terminated form */
		assert_int_equal(utf8_decode(b, SIZE_MAX, &got), n);
		assert_int_equal(got, (int32_t)cp);
		if (cp > 0) {
			assert_true(utf8_valid((const char *)b));
			/* cut short by n: invalid, and never more than what was given */
			for (size_t k = 1; k < n; k++) {
				size_t used = utf8_decode(b, k, &got);
				assert_int_equal(got, -1);
				assert_true(used >= 1 && used <= k);
			}
		}
	}
}

/* Of every sequence of len bytes, exactly the canonical encodings of scalars of that length
 * decode (overlongs, surrogates, above U+10FFFF, stray and missing continuation bytes do not). */
static void sequences_of(size_t len)
{
	uint32_t end = 1u << (8 * len);
	for (uint32_t x = 0; x < end; x++) {
		unsigned char b[4];
		for (size_t i = 0; i < len; i++)
			b[i] = (unsigned char)(x >> (8 * (len - 1 - i)));
		int32_t cp;
		size_t used = utf8_decode(b, len, &cp);
		assert_true(used >= 1 && used <= len);
		if (cp >= 0) { /* what decodes is the canonical encoding of a scalar */
			unsigned char again[4];
			assert_true(scalar(cp));
			assert_int_equal(encode((uint32_t)cp, again), used);
			assert_memory_equal(again, b, used);
		}
	}
}

static void all_short_sequences(void **state)
{
	(void)state;
	sequences_of(1);
	sequences_of(2);
	sequences_of(3);
	/* and the count of 3-byte sequences that decode whole is the count of 3-byte scalars */
	size_t whole = 0;
	for (uint32_t x = 0xe00000; x <= 0xefffff; x++) {
		unsigned char b[3] = {(unsigned char)(x >> 16), (unsigned char)(x >> 8),
		                      (unsigned char)x};
		int32_t cp;
		if (utf8_decode(b, 3, &cp) == 3 && cp >= 0)
			whole++;
	}
	assert_int_equal(whole, (0x10000 - 0x800) - 0x800); /* U+0800..U+FFFF less surrogates */
}

static void named_cases(void **state)
{
	(void)state;
	static const struct {
		const char *bytes;
		size_t used; /* what utf8_decode says it took */
		int32_t cp;
	} c[] = {
	    {"\xc2\x80", 2, 0x80},
	    {"\xdf\xbf", 2, 0x7ff},
	    {"\xe0\xa0\x80", 3, 0x800},
	    {"\xed\x9f\xbf", 3, 0xd7ff},
	    {"\xee\x80\x80", 3, 0xe000},
	    {"\xef\xbf\xbf", 3, 0xffff},
	    {"\xf0\x90\x80\x80", 4, 0x10000},
	    {"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
	    {"\xc0\x80", 1, -1},         /* overlong NUL */
	    {"\xc1\xbf", 1, -1},         /* overlong */
	    {"\xe0\x9f\xbf", 1, -1},     /* overlong */
	    {"\xf0\x8f\xbf\xbf", 1, -1}, /* overlong */
	    {"\xed\xa0\x80", 1, -1},     /* a surrogate */
	    {"\xf4\x90\x80\x80", 1, -1}, /* above U+10FFFF */
	    {"\xf5\x80\x80\x80", 1, -1}, /* never a lead byte */
	    {"\x80", 1, -1},             /* a lone continuation */
	    {"\xe2\x82", 2, -1},         /* cut short by the NUL */
	    {"\xf0\x9f\x98", 3, -1},     /* cut short by the NUL */
	    {"\xe2\x28\xa1", 1, -1},     /* a bad second byte */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int32_t cp = -2;
		size_t used = utf8_decode((const unsigned char *)c[i].bytes, SIZE_MAX, &cp);
		assert_int_equal(used, c[i].used);
		assert_int_equal(cp, c[i].cp);
		assert_int_equal(utf8_valid(c[i].bytes), c[i].cp >= 0);
	}
	assert_true(utf8_valid(""));
	assert_true(utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
	assert_false(utf8_valid("ok\xc3"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_scalar_round_trips),
	    cmocka_unit_test(all_short_sequences),
	    cmocka_unit_test(named_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
