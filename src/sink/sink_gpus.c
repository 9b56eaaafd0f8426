#include "sink/sink_gpus.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/event_row.h"
#include "sink/sink_db.h"
#include "sink/sink_int.h"
#include "sink/workloads.h"

#define GPUS_MERGE_S 30.0 /* longest time gpus.last_seen stays behind the committed rows */

/* One GPU of the open batch: its first and last sample time and the newest identity. */
struct gpu_seen {
	char *key;        /* owned; NULL = empty slot */
	size_t ident_off; /* identity text of the newest row, in idents */
	size_t ident_len;
	double first, last;
	uint32_t ord; /* 0, 1, ... in order of first appearance in the batch */
};
_Static_assert(offsetof(struct gpu_seen, key) == 0, "the GPU tables key on the first member");

/* What the gpus table holds for one GPU, as far as this sink knows: the identity, first and last
 * sample time of its committed rows (c*) and the values last merged into gpus (m*). A batch merges
 * a GPU only when it is new to the sink, its identity changed or an earlier sample arrived;
 * writer 0 moves last_seen of the others every GPUS_MERGE_S (sink_gpus_refresh): the per-batch
 * merge of every GPU cost ~7% of each transaction, and a full merge of a 200,000-GPU fleet
 * every 10 s a quarter of PostgreSQL's time. */
struct gpu_known {
	char *key;    /* owned; NULL = empty slot */
	char *cident; /* owned: identity text of the newest committed row */
	size_t clen;
	double cfirst, clast;
	char *mident; /* owned: identity text merged into gpus; NULL = never merged */
	size_t mlen;
	double mfirst, mlast;
};

/* One line of a batch's gpuhealth_ident COPY: what gpus holds for the GPU once it commits. */
struct gpu_sent {
	char *key, *ident; /* owned */
	size_t ident_len;
	double first, last;
};

static uint64_t hash_key(const char *k)
{
	uint64_t h = hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, k); /* FNV-1a, our basis */
	/* FNV's low bits (the table index) only see the low bits of each byte: fold the high
	 * half in, so keys that differ in one character do not cluster */
	h ^= h >> 32;
	h *= 0x9E3779B97F4A7C15ull;
	return h ^ (h >> 29);
}

/* The two GPU tables (a batch's seen set, the sink's known set) are open-addressing arrays of
 * structs whose first member is `char *key` (NULL: empty), kept at most 70 % full. */
static char *slot_key(void *tab, size_t esz, size_t i)
{
	char *k;
	memcpy(&k, (char *)tab + i * esz, sizeof(k));
	return k;
}

/* Doubles the table when one more entry would pass 70 %. 0 or -ENOMEM (table unchanged). */
static int table_reserve(void **tab, size_t *cap, size_t n, size_t esz)
{
	if ((n + 1) * 10 <= *cap * 7)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 1024;
	char *grown = calloc(ncap, esz);
	if (!grown)
		return -ENOMEM;
	for (size_t i = 0; i < *cap; i++) {
		char *k = slot_key(*tab, esz, i);
		if (!k)
			continue;
		size_t j = hash_key(k) & (ncap - 1);
		while (slot_key(grown, esz, j))
			j = (j + 1) & (ncap - 1);
		memcpy(grown + j * esz, (char *)*tab + i * esz, esz);
	}
	free(*tab);
	*tab = grown;
	*cap = ncap;
	return 0;
}

/* The slot of key, or the empty slot where it goes (cap > 0, the table not full). */
static size_t table_slot(void *tab, size_t cap, size_t esz, const char *key)
{
	size_t j = hash_key(key) & (cap - 1);
	for (char *k; (k = slot_key(tab, esz, j)) && strcmp(k, key) != 0;)
		j = (j + 1) & (cap - 1);
	return j;
}

