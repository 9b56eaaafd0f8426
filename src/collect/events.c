#include "collect/events.h"

#include "collect/idlabel.h"
#include "collect/jsonw.h"
#include "core/fields.h"
#include "core/grow.h"
#include "core/hash.h"
#include "core/utf8.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Blank sentinels of dcgm-exporter (event-v1: DCGM_INT64_BLANK .. +15, DCGM_FP64_BLANK). */
#define BLANK_INT_MIN UINT64_C(9223372036854775792)
#define BLANK_FP_MIN  140737488355328.0
/* Longest identity label value kept (decoded), with its NUL. */
#define LABEL_TEXT_MAX 1024

/* The identity strings of an event, in the contract's order within "gpu" (hostname apart). */
enum sid {
	S_HOST,
	S_MODEL,
	S_PCI,
	S_DEVICE,
	S_DRIVER,
	S_MIG_PROFILE,
	S_POD, /* workload: null when the label is absent or empty */
	S_NAMESPACE,
	S_CONTAINER,
	S_N
};

/* Fields of the event filled from labels: a bit per field, 1u << s for the strings. */
#define F_INDEX  (1u << S_N)
#define F_MIG_ID (1u << (S_N + 1))

/* A string in the scrape's arena (ev->text); len == SREF_NULL: JSON null. */
#define SREF_NULL UINT32_MAX
struct sref {
	uint32_t off, len;
};

/* A value: null, an exact integer or a real. */
enum vkind { V_NULL, V_INT, V_REAL };
struct val {
	enum vkind kind;
	union {
		int64_t i;
		double d;
	} u;
};

/* One value of an event, in the order the samples came: a known field (id < FIELDS_MAX) or
 * an extra series (id - FIELDS_MAX: its name in ev->xnames). */
#define FIELDS_MAX 128
struct entry {
	uint32_t id;
	struct val v;
};

/* The storage of one event is kept across scrapes (entries' buffer reused); only the counts
 * are reset. No jansson object is made unless events_json() asks for one. */
struct gpu_event {
	char key[EVENTS_KEY_MAX];
	size_t keylen, idlen; /* idlen: the UUID part of key */
	unsigned filled;      /* enum fill bits */
	struct sref str[S_N];
	bool has_index, has_mig_id;
	int64_t index, mig_id;
	uint64_t known[FIELDS_MAX / 64]; /* known fields set */
	struct entry *e;                 /* owned, kept across scrapes */
	size_t ne, cap;
	size_t nmetrics;
	json_t *json; /* owned; made by events_json() */
};

/* An extra series name of this scrape (interned: one copy per name). */
struct xname {
	struct sref name;
	uint64_t hash;
};

struct events {
	struct events_enrich en; /* owned copy (events_enrich_copy); NULL members when unset */
	const struct events_enrich *target; /* borrowed: events_set_target() */
	char time[EVENTS_TIME_LEN];
	bool begun;
	struct gpu_event *gpus; /* [0, inited) have their buffers; [0, n) are this scrape's */
	size_t n, cap, inited;
	/* finding a sample's GPU: an exposition lists each family for every GPU in the same
	 * order, so the GPU after the last one found is tried first (next); otherwise an
	 * open-addressing table of key hash -> index + 1 (0: empty), cleared per scrape */
	size_t next;
	uint16_t slot[2 * EVENTS_MAX_GPUS];
	/* the last metric name looked up (samples come grouped by family) and what it is */
	const char *last_name;
	size_t last_len;
	uint32_t last_id; /* entry id, or UINT32_MAX: not a DCGM_FI_ name */
	/* per scrape: text of identity labels and extra names; extra names' table */
	char *text;
	size_t text_len, text_cap;
	struct xname *xn;
	size_t nxn, xcap;
	uint32_t *xslot; /* open addressing over xn: index + 1, 0 empty; xslots entries */
	size_t xslots;
	/* the (GPU, extra name) pairs set in this scrape, for duplicates in O(1) whatever the
	 * number of extra series: (gpu index + 1) << 32 | name id, 0 empty */
	uint64_t *xpair;
	size_t npair, pairs;
	/* a prom_parse_cached() label-set id -> the index of its GPU in this scrape, -1 unknown:
	 * a sample whose labels are the bytes of an earlier one is that GPU's without looking */
	int32_t lset[PROM_CACHE_SLOTS];
	struct events_stats st;
};

