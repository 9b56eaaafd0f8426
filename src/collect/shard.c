#include "collect/shard.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

/* ------------------------------------------------------------------ MD5 (RFC 1321) */

struct md5 {
	uint32_t h[4];
	uint64_t len; /* bytes */
	unsigned char buf[64];
	size_t nbuf;
};

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
static const unsigned char R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                    5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static uint32_t rotl(uint32_t x, unsigned c)
{
	return (x << c) | (x >> (32 - c));
}

static void md5_block(struct md5 *m, const unsigned char *p)
{
	uint32_t w[16];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
		       (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
	uint32_t a = m->h[0], b = m->h[1], c = m->h[2], d = m->h[3];
	for (unsigned i = 0; i < 64; i++) {
		uint32_t f;
		unsigned g;
		if (i < 16) {
			f = (b & c) | (~b & d);
			g = i;
		} else if (i < 32) {
			f = (d & b) | (~d & c);
			g = (5 * i + 1) % 16;
		} else if (i < 48) {
			f = b ^ c ^ d;
			g = (3 * i + 5) % 16;
		} else {
			f = c ^ (b | ~d);
			g = (7 * i) % 16;
		}
		uint32_t t = d;
		d = c;
		c = b;
		b = b + rotl(a + f + K[i] + w[g], R[i]);
		a = t;
	}
	m->h[0] += a;
	m->h[1] += b;
	m->h[2] += c;
	m->h[3] += d;
}

static void md5_add(struct md5 *m, const unsigned char *p, size_t n)
{
	m->len += n;
	while (n) {
		size_t k = 64 - m->nbuf < n ? 64 - m->nbuf : n;
		memcpy(m->buf + m->nbuf, p, k);
		m->nbuf += k;
		p += k;
		n -= k;
		if (m->nbuf == 64) {
			md5_block(m, m->buf);
			m->nbuf = 0;
		}
	}
}

void shard_md5(const void *data, size_t len, unsigned char digest[16])
{
	struct md5 m = {{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}, 0, {0}, 0};
	md5_add(&m, data, len);
	uint64_t bits = m.len * 8;
	unsigned char pad[72] = {0x80};
	size_t npad = m.nbuf < 56 ? 56 - m.nbuf : 120 - m.nbuf;
	for (int i = 0; i < 8; i++)
		pad[npad + (size_t)i] = (unsigned char)(bits >> (8 * i));
	md5_add(&m, pad, npad + 8);
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 4; j++)
			digest[4 * i + j] = (unsigned char)(m.h[i] >> (8 * j));
}

/* ------------------------------------------------------------------ shards */

uint64_t shard_hash(const char *s)
{
	unsigned char d[16];
	shard_md5(s, strlen(s), d);
	uint64_t v = 0;
	for (int i = 8; i < 16; i++)
		v = v << 8 | d[i];
	return v;
}

struct shard shard_from_config(const struct config *cfg)
{
	struct shard sh = {0, 0};
	char err[8];
	const char *s = config_str(cfg, "shard");
	if (s)
		(void)shard_parse(s, "", &sh, err, sizeof(err)); /* checked by cli_load */
	return sh;
}

bool shard_keeps(const struct shard *sh, const char *url)
{
	return !sh || sh->count == 0 || shard_hash(url) % sh->count == sh->index;
}

static int number(const char *s, const char *end, unsigned long *out)
{
	if (s == end || end - s > 9)
		return -1;
	unsigned long v = 0;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	*out = v;
	return 0;
}

int shard_parse(const char *spec, const char *who, struct shard *out, char *err, size_t errlen)
{
	const char *s = spec ? spec : "";
	const char *slash = strchr(s, '/');
	unsigned long i = 0, n = 0;
	const char *why = NULL;
	if (!slash || number(s, slash, &i) || number(slash + 1, s + strlen(s), &n))
		why = "not two whole numbers I/N";
	else if (n == 0)
		why = "the shard count N must be at least 1";
	else if (n > SHARD_MAX)
		why = "the shard count N is too large";
	else if (i >= n)
		why = "the shard index I must be below the count N (shards are numbered from 0)";
	if (why) {
		snprintf(err, errlen, "%s '%s': %s; give %s", who, s, why, SHARD_SYNTAX);
		return -EINVAL;
	}
	out->index = (unsigned)i;
	out->count = (unsigned)n;
	return 0;
}