/* Records a row's GPU in the batch's set. Returns 0 or -ENOMEM. */
int sink_gpus_seen_add(struct batch *b, const char *key, double t, size_t ident_off,
                       size_t ident_len, uint32_t *ord)
{
	if (table_reserve((void **)&b->seen, &b->seen_cap, b->seen_n, sizeof(*b->seen)))
		return -ENOMEM;
	struct gpu_seen *g = &b->seen[table_slot(b->seen, b->seen_cap, sizeof(*b->seen), key)];
	if (!g->key) {
		if (!(g->key = strdup(key)))
			return -ENOMEM;
		g->first = g->last = t;
		g->ident_off = ident_off;
		g->ident_len = ident_len;
		g->ord = (uint32_t)b->seen_n++;
		*ord = g->ord;
		return 0;
	}
	*ord = g->ord;
	if (t < g->first)
		g->first = t;
	if (t >= g->last) {
		g->last = t;
		g->ident_off = ident_off;
		g->ident_len = ident_len;
	}
	return 0;
}

/* The COPY-escaped gpu_key of an identity text: its first column. */
void sink_gpus_ident_key(const char *ident, size_t len, char *key, size_t keylen)
{
	const char *tab = memchr(ident, '\t', len);
	size_t n = tab ? (size_t)(tab - ident) : len;
	if (n >= keylen)
		n = keylen - 1;
	memcpy(key, ident, n);
	key[n] = '\0';
}

static int ident_line(struct strbuf *out, const char *ident, size_t len, double first, double last)
{
	char a[40], b[40];
	time_format_rfc3339(first, a, sizeof(a));
	time_format_rfc3339(last, b, sizeof(b));
	return strbuf_printf(out, "%.*s\t%s\t%s\n", (int)len, ident, a, b);
}

/* The gpuhealth_ident COPY text: one line per GPU of the batch, or of one row. */
int sink_gpus_ident_copy(struct batch *b, const struct item *only)
{
	strbuf_reset(&b->ident_copy);
	if (only)
		return ident_line(&b->ident_copy, b->idents.data + only->ident_off, only->ident_len,
		                  only->time, only->time);
	int rc = 0;
	for (size_t i = 0; !rc && i < b->seen_cap; i++) {
		const struct gpu_seen *g = &b->seen[i];
		if (g->key)
			rc = ident_line(&b->ident_copy, b->idents.data + g->ident_off, g->ident_len,
			                g->first, g->last);
	}
	return rc;
}

static void known_clear(struct sink *s)
{
	for (size_t i = 0; i < s->known_cap; i++) {
		free(s->known[i].key);
		free(s->known[i].cident);
		free(s->known[i].mident);
	}
	free(s->known);
	s->known = NULL;
	s->known_cap = s->known_n = 0;
}

/* Forgets every GPU known: each is merged again (a new connection, maybe another server). */
void sink_gpus_forget(struct sink *s)
{
	pthread_mutex_lock(&s->glock);
	known_clear(s);
	pthread_mutex_unlock(&s->glock);
}

_Static_assert(offsetof(struct gpu_known, key) == 0, "the GPU tables key on the first member");

/* The entry of key (added, never merged, when absent), or NULL out of memory. glock held. */
static struct gpu_known *known_get(struct sink *s, const char *key)
{
	if (table_reserve((void **)&s->known, &s->known_cap, s->known_n, sizeof(*s->known)))
		return NULL;
	struct gpu_known *k = &s->known[table_slot(s->known, s->known_cap, sizeof(*s->known), key)];
	if (!k->key) {
		if (!(k->key = strdup(key)))
			return NULL;
		k->cfirst = 1e300;
		k->clast = -1e300;
		s->known_n++;
	}
	return k;
}

static int set_text(char **dst, size_t *dlen, const char *src, size_t len)
{
	if (*dst && *dlen == len && memcmp(*dst, src, len) == 0)
		return 0;
	char *p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, src, len);
	p[len] = '\0';
	free(*dst);
	*dst = p;
	*dlen = len;
	return 0;
}

static bool known_pending(const struct gpu_known *k)
{
	return k->cident && (!k->mident || k->clast > k->mlast || k->cfirst < k->mfirst ||
	                     k->clen != k->mlen || memcmp(k->cident, k->mident, k->clen) != 0);
}

/* Adds one GPU to what the batch's transaction writes into gpus (for sink_gpus_committed).
 * glock held. Returns 0 or -ENOMEM. */