const char *events_skip_str(enum events_skip why)
{
	switch (why) {
	case EVENTS_SKIP_NO_UUID: return "no UUID label: cannot be put on a GPU";
	case EVENTS_SKIP_BAD_KEY: return "UUID or GPU_I_ID label unusable";
	case EVENTS_SKIP_DUPLICATE: return "field already set for this GPU (first kept)";
	case EVENTS_SKIP_TOO_MANY_GPUS: return "more GPUs than the limit";
	}
	return "unknown";
}

int events_enrich_copy(struct events_enrich *to, const struct events_enrich *from)
{
	const char *f[4] = {from->cluster, from->datacenter, from->rack, from->labels};
	char *d[4] = {NULL, NULL, NULL, NULL};
	for (int i = 0; i < 4; i++)
		if (f[i] && *f[i] && !(d[i] = strdup(f[i]))) {
			for (int k = 0; k < i; k++)
				free(d[k]);
			memset(to, 0, sizeof(*to));
			return -ENOMEM;
		}
	*to = (struct events_enrich){d[0], d[1], d[2], d[3]}; /* owned by the copy */
	return 0;
}

void events_enrich_clear(struct events_enrich *e)
{
	free((char *)e->cluster);
	free((char *)e->datacenter);
	free((char *)e->rack);
	free((char *)e->labels);
	memset(e, 0, sizeof(*e));
}

int events_create(struct events **out, const struct events_enrich *en)
{
	size_t nf = 0;
	(void)fields_all(&nf);
	if (nf > FIELDS_MAX)
		return -EINVAL; /* the known-field bitmap is too small: raise FIELDS_MAX */
	struct events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	if (en && events_enrich_copy(&ev->en, en)) {
		events_destroy(ev);
		return -ENOMEM;
	}
	*out = ev; /* the caller owns ev */
	return 0;
}

void events_set_target(struct events *ev, const struct events_enrich *en)
{
	ev->target = en;
}

static void drop_events(struct events *ev)
{
	for (size_t i = 0; i < ev->n; i++) {
		json_decref(ev->gpus[i].json);
		ev->gpus[i].json = NULL;
	}
	if (ev->n)
		memset(ev->slot, 0, sizeof(ev->slot));
	if (ev->nxn)
		memset(ev->xslot, 0, ev->xslots * sizeof(*ev->xslot));
	if (ev->npair)
		memset(ev->xpair, 0, ev->pairs * sizeof(*ev->xpair));
	ev->npair = 0;
	ev->n = 0;
	ev->next = 0;
	ev->nxn = 0;
	ev->text_len = 0;
	ev->last_name = NULL; /* it pointed into the last scrape's body */
	ev->last_len = 0;
}

#define SLOT_MASK (2 * EVENTS_MAX_GPUS - 1)

static uint64_t hash_bytes(const char *key, size_t len)
{
	uint64_t h = hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, key, len); /* FNV-1a, our basis */
	return h ^ (h >> 29);
}

/* The event of this key, or NULL; *slot_out: where a new one's index goes. */
static struct gpu_event *find_gpu(struct events *ev, const char *key, size_t keylen,
                                  size_t *slot_out)
{
	if (ev->next < ev->n) {
		struct gpu_event *g = &ev->gpus[ev->next];
		if (g->keylen == keylen && memcmp(g->key, key, keylen) == 0) {
			ev->next++;
			return g;
		}
	}
	size_t s = (size_t)hash_bytes(key, keylen) & SLOT_MASK;
	for (; ev->slot[s]; s = (s + 1) & SLOT_MASK) {
		size_t i = ev->slot[s] - 1u;
		struct gpu_event *g = &ev->gpus[i];
		if (g->keylen == keylen && memcmp(g->key, key, keylen) == 0) {
			ev->next = i + 1;
			return g;
		}
	}
	*slot_out = s; /* the table is at most half full: there is always an empty slot */
	return NULL;
}

void events_destroy(struct events *ev)
{
	if (!ev)
		return;
	drop_events(ev);
	for (size_t i = 0; i < ev->inited; i++)
		free(ev->gpus[i].e);
	free(ev->gpus);
	free(ev->text);
	free(ev->xn);
	free(ev->xslot);
	free(ev->xpair);
	events_enrich_clear(&ev->en);
	free(ev);
}

