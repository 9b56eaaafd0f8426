#include "sink/rollup.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fields.h"
#include "core/hash.h"
#include "sink/event_row.h"
#include "store/pgcopy.h"

/* The gpu_metrics_1min columns (schema/001): gauges get min/max/sum/n, counters min/max. */
static const char *const gauges[] = {"gpu_temp", "memory_temp",      "power_usage",
                                     "gpu_util", "mem_copy_util",    "fb_used",
                                     "sm_clock", "gr_engine_active", "tensor_active"};
static const char *const counters[] = {"total_energy",
                                       "pcie_replay",
                                       "ecc_sbe_volatile",
                                       "ecc_dbe_volatile",
                                       "ecc_sbe_aggregate",
                                       "ecc_dbe_aggregate",
                                       "correctable_remapped_rows",
                                       "uncorrectable_remapped_rows",
                                       "power_violation",
                                       "thermal_violation",
                                       "nvlink_crc_flit_errors",
                                       "nvlink_crc_data_errors"};
#define NG        (sizeof(gauges) / sizeof(gauges[0]))
#define NC        (sizeof(counters) / sizeof(counters[0]))
#define MINUTE_US 60000000LL

struct gauge_acc {
	double min, max, sum;
	int32_t n;
};

struct counter_acc {
	int64_t min, max;
};

/* One (GPU, minute), allocated on its own with the key after it: the sink keeps the groups of
 * its open minutes (100,000s in a large fleet), so an empty slot costs a pointer, not a group. */
struct group {
	int64_t minute; /* microseconds since 2000-01-01 UTC, a whole minute */
	size_t keylen;
	int32_t samples;
	uint32_t cset; /* bit j: counter j has a value */
	struct gauge_acc g[NG];
	struct counter_acc c[NC];
	char key[];
};
_Static_assert(NC <= 32, "cset holds a bit per counter");

struct rollup {
	struct group **slots; /* open addressing; NULL = empty */
	size_t cap, n;
};

/* Per column of a tuple (index into the tuple's fields): -1 skip, else gauge or counter slot. */
static int col_gauge[128], col_counter[128];
static size_t ncols;
static char columns_sql[4096];
static bool layout_ok;
static pthread_once_t layout_once = PTHREAD_ONCE_INIT;

static void build_layout(void)
{
	size_t nf;
	fields_all(&nf);
	ncols = EVENT_ROW_FIXED_COLUMNS + nf + 1;
	layout_ok = ncols <= sizeof(col_gauge) / sizeof(col_gauge[0]);
	for (size_t i = 0; i < sizeof(col_gauge) / sizeof(col_gauge[0]); i++)
		col_gauge[i] = col_counter[i] = -1;
	for (size_t i = 0; layout_ok && i < NG; i++) {
		const struct field_def *d = fields_by_key(gauges[i]);
		layout_ok = d && d->kind == FIELD_GAUGE;
		if (layout_ok)
			col_gauge[EVENT_ROW_FIXED_COLUMNS + fields_index(d)] = (int)i;
	}
	for (size_t i = 0; layout_ok && i < NC; i++) {
		const struct field_def *d = fields_by_key(counters[i]);
		layout_ok = d && d->kind == FIELD_COUNTER;
		if (layout_ok)
			col_counter[EVENT_ROW_FIXED_COLUMNS + fields_index(d)] = (int)i;
	}
	size_t o = (size_t)snprintf(columns_sql, sizeof(columns_sql), "(gpu_key, minute, samples");
	for (size_t i = 0; i < NG && o < sizeof(columns_sql); i++)
		o += (size_t)snprintf(columns_sql + o, sizeof(columns_sql) - o,
		                      ", %s_min, %s_max, %s_sum, %s_n", gauges[i], gauges[i],
		                      gauges[i], gauges[i]);
	for (size_t i = 0; i < NC && o < sizeof(columns_sql); i++)
		o += (size_t)snprintf(columns_sql + o, sizeof(columns_sql) - o, ", %s_min, %s_max",
		                      counters[i], counters[i]);
	if (o < sizeof(columns_sql))
		snprintf(columns_sql + o, sizeof(columns_sql) - o, ")");
}

const char *rollup_columns(void)
{
	pthread_once(&layout_once, build_layout);
	return columns_sql;
}

int rollup_create(struct rollup **out)
{
	pthread_once(&layout_once, build_layout);
	struct rollup *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*out = r; /* caller owns */
	return 0;
}

void rollup_reset(struct rollup *r)
{
	for (size_t i = 0; i < r->cap && r->n; i++) {
		if (r->slots[i]) {
			free(r->slots[i]);
			r->slots[i] = NULL;
			r->n--;
		}
	}
	r->n = 0;
}

void rollup_destroy(struct rollup *r)
{
	if (!r)
		return;
	rollup_reset(r);
	free(r->slots);
	free(r);
}