static int sent_add(struct batch *b, const char *key, const char *ident, size_t len, double first,
                    double last)
{
	if (grow_array((void **)&b->sent, &b->capsent, b->nsent + 1, sizeof(*b->sent), 256))
		return -ENOMEM;
	struct gpu_sent *g = &b->sent[b->nsent];
	memset(g, 0, sizeof(*g));
	if (!(g->key = strdup(key)) || set_text(&g->ident, &g->ident_len, ident, len)) {
		free(g->key);
		return -ENOMEM;
	}
	g->first = first;
	g->last = last;
	b->nsent++;
	return 0;
}

static void sent_clear(struct batch *b)
{
	for (size_t i = 0; i < b->nsent; i++) {
		free(b->sent[i].key);
		free(b->sent[i].ident);
	}
	b->nsent = 0;
}

/* Empties the batch's set of GPUs and its list of GPUs sent (keeps the memory). */
void sink_gpus_batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->seen_cap; i++) {
		free(b->seen[i].key);
		b->seen[i].key = NULL;
	}
	b->seen_n = 0;
	sent_clear(b);
}

/* Adds one GPU to the batch's gpus merge. glock held. Returns 0 or -ENOMEM. */
static int gpus_send(struct batch *b, const char *key, const char *ident, size_t len, double first,
                     double last)
{
	int rc = sent_add(b, key, ident, len, first, last);
	return rc ? rc : ident_line(&b->ident_copy, ident, len, first, last);
}

/* The batch's gpuhealth_ident COPY: its GPUs that are new to the sink, changed identity or
 * brought an earlier sample (the others' last_seen is sink_gpus_refresh()'s). Returns 0 or
 * -ENOMEM. */
int sink_gpus_copy(struct sink *s, struct batch *b)
{
	int rc = 0;
	sent_clear(b);
	strbuf_reset(&b->ident_copy);
	pthread_mutex_lock(&s->glock);
	for (size_t i = 0; !rc && i < b->seen_cap; i++) {
		const struct gpu_seen *g = &b->seen[i];
		if (!g->key)
			continue;
		struct gpu_known *k = known_get(s, g->key);
		if (!k) {
			rc = -ENOMEM;
			break;
		}
		/* the batch's values, combined with what is committed already */
		double first = g->first < k->cfirst ? g->first : k->cfirst;
		double last = g->last > k->clast ? g->last : k->clast;
		const char *id = b->idents.data + g->ident_off;
		size_t len = g->ident_len;
		if (k->cident && k->clast > g->last) {
			id = k->cident;
			len = k->clen;
		}
		if (!k->mident || first < k->mfirst || len != k->mlen ||
		    memcmp(id, k->mident, len) != 0)
			rc = gpus_send(b, g->key, id, len, first, last);
	}
	pthread_mutex_unlock(&s->glock);
	return rc;
}

/* After the batch's COMMIT: its rows are committed and its gpus merge is in the table. */
void sink_gpus_committed(struct sink *s, struct batch *b)
{
	pthread_mutex_lock(&s->glock);
	for (size_t i = 0; i < b->seen_cap; i++) {
		const struct gpu_seen *g = &b->seen[i];
		if (!g->key)
			continue;
		struct gpu_known *k = known_get(s, g->key);
		if (!k)
			break; /* out of memory: merged again later, harmless */
		if (g->first < k->cfirst)
			k->cfirst = g->first;
		if (g->last >= k->clast) {
			k->clast = g->last;
			if (set_text(&k->cident, &k->clen, b->idents.data + g->ident_off,
			             g->ident_len))
				break;
		}
	}
	for (size_t i = 0; i < b->nsent; i++) {
		const struct gpu_sent *g = &b->sent[i];
		struct gpu_known *k = known_get(s, g->key);
		if (!k)
			break;
		if (!k->mident || g->first < k->mfirst)
			k->mfirst = g->first;
		if (!k->mident || g->last >= k->mlast) {
			k->mlast = g->last;
			if (set_text(&k->mident, &k->mlen, g->ident, g->ident_len))
				break;
		}
	}
	pthread_mutex_unlock(&s->glock);
}

/* After gpuhealth_merge_gpus() in the same transaction (schema 17): the GPUs just merged that the
 * fleet overview lacks or has at another place go into it now, not at the scorer's next merge
 * (nor never, without a scorer). Returns 0 or what sink_db_exec returns. */
