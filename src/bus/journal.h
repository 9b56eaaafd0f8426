/*
 * journal: the producer's journal of accepted events, kept with a spool directory (producer.h).
 *
 * Every event that producer_send() accepts (and every event read back from the spool) is first
 * appended to a journal segment, journal-SEQ.gh in the spool directory in the record format of
 * record.h, and written to the kernel by journal_sync() (producer_sync(): the collector calls
 * it after each scrape, before it logs the scrape; every poll calls it too). A segment is
 * removed once each of its events is settled: delivered, failed for good, dropped and counted,
 * or in the spool file (the spool is flushed first). A run ended by SIGKILL leaves its segments
 * behind; the next start sends their events again (journal_replay), so an accepted event is not
 * lost: at worst it is delivered twice, and the sink keeps one row per (GPU, time). Not
 * fsync'd: it survives the process, not the machine.
 *
 * Not thread-safe: the producer's thread owns its journal.
 */
#ifndef GPUHEALTH_JOURNAL_H
#define GPUHEALTH_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bus/record.h"
#include "bus/spool.h"

struct journal_seg {
	uint64_t seq;
	uint64_t pending; /* events not settled yet */
};

/* Zeroed, then dir set by the owner; the rest is the journal's. */
struct journal {
	const char *dir;          /* the spool's (borrowed: the spool outlives the journal) */
	FILE *wr;                 /* on the newest segment, NULL when none */
	uint64_t seq;             /* of the newest segment */
	uint64_t size;            /* bytes in the newest segment */
	struct journal_seg *segs; /* ascending seq; the last one is written when wr is open */
	size_t nsegs, capsegs;
	bool dirty; /* written since the last sync */
};

/* Sends again the events of the journal segments an earlier run left in j->dir (it was killed):
 * send(ud, ...) per event, which journals it anew, then sync(ud) before each old segment is
 * removed. Call it once, before the first journal_append(). A file there that is not this
 * user's journal segment is moved aside (logged) and counted in *moved. Returns 0, send's or
 * sync's -errno, or -errno; with a message in err. */
int journal_replay(struct journal *j,
                   int (*send)(void *ud, const char *key, size_t klen, const char *val,
                               size_t vlen),
                   int (*sync)(void *ud), void *ud, uint64_t *moved, char *err, size_t errlen);

/* Appends r to the journal (buffered: journal_sync() writes it out) and marks r with its
 * segment (r->wal). Returns 0 or -errno; on an error r is not journaled (r->wal stays 0). */
int journal_append(struct journal *j, struct record *r);

/* r is settled: its segment waits for one event fewer. A record not journaled is ignored. */
void journal_settle(struct journal *j, struct record *r);

/* Writes what was appended since the last sync to the kernel. Returns 0 or -errno. */
int journal_sync(struct journal *j);

/* Removes the segments that are settled and no longer written. The spool sp is flushed first,
 * so an event settled by going to the spool is in its file before its journal entry goes. */
void journal_collect(struct journal *j, struct spool *sp);

/* At a clean close, once everything pending is delivered or in the (fsync'd) spool: every
 * segment is removed. */
void journal_remove_all(struct journal *j);

/* Closes and frees; the segments stay on disk, to be replayed by the next start. */
void journal_free(struct journal *j);

#endif
