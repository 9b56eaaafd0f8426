#include "sink/sink_dlq.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "core/event_check.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "sink/sink_db.h"
#include "store/pgconn.h"
#include "sink/sink_int.h"

#define DLQ_ATTEMPTS 3     /* tries on the dead-letter topic before the table */
#define DLQ_KEY_MAX  1024u /* bytes of the source key a dead letter carries */

void sink_dlq_delivered(void *ctx, void *opaque, int err)
{
	(void)ctx;
	struct item *it = opaque;
	if (it) {
		atomic_store(&it->dlq_err, err);
		atomic_store(&it->dlq, err ? DLQ_FAILED : DLQ_DONE);
	}
}

/* The dead letter's payload and key as carried: the payload cut to EVENT_CHECK_DLQ_PAYLOAD_MAX
 * (with its original size and hash), the key to DLQ_KEY_MAX. */
static void dead_letter_shape(const struct bus_msg *m, struct event_dead_letter *d,
                              size_t *key_len)
{
	event_check_dead_letter(m->payload, m->len, 0, d);
	*key_len = m->key_len > DLQ_KEY_MAX ? DLQ_KEY_MAX : m->key_len;
}

static int produce_dead_letter(struct sink *s, struct item *it)
{
	const struct bus_msg *m = &it->m;
	char part[16], off[24], at[40], size[24];
	struct event_dead_letter d;
	size_t klen;
	dead_letter_shape(m, &d, &klen);
	snprintf(part, sizeof(part), "%d", (int)m->partition);
	snprintf(off, sizeof(off), "%lld", (long long)m->offset);
	snprintf(size, sizeof(size), "%zu", d.original_size);
	time_format_rfc3339(time_now(), at, sizeof(at));
	const struct bus_header h[] = {
	    {"gpuhealth.reason", it->reason},
	    {"gpuhealth.source.topic", m->topic},
	    {"gpuhealth.source.partition", part},
	    {"gpuhealth.source.offset", off},
	    {"gpuhealth.failed_at", at},
	    {"gpuhealth.original_size", size},
	    {"gpuhealth.payload_fnv1a64", d.hash},
	    {"gpuhealth.payload_cut", d.cut ? "true" : "false"},
	};
	atomic_store(&it->dlq, DLQ_PENDING);
	it->dlq_tries++;
	int code = 0;
	/* a full local queue is waited out (its reports are served meanwhile) */
	if (sender_send(s->dlq, s->dlq_topic, m->key, klen, m->payload, d.len, h,
	                sizeof(h) / sizeof(h[0]), it, -1, &code)) {
		atomic_store(&it->dlq_err, code);
		atomic_store(&it->dlq, DLQ_FAILED);
		sink_set_error(s, "dead-letter produce: %s", sender_err_str(code));
		return -EIO;
	}
	return 0;
}

/*
 * Sends every dead letter of the batch out, before the batch's transaction: to the dead-letter
 * topic, tried up to DLQ_ATTEMPTS times; what the topic still refuses (or refuses for good at
 * the first try) is marked DLQ_TABLE, for the transaction to insert into dead_letters. So a
 * dead letter always leaves and the batch never waits on the topic for ever. Returns 0, or
 * -EIO when stopping past the deadline.
 */