size_t rollup_groups(const struct rollup *r)
{
	return r->n;
}

static uint64_t hash_group(const char *k, size_t len, int64_t minute)
{
	uint64_t h = hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, k, len); /* FNV-1a, our basis */
	h ^= (uint64_t)minute;
	h *= 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

static size_t probe(struct group *const *slots, size_t cap, const char *k, size_t len,
                    int64_t minute)
{
	size_t j = hash_group(k, len, minute) & (cap - 1);
	while (slots[j] && (slots[j]->minute != minute || slots[j]->keylen != len ||
	                    memcmp(slots[j]->key, k, len) != 0))
		j = (j + 1) & (cap - 1);
	return j;
}

static int grow(struct rollup *r)
{
	size_t cap = r->cap ? r->cap * 2 : 1024;
	struct group **s = calloc(cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (size_t i = 0; i < r->cap; i++)
		if (r->slots[i])
			s[probe(s, cap, r->slots[i]->key, r->slots[i]->keylen,
			        r->slots[i]->minute)] = r->slots[i];
	free(r->slots);
	r->slots = s;
	r->cap = cap;
	return 0;
}

static struct group *lookup(struct rollup *r, const char *k, size_t len, int64_t minute)
{
	if ((r->n + 1) * 10 > r->cap * 7 && grow(r))
		return NULL;
	struct group **slot = &r->slots[probe(r->slots, r->cap, k, len, minute)];
	if (*slot)
		return *slot;
	struct group *g = calloc(1, sizeof(*g) + (len ? len : 1));
	if (!g)
		return NULL;
	memcpy(g->key, k, len);
	g->keylen = len;
	g->minute = minute;
	*slot = g; /* the table owns it */
	r->n++;
	return g;
}

static uint32_t rd32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return ntohl(v);
}

static uint64_t rd64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* One field of a tuple: its bytes (NULL when SQL NULL) and length. */
struct fld {
	const unsigned char *p;
	uint32_t len;
};

int rollup_add(struct rollup *r, const char *rows, size_t len)
{
	if (!layout_ok)
		return -EINVAL;
	const unsigned char *p = (const unsigned char *)rows, *end = p + len;
	struct fld f[128];
	while (p < end) {
		if (end - p < 2)
			return -EINVAL;
		size_t nf = (size_t)(((unsigned)p[0] << 8) | p[1]);
		p += 2;
		if (nf != ncols)
			return -EINVAL;
		for (size_t i = 0; i < nf; i++) {
			if (end - p < 4)
				return -EINVAL;
			uint32_t l = rd32(p);
			p += 4;
			if (l == 0xffffffffu) {
				f[i].p = NULL;
				f[i].len = 0;
				continue;
			}
			if ((size_t)(end - p) < l)
				return -EINVAL;
			f[i].p = p;
			f[i].len = l;
			p += l;
		}
		if (!f[0].p || f[0].len != 8 || !f[1].p)
			return -EINVAL;
		int64_t t = (int64_t)rd64(f[0].p);
		int64_t minute = t / MINUTE_US * MINUTE_US;
		if (t < 0 && minute != t)
			minute -= MINUTE_US; /* floor, as date_trunc does */
		struct group *g = lookup(r, (const char *)f[1].p, f[1].len, minute);
		if (!g)
			return -ENOMEM;
		g->samples++;
		for (size_t i = EVENT_ROW_FIXED_COLUMNS; i < nf; i++) {
			if (!f[i].p)
				continue;
			if (col_gauge[i] >= 0) {
				if (f[i].len != 8)
					return -EINVAL;
				uint64_t bits = rd64(f[i].p);
				double d;
				memcpy(&d, &bits, sizeof(d));
				struct gauge_acc *a = &g->g[col_gauge[i]];
				if (!a->n || d < a->min)
					a->min = d;
				if (!a->n || d > a->max)
					a->max = d;
				a->sum += d;
				a->n++;
			} else if (col_counter[i] >= 0) {
				if (f[i].len != 8)
					return -EINVAL;
				int64_t v = (int64_t)rd64(f[i].p);
				uint32_t bit = 1u << col_counter[i];
				struct counter_acc *a = &g->c[col_counter[i]];
				if (!(g->cset & bit) || v < a->min)
					a->min = v;
				if (!(g->cset & bit) || v > a->max)
					a->max = v;
				g->cset |= bit;
			}
		}
	}
	return 0;
}

static int group_cmp(const void *a, const void *b)
{
	const struct group *x = *(const struct group *const *)a,
	                   *y = *(const struct group *const *)b;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	return x->minute < y->minute ? -1 : x->minute > y->minute;
}

/* The groups in (key, minute) order: two sinks' transactions that merge the same groups lock
 * them in the same order, so they wait for each other instead of deadlocking. */
