/* shard: --shard I/N, Prometheus' hashmod split of the targets (MD5 of the URL, its last 8
 * bytes big-endian, modulo N). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "collect/shard.h"

static void hex(const unsigned char d[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* RFC 1321's test suite */
static void md5_vectors(void **state)
{
	(void)state;
	static const char *const in[] = {
	    "",
	    "a",
	    "abc",
	    "message digest",
	    "abcdefghijklmnopqrstuvwxyz",
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	    ("1234567890123456789012345678901234567890123456789012345678901234567890123456789"
	     "0")};
	static const char *const want[] = {
	    "d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661",
	    "900150983cd24fb0d6963f7d28e17f72", "f96b697d7cb7938d525a2f31aaf161d0",
	    "c3fcd3d76192e4007dfb496cca67e13b", "d174ab98d277d9f5a5611c2c9f419d9f",
	    "57edf4a22be3c955ac49da2e2107b67a"};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		unsigned char d[16];
		char h[33];
		shard_md5(in[i], strlen(in[i]), d);
		hex(d, h);
		assert_string_equal(h, want[i]);
	}
	/* lengths around the 56- and 64-byte padding edges */
	static const struct {
		size_t n;
		const char *md5;
	} edge[] = {
	    {55, "04364420e25c512fd958a70738aa8f72"},  {56, "668a72d5ba17f08e62dabcafad6db14b"},
	    {63, "7dc2ca208106a2f703567bdff99d8981"},  {64, "c1bb4f81d892b2d57947682aeb252456"},
	    {65, "1bc932052302d074bdec39795fe00cf6"},  {119, "ab347a5f68c8a443cfcddc633f12c24f"},
	    {120, "fb98667f98096de92620b64f46e1c5b5"}, {128, "d69cb61a6ee87200676eb0d4b90edbcb"}};
	char buf[128];
	memset(buf, 'x', sizeof(buf));
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
		unsigned char d[16];
		char h[33];
		shard_md5(buf, edge[i].n, d);
		hex(d, h);
		assert_string_equal(h, edge[i].md5);
	}
}

/* values of Python's int.from_bytes(hashlib.md5(s).digest()[8:], "big") */
static void hash_is_prometheus_hashmod(void **state)
{
	(void)state;
	assert_true(shard_hash("") == 16825458760271544958ull);
	assert_true(shard_hash("abc") == 15462616177412505458ull);
	assert_true(shard_hash("http://127.0.0.1:9400/metrics") == 11883418724895056571ull);
	struct shard s = {11883418724895056571ull % 3, 3};
	assert_true(shard_keeps(&s, "http://127.0.0.1:9400/metrics"));
	s.index = (s.index + 1) % 3;
	assert_false(shard_keeps(&s, "http://127.0.0.1:9400/metrics"));
	struct shard none = {0, 0};
	assert_true(shard_keeps(&none, "http://x/metrics"));
	assert_true(shard_keeps(NULL, "http://x/metrics"));
}

/* N shards over one list: every URL in exactly one, and none empty for a large list */
static void shards_partition_the_list(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= 7; n++) {
		size_t per[7] = {0};
		for (int u = 0; u < 700; u++) {
			char url[64];
			snprintf(url, sizeof(url), "http://node%03d.example:9400/metrics", u);
			int owners = 0;
			for (unsigned i = 0; i < n; i++) {
				struct shard s = {i, n};
				if (shard_keeps(&s, url)) {
					owners++;
					per[i]++;
				}
			}
			assert_int_equal(owners, 1);
		}
		for (unsigned i = 0; i < n; i++)
			assert_true(per[i] > 700 / n / 2); /* roughly even */
	}
}

static void parse(void **state)
{
	(void)state;
	struct shard s = {9, 9};
	char err[256] = "";
	assert_int_equal(shard_parse("0/1", "--shard", &s, err, sizeof(err)), 0);
	assert_int_equal(s.index, 0);
	assert_int_equal(s.count, 1);
	assert_int_equal(shard_parse("2/3", "--shard", &s, err, sizeof(err)), 0);
	assert_int_equal(s.index, 2);
	assert_int_equal(s.count, 3);
	static const char *const bad[] = {
	    "3/3",  "1/0",  "x",    "",      "1",       "/3",           "1/",
	    "-1/3", "1/3x", " 1/3", "1/3/4", "0/65537", "99999999999/3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(shard_parse(bad[i], "--shard", &s, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "--shard '"));
		assert_non_null(strstr(err, "I/N with 0 <= I < N"));
	}
	shard_parse("3/3", "SHARD", &s, err, sizeof(err));
	assert_non_null(strstr(err, "SHARD '3/3': the shard index I must be below the count N"));
	shard_parse("1/0", "--shard", &s, err, sizeof(err));
	assert_non_null(strstr(err, "at least 1"));
	assert_int_equal(s.index, 2); /* unchanged on error */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(md5_vectors),
	    cmocka_unit_test(hash_is_prometheus_hashmod),
	    cmocka_unit_test(shards_partition_the_list),
	    cmocka_unit_test(parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