static bool time_valid(const char *t)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (!t || strlen(t) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pat[i])
			return false;
	}
	return true;
}

int events_begin(struct events *ev, const char *time)
{
	if (!ev || !time_valid(time))
		return -EINVAL;
	drop_events(ev);
	memset(ev->lset, 0xff, sizeof(ev->lset));
	memset(&ev->st, 0, sizeof(ev->st));
	memcpy(ev->time, time, EVENTS_TIME_LEN);
	ev->begun = true;
	return 0;
}

int events_format_time(const struct timespec *ts, char out[EVENTS_TIME_LEN])
{
	struct tm tm;
	char date[24];
	if (!ts || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L || !gmtime_r(&ts->tv_sec, &tm))
		return -EINVAL;
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999 ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
		return -EINVAL;
	unsigned ms = (unsigned)(ts->tv_nsec / 1000000L);
	memcpy(out, date, 19);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
	return 0;
}

static void skipped(struct events *ev, const struct prom_sample *s, enum events_skip why)
{
	struct events_stats *st = &ev->st;
	switch (why) {
	case EVENTS_SKIP_NO_UUID: st->no_uuid++; break;
	case EVENTS_SKIP_BAD_KEY: st->bad_key++; break;
	case EVENTS_SKIP_DUPLICATE: st->duplicates++; break;
	case EVENTS_SKIP_TOO_MANY_GPUS: st->too_many_gpus++; break;
	}
	if (st->nskipped < EVENTS_SKIPPED_RECORDED) {
		struct events_skipped *k = &st->skipped[st->nskipped++];
		size_t n = s->name.len < sizeof(k->name) - 1 ? s->name.len : sizeof(k->name) - 1;
		k->line = s->line;
		k->reason = why;
		memcpy(k->name, s->name.ptr, n);
		k->name[n] = '\0';
	}
}

/* A label value as decoded text in buf; false when it does not fit. */
static bool label_text(const struct prom_label *l, char *buf, size_t size, size_t *len)
{
	if (!l->escaped) {
		if (l->value.len >= size)
			return false;
		memcpy(buf, l->value.ptr, l->value.len);
		buf[l->value.len] = '\0';
		*len = l->value.len;
		return true;
	}
	return prom_unescape(l->value, buf, size, len) == 0;
}

/* True when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF) without a NUL byte: what a JSON string, PostgreSQL's jsonb and C consumers take. */
static bool text_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		int32_t cp;
		if (p[i] == 0)
			return false;
		if (p[i] < 0x80) { /* the common case, without a call */
			i++;
			continue;
		}
		i += utf8_decode(p + i, n - i, &cp);
		if (cp < 0)
			return false;
	}
	return true;
}

/* Appends s[0..n) to the scrape's text arena. 0 or -ENOMEM. */
static int text_add(struct events *ev, const char *s, size_t n, struct sref *out)
{
	if (n >= UINT32_MAX / 2 || ev->text_len + n > UINT32_MAX / 2)
		return -ENOMEM;
	if (grow_array((void **)&ev->text, &ev->text_cap, ev->text_len + n, 1, 4096))
		return -ENOMEM;
	memcpy(ev->text + ev->text_len, s, n);
	out->off = (uint32_t)ev->text_len;
	out->len = (uint32_t)n;
	ev->text_len += n;
	return 0;
}

/* A label value as an identity string of the event; left null (and counted) when it is too
 * long, not UTF-8, or holds a NUL byte. 0 or -ENOMEM. */
static int label_string(struct events *ev, const struct prom_label *l, struct sref *out)
{
	char buf[LABEL_TEXT_MAX];
	size_t len;
	if (label_text(l, buf, sizeof(buf), &len) && text_ok(buf, len))
		return text_add(ev, buf, len, out);
	ev->st.bad_labels++;
	return 0;
}

/* A label value written as a whole number; false (counted) otherwise. */
static bool label_integer(struct events *ev, const struct prom_label *l, int64_t *out)
{
	int64_t v = 0;
	const char *p = l->value.ptr;
	size_t n = l->value.len;
	if (n == 0 || n > 18 || l->escaped)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto bad;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
bad:
	ev->st.bad_labels++;
	return false;
}

