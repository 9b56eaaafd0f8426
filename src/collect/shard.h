/*
 * shard: which targets a collector keeps when N collectors share one target list
 * (`--shard I/N`), the way Prometheus' `hashmod` relabeling splits targets: the MD5 of the
 * target's URL, its last 8 bytes read as a big-endian unsigned 64-bit number, modulo N; the
 * collector keeps the targets whose value is I. So N collectors over the same list scrape
 * every target exactly once (no overlap, no gap), each list change re-splits by the same rule,
 * and a Prometheus job with `action: hashmod, modulus: N, source_labels: [__address__]`-like
 * rules over the full URL picks the same targets.
 */
#ifndef GPUHEALTH_SHARD_H
#define GPUHEALTH_SHARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHARD_MAX 65536u /* most collectors in one split */

/* A shard: index of count (count 0: no sharding, every target kept). */
struct shard {
	unsigned index, count;
};

/* The accepted syntax, for messages. */
#define SHARD_SYNTAX "I/N with 0 <= I < N <= 65536, e.g. --shard 0/3 (the first of three)"

/* Parses "I/N" (decimal, no blanks). Returns 0, or -EINVAL with the reason and the accepted
 * syntax in err (who: how the value was given, e.g. "--shard"). */
int shard_parse(const char *spec, const char *who, struct shard *out, char *err, size_t errlen);

/* MD5 of the bytes (16 bytes into digest). */
void shard_md5(const void *data, size_t len, unsigned char digest[16]);

/* Prometheus' hashmod value of s before the modulus: the last 8 bytes of MD5(s), big-endian. */
uint64_t shard_hash(const char *s);

/* --shard / SHARD / shard of a loaded configuration (checked when it was loaded: cli_load);
 * count 0 when not given. */
struct config;
struct shard shard_from_config(const struct config *cfg);

/* Whether the shard keeps url (always with count 0). */
bool shard_keeps(const struct shard *sh, const char *url);

#endif