int sink_dlq_deliver(struct sink *s, struct batch *b, double deadline)
{
	for (int attempt = 0;; attempt++) {
		size_t todo = 0;
		for (size_t i = 0; i < b->nitems; i++) {
			struct item *it = &b->items[i];
			int st = atomic_load(&it->dlq);
			if (!it->reason || st == DLQ_DONE || st == DLQ_TABLE)
				continue;
			if (st == DLQ_FAILED && (sender_err_permanent(atomic_load(&it->dlq_err)) ||
			                         it->dlq_tries >= DLQ_ATTEMPTS)) {
				atomic_store(&it->dlq, DLQ_TABLE);
				log_warn("sink: dead letter of %s[%d]@%lld (%zu bytes) refused by "
				         "%s: %s; "
				         "it goes to the dead_letters table",
				         s->topic, (int)it->m.partition, (long long)it->m.offset,
				         it->m.len, s->dlq_topic,
				         sender_err_str(atomic_load(&it->dlq_err)));
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
			sender_flush(s->dlq, 1000);
			size_t pending = 0;
			for (size_t i = 0; i < b->nitems; i++)
				pending += b->items[i].reason &&
				           atomic_load(&b->items[i].dlq) == DLQ_PENDING;
			if (!pending)
				break;
			if (worker_give_up(&s->w, deadline))
				return -EIO;
		}
		bool failed = false;
		for (size_t i = 0; i < b->nitems; i++)
			failed |= b->items[i].reason &&
			          atomic_load(&b->items[i].dlq) == DLQ_FAILED &&
			          !sender_err_permanent(atomic_load(&b->items[i].dlq_err)) &&
			          b->items[i].dlq_tries < DLQ_ATTEMPTS;
		if (failed && !sink_backoff(s, attempt, deadline))
			return -EIO;
	}
}

/* The dead letters marked DLQ_TABLE (n of them), inserted into dead_letters in writer w's open
 * transaction: the reason, the source coordinates, the original size and hash, the payload cut
 * to the bound. A redelivered batch finds its own already there (the source coordinates are
 * the key). Returns 0, or what exec fails with (-EIO: retried; the dead letter stays). */
int sink_dlq_insert(struct sink *s, int w, struct batch *b, char *err, size_t errlen, char state[6])
{
	for (size_t i = 0; i < b->nitems; i++) {
		struct item *it = &b->items[i];
		if (!it->reason || atomic_load(&it->dlq) != DLQ_TABLE)
			continue;
		const struct bus_msg *m = &it->m;
		struct event_dead_letter d;
		size_t klen;
		dead_letter_shape(m, &d, &klen);
		char part[16], off[24], size[24], cut[2] = {d.cut ? 't' : 'f', 0};
		snprintf(part, sizeof(part), "%d", (int)m->partition);
		snprintf(off, sizeof(off), "%lld", (long long)m->offset);
		snprintf(size, sizeof(size), "%zu", d.original_size);
		const char *src = m->topic;
		const char *why = sender_err_str(atomic_load(&it->dlq_err));
		const char *vals[10] = {it->reason, src,    part,       off, (const char *)m->key,
		                        size,       d.hash, (const char *)m->payload, cut, why};
		int lens[10] = {0, 0, 0, 0, (int)klen, 0, 0, (int)d.len, 0, 0};
		int fmts[10] = {0, 0, 0, 0, 1, 0, 0, 1, 0, 0};
		if (!m->key)
			vals[4] = NULL;
		int rc = pgconn_exec_bin(
		    s->pg[w],
		    "INSERT INTO dead_letters (service, reason, source_topic, source_partition, "
		    "source_offset, source_key, original_size, payload_fnv1a64, payload, "
		    "payload_cut, "
		    "dlq_error) VALUES ('sink', $1, $2, $3::integer, $4::bigint, $5::bytea, "
		    "$6::bigint, "
		    "$7, $8::bytea, $9::boolean, $10) "
		    "ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING",
		    10, vals, lens, fmts, NULL, err, errlen, state);
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
int sink_dlq_write(struct sink *s, int w, struct batch *b)
{
	char err[512] = "", state[6] = "";
	int rc = sink_db_ensure(s, w);
	if (rc)
		return rc;
	if (!(rc = sink_db_exec(s, w, "BEGIN", 0, NULL, NULL, err, sizeof(err), state)) &&
	    !(rc = sink_dlq_insert(s, w, b, err, sizeof(err), state)) &&
	    !(rc = sink_db_exec(s, w, "COMMIT", 0, NULL, NULL, err, sizeof(err), state)))
		return 0;
	sink_set_error(s, "database: %s", err);
	sink_db_abort(s, w);
	return -EIO;
}

size_t sink_dlq_count(const struct batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->nitems; i++)
		n += b->items[i].reason && atomic_load(&b->items[i].dlq) == DLQ_TABLE;
	return n;
}