/* Fills the identity fields of g that are still null from the labels of one sample. */
static int fill_ident(struct events *ev, struct gpu_event *g, const struct prom_label *id[ID_N])
{
	int rc = 0;
	const struct prom_label *host = id[ID_HOST] ? id[ID_HOST] : id[ID_HOST_OLD];
	const struct prom_label *model = id[ID_MODEL] ? id[ID_MODEL] : id[ID_MODEL2];
	const bool mig = id[ID_MIG_ID] && id[ID_MIG_ID]->value.len > 0;

	/* each string from its label (the MIG profile on a MIG instance only); the workload's
	 * only when not "": dcgm-exporter writes "" when no pod holds the GPU (then null) */
	const struct prom_label *from[S_N] = {
	    [S_HOST] = host,
	    [S_MODEL] = model,
	    [S_PCI] = id[ID_PCI],
	    [S_DEVICE] = id[ID_DEVICE],
	    [S_DRIVER] = id[ID_DRIVER],
	    [S_MIG_PROFILE] = mig ? id[ID_MIG_PROFILE] : NULL,
	    [S_POD] = id[ID_POD],
	    [S_NAMESPACE] = id[ID_NAMESPACE],
	    [S_CONTAINER] = id[ID_CONTAINER],
	};
	for (int s = 0; !rc && s < S_N; s++) {
		const struct prom_label *l = from[s];
		if ((g->filled & (1u << s)) || !l || (s >= S_POD && l->value.len == 0))
			continue;
		g->filled |= 1u << s;
		rc = label_string(ev, l, &g->str[s]);
	}
	if (!rc && !(g->filled & F_INDEX) && id[ID_INDEX]) {
		g->filled |= F_INDEX;
		g->has_index = label_integer(ev, id[ID_INDEX], &g->index);
	}
	if (!rc && mig && !(g->filled & F_MIG_ID)) {
		g->filled |= F_MIG_ID;
		g->has_mig_id = label_integer(ev, id[ID_MIG_ID], &g->mig_id);
	}
	return rc;
}

/* A new event for key with every identity field null. */
static int new_event(struct events *ev, const char *key, size_t keylen, size_t idlen,
                     struct gpu_event **out)
{
	if (grow_array((void **)&ev->gpus, &ev->cap, ev->n + 1, sizeof(*ev->gpus), 8))
		return -ENOMEM;
	if (ev->n == ev->inited) {
		memset(&ev->gpus[ev->n], 0, sizeof(ev->gpus[0]));
		ev->inited++;
	}
	struct gpu_event *g = &ev->gpus[ev->n++];
	memcpy(g->key, key, keylen);
	g->key[keylen] = '\0';
	g->keylen = keylen;
	g->idlen = idlen;
	g->filled = 0;
	for (size_t k = 0; k < S_N; k++)
		g->str[k].len = SREF_NULL;
	g->has_index = g->has_mig_id = false;
	memset(g->known, 0, sizeof(g->known));
	g->ne = 0;
	g->nmetrics = 0;
	g->json = NULL;
	*out = g;
	return 0;
}

/* The value of a sample per event v1. */
static struct val value_of(struct events *ev, const struct prom_value *v)
{
	struct val r = {.kind = V_NULL};
	switch (v->form) {
	case PROM_FORM_SPECIAL: ev->st.nonfinite++; return r;
	case PROM_FORM_INT:
		if (v->exact && v->negative) {
			r.kind = V_INT;
			r.u.i = v->i64;
			return r;
		}
		if (v->exact && v->u64 >= BLANK_INT_MIN && v->u64 <= (uint64_t)INT64_MAX) {
			ev->st.blank++;
			return r;
		}
		if (v->exact && v->u64 <= (uint64_t)INT64_MAX) {
			r.kind = V_INT;
			r.u.i = v->i64;
			return r;
		}
		break; /* beyond 64 bits: a real */
	case PROM_FORM_FLOAT: break;
	}
	if (!isfinite(v->d)) {
		ev->st.nonfinite++;
		return r;
	}
	if (v->form == PROM_FORM_FLOAT && v->d >= BLANK_FP_MIN) {
		ev->st.blank++;
		return r;
	}
	if (v->form == PROM_FORM_INT)
		ev->st.inexact++;
	r.kind = V_REAL;
	r.u.d = v->d;
	return r;
}

