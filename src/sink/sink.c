#include "sink/sink.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <librdkafka/rdkafka.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus/kafka_conf.h"
#include "core/event_check.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "core/timeutil.h"
#include "sink/event_row.h"
#include "sink/rollup.h"
#include "sink/workloads.h"
#include "store/pg.h"
#include "store/pgcopy.h"

#define ROWS_MAX_BYTES   (256u << 20) /* hard bound of one batch's COPY text */
#define ROWS_FLUSH_BYTES (64u << 20)  /* flush early past this */
#define BACKOFF_MIN_S    0.5
#define BACKOFF_MAX_S    30.0
#define STOP_DEADLINE_S  10.0 /* how long a stop waits for the database */
/* Writer threads, each with its own connection: while one waits for PostgreSQL the other's
 * batch is being written, so the database works on two cores (on the 2-core benchmark machine,
 * +25 % rows/s over one writer; a third added nothing). */
#define WRITERS 2
/* One filling, one being written per writer, and one queued: with only WRITERS + 1 the
 * consumer, having filled a batch while both writers were busy, waited for one to finish, and
 * that writer then waited for the next batch to be filled (measured on a backlog: each writer's
 * connection idle between batches for as long as a fill takes). */
#define NBATCH       (WRITERS + 2)
#define GPUS_MERGE_S 30.0 /* longest time gpus.last_seen stays behind the committed rows */
/* A minute's rollups are written once the newest committed sample is this far past its end (or
 * the sink has been idle this long); the rows of a minute already closed are merged one batch
 * at a time, as late rows. */
#define CLOSE_GRACE_S 20.0
#define CLOSE_EVERY_S 5.0 /* how often writer 0 looks for minutes to close */
#define MINUTE_US     60000000LL

/* A dead letter's way out: produced to the dead-letter topic (PENDING, then DONE or FAILED);
 * after DLQ_ATTEMPTS failed tries, or at once when the topic refuses it for good (too large,
 * not allowed), TABLE: into the dead_letters table in the batch's own transaction. */
enum dlq_state { DLQ_NONE = 0, DLQ_PENDING, DLQ_DONE, DLQ_FAILED, DLQ_TABLE };
#define DLQ_ATTEMPTS   3       /* tries on the dead-letter topic before the table */
#define DLQ_TIMEOUT_MS "30000" /* the dead-letter producer's message.timeout.ms */
#define DLQ_KEY_MAX    1024u   /* bytes of the source key a dead letter carries */
#define RETRY_TELL_S   30.0    /* a batch being retried is told this often */

/* A batch's life: filled by the consumer thread, queued, written by one writer, then finished
 * (offsets stored, cleared) in the order it was queued, and free again. */
enum batch_state { B_FREE = 0, B_FILLING, B_QUEUED, B_WRITING, B_DONE };

/* One consumed message of the open batch: a row (reason == NULL) or a dead letter. */
struct item {
	rd_kafka_message_t *m; /* owned until the batch ends */
	size_t row_off, row_len;
	size_t ident_off, ident_len; /* this row's identity text in the batch's ident buffer */
	double time;
	uint32_t gpu;    /* its GPU's ordinal in the batch (gpu_seen.ord) */
	char *reason;    /* owned; dead letter when set */
	_Atomic int dlq; /* enum dlq_state, written by the delivery callback */
	_Atomic int dlq_err; /* rd_kafka_resp_err_t of the last failed try */
	int dlq_tries;
};

/* One GPU of the open batch: its first and last sample time and the newest identity. */
struct gpu_seen {
	char *key;        /* owned; NULL = empty slot */
	size_t ident_off; /* identity text of the newest row, in idents */
	size_t ident_len;
	double first, last;
	uint32_t ord; /* 0, 1, ... in order of first appearance in the batch */
};

struct part_off {
	int32_t partition;
	int64_t next; /* highest offset in the batch + 1 */
};

/* A batch of consumed messages, their rows and what the transaction needs. */
struct batch {
	struct item *items;
	size_t nitems, capitems, nrows;
	struct strbuf rows;
	struct strbuf idents;  /* identity text of each row, in row order */
	struct gpu_seen *seen; /* open-addressing set of the batch's GPUs */
	size_t seen_cap, seen_n;
	struct strbuf ident_copy; /* the batch's gpuhealth_ident COPY text */
	struct rollup *roll;      /* the rows' 1-minute rollups, computed as they arrive */
	bool roll_ok;             /* false: roll is incomplete, let the database compute them */
	struct strbuf roll_copy;  /* the batch's gpuhealth_rollup_stage binary COPY */
	double tmin, tmax, batch_started;
	struct part_off offs[SINK_MAX_PARTS];
	int noffs;
	char *by_gpu; /* the rows again, grouped by GPU: what the COPY sends */
	size_t by_gpu_cap;
	size_t *gpu_off; /* per GPU ordinal: where its rows go in by_gpu */
	size_t gpu_off_cap;
	struct gpu_sent *sent; /* the GPUs this batch's transaction merges into gpus */
	size_t nsent, capsent;
	struct strbuf touch_keys, touch_times; /* writer 0's idle batch: gpus_touch() arrays */
	struct workload_runs *wl_runs; /* the rows' workload runs (gpu_workloads, schema/013) */
	char *wl_json; /* owned: the runs this batch's transaction merges; NULL = none */
	/* guarded by the sink's wlock */
	enum batch_state state;
	uint64_t seq; /* queue order */
	int rc;       /* the writer's result: 0 committed, else given up */
	long long ins, dups;
	uint64_t dead, dead_db; /* dead letters out; of them, into the dead_letters table */
};

/* What the gpus table holds for one GPU, as far as this sink knows: the identity, first and last
 * sample time of its committed rows (c*) and the values last merged into gpus (m*). A batch merges
 * a GPU only when it is new to the sink, its identity changed or an earlier sample arrived;
 * writer 0 moves last_seen of the others every GPUS_MERGE_S (gpus_refresh): the per-batch merge
 * of every GPU cost ~7% of each transaction, and a full merge of a 200,000-GPU fleet every 10 s
 * a quarter of PostgreSQL's time. */
_Static_assert(offsetof(struct gpu_seen, key) == 0, "the GPU tables key on the first member");

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

struct writer {
	struct sink *s;
	int w; /* index: its connection is s->db[w] */
	pthread_t thread;
	bool started;
};

struct sink {
	/* options, owned copies */
	char *brokers, *topic, *group, *dlq_topic, *conninfo;
	int batch_size;
	double batch_timeout_s, maintenance_s, max_future_s;

	rd_kafka_t *consumer; /* owned */
	rd_kafka_t *dlq;      /* owned, idempotent producer */
	PGconn *db[WRITERS];  /* owned: db[w] by writer w (db[0] by the sink thread until the
	                       * writers start) */
	double retention_s;

	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool stop_now; /* at stop, give up a batch the database does not take at once */

	/* The consumer thread fills one batch while the writers write the ones queued before it,
	 * each in its own transaction on its own connection. */
	struct batch batches[NBATCH];
	struct batch *fill; /* consumer thread */
	uint64_t seq_next;  /* guarded by wlock: the next batch queued gets this number */
	uint64_t seq_done;  /* guarded by wlock: batches before this one are finished */
	bool finishing;     /* guarded by wlock: a writer is finishing the oldest batch */
	struct writer writers[WRITERS];
	bool writer_stop; /* guarded by wlock */
	bool writers_up;  /* consumer thread: every writer runs */
	bool maint;       /* guarded by wlock: writer 0 keeps the partitions, no batch starts */
	atomic_bool abandoned; /* a batch was given up: no later batch may store offsets */
	pthread_mutex_t wlock;
	pthread_cond_t wcond;
	double last_maint;
	double last_stats;       /* writer thread: when the last pipeline_stats row was tried */
	char instance[300];      /* pipeline_stats.instance: hostname:pid */
	bool stats_missing_told; /* "run gpuhealth db migrate" said once */
	bool stats_failing;      /* the last pipeline_stats insert failed (warn once per streak) */

	/* The GPUs known to be in the gpus table (struct gpu_known), shared by the writers. */
	pthread_mutex_t glock; /* guards the four below */
	struct gpu_known *known;
	size_t known_cap, known_n;
	double gpus_merged_at;   /* time_mono() of the last gpus_refresh() */
	struct batch idle;       /* writer 0: only ident_copy, sent, touch_*, for gpus_refresh() */
	bool db_was_up[WRITERS]; /* writer w's connection was up once */
	/* writer w's last statement failed with a SQLSTATE a new connection may get past (a
	 * read-only server, a shutdown: pg_sqlstate_reconnect): closed, not rolled back */
	bool reconnect[WRITERS];

	/* The rollups of the rows this sink committed at or after the mark (schema/006), written
	 * when their minute closes (rollups_close). */
	atomic_bool has_mark; /* the schema has gpuhealth_rollup_mark (version 6) */
	atomic_bool has_workloads; /* the schema has gpuhealth_merge_workloads (version 13) */
	atomic_bool workloads_missing_told;
	struct workloads *workloads; /* what this sink merged into gpu_workloads */
	struct strbuf wl_text;       /* the consumer thread's: one event's workload (event_row) */
	atomic_bool mark_missing_told;
	pthread_mutex_t
	    rlock; /* guards the five below; a writer holds it from its COMMIT until its
	            * rollups are in open, so a close never sees the rows without them */
	struct rollup *open;
	double newest;            /* newest committed sample time (s since 1970); -INFINITY: none */
	double last_commit;       /* time_mono() of the last committed batch */
	int64_t mark;             /* the newest mark seen (us since 2000), INT64_MIN: none */
	double closed_at;         /* time_mono() of the last close */
	struct strbuf close_copy; /* writer 0: the closing minutes' binary COPY */

	/* The consumer group's position per partition, as this sink moves it: the offset stored
	 * after the last committed batch, else the first offset read since the assignment (where
	 * the group's committed offset stood). The lag is measured from it, not from the fetch
	 * position, so a batch that cannot be written shows as lag. Guarded by lock. */
	struct {
		int32_t partition;
		int64_t acked;
	} acked[SINK_MAX_PARTS];
	int nacked;

	_Atomic uint64_t consumed; /* st.consumed, counted without the lock */
	pthread_mutex_t lock;      /* guards st */
	struct sink_stats st;
	uint64_t rate_rows;
	double rate_t;
};

static void set_error(struct sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct sink *s, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->lock);
	snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", msg);
	pthread_mutex_unlock(&s->lock);
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	struct item *it = m->_private;
	if (it) {
		atomic_store(&it->dlq_err, m->err);
		atomic_store(&it->dlq, m->err ? DLQ_FAILED : DLQ_DONE);
	}
	if (m->err)
		log_debug("sink: dead letter not delivered: %s", rd_kafka_err2str(m->err));
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct sink *s = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[256];
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		set_error(s, "kafka fatal: %s", buf);
		log_error("sink: kafka fatal error: %s", buf);
		pthread_mutex_lock(&s->lock);
		s->st.failed = true;
		pthread_mutex_unlock(&s->lock);
		atomic_store(&s->stop, true);
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__TRANSPORT)
		set_error(s, "kafka: %s", reason);
	log_debug("sink: kafka: %s", reason);
}

