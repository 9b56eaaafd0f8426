/* hash: FNV-1a 64 over bytes and strings, whole or continued from an earlier value.
 *
 * gpuhealth's hashes start from HASH_FNV1A64_GH_BASIS, not from FNV's published offset basis:
 * the one its first hash was written with (the published basis, 14695981039346656037, with its
 * last decimal digit lost) and every later one copied. They mix like FNV-1a (xor the byte as
 * unsigned, then multiply by the prime), so the functions here give them by being continued
 * from that basis. Keep it where a site has it: the dead-letter payload hash is stored in the
 * dead-letter topic and table, and the others choose table buckets and scrape phases. */
#ifndef GPUHEALTH_HASH_H
#define GPUHEALTH_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A64_BASIS    0xcbf29ce484222325ull /* FNV's offset basis */
#define HASH_FNV1A64_PRIME    0x100000001b3ull
#define HASH_FNV1A64_GH_BASIS 1469598103934665603ull /* gpuhealth's: see above */

/* FNV-1a 64 of len bytes at p (p may be NULL when len is 0). */
uint64_t hash_fnv1a64(const void *p, size_t len);
/* FNV-1a 64 of the string s, its NUL not included. */
uint64_t hash_fnv1a64_str(const char *s);
/* h continued over len bytes at p: hash_fnv1a64_more(hash_fnv1a64(a, n), b, m) is the hash of
 * a then b; hash_fnv1a64_more(basis, p, len) hashes from another basis. */
uint64_t hash_fnv1a64_more(uint64_t h, const void *p, size_t len);
/* h continued over the string s, its NUL not included. */
uint64_t hash_fnv1a64_str_more(uint64_t h, const char *s);

#endif