/* The id of an extra series name in this scrape (interned on first sight). */
static int extra_id(struct events *ev, const char *name, size_t len, uint32_t *out)
{
	uint64_t h = hash_bytes(name, len);
	if (ev->xslots == 0 || (ev->nxn + 1) * 2 > ev->xslots) {
		size_t ns = ev->xslots ? ev->xslots * 2 : 256;
		uint32_t *t = calloc(ns, sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < ev->nxn; i++) {
			size_t s = (size_t)ev->xn[i].hash & (ns - 1);
			while (t[s])
				s = (s + 1) & (ns - 1);
			t[s] = (uint32_t)i + 1;
		}
		free(ev->xslot);
		ev->xslot = t;
		ev->xslots = ns;
	}
	size_t s = (size_t)h & (ev->xslots - 1);
	for (; ev->xslot[s]; s = (s + 1) & (ev->xslots - 1)) {
		const struct xname *x = &ev->xn[ev->xslot[s] - 1];
		if (x->hash == h && x->name.len == len &&
		    memcmp(ev->text + x->name.off, name, len) == 0) {
			*out = FIELDS_MAX + ev->xslot[s] - 1;
			return 0;
		}
	}
	if (grow_array((void **)&ev->xn, &ev->xcap, ev->nxn + 1, sizeof(*ev->xn), 64))
		return -ENOMEM;
	struct xname *x = &ev->xn[ev->nxn];
	if (text_add(ev, name, len, &x->name) != 0)
		return -ENOMEM;
	x->hash = h;
	ev->xslot[s] = (uint32_t)++ev->nxn;
	*out = FIELDS_MAX + (uint32_t)(ev->nxn - 1);
	return 0;
}

static size_t pair_slot(const uint64_t *t, size_t size, uint64_t key)
{
	size_t s = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (size - 1);
	while (t[s] && t[s] != key)
		s = (s + 1) & (size - 1);
	return s;
}

/* Records that GPU gi has extra name id; *dup: it had it already. 0 or -ENOMEM. */
static int pair_add(struct events *ev, size_t gi, uint32_t id, bool *dup)
{
	uint64_t key = ((uint64_t)(gi + 1) << 32) | id;
	if (ev->pairs == 0 || (ev->npair + 1) * 2 > ev->pairs) {
		size_t ns = ev->pairs ? ev->pairs * 2 : 1024;
		uint64_t *t = calloc(ns, sizeof(*t));
		if (!t)
			return -ENOMEM;
		for (size_t i = 0; i < ev->pairs; i++)
			if (ev->xpair[i])
				t[pair_slot(t, ns, ev->xpair[i])] = ev->xpair[i];
		free(ev->xpair);
		ev->xpair = t;
		ev->pairs = ns;
	}
	size_t s = pair_slot(ev->xpair, ev->pairs, key);
	*dup = ev->xpair[s] == key;
	if (!*dup) {
		ev->xpair[s] = key;
		ev->npair++;
	}
	return 0;
}

/* The entry id of a DCGM_FI_ name: its known field, or its extra name. */
static int name_id(struct events *ev, const struct prom_slice *name, uint32_t *out)
{
	if (ev->last_name && ev->last_len == name->len &&
	    memcmp(ev->last_name, name->ptr, name->len) == 0) {
		*out = ev->last_id;
		return 0;
	}
	const struct field_def *kf = fields_by_dcgm(name->ptr, name->len);
	if (kf) {
		*out = (uint32_t)fields_index(kf);
	} else {
		int rc = extra_id(ev, name->ptr, name->len, out);
		if (rc)
			return rc;
	}
	ev->last_name = name->ptr;
	ev->last_len = name->len;
	ev->last_id = *out;
	return 0;
}