int sink_gpus_fleet_now(struct sink *s, int w, char *err, size_t errlen, char state[6])
{
	if (!atomic_load(&s->has_fleet_now))
		return 0;
	return sink_db_exec(s, w, "SELECT gpuhealth_fleet_now_sink()", 0, NULL, NULL, err, errlen,
	                    state);
}

/* Whether gpus needs more than a later last_seen for k: never merged, an identity other than
 * the merged one, or an earlier first sample. */
static bool known_needs_merge(const struct gpu_known *k)
{
	return !k->mident || k->cfirst < k->mfirst || k->clen != k->mlen ||
	       memcmp(k->cident, k->mident, k->clen) != 0;
}

/* Ends a failed gpus statement of writer w: what it did is tried again at the next refresh. */
static void gpus_failed(struct sink *s, int w, const char *what, size_t n, const char *err)
{
	log_debug("sink: %s %zu GPUs: %s", what, n, err);
	sink_db_abort(s, w);
}

/* One element of a PostgreSQL array literal, quoted ("a\\"b"), after its separator. v is
 * COPY text (the known GPUs' keys are: \\ \t \n \r escaped), decoded here. */
static int array_elem(struct strbuf *out, const char *v, size_t len)
{
	int rc = strbuf_append(out, out->len > 1 ? ",\"" : "\"", out->len > 1 ? 2 : 1);
	for (size_t i = 0; !rc && i < len; i++) {
		size_t j = i;
		while (j < len && v[j] != '"' && v[j] != '\\')
			j++;
		rc = strbuf_append(out, v + i, j - i);
		if (rc || j == len)
			break;
		if (v[j] == '"') {
			rc = strbuf_append(out, "\\\"", 2);
		} else if (j + 1 < len) { /* a COPY escape: the byte it stands for */
			char c = v[++j];
			const char *raw = c == 't'   ? "\t"
			                  : c == 'n' ? "\n"
			                  : c == 'r' ? "\r"
			                             : NULL;
			rc = raw ? strbuf_append(out, raw, 1)
			         : strbuf_append(out, (const char[]){'\\', c},
			                         2); /* \\ and any other */
		}
		i = j;
	}
	return rc ? rc : strbuf_append(out, "\"", 1);
}

/* Calls add(b, k) for every known GPU whose committed rows are not all merged and that needs
 * (merge) or does not need (!merge) more than a later last_seen, under the lock of the known
 * GPUs, until one returns non-zero. Returns that, or 0. */
static int each_pending(struct sink *s, bool merge, struct batch *b,
                        int (*add)(struct batch *b, const struct gpu_known *k))
{
	int rc = 0;
	pthread_mutex_lock(&s->glock);
	for (size_t i = 0; !rc && i < s->known_cap; i++) {
		const struct gpu_known *k = &s->known[i];
		if (k->key && known_pending(k) && known_needs_merge(k) == merge)
			rc = add(b, k);
	}
	pthread_mutex_unlock(&s->glock);
	return rc;
}

static int merge_one(struct batch *b, const struct gpu_known *k)
{
	return gpus_send(b, k->key, k->cident, k->clen, k->cfirst, k->clast);
}

/* Merges into gpus, in a transaction of its own, every known GPU whose committed rows need more
 * than a later last_seen (known_needs_merge): the same merge as a batch's. */
static void gpus_merge_pending(struct sink *s, int w)
{
	struct batch *b = &s->idle;
	sent_clear(b);
	strbuf_reset(&b->ident_copy);
	int rc = each_pending(s, true, b, merge_one);
	char err[512] = "", state[6] = "";
	if (!rc && b->nsent) {
		if (!(rc = sink_db_exec(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)) &&
		    !(rc = sink_db_copy_in(s, w,
		                           "COPY gpuhealth_ident (" EVENT_ROW_IDENT_COLUMNS
		                           ", first_seen, last_seen) FROM STDIN",
		                           false, b->ident_copy.data, b->ident_copy.len, err,
		                           sizeof(err), state)) &&
		    !(rc = sink_db_exec(s, w, "SELECT gpuhealth_merge_gpus()", 0, NULL, NULL, err,
		                        sizeof(err), state)) &&
		    !(rc = sink_gpus_fleet_now(s, w, err, sizeof(err), state)) &&
		    !(rc = sink_db_exec(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state)))
			sink_gpus_committed(s, b);
		else
			gpus_failed(s, w, "merging", b->nsent, err);
	}
	sent_clear(b);
}