int rollup_copy_range(const struct rollup *r, int64_t from, int64_t to, struct strbuf *out)
{
	int rc = 0;
	const struct group **order = malloc((r->n ? r->n : 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < r->cap && n < r->n; i++)
		if (r->slots[i] && r->slots[i]->minute >= from && r->slots[i]->minute < to)
			order[n++] = r->slots[i];
	qsort(order, n, sizeof(*order), group_cmp);
	for (size_t i = 0; !rc && i < n; i++) {
		const struct group *g = order[i];
		rc = pgcopy_tuple(out, (int16_t)(3 + 4 * NG + 2 * NC));
		if (!rc)
			rc = pgcopy_text(out, g->key, g->keylen);
		if (!rc)
			rc = pgcopy_int8(out, g->minute); /* timestamptz: microseconds since 2000 */
		if (!rc)
			rc = pgcopy_int4(out, g->samples);
		for (size_t j = 0; !rc && j < NG; j++) {
			const struct gauge_acc *a = &g->g[j];
			if (a->n) {
				rc = pgcopy_float8(out, a->min);
				if (!rc)
					rc = pgcopy_float8(out, a->max);
				if (!rc)
					rc = pgcopy_float8(out, a->sum);
			} else {
				rc = pgcopy_nulls(out, 3);
			}
			if (!rc)
				rc = pgcopy_int4(out, a->n);
		}
		for (size_t j = 0; !rc && j < NC; j++) {
			const struct counter_acc *a = &g->c[j];
			if (g->cset & (1u << j)) {
				rc = pgcopy_int8(out, a->min);
				if (!rc)
					rc = pgcopy_int8(out, a->max);
			} else {
				rc = pgcopy_nulls(out, 2);
			}
		}
	}
	free(order);
	return rc;
}

int rollup_copy(const struct rollup *r, struct strbuf *out)
{
	return rollup_copy_range(r, INT64_MIN, INT64_MAX, out);
}

/* dst += src, the same merge as gpuhealth_merge_rollups(). */
static void merge_group(struct group *d, const struct group *s)
{
	d->samples += s->samples;
	for (size_t j = 0; j < NG; j++) {
		const struct gauge_acc *b = &s->g[j];
		struct gauge_acc *a = &d->g[j];
		if (!b->n)
			continue;
		if (!a->n || b->min < a->min)
			a->min = b->min;
		if (!a->n || b->max > a->max)
			a->max = b->max;
		a->sum += b->sum;
		a->n += b->n;
	}
	for (size_t j = 0; j < NC; j++) {
		uint32_t bit = 1u << j;
		if (!(s->cset & bit))
			continue;
		if (!(d->cset & bit) || s->c[j].min < d->c[j].min)
			d->c[j].min = s->c[j].min;
		if (!(d->cset & bit) || s->c[j].max > d->c[j].max)
			d->c[j].max = s->c[j].max;
		d->cset |= bit;
	}
}

int rollup_merge(struct rollup *dst, const struct rollup *src, int64_t from)
{
	for (size_t i = 0; i < src->cap; i++) {
		const struct group *g = src->slots[i];
		if (!g || g->minute < from)
			continue;
		struct group *d = lookup(dst, g->key, g->keylen, g->minute);
		if (!d)
			return -ENOMEM;
		merge_group(d, g);
	}
	return 0;
}

uint64_t rollup_samples(const struct rollup *r, int64_t from, int64_t to)
{
	uint64_t n = 0;
	for (size_t i = 0; i < r->cap; i++)
		if (r->slots[i] && r->slots[i]->minute >= from && r->slots[i]->minute < to)
			n += (uint64_t)r->slots[i]->samples;
	return n;
}

int rollup_drop_below(struct rollup *r, int64_t to)
{
	if (!r->cap)
		return 0;
	struct group **ns = calloc(r->cap, sizeof(*ns));
	if (!ns)
		return -ENOMEM; /* nothing dropped: the groups below stay, unused */
	size_t kept = 0;
	for (size_t i = 0; i < r->cap; i++) {
		struct group *g = r->slots[i];
		if (!g)
			continue;
		if (g->minute < to) {
			free(g);
		} else {
			ns[probe(ns, r->cap, g->key, g->keylen, g->minute)] = g;
			kept++;
		}
	}
	free(r->slots);
	r->slots = ns;
	r->n = kept;
	return 0;
}

int64_t rollup_minute(double t)
{
	/* seconds since 1970 -> microseconds since 2000, floored to the minute */
	double us = (t - 946684800.0) * 1e6;
	double m = floor(us / (double)MINUTE_US) * (double)MINUTE_US;
	if (m <= (double)INT64_MIN)
		return INT64_MIN;
	if (m >= (double)INT64_MAX)
		return INT64_MAX;
	return (int64_t)m;
}