int events_add(struct events *ev, const struct prom_sample *s)
{
	const struct prom_label *id[ID_N] = {NULL};
	const struct prom_label *uuid_l;
	struct gpu_event *g = NULL;
	char key[EVENTS_KEY_MAX];
	size_t keylen = 0, idlen;
	uint32_t eid;
	int rc = 0;

	if (!ev || !s || !ev->begun)
		return -EINVAL;
	ev->st.samples++;
	if (s->name.len <= 8 || memcmp(s->name.ptr, "DCGM_FI_", 8) != 0) {
		ev->st.not_dcgm++;
		return 0;
	}
	const int ls = s->label_set >= 0 && s->label_set < PROM_CACHE_SLOTS ? s->label_set : -1;
	if (ls >= 0 && !s->label_set_new && ev->lset[ls] >= 0) {
		g = &ev->gpus[ev->lset[ls]]; /* the labels of an earlier sample, byte for byte */
	} else {
		if (ls >= 0)
			ev->lset[ls] = -1; /* until this label set has a GPU */
		for (size_t i = 0; i < s->nlabels; i++) {
			const struct prom_slice ln = s->labels[i].name;
			int k = idlabel_of(ln.ptr, ln.len);
			if (k >= 0)
				id[k] = &s->labels[i];
		}
		uuid_l = id[ID_UUID] ? id[ID_UUID] : id[ID_GPU_UUID];
		if (!uuid_l || uuid_l->value.len == 0) {
			skipped(ev, s, EVENTS_SKIP_NO_UUID);
			return 0;
		}
		if (!label_text(uuid_l, key, sizeof(key), &keylen)) {
			skipped(ev, s, EVENTS_SKIP_BAD_KEY);
			return 0;
		}
		idlen = keylen;
		if (id[ID_MIG_ID] && id[ID_MIG_ID]->value.len > 0) {
			size_t ml;
			if (keylen + 2 > sizeof(key) ||
			    !label_text(id[ID_MIG_ID], key + keylen + 1, sizeof(key) - keylen - 1,
			                &ml)) {
				skipped(ev, s, EVENTS_SKIP_BAD_KEY);
				return 0;
			}
			key[keylen] = '/';
			keylen += 1 + ml;
		}
		size_t slot = 0;
		g = find_gpu(ev, key, keylen, &slot);
		if (!g) {
			if (ev->n >= EVENTS_MAX_GPUS) {
				skipped(ev, s, EVENTS_SKIP_TOO_MANY_GPUS);
				return 0;
			}
			/* the key must be valid UTF-8 for the JSON uuid field, and hold no NUL */
			if (!text_ok(key, keylen)) {
				skipped(ev, s, EVENTS_SKIP_BAD_KEY);
				return 0;
			}
			rc = new_event(ev, key, keylen, idlen, &g);
			if (rc)
				goto out;
			ev->slot[slot] = (uint16_t)ev->n; /* index + 1 */
			ev->next = ev->n;
		}
		rc = fill_ident(ev, g, id);
		if (rc)
			goto out;
		if (ls >= 0)
			ev->lset[ls] = (int32_t)(g - ev->gpus);
	}
	rc = name_id(ev, &s->name, &eid);
	if (rc)
		goto out;
	bool dup = false;
	if (eid < FIELDS_MAX)
		dup = (g->known[eid / 64] >> (eid % 64)) & 1u;
	else if ((rc = pair_add(ev, (size_t)(g - ev->gpus), eid, &dup)) != 0)
		goto out;
	if (dup) {
		skipped(ev, s, EVENTS_SKIP_DUPLICATE);
		goto out;
	}
	if (grow_array((void **)&g->e, &g->cap, g->ne + 1, sizeof(*g->e), 64)) {
		rc = -ENOMEM;
		goto out;
	}
	g->e[g->ne].id = eid;
	g->e[g->ne].v = value_of(ev, &s->value);
	g->ne++;
	if (eid < FIELDS_MAX) {
		g->known[eid / 64] |= UINT64_C(1) << (eid % 64);
		g->nmetrics++;
		ev->st.metrics++;
	} else {
		ev->st.extra++;
	}
out:
	return rc;
}

int events_prom_cb(const struct prom_sample *s, void *ud)
{
	return events_add(ud, s);
}

size_t events_count(const struct events *ev)
{
	return ev->n;
}

const char *events_key(const struct events *ev, size_t i)
{
	return i < ev->n ? ev->gpus[i].key : NULL;
}

const struct events_stats *events_stats(const struct events *ev)
{
	return &ev->st;
}

/* ---- rendering: compact JSON into a bounded buffer (jsonw.h) */