static int touch_one(struct batch *b, const struct gpu_known *k)
{
	char t[40];
	int rc;
	if (!(rc = sent_add(b, k->key, k->cident, k->clen, k->cfirst, k->clast)) &&
	    !(rc = array_elem(&b->touch_keys, k->key, strlen(k->key))) &&
	    !(rc = time_format_rfc3339(k->clast, t, sizeof(t))))
		rc = array_elem(&b->touch_times, t, strlen(t));
	return rc;
}

/* Moves gpus.last_seen of every other known GPU whose committed rows are not all merged: one
 * UPDATE of that column alone (its own transaction), from two arrays (keys, times), the cheap
 * path for the GPUs whose only change is newer samples. */
static void gpus_touch(struct sink *s, int w)
{
	struct batch *b = &s->idle;
	int rc = 0;
	sent_clear(b);
	strbuf_reset(&b->touch_keys);
	strbuf_reset(&b->touch_times);
	if ((rc = strbuf_append(&b->touch_keys, "{", 1)) ||
	    (rc = strbuf_append(&b->touch_times, "{", 1)))
		return;
	rc = each_pending(s, false, b, touch_one);
	char err[512] = "", state[6] = "";
	if (!rc && b->nsent && !(rc = strbuf_append(&b->touch_keys, "}", 1)) &&
	    !(rc = strbuf_append(&b->touch_times, "}", 1))) {
		const char *arrays[2] = {b->touch_keys.data, b->touch_times.data};
		if (!sink_db_exec(
		        s, w,
		        "UPDATE gpus AS g SET last_seen = v.t FROM unnest($1::text[], "
		        "$2::timestamptz[]) AS v(k, t) WHERE g.gpu_key = v.k AND g.last_seen < v.t",
		        2, arrays, NULL, err, sizeof(err), state))
			sink_gpus_committed(s, b);
		else
			gpus_failed(s, w, "moving last_seen of", b->nsent, err);
	}
	sent_clear(b);
}

/*
 * Moves gpu_workloads.last_seen up to the newest committed sample of GPUs whose batches did not
 * move it (it moves at most every WORKLOADS_TOUCH_S per GPU while samples come): those that
 * sent nothing for WORKLOADS_TOUCH_S, or every one when final (a stop), so a GPU that falls
 * silent or a sink that stops leaves its rows ending at their last sample. Its own transaction.
 */
static void workloads_close(struct sink *s, int w, bool final)
{
	char *json = NULL, err[512] = "", state[6] = "";
	if (!atomic_load(&s->has_workloads))
		return;
	if (workloads_tails_json(s->workloads, final ? INFINITY : time_now() - WORKLOADS_TOUCH_S,
	                         &json)) {
		log_error("sink: out of memory closing workload runs");
		return;
	}
	if (!json)
		return;
	const char *p[1] = {json}; /* owned by this function */
	if (sink_db_exec(s, w, "SELECT gpuhealth_merge_workloads($1::jsonb)", 1, p, NULL, err,
	                 sizeof(err), state) == 0)
		workloads_tails_committed(s->workloads);
	else {
		log_warn("sink: moving workload runs' last_seen: %s (again later)", err);
		sink_db_abort(s, w);
	}
	free(json);
}

/*
 * Brings gpus up to this sink's committed rows once GPUS_MERGE_S passed since the last time (or
 * always when force): the GPUs that need a merge, then last_seen of the rest, then the workload
 * runs' tails (workloads_close). Writer 0 calls it between batches, when idle and at stop, so
 * gpus.last_seen lags the committed rows by at most GPUS_MERGE_S (and a batch's time) under any
 * load.
 */
void sink_gpus_refresh(struct sink *s, int w, bool force)
{
	pthread_mutex_lock(&s->glock);
	bool due = force || time_mono() - s->gpus_merged_at >= GPUS_MERGE_S;
	pthread_mutex_unlock(&s->glock);
	if (!due || sink_db_ensure(s, w))
		return;
	gpus_merge_pending(s, w);
	gpus_touch(s, w);
	workloads_close(s, w, force);
	pthread_mutex_lock(&s->glock);
	s->gpus_merged_at = time_mono();
	pthread_mutex_unlock(&s->glock);
}
