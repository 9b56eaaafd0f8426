#include "core/fields.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/hash.h"

/* Every row of fields.def at its position: the event contract's fields first (0..n-1, the
 * contract's order), then the EXTRA ones (exporter fields an event carries in "extra"). */
static const struct field_def table[] = {
#define GH_FIELD(id, dcgm, alias, key, kind, unit, ptype, help, pos, ev, hs, hsid)                 \
	[pos] = {dcgm, alias, key, kind, unit},
#include "core/fields.def"
#undef GH_FIELD
};

/* How many rows, and how many EVENT rows: constants counted from fields.def. */
#define GH_EV_EVENT +1
#define GH_EV_EXTRA
enum {
	ALL_ROWS = 0
#define GH_FIELD(id, dcgm, alias, key, kind, unit, ptype, help, pos, ev, hs, hsid) +1
#include "core/fields.def"
#undef GH_FIELD
	,
	EVENT_ROWS = 0
#define GH_FIELD(id, dcgm, alias, key, kind, unit, ptype, help, pos, ev, hs, hsid) GH_EV_##ev
#include "core/fields.def"
#undef GH_FIELD
};
#undef GH_EV_EVENT
#undef GH_EV_EXTRA
#define NFIELDS ((size_t)EVENT_ROWS)

/* With no position given twice (-Werror=override-init), as many slots as rows means no gap. */
_Static_assert(sizeof(table) / sizeof(table[0]) == ALL_ROWS,
               "fields.def: the positions are not 0..rows-1");

const struct field_def *fields_all(size_t *n)
{
	*n = NFIELDS;
	return table;
}

static bool eq(const char *s, const char *name, size_t len)
{
	return s && strlen(s) == len && memcmp(s, name, len) == 0;
}

/* Hash tables over the names (built once): index + 1 per slot, 0 empty. The table holds about
 * 40 fields (with aliases ~50 names); 256 slots keep probes short. */
#define SLOTS 256
static unsigned char by_key[SLOTS], by_dcgm[SLOTS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static size_t hash(const char *s, size_t n)
{
	/* FNV-1a from our basis, then the high bits folded in */
	uint64_t h = hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, s, n);
	h ^= h >> 32;
	return (size_t)(h * 0x9E3779B97F4A7C15ull >> 56) & (SLOTS - 1);
}

static void put(unsigned char *t, const char *name, size_t i)
{
	size_t j = hash(name, strlen(name));
	while (t[j])
		j = (j + 1) & (SLOTS - 1);
	t[j] = (unsigned char)(i + 1);
}

static void build(void)
{
	for (size_t i = 0; i < NFIELDS; i++) {
		put(by_key, table[i].key, i);
		put(by_dcgm, table[i].dcgm, i);
		if (table[i].alias)
			put(by_dcgm, table[i].alias, i);
	}
}

const struct field_def *fields_by_dcgm(const char *name, size_t len)
{
	pthread_once(&once, build);
	for (size_t j = hash(name, len); by_dcgm[j]; j = (j + 1) & (SLOTS - 1)) {
		const struct field_def *f = &table[by_dcgm[j] - 1];
		if (eq(f->dcgm, name, len) || eq(f->alias, name, len))
			return f;
	}
	return NULL;
}

const struct field_def *fields_by_keyn(const char *key, size_t len)
{
	pthread_once(&once, build);
	for (size_t j = hash(key, len); by_key[j]; j = (j + 1) & (SLOTS - 1)) {
		const struct field_def *f = &table[by_key[j] - 1];
		if (eq(f->key, key, len))
			return f;
	}
	return NULL;
}

const struct field_def *fields_by_key(const char *key)
{
	return fields_by_keyn(key, strlen(key));
}

size_t fields_index(const struct field_def *f)
{
	return (size_t)(f - table);
}

_Static_assert(NFIELDS < 255 && 2 * NFIELDS < SLOTS / 2,
               "fields: the name hash tables are too small");