int events_render_json(const json_t *j, char *buf, size_t size, size_t *len)
{
	struct jsonw w = {buf, size, 0};
	locale_t old;
	int rc;
	if (!j || !len || (!buf && size > 0))
		return -EINVAL;
	old = jsonw_c_locale();
	rc = jsonw_value(&w, j);
	jsonw_locale_restore(old);
	if (rc)
		return rc;
	return jsonw_finish(&w, len);
}

static void put_val(struct jsonw *w, const struct val *v)
{
	switch (v->kind) {
	case V_NULL: jsonw_put(w, "null", 4); return;
	case V_INT: jsonw_int(w, v->u.i); return;
	case V_REAL:
		if (!jsonw_real_fast(w, v->u.d))
			jsonw_real(w, v->u.d);
		return;
	}
}

static void put_sref(struct jsonw *w, const struct events *ev, struct sref r)
{
	if (r.len == SREF_NULL)
		jsonw_put(w, "null", 4);
	else
		jsonw_string(w, ev->text + r.off, r.len);
}

/* "KEY":string-or-null for each of an object's identity strings, in the contract's order */
struct sref_member {
	const char *key; /* with its quotes, the colon and the comma before it when not first */
	size_t len;      /* SREF_KEY: a literal's length, fixed at compile time */
	enum sid id;
};
#define SREF_KEY(lit) lit, sizeof(lit) - 1
static const struct sref_member gpu_strings[] = {
    {SREF_KEY(",\"model\":"), S_MODEL},
    {SREF_KEY(",\"pci_bus_id\":"), S_PCI},
    {SREF_KEY(",\"device\":"), S_DEVICE},
    {SREF_KEY(",\"driver_version\":"), S_DRIVER},
    {SREF_KEY(",\"mig_profile\":"), S_MIG_PROFILE},
};
static const struct sref_member workload_strings[] = {
    {SREF_KEY("\"namespace\":"), S_NAMESPACE},
    {SREF_KEY(",\"pod\":"), S_POD},
    {SREF_KEY(",\"container\":"), S_CONTAINER},
};

static void put_srefs(struct jsonw *w, const struct events *ev, const struct sref *str,
                      const struct sref_member *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		jsonw_put(w, m[i].key, m[i].len);
		put_sref(w, ev, str[m[i].id]);
	}
}

static void put_opt_int(struct jsonw *w, bool has, int64_t v)
{
	if (has)
		jsonw_int(w, v);
	else
		JSONW_LIT(w, "null");
}

static void put_opt(struct jsonw *w, const char *s)
{
	if (s)
		jsonw_string(w, s, strlen(s));
	else
		jsonw_put(w, "null", 4);
}

/* Each known field's `"key":` as events carry it, escaped once for every event (the keys are
 * most of an event's bytes); qkey_len 0: longer than a slot, escaped each time instead. */
#define QKEY_SLOT 64
static char qkey[FIELDS_MAX][QKEY_SLOT];
static uint8_t qkey_len[FIELDS_MAX];
static pthread_once_t qkey_once = PTHREAD_ONCE_INIT;
static void qkey_init(void)
{
	size_t nf = 0;
	const struct field_def *f = fields_all(&nf);
	for (size_t i = 0; i < nf && i < FIELDS_MAX; i++) {
		struct jsonw w = {qkey[i], QKEY_SLOT, 0};
		jsonw_string(&w, f[i].key, strlen(f[i].key));
		jsonw_put(&w, ":", 1);
		qkey_len[i] = w.len <= QKEY_SLOT ? (uint8_t)w.len : 0;
	}
}

/* Event g in the contract's order: the identity, then metrics and extra in the order the
 * samples came. */