/* Sets partition p's acked offset (with s->lock held): always when store, else only when
 * none is known yet (the first offset read since the assignment). */
static void acked_set(struct sink *s, int32_t p, int64_t off, bool store)
{
	for (int i = 0; i < s->nacked; i++)
		if (s->acked[i].partition == p) {
			if (store)
				s->acked[i].acked = off;
			return;
		}
	if (s->nacked < SINK_MAX_PARTS) {
		s->acked[s->nacked].partition = p;
		s->acked[s->nacked++].acked = off;
	}
}

static void record_offset(struct sink *s, struct batch *b, int32_t p, int64_t off)
{
	for (int i = 0; i < b->noffs; i++)
		if (b->offs[i].partition == p) {
			if (off + 1 > b->offs[i].next)
				b->offs[i].next = off + 1;
			return;
		}
	if (b->noffs < SINK_MAX_PARTS) {
		b->offs[b->noffs].partition = p;
		b->offs[b->noffs].next = off + 1;
		b->noffs++;
	}
	/* a partition new to this batch (not per message): the group's position, if unknown */
	pthread_mutex_lock(&s->lock);
	acked_set(s, p, off, false);
	pthread_mutex_unlock(&s->lock);
}

static void batch_clear(struct sink *s, struct batch *b)
{
	for (size_t i = 0; i < b->nitems; i++) {
		rd_kafka_message_destroy(b->items[i].m);
		free(b->items[i].reason);
	}
	b->nitems = 0;
	b->nrows = 0;
	b->noffs = 0;
	strbuf_reset(&b->rows);
	strbuf_reset(&b->idents);
	for (size_t i = 0; i < b->seen_cap; i++) {
		free(b->seen[i].key);
		b->seen[i].key = NULL;
	}
	b->seen_n = 0;
	for (size_t i = 0; i < b->nsent; i++) {
		free(b->sent[i].key);
		free(b->sent[i].ident);
	}
	b->nsent = 0;
	strbuf_reset(&b->ident_copy);
	if (b->wl_runs)
		workload_runs_clear(b->wl_runs);
	free(b->wl_json);
	b->wl_json = NULL;
	if (b->roll)
		rollup_reset(b->roll);
	b->roll_ok = b->roll != NULL;
	strbuf_reset(&b->roll_copy);
}

