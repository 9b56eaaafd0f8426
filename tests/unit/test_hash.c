/* hash: FNV-1a 64 against the published test vectors, the continued form, bytes above 0x7f
 * mixed as unsigned, and gpuhealth's basis against the loop every site had before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/hash.h"

/* The loop the sites had, kept here as the reference the helpers must match bit for bit. */
static uint64_t old_site_hash(const char *k)
{
	uint64_t h = 1469598103934665603ull;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
	return h;
}

static void published_vectors_of_bytes(void **state)
{
	(void)state;
	assert_true(hash_fnv1a64("", 0) == 0xcbf29ce484222325ull);
	assert_true(hash_fnv1a64(NULL, 0) == 0xcbf29ce484222325ull);
	assert_true(hash_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(hash_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
	assert_true(HASH_FNV1A64_BASIS == 14695981039346656037ull);
	assert_true(HASH_FNV1A64_PRIME == 1099511628211ull);
}

static void published_vectors_of_strings(void **state)
{
	(void)state;
	assert_true(hash_fnv1a64_str("") == 0xcbf29ce484222325ull);
	assert_true(hash_fnv1a64_str("a") == 0xaf63dc4c8601ec8cull);
	assert_true(hash_fnv1a64_str("foobar") == 0x85944171f73967e8ull);
}

static void continued_from_a_value(void **state)
{
	(void)state;
	assert_true(hash_fnv1a64_more(hash_fnv1a64("foo", 3), "bar", 3) == 0x85944171f73967e8ull);
	assert_true(hash_fnv1a64_str_more(hash_fnv1a64_str("foo"), "bar") == 0x85944171f73967e8ull);
	assert_true(hash_fnv1a64_more(42, NULL, 0) == 42);
	assert_true(hash_fnv1a64_str_more(42, "") == 42);
}

static void bytes_above_0x7f_and_nul(void **state)
{
	(void)state;
	/* bytes above 0x7f are mixed as unsigned, whatever char's sign */
	assert_true(hash_fnv1a64("\xff\x80\xc3\xa9", 4) == 0xbef50967068236e6ull);
	assert_true(hash_fnv1a64_str("\xff\x80\xc3\xa9") == 0xbef50967068236e6ull);
	/* the bytes form goes past a NUL, the string form stops at it */
	assert_true(hash_fnv1a64("a\0b", 3) == 0xe5d29919042666b2ull);
	assert_true(hash_fnv1a64_str("a\0b") == hash_fnv1a64_str("a"));
}

static void gpuhealth_basis_is_the_old_loop(void **state)
{
	(void)state;
	assert_true(HASH_FNV1A64_GH_BASIS == 0x14650fb0739d0383ull);
	static const char *keys[] = {
	    "", "a", "foobar", "GPU-0", "http://h:9400/metrics", "\xff\x80\xc3\xa9"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint64_t want = old_site_hash(keys[i]);
		assert_true(hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, keys[i]) == want);
		assert_true(hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, keys[i], strlen(keys[i])) ==
		            want);
	}
}

static void gpuhealth_basis_pinned(void **state)
{
	(void)state;
	/* pinned: the dead-letter topic and table hold this hash */
	assert_true(hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, "", 0) == 0x14650fb0739d0383ull);
	assert_true(hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, "a", 1) == 0x44bd8ad473cd9906ull);
	assert_true(hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, "foobar", 6) == 0x88fad7c0a8ff07f2ull);
	assert_true(hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, "a\0b", 3) == 0xe02908510caa06f0ull);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(published_vectors_of_bytes),
	    cmocka_unit_test(published_vectors_of_strings),
	    cmocka_unit_test(continued_from_a_value),
	    cmocka_unit_test(bytes_above_0x7f_and_nul),
	    cmocka_unit_test(gpuhealth_basis_is_the_old_loop),
	    cmocka_unit_test(gpuhealth_basis_pinned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