static void put_event(struct jsonw *w, const struct events *ev, const struct gpu_event *g)
{
	size_t nf = 0;
	const struct field_def *f = fields_all(&nf);
	JSONW_LIT(w, "{\"schema_version\":");
	jsonw_int(w, EVENTS_SCHEMA_VERSION);
	JSONW_LIT(w, ",\"time\":");
	jsonw_string(w, ev->time, EVENTS_TIME_LEN - 1);
	JSONW_LIT(w, ",\"hostname\":");
	put_sref(w, ev, g->str[S_HOST]);
	const struct events_enrich *t = ev->target;
	JSONW_LIT(w, ",\"cluster\":");
	put_opt(w, t && t->cluster && *t->cluster ? t->cluster : ev->en.cluster);
	JSONW_LIT(w, ",\"datacenter\":");
	put_opt(w, t && t->datacenter && *t->datacenter ? t->datacenter : ev->en.datacenter);
	JSONW_LIT(w, ",\"rack\":");
	put_opt(w, t && t->rack && *t->rack ? t->rack : ev->en.rack);
	JSONW_LIT(w, ",\"gpu\":{\"index\":");
	put_opt_int(w, g->has_index, g->index);
	JSONW_LIT(w, ",\"uuid\":");
	jsonw_string(w, g->key, g->idlen);
	put_srefs(w, ev, g->str, gpu_strings, sizeof(gpu_strings) / sizeof(gpu_strings[0]));
	JSONW_LIT(w, ",\"mig_instance\":");
	put_opt_int(w, g->has_mig_id, g->mig_id);
	JSONW_LIT(w, "},\"metrics\":{");
	bool first = true;
	for (size_t i = 0; i < g->ne; i++) {
		const struct entry *e = &g->e[i];
		if (e->id >= FIELDS_MAX || e->id >= nf)
			continue;
		if (!first)
			jsonw_put(w, ",", 1);
		first = false;
		if (qkey_len[e->id]) {
			jsonw_put(w, qkey[e->id], qkey_len[e->id]);
		} else {
			jsonw_string(w, f[e->id].key, strlen(f[e->id].key));
			jsonw_put(w, ":", 1);
		}
		put_val(w, &e->v);
	}
	JSONW_LIT(w, "},\"extra\":{");
	first = true;
	for (size_t i = 0; i < g->ne; i++) {
		const struct entry *e = &g->e[i];
		if (e->id < FIELDS_MAX)
			continue;
		if (!first)
			jsonw_put(w, ",", 1);
		first = false;
		put_sref(w, ev, ev->xn[e->id - FIELDS_MAX].name);
		jsonw_put(w, ":", 1);
		put_val(w, &e->v);
	}
	JSONW_LIT(w, "}");
	const char *labels = t && t->labels && *t->labels ? t->labels : ev->en.labels;
	if (labels) { /* the target's discovery labels: a JSON object's compact text */
		JSONW_LIT(w, ",\"labels\":");
		jsonw_put(w, labels, strlen(labels));
	}
	JSONW_LIT(w, ",\"workload\":");
	if (g->str[S_POD].len == SREF_NULL && g->str[S_NAMESPACE].len == SREF_NULL &&
	    g->str[S_CONTAINER].len == SREF_NULL) {
		JSONW_LIT(w, "null");
	} else {
		JSONW_LIT(w, "{");
		put_srefs(w, ev, g->str, workload_strings,
		          sizeof(workload_strings) / sizeof(workload_strings[0]));
		JSONW_LIT(w, "}");
	}
	JSONW_LIT(w, "}");
}

int events_render(const struct events *ev, size_t i, char *buf, size_t size, size_t *len)
{
	struct jsonw w = {buf, size, 0};
	locale_t old;
	if (!ev || i >= ev->n || !len || (!buf && size > 0))
		return -EINVAL;
	pthread_once(&qkey_once, qkey_init);
	old = jsonw_c_locale();
	put_event(&w, ev, &ev->gpus[i]);
	jsonw_locale_restore(old);
	return jsonw_finish(&w, len);
}

const json_t *events_json(struct events *ev, size_t i)
{
	if (!ev || i >= ev->n)
		return NULL;
	struct gpu_event *g = &ev->gpus[i];
	if (!g->json) {
		/* made from the rendered line, so both forms say the same (reals read back to
		 * the same double; integers stay integers) */
		size_t len = 0;
		char small[8192], *buf = small;
		int rc = events_render(ev, i, small, sizeof(small), &len);
		if (rc == -ENOSPC) {
			if (!(buf = malloc(len + 1)))
				return NULL;
			rc = events_render(ev, i, buf, len + 1, &len);
		}
		if (rc == 0)
			g->json = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, NULL);
		if (buf != small)
			free(buf);
	}
	return g->json; /* borrowed; NULL only when out of memory */
}