static uint64_t hash_key(const char *k)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 1099511628211ull;
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
static int seen_add(struct sink *s, struct batch *b, const char *key, double t, size_t ident_off,
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
static void ident_key(const char *ident, size_t len, char *key, size_t keylen)
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
static int build_ident_copy(struct sink *s, struct batch *b, const struct item *only)
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

/* Adds one GPU to what the batch's transaction writes into gpus (for gpus_committed). glock
 * held. Returns 0 or -ENOMEM. */
static int sent_add(struct batch *b, const char *key, const char *ident, size_t len, double first,
                    double last)
{
	if (b->nsent == b->capsent) {
		size_t cap = b->capsent ? b->capsent * 2 : 256;
		struct gpu_sent *p = realloc(b->sent, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		b->sent = p;
		b->capsent = cap;
	}
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

/* Adds one GPU to the batch's gpus merge. glock held. Returns 0 or -ENOMEM. */
static int gpus_send(struct batch *b, const char *key, const char *ident, size_t len, double first,
                     double last)
{
	int rc = sent_add(b, key, ident, len, first, last);
	return rc ? rc : ident_line(&b->ident_copy, ident, len, first, last);
}

/* The batch's gpuhealth_ident COPY: its GPUs that are new to the sink, changed identity or
 * brought an earlier sample (the others' last_seen is gpus_refresh()'s). Returns 0 or -ENOMEM. */
static int build_gpus_copy(struct sink *s, struct batch *b)
{
	int rc = 0;
	for (size_t i = 0; i < b->nsent; i++) {
		free(b->sent[i].key);
		free(b->sent[i].ident);
	}
	b->nsent = 0;
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
static void gpus_committed(struct sink *s, struct batch *b)
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

static void db_close(struct sink *s, int w)
{
	if (s->db[w])
		PQfinish(s->db[w]);
	s->db[w] = NULL;
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = false;
	pthread_mutex_unlock(&s->lock);
}

/* Connects, creates the staging table, reads the retention. Returns 0 or -EIO. */
static int db_ensure(struct sink *s, int w)
{
	char err[512];
	if (s->db[w] && PQstatus(s->db[w]) == CONNECTION_OK && !s->reconnect[w])
		return 0;
	db_close(s, w);
	s->reconnect[w] = false;
	s->db[w] = pg_connect(s->conninfo, "gpuhealth-sink", err, sizeof(err));
	if (!s->db[w]) {
		set_error(s, "%s", err);
		return -EIO;
	}
	if (pg_session_read_only(s->db[w])) {
		/* a standby, or a primary fenced read-only: retried, like a server that is away */
		set_error(s,
		          "the database server at %s:%s (--db) is read-only (a standby, or "
		          "default_transaction_read_only on): list every host in --db and add "
		          "target_session_attrs=read-write",
		          PQhost(s->db[w]), PQport(s->db[w]));
		db_close(s, w);
		return -EIO;
	}
	if (s->db_was_up[w]) {
		/* a new connection after a loss, maybe to another server: merge every GPU again */
		pthread_mutex_lock(&s->glock);
		known_clear(s);
		pthread_mutex_unlock(&s->glock);
		workloads_forget(s->workloads);
	}
	s->db_was_up[w] = true;
	if (pg_exec(s->db[w], "SELECT gpuhealth_create_stage()", err, sizeof(err))) {
		set_error(s, "database not ready (%s): run 'gpuhealth db migrate'", err);
		db_close(s, w);
		return -EIO;
	}
	if (pg_exec(s->db[w], "SELECT gpuhealth_create_rollup_stage()", err, sizeof(err))) {
		set_error(s,
		          "database schema older than this sink (%s): run 'gpuhealth db migrate'",
		          err);
		db_close(s, w);
		return -EIO;
	}
	PGresult *r = PQexec(s->db[w], "SELECT to_regclass('gpuhealth_rollup_mark') IS NOT NULL");
	bool mark = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
	            strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	atomic_store(&s->has_mark, mark);
	bool wl = workloads_db_ready(s->db[w]);
	atomic_store(&s->has_workloads, wl);
	if (!wl && !atomic_exchange(&s->workloads_missing_told, true))
		log_warn("sink: the database schema is older than version 13 (no "
		         "gpuhealth_merge_workloads): the GPUs' workloads are not recorded; run "
		         "'gpuhealth db migrate'");
	if (!mark && !atomic_exchange(&s->mark_missing_told, true)) {
		log_warn(
		    "sink: the database schema is older than version 6 (no gpuhealth_rollup_mark): "
		    "every batch merges its 1-minute rollups, the slow way; run 'gpuhealth db "
		    "migrate'");
	}
	r = PQexec(s->db[w], "SELECT extract(epoch FROM value::interval) FROM gpuhealth_settings "
	                     "WHERE key = 'retention'");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		s->retention_s = strtod(PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	pthread_mutex_lock(&s->lock);
	s->st.db_connected = true;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* SQLSTATE classes that a retry cannot fix: the data itself is refused. */
static bool is_data_error(const char *state)
{
	return state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
}

/* Runs one statement expecting tuples or a command; on error returns -EINVAL for refused data,
 * -EIO otherwise, with the message in err and the SQLSTATE in state. */
static int run(struct sink *s, int w, PGresult *r, char *err, size_t errlen, char state[6])
{
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *m = PQresultErrorMessage(r);
		snprintf(err, errlen, "%s", m && *m ? m : PQerrorMessage(s->db[w]));
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		snprintf(state, 6, "%s", code ? code : "");
		rc = is_data_error(code) ? -EINVAL : -EIO;
		if (pg_sqlstate_reconnect(code)) /* e.g. the server is read-only now: another */
			s->reconnect[w] = true;
	}
	return rc;
}

/* COPY ... FROM STDIN of text. Returns 0, -EINVAL (data refused) or -EIO. */
static int copy_in(struct sink *s, int w, const char *sql, bool binary, const char *text,
                   size_t len, char *err, size_t errlen, char state[6])
{
	PGresult *r = PQexec(s->db[w], sql);
	int rc = 0;
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = run(s, w, r, err, errlen, state);
		PQclear(r);
		return rc ? rc : -EIO;
	}
	PQclear(r);
	if (binary && PQputCopyData(s->db[w], pgcopy_header, PGCOPY_HEADER_LEN) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(s->db[w]));
		return -EIO;
	}
	for (size_t off = 0; off < len;) {
		size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
		if (PQputCopyData(s->db[w], text + off, (int)n) != 1) {
			snprintf(err, errlen, "COPY: %s", PQerrorMessage(s->db[w]));
			return -EIO;
		}
		off += n;
	}
	if (binary && PQputCopyData(s->db[w], pgcopy_trailer, sizeof(pgcopy_trailer)) != 1) {
		snprintf(err, errlen, "COPY: %s", PQerrorMessage(s->db[w]));
		return -EIO;
	}
	if (PQputCopyEnd(s->db[w], NULL) != 1) {
		snprintf(err, errlen, "COPY end: %s", PQerrorMessage(s->db[w]));
		return -EIO;
	}
	r = PQgetResult(s->db[w]);
	rc = run(s, w, r, err, errlen, state);
	PQclear(r);
	while ((r = PQgetResult(s->db[w])))
		PQclear(r);
	return rc;
}

static int exec_params(struct sink *s, int w, const char *sql, int n, const char *const *params,
                       PGresult **out, char *err, size_t errlen, char state[6])
{
	PGresult *r = PQexecParams(s->db[w], sql, n, NULL, params, NULL, NULL, 0);
	int rc = run(s, w, r, err, errlen, state);
	if (out && !rc)
		*out = r;
	else
		PQclear(r);
	return rc;
}

/* After a failed statement of writer w: its results drained, then its transaction rolled back,
 * or its connection closed when that is gone or when the failure asks for another connection
 * (pg_sqlstate_reconnect: a read-only server, a shutdown). */
static void db_abort(struct sink *s, int w)
{
	PGresult *r;
	while ((r = PQgetResult(s->db[w])))
		PQclear(r);
	if (PQstatus(s->db[w]) == CONNECTION_OK && !s->reconnect[w]) {
		char ignore[128], st2[6];
		exec_params(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
	} else {
		db_close(s, w);
	}
}

/* COPYs copy (binary COPY tuples of rollup groups, rollup_copy's output) into table, which has
 * gpu_metrics_1min's columns; nothing when copy is empty. Returns 0 or what copy_in returns. */
static int copy_rollups(struct sink *s, int w, const char *table, const struct strbuf *copy,
                        char *err, size_t errlen, char state[6])
{
	char sql[4400];
	if (!copy->len)
		return 0;
	snprintf(sql, sizeof(sql), "COPY %s %s FROM STDIN (FORMAT binary)", table,
	         rollup_columns());
	return copy_in(s, w, sql, true, copy->data, copy->len, err, errlen, state);
}

/* Merges copy into gpu_metrics_1min through the session's gpuhealth_rollup_stage; nothing when
 * copy is empty. Returns 0 or what copy_in/exec_params return. */
static int merge_rollups(struct sink *s, int w, const struct strbuf *copy, char *err, size_t errlen,
                         char state[6])
{
	int rc;
	if (!copy->len)
		return 0;
	if ((rc = copy_rollups(s, w, "gpuhealth_rollup_stage", copy, err, errlen, state)))
		return rc;
	return exec_params(s, w, "SELECT gpuhealth_merge_rollups()", 0, NULL, NULL, err, errlen,
	                   state);
}

static int insert_dead_letters(struct sink *s, int w, struct batch *b, char *err, size_t errlen,
                               char state[6]);

/*
 * Writes nrows rows [text, text+len) and the identities [ident, ident+ilen) in one
 * transaction: straight into gpu_metrics with COPY; if that meets a row already present (a
 * redelivery), again through the staging table, ignoring the rows present. Then the rollups
 * of the rows this transaction inserted below the rollup mark (share-locked for the
 * transaction; schema/006): when every row was new, from roll (the batch's rollups computed
 * here, staged in roll_copy; or NULL), else the database's from the new rows; then the GPU
 * table. After the COMMIT, roll's groups at or after the mark join the sink's open minutes.
 * Returns 0, -EIO (retry), or -EINVAL (the data is refused).
 */
static int db_write(struct sink *s, int w, const char *text, size_t len, size_t nrows,
                    const char *ident, size_t ilen, const struct rollup *roll,
                    struct strbuf *roll_copy, double tmin, double tmax, long long *inserted,
                    long long *dups, struct batch *dl)
{
	char err[512] = "", state[6] = "", sql[4400];
	PGresult *r = NULL;
	int rc = db_ensure(s, w);
	if (rc)
		return rc;
	char a[40], b[40];
	time_format_rfc3339(tmin, a, sizeof(a));
	time_format_rfc3339(tmax, b, sizeof(b));
	char markv[64] = ""; /* the mark in seconds since 1970 ("-Infinity" too); "": none */
	const char *range[3] = {a, b, markv};
	int64_t mark = INT64_MAX; /* every row is below it: merged now */
	bool staged = false;
	int restaged = 0; /* staged writes run again after a concurrent duplicate */
	double t_begin = time_mono();
again:
	if ((rc = exec_params(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)) ||
	    (rc = exec_params(s, w, "SELECT gpuhealth_ensure_partitions($1, $2)", 2, range, NULL,
	                      err, sizeof(err), state)))
		goto fail;
	markv[0] = '\0';
	mark = INT64_MAX;
	if (atomic_load(&s->has_mark)) {
		/* held until COMMIT: the mark cannot move while this transaction decides by it */
		if ((rc = exec_params(s, w,
		                      "SELECT extract(epoch FROM through)::float8 FROM "
		                      "gpuhealth_rollup_mark FOR SHARE",
		                      0, NULL, &r, err, sizeof(err), state)))
			goto fail;
		if (PQntuples(r) != 1) {
			snprintf(err, sizeof(err),
			         "gpuhealth_rollup_mark holds %d rows, not 1: run 'gpuhealth db "
			         "migrate'",
			         PQntuples(r));
			PQclear(r);
			r = NULL;
			rc = -EIO;
			goto fail;
		}
		snprintf(markv, sizeof(markv), "%s", PQgetvalue(r, 0, 0));
		PQclear(r);
		r = NULL;
		mark = rollup_minute(strtod(markv, NULL));
	}
	snprintf(sql, sizeof(sql), "COPY %s %s FROM STDIN (FORMAT binary)",
	         staged ? "gpuhealth_stage" : "gpu_metrics", event_row_columns());
	rc = copy_in(s, w, sql, true, text, len, err, sizeof(err), state);
	if (rc && !staged && strcmp(state, "23505") == 0) {
		/* a row is already there: this batch (or part of it) was delivered before */
		char ignore[128], st2[6];
		exec_params(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
		staged = true;
		goto again;
	}
	if (rc)
		goto fail;
	if (staged) {
		rc = exec_params(s, w, "SELECT inserted, duplicates FROM gpuhealth_ingest_staged()",
		                 0, NULL, &r, err, sizeof(err), state);
		if (rc && strcmp(state, "23505") == 0 && restaged++ < 3) {
			/* another writer committed one of these rows after this transaction's
			 * anti-join (schema/011): again, and the anti-join sees it */
			char ignore[128], st2[6];
			exec_params(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
			goto again;
		}
		if (rc)
			goto fail;
		*inserted = atoll(PQgetvalue(r, 0, 0));
		*dups = atoll(PQgetvalue(r, 0, 1));
		PQclear(r);
	} else {
		*inserted = (long long)nrows;
		*dups = 0;
	}
	double t_rows = time_mono();
	/* every row new and roll complete: its groups below the mark now, the rest at their close
	 */
	bool mine = roll && !staged;
	if (mine) {
		strbuf_reset(roll_copy);
		mine = rollup_copy_range(roll, INT64_MIN, mark, roll_copy) == 0;
	}
	if (mine) {
		if ((rc = merge_rollups(s, w, roll_copy, err, sizeof(err), state)))
			goto fail;
	} else if ((rc = exec_params(s, w,
	                             markv[0] ? "SELECT gpuhealth_rollup_new($1, $2, "
	                                        "to_timestamp($3::float8))"
	                                      : "SELECT gpuhealth_rollup_new($1, $2)",
	                             markv[0] ? 3 : 2, range, NULL, err, sizeof(err), state))) {
		/* (the rows at or after the mark: the database counts them when they close) */
		goto fail;
	}
	double t_roll = time_mono();
	/* the GPUs that need it (none: no statement) */
	if (ilen && ((rc = copy_in(s, w,
	                           "COPY gpuhealth_ident (" EVENT_ROW_IDENT_COLUMNS
	                           ", first_seen, last_seen) FROM STDIN",
	                           false, ident, ilen, err, sizeof(err), state)) ||
	             (rc = exec_params(s, w, "SELECT gpuhealth_merge_gpus()", 0, NULL, NULL, err,
	                               sizeof(err), state))))
		goto fail;
	/* the dead letters the dead-letter topic refused: committed with the batch */
	if (dl && (rc = insert_dead_letters(s, w, dl, err, sizeof(err), state)))
		goto fail;
	/* the batch's workload changes (gpu_workloads; idempotent, so a redelivery merges into
	 * the rows it wrote before) */
	if (dl && dl->wl_json) {
		const char *wp[1] = {dl->wl_json};
		if ((rc = exec_params(s, w, "SELECT gpuhealth_merge_workloads($1::jsonb)", 1, wp,
		                      NULL, err, sizeof(err), state)))
			goto fail;
	}
	double t_gpus = time_mono();
	pthread_mutex_lock(&s->rlock);
	rc = exec_params(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state);
	if (!rc) {
		/* (out of memory: part of them kept; the close sees the count differ and has the
		 * database compute those minutes) */
		if (roll && !staged && markv[0] && rollup_merge(s->open, roll, mark))
			log_warn("sink: out of memory keeping rollups; the database computes them");
		if (tmax > s->newest)
			s->newest = tmax;
		s->last_commit = time_mono();
		if (markv[0] && mark > s->mark)
			s->mark = mark;
	}
	pthread_mutex_unlock(&s->rlock);
	if (rc)
		goto fail;
	log_debug("sink: transaction: rows %.3f s%s, rollups %.3f s, gpus %.3f s, commit %.3f s",
	          t_rows - t_begin, staged ? " (staged)" : "", t_roll - t_rows, t_gpus - t_roll,
	          time_mono() - t_gpus);
	return 0;
fail:;
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	set_error(s, "database: %s", err);
	db_abort(s, w);
	return rc == -EINVAL ? -EINVAL : -EIO;
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
	db_abort(s, w);
}

static void sent_clear(struct batch *b)
{
	for (size_t i = 0; i < b->nsent; i++) {
		free(b->sent[i].key);
		free(b->sent[i].ident);
	}
	b->nsent = 0;
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

/* Merges into gpus, in a transaction of its own, every known GPU whose committed rows need more
 * than a later last_seen (known_needs_merge): the same merge as a batch's. */
static void gpus_merge_pending(struct sink *s, int w)
{
	struct batch *b = &s->idle;
	int rc = 0;
	sent_clear(b);
	strbuf_reset(&b->ident_copy);
	pthread_mutex_lock(&s->glock);
	for (size_t i = 0; !rc && i < s->known_cap; i++) {
		const struct gpu_known *k = &s->known[i];
		if (k->key && known_pending(k) && known_needs_merge(k))
			rc = gpus_send(b, k->key, k->cident, k->clen, k->cfirst, k->clast);
	}
	pthread_mutex_unlock(&s->glock);
	char err[512] = "", state[6] = "";
	if (!rc && b->nsent) {
		if (!(rc = exec_params(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)) &&
		    !(rc = copy_in(s, w,
		                   "COPY gpuhealth_ident (" EVENT_ROW_IDENT_COLUMNS
		                   ", first_seen, last_seen) FROM STDIN",
		                   false, b->ident_copy.data, b->ident_copy.len, err, sizeof(err),
		                   state)) &&
		    !(rc = exec_params(s, w, "SELECT gpuhealth_merge_gpus()", 0, NULL, NULL, err,
		                       sizeof(err), state)) &&
		    !(rc = exec_params(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state)))
			gpus_committed(s, b);
		else
			gpus_failed(s, w, "merging", b->nsent, err);
	}
	sent_clear(b);
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
	pthread_mutex_lock(&s->glock);
	for (size_t i = 0; !rc && i < s->known_cap; i++) {
		const struct gpu_known *k = &s->known[i];
		char t[40];
		if (!k->key || !known_pending(k) || known_needs_merge(k))
			continue;
		if (!(rc = sent_add(b, k->key, k->cident, k->clen, k->cfirst, k->clast)) &&
		    !(rc = array_elem(&b->touch_keys, k->key, strlen(k->key))) &&
		    !(rc = time_format_rfc3339(k->clast, t, sizeof(t))))
			rc = array_elem(&b->touch_times, t, strlen(t));
	}
	pthread_mutex_unlock(&s->glock);
	char err[512] = "", state[6] = "";
	if (!rc && b->nsent && !(rc = strbuf_append(&b->touch_keys, "}", 1)) &&
	    !(rc = strbuf_append(&b->touch_times, "}", 1))) {
		const char *arrays[2] = {b->touch_keys.data, b->touch_times.data};
		if (!exec_params(
		        s, w,
		        "UPDATE gpus AS g SET last_seen = v.t FROM unnest($1::text[], "
		        "$2::timestamptz[]) AS v(k, t) WHERE g.gpu_key = v.k AND g.last_seen < v.t",
		        2, arrays, NULL, err, sizeof(err), state))
			gpus_committed(s, b);
		else
			gpus_failed(s, w, "moving last_seen of", b->nsent, err);
	}
	sent_clear(b);
}

/*
 * Brings gpus up to this sink's committed rows once GPUS_MERGE_S passed since the last time (or
 * always when force): the GPUs that need a merge, then last_seen of the rest. Writer 0 calls it
 * between batches, when idle and at stop, so gpus.last_seen lags the committed rows by at most
 * GPUS_MERGE_S (and a batch's time) under any load.
 */
static void gpus_refresh(struct sink *s, int w, bool force)
{
	pthread_mutex_lock(&s->glock);
	bool due = force || time_mono() - s->gpus_merged_at >= GPUS_MERGE_S;
	pthread_mutex_unlock(&s->glock);
	if (!due || db_ensure(s, w))
		return;
	gpus_merge_pending(s, w);
	gpus_touch(s, w);
	pthread_mutex_lock(&s->glock);
	s->gpus_merged_at = time_mono();
	pthread_mutex_unlock(&s->glock);
}

/*
 * Closes the minutes [mark, target) in one transaction with the mark locked FOR UPDATE (so every
 * batch that read the old mark has committed, and its rollups are in open): when the database
 * holds exactly the rows this sink kept the rollups of in that range (the counts agree; this
 * sink's rows are a subset of the database's), those rollups are written once per (GPU,
 * minute); else the database computes them from gpu_metrics (rows of another sink, of a batch
 * written the staged way, or from before a restart), at most 5 minutes at a time. *reached is
 * the new mark. Returns 0 or -EIO.
 *
 * optimistic: the rollups are written first, from the mark the batches last read, without the
 * lock (batches go on writing meanwhile; writing 200,000 groups takes seconds), inserted
 * straight (no row of those minutes exists yet), then the lock is
 * taken and the guess checked: the same mark, no sample added to those minutes meanwhile, and
 * the database's rows agreeing. Anything else: ROLLBACK and -EAGAIN (the caller closes again,
 * not optimistic). The batches then wait only for the count.
 */
static int close_once(struct sink *s, int w, int64_t target, int64_t *reached, bool optimistic)
{
	char err[512] = "", state[6] = "", tv[64];
	PGresult *r = NULL;
	int rc = db_ensure(s, w);
	if (rc)
		return rc;
	snprintf(tv, sizeof(tv), "%.6f", (double)target / 1e6 + 946684800.0);
	const char *p[1] = {tv};
	bool recompute = false;
	int64_t old, done, guess = INT64_MIN;
	uint64_t dbrows = 0, mine = 0, mine0 = 0;
	if (optimistic) {
		pthread_mutex_lock(&s->rlock);
		guess = s->mark;
		bool ok = guess != INT64_MIN && guess < target;
		if (ok) {
			rollup_drop_below(s->open, guess); /* a mark only moves on */
			mine0 = rollup_samples(s->open, guess, target);
			strbuf_reset(&s->close_copy);
			ok = rollup_copy_range(s->open, guess, target, &s->close_copy) == 0;
		}
		pthread_mutex_unlock(&s->rlock);
		if (!ok)
			return -EAGAIN;
	}
	if ((rc = exec_params(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)))
		goto fail;
	/* groups of minutes at or after the mark: by schema/006's promise gpu_metrics_1min has no
	 * row of them, so one COPY inserts them straight (multi-row inserts; staging and ON
	 * CONFLICT row by row was ~15 % of PostgreSQL's CPU at 200,704 GPUs). A row there anyway
	 * (another sink closed the minute meanwhile) fails it with unique_violation */
	if (optimistic && (rc = copy_rollups(s, w, "gpu_metrics_1min", &s->close_copy, err,
	                                     sizeof(err), state))) {
		if (strcmp(state, "23505") != 0)
			goto fail;
		db_abort(s, w); /* a group already there: the locked way merges instead */
		log_debug("sink: optimistic rollup close met a closed group; closing locked");
		return -EAGAIN;
	}
	if ((rc = exec_params(s, w,
	                      "SELECT extract(epoch FROM through)::float8, rows_between FROM "
	                      "gpuhealth_rollup_lock(to_timestamp($1::float8))",
	                      1, p, &r, err, sizeof(err), state)))
		goto fail;
	old = rollup_minute(strtod(PQgetvalue(r, 0, 0), NULL));
	dbrows = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
	PQclear(r);
	r = NULL;
	done = old;
	if (optimistic) {
		pthread_mutex_lock(&s->rlock);
		mine = rollup_samples(s->open, old, target);
		pthread_mutex_unlock(&s->rlock);
		if (old != guess || mine != mine0 || dbrows != mine0) {
			char ignore[128], st2[6];
			exec_params(s, w, "ROLLBACK", 0, NULL, NULL, ignore, sizeof(ignore), st2);
			log_debug("sink: optimistic rollup close missed (mark %s, samples "
			          "%llu/%llu/%llu)",
			          old == guess ? "same" : "moved", (unsigned long long)mine0,
			          (unsigned long long)mine, (unsigned long long)dbrows);
			return -EAGAIN;
		}
		if ((rc = exec_params(s, w,
		                      "SELECT gpuhealth_rollup_close(to_timestamp($1::float8))", 1,
		                      p, NULL, err, sizeof(err), state)))
			goto fail;
		done = target;
	} else if (old < target) {
		pthread_mutex_lock(&s->rlock);
		rollup_drop_below(s->open, old); /* closed by another sink meanwhile */
		mine = rollup_samples(s->open, old, target);
		strbuf_reset(&s->close_copy);
		recompute =
		    mine != dbrows || rollup_copy_range(s->open, old, target, &s->close_copy) != 0;
		pthread_mutex_unlock(&s->rlock);
		if (!recompute) {
			if ((rc = merge_rollups(s, w, &s->close_copy, err, sizeof(err), state)))
				goto fail;
			if ((rc = exec_params(
			         s, w, "SELECT gpuhealth_rollup_close(to_timestamp($1::float8))", 1,
			         p, NULL, err, sizeof(err), state)))
				goto fail;
			done = target;
		} else {
			if ((rc =
			         exec_params(s, w,
			                     "SELECT extract(epoch FROM gpuhealth_rollup_recompute("
			                     "to_timestamp($1::float8)))::float8",
			                     1, p, &r, err, sizeof(err), state)))
				goto fail;
			done = rollup_minute(strtod(PQgetvalue(r, 0, 0), NULL));
			PQclear(r);
			r = NULL;
		}
	}
	if ((rc = exec_params(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state)))
		goto fail;
	pthread_mutex_lock(&s->rlock);
	if (done > s->mark)
		s->mark = done;
	rollup_drop_below(s->open, done);
	pthread_mutex_unlock(&s->rlock);
	if (done > old) {
		pthread_mutex_lock(&s->lock);
		s->st.rollup_closes++;
		if (recompute)
			s->st.rollup_recomputes++;
		pthread_mutex_unlock(&s->lock);
		char ts[40];
		time_format_rfc3339((double)done / 1e6 + 946684800.0, ts, sizeof(ts));
		log_debug("sink: 1-minute rollups closed up to %s: %llu rows, %s", ts,
		          (unsigned long long)dbrows,
		          recompute ? "computed by the database" : "from this sink's memory");
	}
	*reached = done;
	return 0;
fail:
	if (r)
		PQclear(r);
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	set_error(s, "database: %s", err);
	log_warn("sink: cannot close the 1-minute rollups (%s); tried again later", err);
	db_abort(s, w);
	return -EIO;
}

/*
 * Writer 0, between batches, when idle and at stop: closes the minutes that end CLOSE_GRACE_S
 * before the newest committed sample (not after this host's clock), every CLOSE_EVERY_S; when
 * idle that long or at stop (final), every minute up to the newest sample.
 */
static void rollups_close(struct sink *s, int w, bool final)
{
	if (!atomic_load(&s->has_mark))
		return;
	for (int round = 0; round < 10000; round++) {
		pthread_mutex_lock(&s->rlock);
		double newest = s->newest, idle = time_mono() - s->last_commit;
		int64_t known = s->mark;
		bool due = final || time_mono() - s->closed_at >= CLOSE_EVERY_S;
		pthread_mutex_unlock(&s->rlock);
		if (!due || newest == -INFINITY)
			return;
		double now = time_now(), t = newest < now ? newest : now;
		int64_t target = final || idle >= CLOSE_GRACE_S ? rollup_minute(t) + MINUTE_US
		                                                : rollup_minute(t - CLOSE_GRACE_S);
		if (target <= known)
			return;
		int64_t reached = INT64_MIN;
		int rc = close_once(s, w, target, &reached, true);
		if (rc == -EAGAIN)
			rc = close_once(s, w, target, &reached, false);
		pthread_mutex_lock(&s->rlock);
		s->closed_at = time_mono();
		pthread_mutex_unlock(&s->rlock);
		if (rc || reached >= target || !final || atomic_load(&s->stop_now))
			return;
	}
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

/* Sleeps a backoff step with jitter, in slices so a stop is seen. Returns false when stopping. */
static bool backoff(struct sink *s, int attempt, double deadline)
{
	double d = BACKOFF_MIN_S;
	for (int i = 0; i < attempt && d < BACKOFF_MAX_S; i++)
		d *= 2;
	if (d > BACKOFF_MAX_S)
		d = BACKOFF_MAX_S;
	d *= 0.5 + (double)rand() / RAND_MAX; /* jitter: 0.5x .. 1.5x */
	double end = time_mono() + d;
	while (time_mono() < end) {
		if (atomic_load(&s->stop) && (time_mono() > deadline || atomic_load(&s->stop_now)))
			return false;
		rd_kafka_poll(s->dlq, 0);
		sleep_s(0.05);
	}
	return true;
}

static void set_paused(struct sink *s, bool paused)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(s->consumer, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
		if (paused)
			rd_kafka_pause_partitions(s->consumer, parts);
		else
			rd_kafka_resume_partitions(s->consumer, parts);
		rd_kafka_topic_partition_list_destroy(parts);
	}
	pthread_mutex_lock(&s->lock);
	s->st.paused = paused;
	pthread_mutex_unlock(&s->lock);
}

/* The database refused a batch's data: write row by row so only the refused rows become dead
 * letters (with the database's reason) and the rest is stored. */
static int write_row_by_row(struct sink *s, int w, struct batch *b, long long *ins, long long *dups,
                            double deadline)
{
	for (size_t i = 0; i < b->nitems; i++) {
		struct item *it = &b->items[i];
		if (it->reason)
			continue;
		long long n_ins = 0, n_dup = 0;
		int attempt = 0, rc;
		if (build_ident_copy(s, b, it))
			return -ENOMEM;
		while ((rc = db_write(s, w, b->rows.data + it->row_off, it->row_len, 1,
		                      b->ident_copy.data, b->ident_copy.len, NULL, NULL, it->time,
		                      it->time, &n_ins, &n_dup, NULL)) == -EIO) {
			if (!backoff(s, attempt++, deadline))
				return -EIO;
		}
		if (rc == -EINVAL) {
			pthread_mutex_lock(&s->lock);
			it->reason = strdup(s->st.last_error);
			pthread_mutex_unlock(&s->lock);
			if (!it->reason)
				return -ENOMEM;
			continue;
		}
		*ins += n_ins;
		*dups += n_dup;
	}
	return 0;
}

/* The dead letter's payload and key as carried: the payload cut to EVENT_CHECK_DLQ_PAYLOAD_MAX
 * (with its original size and hash), the key to DLQ_KEY_MAX. */
static void dead_letter_shape(const rd_kafka_message_t *m, struct event_dead_letter *d,
                              size_t *key_len)
{
	event_check_dead_letter(m->payload, m->len, 0, d);
	*key_len = m->key_len > DLQ_KEY_MAX ? DLQ_KEY_MAX : m->key_len;
}

static int produce_dead_letter(struct sink *s, struct item *it)
{
	rd_kafka_message_t *m = it->m;
	char part[16], off[24], at[40], size[24];
	struct event_dead_letter d;
	size_t klen;
	dead_letter_shape(m, &d, &klen);
	snprintf(part, sizeof(part), "%d", (int)m->partition);
	snprintf(off, sizeof(off), "%lld", (long long)m->offset);
	snprintf(size, sizeof(size), "%zu", d.original_size);
	time_format_rfc3339(time_now(), at, sizeof(at));
	const char *src = m->rkt ? rd_kafka_topic_name(m->rkt) : s->topic;
	const char *cut = d.cut ? "true" : "false";
	atomic_store(&it->dlq, DLQ_PENDING);
	it->dlq_tries++;
	rd_kafka_resp_err_t e;
	for (;;) {
		e = rd_kafka_producev(
		    s->dlq, RD_KAFKA_V_TOPIC(s->dlq_topic),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(m->key, klen),
		    RD_KAFKA_V_VALUE(m->payload, d.len),
		    RD_KAFKA_V_HEADER("gpuhealth.reason", it->reason, (ssize_t)strlen(it->reason)),
		    RD_KAFKA_V_HEADER("gpuhealth.source.topic", src, (ssize_t)strlen(src)),
		    RD_KAFKA_V_HEADER("gpuhealth.source.partition", part, (ssize_t)strlen(part)),
		    RD_KAFKA_V_HEADER("gpuhealth.source.offset", off, (ssize_t)strlen(off)),
		    RD_KAFKA_V_HEADER("gpuhealth.failed_at", at, (ssize_t)strlen(at)),
		    RD_KAFKA_V_HEADER("gpuhealth.original_size", size, (ssize_t)strlen(size)),
		    RD_KAFKA_V_HEADER("gpuhealth.payload_fnv1a64", d.hash, (ssize_t)strlen(d.hash)),
		    RD_KAFKA_V_HEADER("gpuhealth.payload_cut", cut, (ssize_t)strlen(cut)),
		    RD_KAFKA_V_OPAQUE(it), RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		rd_kafka_poll(s->dlq, 100);
	}
	if (e) {
		atomic_store(&it->dlq_err, e);
		atomic_store(&it->dlq, DLQ_FAILED);
		set_error(s, "dead-letter produce: %s", rd_kafka_err2str(e));
		return -EIO;
	}
	return 0;
}

/* Errors no retry of the same record can mend: the topic refuses it for good. */
static bool dlq_permanent(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
	/* already waited DLQ_TIMEOUT_MS */
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT: return true;
	default: return false;
	}
}

/*
 * Sends every dead letter of the batch out, before the batch's transaction: to the dead-letter
 * topic, tried up to DLQ_ATTEMPTS times; what the topic still refuses (or refuses for good at
 * the first try) is marked DLQ_TABLE, for the transaction to insert into dead_letters. So a
 * dead letter always leaves and the batch never waits on the topic for ever. Returns 0, or
 * -EIO when stopping past the deadline.
 */
static int deliver_dead_letters(struct sink *s, struct batch *b, double deadline)
{
	for (int attempt = 0;; attempt++) {
		size_t todo = 0;
		for (size_t i = 0; i < b->nitems; i++) {
			struct item *it = &b->items[i];
			int st = atomic_load(&it->dlq);
			if (!it->reason || st == DLQ_DONE || st == DLQ_TABLE)
				continue;
			if (st == DLQ_FAILED && (dlq_permanent(atomic_load(&it->dlq_err)) ||
			                         it->dlq_tries >= DLQ_ATTEMPTS)) {
				atomic_store(&it->dlq, DLQ_TABLE);
				log_warn("sink: dead letter of %s[%d]@%lld (%zu bytes) refused by "
				         "%s: %s; "
				         "it goes to the dead_letters table",
				         s->topic, (int)it->m->partition, (long long)it->m->offset,
				         it->m->len, s->dlq_topic,
				         rd_kafka_err2str(atomic_load(&it->dlq_err)));
				continue;
			}
			if (st != DLQ_PENDING)
				produce_dead_letter(s, it);
			todo++;
		}
		if (!todo)
			return 0;
		/* every report comes within message.timeout.ms (DLQ_TIMEOUT_MS) */
		for (;;) {
			rd_kafka_flush(s->dlq, 1000);
			size_t pending = 0;
			for (size_t i = 0; i < b->nitems; i++)
				pending += b->items[i].reason &&
				           atomic_load(&b->items[i].dlq) == DLQ_PENDING;
			if (!pending)
				break;
			if (atomic_load(&s->stop) &&
			    (time_mono() > deadline || atomic_load(&s->stop_now)))
				return -EIO;
		}
		bool failed = false;
		for (size_t i = 0; i < b->nitems; i++)
			failed |= b->items[i].reason &&
			          atomic_load(&b->items[i].dlq) == DLQ_FAILED &&
			          !dlq_permanent(atomic_load(&b->items[i].dlq_err)) &&
			          b->items[i].dlq_tries < DLQ_ATTEMPTS;
		if (failed && !backoff(s, attempt, deadline))
			return -EIO;
	}
}

/* The dead letters marked DLQ_TABLE (n of them), inserted into dead_letters in writer w's open
 * transaction: the reason, the source coordinates, the original size and hash, the payload cut
 * to the bound. A redelivered batch finds its own already there (the source coordinates are
 * the key). Returns 0, or what exec fails with (-EIO: retried; the dead letter stays). */
static int insert_dead_letters(struct sink *s, int w, struct batch *b, char *err, size_t errlen,
                               char state[6])
{
	for (size_t i = 0; i < b->nitems; i++) {
		struct item *it = &b->items[i];
		if (!it->reason || atomic_load(&it->dlq) != DLQ_TABLE)
			continue;
		rd_kafka_message_t *m = it->m;
		struct event_dead_letter d;
		size_t klen;
		dead_letter_shape(m, &d, &klen);
		char part[16], off[24], size[24], cut[2] = {d.cut ? 't' : 'f', 0};
		snprintf(part, sizeof(part), "%d", (int)m->partition);
		snprintf(off, sizeof(off), "%lld", (long long)m->offset);
		snprintf(size, sizeof(size), "%zu", d.original_size);
		const char *src = m->rkt ? rd_kafka_topic_name(m->rkt) : s->topic;
		const char *why = rd_kafka_err2str(atomic_load(&it->dlq_err));
		const char *vals[10] = {it->reason, src,    part,       off, m->key,
		                        size,       d.hash, m->payload, cut, why};
		int lens[10] = {0, 0, 0, 0, (int)klen, 0, 0, (int)d.len, 0, 0};
		int fmts[10] = {0, 0, 0, 0, 1, 0, 0, 1, 0, 0};
		if (!m->key)
			vals[4] = NULL;
		PGresult *r = PQexecParams(
		    s->db[w],
		    "INSERT INTO dead_letters (service, reason, source_topic, source_partition, "
		    "source_offset, source_key, original_size, payload_fnv1a64, payload, "
		    "payload_cut, "
		    "dlq_error) VALUES ('sink', $1, $2, $3::integer, $4::bigint, $5::bytea, "
		    "$6::bigint, "
		    "$7, $8::bytea, $9::boolean, $10) "
		    "ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING",
		    10, NULL, vals, lens, fmts, 0);
		int rc = run(s, w, r, err, errlen, state);
		PQclear(r);
		if (rc) {
			if (strcmp(state, "42P01") == 0)
				snprintf(err, errlen,
				         "the dead-letter topic refused a dead letter and the "
				         "database has "
				         "no dead_letters table: run 'gpuhealth db migrate'");
			return -EIO; /* never a data error: the dead letter must stay */
		}
	}
	return 0;
}

/* The table's dead letters when the batch has no row transaction to ride in (no rows, or rows
 * written one by one): a transaction of their own. Returns 0, -EIO. */
static int db_write_dead_letters(struct sink *s, int w, struct batch *b)
{
	char err[512] = "", state[6] = "";
	int rc = db_ensure(s, w);
	if (rc)
		return rc;
	if (!(rc = exec_params(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)) &&
	    !(rc = insert_dead_letters(s, w, b, err, sizeof(err), state)) &&
	    !(rc = exec_params(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state)))
		return 0;
	set_error(s, "database: %s", err);
	db_abort(s, w);
	return -EIO;
}

static size_t count_table(const struct batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->nitems; i++)
		n += b->items[i].reason && atomic_load(&b->items[i].dlq) == DLQ_TABLE;
	return n;
}

static void store_offsets(struct sink *s, struct batch *b)
{
	if (!b->noffs)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(b->noffs);
	for (int i = 0; i < b->noffs; i++)
		rd_kafka_topic_partition_list_add(l, s->topic, b->offs[i].partition)->offset =
		    b->offs[i].next;
	rd_kafka_resp_err_t e = rd_kafka_offsets_store(s->consumer, l);
	if (e) /* partitions revoked meanwhile: the new owner re-reads; rows are idempotent */
		log_debug("sink: offsets not stored: %s", rd_kafka_err2str(e));
	pthread_mutex_lock(&s->lock);
	for (int i = 0; !e && i < b->noffs; i++)
		acked_set(s, b->offs[i].partition, b->offs[i].next, true);
	pthread_mutex_unlock(&s->lock);
	rd_kafka_topic_partition_list_destroy(l);
}

/*
 * The batch's rows grouped by GPU (each GPU's rows in arrival order, the GPUs in order of first
 * appearance) into by_gpu: consecutive rows then go to the same leaf of the (gpu_key, time)
 * index and the same heap pages, instead of a different leaf for every row when a fleet's
 * samples arrive interleaved. PostgreSQL's COPY took ~15 % less time so. Returns the rows to
 * send: by_gpu, or the rows as they came when memory is short.
 */
static const char *group_by_gpu(struct batch *b)
{
	if (b->seen_n > b->gpu_off_cap) {
		size_t *p = realloc(b->gpu_off, b->seen_n * sizeof(*p));
		if (!p)
			return b->rows.data;
		b->gpu_off = p;
		b->gpu_off_cap = b->seen_n;
	}
	if (b->rows.len > b->by_gpu_cap) {
		char *p = realloc(b->by_gpu, b->rows.len);
		if (!p)
			return b->rows.data;
		b->by_gpu = p;
		b->by_gpu_cap = b->rows.len;
	}
	memset(b->gpu_off, 0, b->seen_n * sizeof(*b->gpu_off));
	size_t total = 0;
	for (size_t i = 0; i < b->nitems; i++)
		if (!b->items[i].reason)
			b->gpu_off[b->items[i].gpu] += b->items[i].row_len;
	for (size_t g = 0; g < b->seen_n; g++) { /* sizes -> starts */
		size_t n = b->gpu_off[g];
		b->gpu_off[g] = total;
		total += n;
	}
	if (total != b->rows.len)
		return b->rows.data; /* not only rows in the buffer: send it as it is */
	for (size_t i = 0; i < b->nitems; i++) {
		const struct item *it = &b->items[i];
		if (it->reason)
			continue;
		memcpy(b->by_gpu + b->gpu_off[it->gpu], b->rows.data + it->row_off, it->row_len);
		b->gpu_off[it->gpu] += it->row_len;
	}
	return b->by_gpu;
}

/*
 * Writes a queued batch on writer w's connection: rows committed (retrying while the database
 * is away; the consumer pauses when every batch is taken), dead letters delivered. When
 * stopping, gives up after the stop deadline. Offsets are not stored here but by finish(), in
 * queue order. Returns 0 or -EIO (given up: not acknowledged, so redelivered).
 */
static int flush(struct sink *s, int w, struct batch *b)
{
	b->ins = b->dups = 0;
	b->dead = b->dead_db = 0;
	/* a batch before this one was given up: its offsets must stay behind */
	if (atomic_load(&s->abandoned))
		goto abandon;
	double deadline = time_mono() + STOP_DEADLINE_S;
	long long ins = 0, dups = 0;
	int rc = 0, attempt = 0;
	double t0 = time_mono(), told = 0;
	/* dead letters first: what the topic refuses rides in the batch's transaction */
	if (deliver_dead_letters(s, b, deadline))
		goto abandon;
	size_t ntable = count_table(b);
	if (b->nrows && atomic_load(&s->has_workloads) && b->wl_runs &&
	    workloads_pending_json(s->workloads, b->wl_runs, &b->wl_json)) {
		log_error("sink: out of memory building a batch");
		goto abandon;
	}
	if (b->nrows && build_gpus_copy(s, b)) {
		log_error("sink: out of memory building a batch");
		goto abandon;
	}
	if (b->nrows || ntable) {
		const char *rows = b->nrows ? group_by_gpu(b) : NULL;
		while ((rc = b->nrows
		                 ? db_write(s, w, rows, b->rows.len, b->nrows, b->ident_copy.data,
		                            b->ident_copy.len, b->roll_ok ? b->roll : NULL,
		                            &b->roll_copy, b->tmin, b->tmax, &ins, &dups, b)
		                 : db_write_dead_letters(s, w, b)) == -EIO) {
			pthread_mutex_lock(&s->lock);
			s->st.db_errors++;
			s->st.retrying = true;
			s->st.retry_since = b->batch_started;
			pthread_mutex_unlock(&s->lock);
			/* told at warning level once per RETRY_TELL_S, with the count and the age
			 * of the oldest message held */
			if (time_mono() - told >= RETRY_TELL_S) {
				told = time_mono();
				log_warn(
				    "sink: retrying a batch of %zu messages (%zu rows, %zu dead "
				    "letters for the table), the oldest held %.0f s, attempt %d: "
				    "%s; "
				    "consumption paused",
				    b->nitems, b->nrows, ntable, time_mono() - b->batch_started,
				    attempt + 1, s->st.last_error);
			}
			if (!backoff(s, attempt++, deadline) || atomic_load(&s->abandoned))
				goto abandon;
		}
		if (rc == 0 && b->nrows) {
			gpus_committed(s, b);
			if (b->wl_json)
				workloads_committed(s->workloads, b->wl_runs);
		}
		if (rc == -EINVAL) {
			/* each row merges its own GPU; the known GPUs are left as they were */
			log_warn("sink: the database refused a batch (%s); writing it row by row",
			         s->st.last_error);
			if (write_row_by_row(s, w, b, &ins, &dups, deadline))
				goto abandon;
			/* the rows it refused are dead letters too; the table's in a transaction of
			 * their own (the rows' were one each) */
			if (deliver_dead_letters(s, b, deadline))
				goto abandon;
			ntable = count_table(b);
			while (ntable && db_write_dead_letters(s, w, b))
				if (!backoff(s, attempt++, deadline) || atomic_load(&s->abandoned))
					goto abandon;
		}
		if (attempt)
			log_info("sink: database back after %d attempts", attempt);
		pthread_mutex_lock(&s->lock);
		s->st.retrying = false;
		pthread_mutex_unlock(&s->lock);
	}
	log_debug(
	    "sink: batch of %zu rows (%zu bytes of binary COPY) written in %.3f s: %lld new, %lld "
	    "duplicates",
	    b->nrows, b->rows.len, time_mono() - t0, ins, dups);
	for (size_t i = 0; i < b->nitems; i++)
		if (b->items[i].reason) {
			b->dead++;
			b->dead_db += atomic_load(&b->items[i].dlq) == DLQ_TABLE;
		}
	b->ins = ins;
	b->dups = dups;
	return 0;
abandon:
	pthread_mutex_lock(&s->lock);
	s->st.retrying = false;
	pthread_mutex_unlock(&s->lock);
	/* Dead letters still in flight point into this batch: purge them and serve their
	 * reports before the batch goes away. (Another writer's dead letters purged with them
	 * fail and are produced again by its own retry loop.) */
	rd_kafka_purge(s->dlq, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_flush(s->dlq, 5000);
	return -EIO;
}

/*
 * Finishes the oldest batch once written, in queue order: a committed batch stores its offsets
 * (only while no earlier batch was given up, so an offset is never stored ahead of rows that
 * are not committed) and adds to the counters; a given-up batch marks the sink abandoned until
 * the next assignment. Called with wlock held; drops it while it works.
 */
static void finish(struct sink *s)
{
	while (!s->finishing) {
		struct batch *b = NULL;
		for (int i = 0; i < NBATCH; i++)
			if (s->batches[i].state == B_DONE && s->batches[i].seq == s->seq_done)
				b = &s->batches[i];
		if (!b)
			return;
		s->finishing = true;
		pthread_mutex_unlock(&s->wlock);
		if (b->rc) {
			if (!atomic_load(&s->abandoned))
				log_warn("sink: giving up an unwritten batch of %zu messages; not "
				         "acknowledged, so Kafka redelivers it",
				         b->nitems);
			atomic_store(&s->abandoned, true);
		} else {
			/* Committed after an earlier batch was given up, its offsets stay behind:
			 * the redelivery finds its rows present. */
			if (!atomic_load(&s->abandoned))
				store_offsets(s, b);
			pthread_mutex_lock(&s->lock);
			s->st.rows_written += (uint64_t)b->ins;
			s->st.duplicates += (uint64_t)b->dups;
			s->st.dead_letters += b->dead;
			s->st.dead_letters_db += b->dead_db;
			s->st.batches++;
			pthread_mutex_unlock(&s->lock);
		}
		batch_clear(s, b);
		pthread_mutex_lock(&s->wlock);
		b->state = B_FREE;
		s->seq_done++;
		s->finishing = false;
		pthread_cond_broadcast(&s->wcond);
	}
}

static void take(struct sink *s, struct batch *b, rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			set_error(s, "kafka: %s", rd_kafka_message_errstr(m));
			log_warn("sink: consumer: %s", rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
		return;
	}
	if (b->nitems == b->capitems) {
		size_t cap = b->capitems ? b->capitems * 2 : 1024;
		struct item *p = realloc(b->items, cap * sizeof(*p));
		if (!p) {
			/* Not acknowledged: redelivered after a restart. */
			log_error("sink: out of memory holding a batch");
			rd_kafka_message_destroy(m);
			atomic_store(&s->stop, true);
			return;
		}
		b->items = p;
		b->capitems = cap;
	}
	if (b->nitems == 0)
		b->batch_started = time_mono();
	struct item *it = &b->items[b->nitems++];
	memset(it, 0, sizeof(*it));
	it->m = m; /* the batch owns it now */
	record_offset(s, b, m->partition, m->offset);
	atomic_fetch_add_explicit(&s->consumed, 1, memory_order_relaxed); /* no lock per message */

	struct event_row_opts o = {.now = time_now(),
	                           .max_age_s = s->retention_s,
	                           .max_future_s = s->max_future_s,
	                           .workload = &s->wl_text};
	struct event_row_info info;
	char reason[256];
	it->row_off = b->rows.len;
	it->ident_off = b->idents.len;
	int rc = event_row_append(m->payload, m->len, &o, &b->rows, &b->idents, &info, reason,
	                          sizeof(reason));
	if (rc == 0) {
		it->row_len = b->rows.len - it->row_off;
		it->ident_len = b->idents.len - it->ident_off;
		it->time = info.time;
		char key[256];
		ident_key(b->idents.data + it->ident_off, it->ident_len, key, sizeof(key));
		if (seen_add(s, b, key, info.time, it->ident_off, it->ident_len, &it->gpu) ||
		    workload_runs_add(b->wl_runs, info.gpu_key, s->wl_text.data ? s->wl_text.data : "",
		                      s->wl_text.len, info.time)) {
			log_error("sink: out of memory");
			atomic_store(&s->stop, true);
		}
		if (b->roll_ok && rollup_add(b->roll, b->rows.data + it->row_off, it->row_len))
			b->roll_ok = false; /* the database computes them instead */
		if (b->nrows == 0 || info.time < b->tmin)
			b->tmin = info.time;
		if (b->nrows == 0 || info.time > b->tmax)
			b->tmax = info.time;
		b->nrows++;
		return;
	}
	if (rc != -EINVAL)
		snprintf(reason, sizeof(reason), "cannot hold the row: %s", strerror(-rc));
	it->reason = strdup(reason);
	if (!it->reason) {
		log_error("sink: out of memory");
		atomic_store(&s->stop, true);
	}
}

static void maintenance(struct sink *s);

/*
 * Inserts one pipeline_stats row: the counters since start and the consumer lag (NULL when
 * unknown), one statement in its own transaction. Runs on the writer thread between batches,
 * only on a connection that is up and idle (no reconnect here: the batches do that). A failure
 * is logged and counted, never fatal; a missing table (a database at an older schema) is told
 * once with the fix.
 */
static void write_stats(struct sink *s)
{
	const int w = 0; /* writer 0 writes the stats rows */
	s->last_stats = time_mono();
	if (!s->db[w] || PQstatus(s->db[w]) != CONNECTION_OK ||
	    PQtransactionStatus(s->db[w]) != PQTRANS_IDLE)
		return;
	struct sink_stats st;
	sink_stats(s, &st);
	char at[40], lag[24], consumed[24], rows[24], dead[24], errs[24];
	time_format_rfc3339(time_now(), at, sizeof(at));
	snprintf(lag, sizeof(lag), "%lld", (long long)st.lag_total);
	snprintf(consumed, sizeof(consumed), "%llu", (unsigned long long)st.consumed);
	snprintf(rows, sizeof(rows), "%llu", (unsigned long long)st.rows_written);
	snprintf(dead, sizeof(dead), "%llu", (unsigned long long)st.dead_letters);
	snprintf(errs, sizeof(errs), "%llu", (unsigned long long)st.db_errors);
	const char *lag_p = st.lag_total >= 0 ? lag : NULL; /* NULL: unknown */
	const char *params[9] = {at,       s->instance, s->group, s->topic, lag_p,
	                         consumed, rows,        dead,     errs};
	PGresult *r = PQexecParams(s->db[w],
	                           "INSERT INTO pipeline_stats (time, service, instance, "
	                           "consumer_group, topic, lag, consumed, rows_written, "
	                           "dead_letters, db_errors) "
	                           "VALUES ($1, 'sink', $2, $3, $4, $5, $6, $7, $8, $9)",
	                           9, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_COMMAND_OK) {
		if (s->stats_failing)
			log_info("sink: pipeline_stats rows are written again");
		s->stats_failing = false;
		pthread_mutex_lock(&s->lock);
		s->st.stats_rows++;
		pthread_mutex_unlock(&s->lock);
		PQclear(r);
		return;
	}
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	bool missing = code && strcmp(code, "42P01") == 0; /* undefined_table */
	if (pg_sqlstate_reconnect(code)) /* the next batch of this writer connects again */
		s->reconnect[w] = true;
	char err[256];
	snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
	size_t l = strlen(err);
	while (l && err[l - 1] == '\n')
		err[--l] = '\0';
	PQclear(r);
	pthread_mutex_lock(&s->lock);
	s->st.stats_errors++;
	pthread_mutex_unlock(&s->lock);
	if (missing) {
		if (!s->stats_missing_told)
			log_warn("sink: the database has no table pipeline_stats (its schema "
			         "is older than this sink): run 'gpuhealth db migrate'; until then "
			         "the lag and dead letters are only in the stats line");
		s->stats_missing_told = true;
	} else if (!s->stats_failing) {
		log_warn("sink: cannot write pipeline_stats (retried every %.0f s): %s",
		         SINK_STATS_PERIOD_S, err);
	} else {
		log_debug("sink: cannot write pipeline_stats: %s", err);
	}
	s->stats_failing = true;
	if (PQstatus(s->db[w]) != CONNECTION_OK)
		db_close(s, w);
}

/* The oldest queued batch, or NULL. Called with wlock held. */
static struct batch *next_queued(struct sink *s)
{
	struct batch *b = NULL;
	if (s->maint)
		return NULL; /* no batch starts during the partition upkeep */
	for (int i = 0; i < NBATCH; i++)
		if (s->batches[i].state == B_QUEUED && (!b || s->batches[i].seq < b->seq))
			b = &s->batches[i];
	return b;
}

/* Whether a writer is writing a batch. Called with wlock held. */
static bool writing(const struct sink *s)
{
	for (int i = 0; i < NBATCH; i++)
		if (s->batches[i].state == B_WRITING)
			return true;
	return false;
}

/* A writer thread: writes the oldest queued batch on its own connection, then finishes what is
 * written in queue order. Writer 0 also does the partition upkeep and the pipeline_stats rows
 * between batches. Each uses only its own connection. */
static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	struct sink *s = wr->s;
	const int w = wr->w;
	pthread_mutex_lock(&s->wlock);
	for (;;) {
		struct batch *b;
		while (!(b = next_queued(s)) && !s->writer_stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->wcond, &s->wlock, &ts);
			if (w == 0 && !next_queued(s) && !writing(s) &&
			    time_mono() - s->last_maint >= s->maintenance_s) {
				/* Alone: creating and dropping partitions locks gpu_metrics, which
				 * could deadlock with another writer's open COPY. */
				s->maint = true;
				pthread_mutex_unlock(&s->wlock);
				maintenance(s);
				s->last_maint = time_mono();
				pthread_mutex_lock(&s->wlock);
				s->maint = false;
				pthread_cond_broadcast(&s->wcond);
			}
			if (w == 0 && !next_queued(s) && !s->writer_stop) {
				pthread_mutex_unlock(&s->wlock);
				gpus_refresh(s, w, false);
				rollups_close(s, w, false);
				pthread_mutex_lock(&s->wlock);
			}
			if (w == 0 && !next_queued(s) && !s->writer_stop &&
			    time_mono() - s->last_stats >= SINK_STATS_PERIOD_S) {
				pthread_mutex_unlock(&s->wlock);
				write_stats(s);
				pthread_mutex_lock(&s->wlock);
			}
		}
		if (!b)
			break; /* writer_stop and nothing left */
		b->state = B_WRITING;
		pthread_mutex_unlock(&s->wlock);
		int rc = flush(s, w, b);
		pthread_mutex_lock(&s->wlock);
		b->rc = rc;
		b->state = B_DONE;
		finish(s);
		pthread_cond_broadcast(&s->wcond);
		/* Under steady load the writer is never idle: the gpus refresh and the stats row go
		 * between two batches, after this batch's COMMIT, before the next BEGIN. */
		if (w == 0) {
			pthread_mutex_unlock(&s->wlock);
			gpus_refresh(s, w, false);
			rollups_close(s, w, false);
			pthread_mutex_lock(&s->wlock);
		}
		if (w == 0 && time_mono() - s->last_stats >= SINK_STATS_PERIOD_S) {
			pthread_mutex_unlock(&s->wlock);
			write_stats(s);
			pthread_mutex_lock(&s->wlock);
		}
	}
	pthread_mutex_unlock(&s->wlock);
	/* The GPUs' last rows, and the last stats row with the final counters (not when the
	 * database is known to be gone). */
	if (w == 0 && !atomic_load(&s->stop_now)) {
		gpus_refresh(s, w, true);
		rollups_close(s, w, true);
		write_stats(s);
	}
	return NULL;
}

/* A free batch, or NULL. Called with wlock held. */
static struct batch *free_batch(struct sink *s)
{
	for (int i = 0; i < NBATCH; i++)
		if (s->batches[i].state == B_FREE)
			return &s->batches[i];
	return NULL;
}

/* Queues the filling batch for the writers and starts filling a free one (waiting while every
 * batch is queued or being written). Consumption pauses while the writers are behind. */
static void handoff(struct sink *s)
{
	if (!s->fill->nitems)
		return;
	double start = time_mono();
	bool paused = false;
	pthread_mutex_lock(&s->wlock);
	s->fill->seq = s->seq_next++;
	s->fill->state = B_QUEUED;
	pthread_cond_broadcast(&s->wcond);
	struct batch *next;
	while (!(next = free_batch(s))) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->wcond, &s->wlock, &ts);
		if (!free_batch(s) && !paused && time_mono() - start > 1.0) {
			pthread_mutex_unlock(&s->wlock);
			set_paused(s, true); /* the database is behind or away: stop fetching */
			paused = true;
			pthread_mutex_lock(&s->wlock);
		}
		rd_kafka_poll(s->dlq, 0);
	}
	next->state = B_FILLING;
	s->fill = next;
	pthread_mutex_unlock(&s->wlock);
	if (paused)
		set_paused(s, false);
}

/* Queues what is filled and waits until the writers have finished all of it. */
static void drain(struct sink *s)
{
	handoff(s);
	pthread_mutex_lock(&s->wlock);
	while (s->seq_done != s->seq_next)
		pthread_cond_wait(&s->wcond, &s->wlock);
	pthread_mutex_unlock(&s->wlock);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct sink *s = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		char list[256] = "";
		size_t o = 0;
		for (int i = 0; i < parts->cnt && o < sizeof(list); i++)
			o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%d", i ? "," : "",
			                      (int)parts->elems[i].partition);
		log_info("sink: assigned partitions %s of %s", parts->cnt ? list : "(none)",
		         s->topic);
		/* Reading starts again from the committed offsets, so what was given up is read
		 * again: offsets may be stored again. */
		atomic_store(&s->abandoned, false);
		pthread_mutex_lock(&s->lock);
		s->nacked = 0;
		pthread_mutex_unlock(&s->lock);
		rd_kafka_assign(rk, parts);
	} else {
		/* Finish what we hold for these partitions before they move on. */
		if (s->writers_up)
			drain(s);
		log_info("sink: partitions revoked");
		rd_kafka_assign(rk, NULL);
	}
}

static void update_lag(struct sink *s)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(s->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
		return;
	rd_kafka_position(s->consumer, parts);
	int64_t total = 0;
	bool known = parts->cnt > 0;
	pthread_mutex_lock(&s->lock);
	s->st.nparts = 0;
	for (int i = 0; i < parts->cnt && i < SINK_MAX_PARTS; i++) {
		int64_t lo = -1, hi = -1;
		rd_kafka_get_watermark_offsets(s->consumer, parts->elems[i].topic,
		                               parts->elems[i].partition, &lo, &hi);
		int64_t pos = parts->elems[i].offset;
		/* the group's lag: from what is committed (or stored to be), not from what was read
		 */
		for (int j = 0; j < s->nacked; j++)
			if (s->acked[j].partition == parts->elems[i].partition &&
			    s->acked[j].acked >= 0)
				pos = s->acked[j].acked;
		int64_t lag = -1;
		if (hi >= 0 && pos >= 0)
			lag = hi - pos;
		else if (hi >= 0 && lo >= 0 && pos < 0)
			lag = hi - lo;
		if (lag < 0)
			known = false;
		else
			total += lag;
		s->st.parts[i].partition = parts->elems[i].partition;
		s->st.parts[i].offset = pos;
		s->st.parts[i].lag = lag;
		s->st.nparts++;
	}
	s->st.lag_total = known ? total : -1;
	double now = time_mono();
	/* over 10 s: batches commit every few seconds, so a 1 s window reads as bursts and zeros */
	if (now - s->rate_t >= 10.0) {
		s->st.rows_per_s = (double)(s->st.rows_written - s->rate_rows) / (now - s->rate_t);
		s->rate_rows = s->st.rows_written;
		s->rate_t = now;
	}
	pthread_mutex_unlock(&s->lock);
	rd_kafka_topic_partition_list_destroy(parts);
}

static void maintenance(struct sink *s)
{
	const int w = 0; /* writer 0 (the sink thread before the writers start) */
	if (db_ensure(s, w))
		return;
	char err[512];
	PGresult *r = PQexec(
	    s->db[w], "SELECT gpuhealth_ensure_partitions(now() - interval '1 day', now() + "
	              "(SELECT value::int FROM gpuhealth_settings WHERE key = "
	              "'partitions_ahead_days') * interval '1 day'), gpuhealth_drop_expired()");
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		int made = atoi(PQgetvalue(r, 0, 0));
		int dropped = atoi(PQgetvalue(r, 0, 1));
		if (made || dropped)
			log_info("sink: partitions: %d created, %d expired dropped", made, dropped);
		pthread_mutex_lock(&s->lock);
		s->st.partitions_dropped += (uint64_t)dropped;
		pthread_mutex_unlock(&s->lock);
	} else {
		snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
		set_error(s, "maintenance: %s", err);
		log_warn("sink: partition maintenance failed: %s", err);
	}
	PQclear(r);
	/* the health tables' partitions on plain PostgreSQL (schema/012; no-op on TimescaleDB) */
	r = PQexec(s->db[w], "SELECT gpuhealth_health_upkeep()");
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		if (atoi(PQgetvalue(r, 0, 0)))
			log_info("sink: health partitions: %s expired dropped",
			         PQgetvalue(r, 0, 0));
	} else {
		snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
		set_error(s, "maintenance: %s", err);
		log_warn("sink: health partition maintenance failed: %s", err);
	}
	PQclear(r);
}

