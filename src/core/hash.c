/* hash: FNV-1a 64 (http://www.isthe.com/chongo/tech/comp/fnv/). */
#include "core/hash.h"

uint64_t hash_fnv1a64_more(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * HASH_FNV1A64_PRIME;
	return h;
}

uint64_t hash_fnv1a64_str_more(uint64_t h, const char *s)
{
	for (const unsigned char *b = (const unsigned char *)s; *b; b++)
		h = (h ^ *b) * HASH_FNV1A64_PRIME;
	return h;
}

uint64_t hash_fnv1a64(const void *p, size_t len)
{
	return hash_fnv1a64_more(HASH_FNV1A64_BASIS, p, len);
}

uint64_t hash_fnv1a64_str(const char *s)
{
	return hash_fnv1a64_str_more(HASH_FNV1A64_BASIS, s);
}