static void *sink_main(void *arg)
{
	struct sink *s = arg;
	int attempt = 0;
	const int w = 0; /* the first writer's connection, until the writers start */
	while (!atomic_load(&s->stop) && db_ensure(s, w)) {
		if (attempt == 0)
			log_warn("sink: %s; retrying", s->st.last_error);
		backoff(s, attempt++, 0);
	}
	if (!atomic_load(&s->stop)) {
		log_info("sink: connected to PostgreSQL; retention %.0f s", s->retention_s);
		maintenance(s);
		s->last_maint = time_mono();
	}
	/* From here on the connections belong to the writer threads, one each. */
	bool all = true;
	for (int i = 0; i < WRITERS && all; i++) {
		struct writer *wr = &s->writers[i];
		wr->s = s;
		wr->w = i;
		wr->started = pthread_create(&wr->thread, NULL, writer_main, wr) == 0;
		all = wr->started;
	}
	if (!all) {
		set_error(s, "cannot start the writer threads");
		pthread_mutex_lock(&s->lock);
		s->st.failed = true;
		pthread_mutex_unlock(&s->lock);
		atomic_store(&s->stop, true);
	}
	s->writers_up = all;
	double last_lag = 0;
	while (!atomic_load(&s->stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(s->consumer, 100);
		if (m)
			take(s, s->fill, m);
		rd_kafka_poll(s->dlq, 0);
		double now = time_mono();
		struct batch *b = s->fill;
		if (b->nitems >= (size_t)s->batch_size || b->rows.len >= ROWS_FLUSH_BYTES ||
		    (b->nitems && now - b->batch_started >= s->batch_timeout_s))
			handoff(s);
		if (now - last_lag >= 1.0) {
			update_lag(s);
			last_lag = now;
		}
	}
	update_lag(s); /* fresh for the writer's last pipeline_stats row */
	if (s->writers_up)
		drain(s);
	s->writers_up = false;
	pthread_mutex_lock(&s->wlock);
	s->writer_stop = true;
	pthread_cond_broadcast(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
	for (int i = 0; i < WRITERS; i++)
		if (s->writers[i].started) {
			pthread_join(s->writers[i].thread, NULL);
			s->writers[i].started = false;
		}
	rd_kafka_resp_err_t e = rd_kafka_commit(s->consumer, NULL, 0);
	if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn("sink: final offset commit: %s", rd_kafka_err2str(e));
	rd_kafka_consumer_close(s->consumer);
	rd_kafka_flush(s->dlq, 10000);
	for (int i = 0; i < WRITERS; i++)
		db_close(s, i);
	update_lag(s);
	pthread_mutex_lock(&s->lock);
	s->st.running = false;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static char *dup_or_null(const char *p)
{
	return p ? strdup(p) : NULL;
}

int sink_create(struct sink **out, const struct sink_options *o, char *err, size_t errlen)
{
	int rc = -ENOMEM;
	rd_kafka_conf_t *conf = NULL;
	struct sink *s = calloc(1, sizeof(*s));
	if (!s)
		goto fail;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->glock, NULL);
	pthread_mutex_init(&s->rlock, NULL);
	s->newest = -INFINITY;
	s->mark = INT64_MIN;
	strbuf_init(&s->close_copy, 0); /* as large as the fleet's open minutes */
	if (rollup_create(&s->open) || !(s->workloads = workloads_create()))
		goto fail;
	strbuf_init(&s->wl_text, 0);
	strbuf_init(&s->idle.ident_copy, ROWS_MAX_BYTES);
	strbuf_init(&s->idle.touch_keys, 0); /* as large as the fleet this sink knows */
	strbuf_init(&s->idle.touch_times, 0);
	pthread_mutex_init(&s->wlock, NULL);
	pthread_cond_init(&s->wcond, NULL);
	for (int i = 0; i < NBATCH; i++) {
		strbuf_init(&s->batches[i].rows, ROWS_MAX_BYTES);
		strbuf_init(&s->batches[i].idents, ROWS_MAX_BYTES);
		strbuf_init(&s->batches[i].ident_copy, ROWS_MAX_BYTES);
		strbuf_init(&s->batches[i].roll_copy, ROWS_MAX_BYTES);
		if (rollup_create(&s->batches[i].roll) ||
		    !(s->batches[i].wl_runs = workload_runs_create()))
			goto fail;
		s->batches[i].roll_ok = true;
	}
	s->fill = &s->batches[0];
	s->fill->state = B_FILLING;
	rc = -EINVAL;
	if (!o->brokers || !*o->brokers) {
		snprintf(
		    err, errlen,
		    "the sink needs Kafka: give --brokers HOST:PORT or KAFKA_BOOTSTRAP_SERVERS");
		goto fail;
	}
	if (o->batch_size < 1 || o->batch_timeout_s <= 0) {
		snprintf(err, errlen, "batch size and timeout must be positive");
		goto fail;
	}
	rc = -ENOMEM;
	s->brokers = strdup(o->brokers);
	s->topic = strdup(o->topic ? o->topic : "gpu-metrics-raw");
	s->group = strdup(o->group ? o->group : "gpuhealth-sink");
	s->dlq_topic = strdup(o->dlq_topic ? o->dlq_topic : "gpu-metrics-dlq");
	s->conninfo = dup_or_null(o->conninfo);
	if (!s->brokers || !s->topic || !s->group || !s->dlq_topic || (o->conninfo && !s->conninfo))
		goto fail;
	s->batch_size = o->batch_size;
	s->batch_timeout_s = o->batch_timeout_s;
	s->maintenance_s = o->maintenance_interval_s > 0 ? o->maintenance_interval_s : 600;
	s->max_future_s = o->max_future_s > 0 ? o->max_future_s : EVENT_CHECK_MAX_SKEW_S;
	s->retention_s = 7 * 86400;
	s->rate_t = time_mono();
	s->st.lag_total = -1;
	s->last_stats = -1e9; /* the first row as soon as the writer is idle */
	char host[256];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(s->instance, sizeof(s->instance), "%s:%ld", host, (long)getpid());

	/* consumer: our defaults, then -X overrides */
	char grp[300];
	snprintf(grp, sizeof(grp), "group.id=%s", s->group);
	/* The prefetch: librdkafka (2.0.x) stops fetching while its queue holds
	 * queued.min.messages or queued.max.messages.kbytes, and looks again only about once a
	 * second, so on a backlog the sink could take at most one queue's worth per second (the
	 * defaults: ~100,000 events, ~100,000 rows/s) and then waited for the next fetch with its
	 * writers idle. 256 MiB holds more than a second at the rate PostgreSQL takes them; it is
	 * filled only while catching up (a steady stream keeps it near empty). -X overrides. */
	const char *base[] = {grp,
	                      "max.poll.interval.ms=3600000",
	                      "enable.partition.eof=false",
	                      "statistics.interval.ms=0",
	                      "queued.min.messages=10000000",
	                      "queued.max.messages.kbytes=262144"};
	const size_t nbase = sizeof(base) / sizeof(base[0]);
	size_t nall = nbase + o->nkafka_props;
	const char **all = calloc(nall, sizeof(*all));
	if (!all)
		goto fail;
	memcpy(all, base, sizeof(base));
	for (size_t i = 0; i < o->nkafka_props; i++)
		all[nbase + i] = o->kafka_props[i];
	conf = kafka_conf_new(KAFKA_CONSUMER, s->brokers, all, nall, err, errlen);
	free(all);
	rc = -EINVAL;
	if (!conf)
		goto fail;
	rd_kafka_conf_set_opaque(conf, s);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
	char why[512];
	s->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if (!s->consumer) {
		snprintf(err, errlen, "cannot create the Kafka consumer: %s", why);
		goto fail; /* conf still ours on failure */
	}
	conf = NULL; /* owned by the consumer now */
	rd_kafka_poll_set_consumer(s->consumer);

	conf = kafka_conf_new(KAFKA_PRODUCER, s->brokers, o->kafka_props, o->nkafka_props, err,
	                      errlen);
	if (!conf)
		goto fail;
	rd_kafka_conf_set_opaque(conf, s);
	rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
	/* every dead letter's report within this bound, so a batch never waits on the topic for
	 * ever (unless -X message.timeout.ms says otherwise) */
	{
		bool given = false;
		for (size_t i = 0; i < o->nkafka_props; i++)
			given |= strncmp(o->kafka_props[i], "message.timeout.ms=", 19) == 0;
		if (!given)
			rd_kafka_conf_set(conf, "message.timeout.ms", DLQ_TIMEOUT_MS, why,
			                  sizeof(why));
	}
	rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
	s->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!s->dlq) {
		snprintf(err, errlen, "cannot create the dead-letter producer: %s", why);
		goto fail;
	}
	conf = NULL;

	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, s->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(s->consumer, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e) {
		snprintf(err, errlen, "cannot subscribe to %s: %s", s->topic, rd_kafka_err2str(e));
		goto fail;
	}
	*out = s; /* caller owns */
	return 0;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory creating the sink");
	sink_destroy(s);
	return rc;
}

int sink_start(struct sink *s)
{
	pthread_mutex_lock(&s->lock);
	s->st.running = true;
	pthread_mutex_unlock(&s->lock);
	int rc = pthread_create(&s->thread, NULL, sink_main, s);
	if (rc) {
		s->st.running = false;
		return -rc;
	}
	s->started = true;
	return 0;
}

void sink_stop_now(struct sink *s)
{
	if (!s)
		return;
	atomic_store(&s->stop_now, true);
	sink_stop(s);
}

void sink_stop(struct sink *s)
{
	if (!s || !s->started)
		return;
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	s->started = false;
}

void sink_stats(struct sink *s, struct sink_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->st;
	pthread_mutex_unlock(&s->lock);
	out->consumed = atomic_load_explicit(&s->consumed, memory_order_relaxed);
}

void sink_destroy(struct sink *s)
{
	if (!s)
		return;
	sink_stop(s);
	for (int i = 0; i < NBATCH; i++) {
		struct batch *b = &s->batches[i];
		batch_clear(s, b);
		free(b->items);
		strbuf_free(&b->rows);
		strbuf_free(&b->idents);
		strbuf_free(&b->ident_copy);
		strbuf_free(&b->roll_copy);
		rollup_destroy(b->roll);
		workload_runs_destroy(b->wl_runs);
		free(b->seen);
		free(b->sent);
		free(b->by_gpu);
		free(b->gpu_off);
	}
	if (s->consumer)
		rd_kafka_destroy(s->consumer);
	if (s->dlq)
		rd_kafka_destroy(s->dlq);
	for (int i = 0; i < WRITERS; i++)
		db_close(s, i);
	free(s->brokers);
	free(s->topic);
	free(s->group);
	free(s->dlq_topic);
	free(s->conninfo);
	known_clear(s);
	strbuf_free(&s->idle.ident_copy);
	strbuf_free(&s->idle.touch_keys);
	strbuf_free(&s->idle.touch_times);
	free(s->idle.sent);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->glock);
	pthread_mutex_destroy(&s->rlock);
	rollup_destroy(s->open);
	workloads_destroy(s->workloads);
	strbuf_free(&s->wl_text);
	strbuf_free(&s->close_copy);
	pthread_mutex_destroy(&s->wlock);
	pthread_cond_destroy(&s->wcond);
	free(s);
}
