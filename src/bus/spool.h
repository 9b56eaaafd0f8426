/*
 * spool: the producer's disk spool, where events wait when its memory queue is full (see
 * producer.h). Append-only segment files spool-SEQ.gh in the spool directory, in the record
 * format of record.h, read back oldest first; a segment is removed once it is read. The
 * directory is created 0700 and refused when other users could plant files in it; a file in it
 * that is not this user's own spool segment is moved aside with a warning. At open, a damaged
 * tail of a segment (a crash mid-write) is cut off, kept in NAME.bad first when whole records
 * may follow it. At close, what is still pending goes into a new head segment, written as
 * spool-SEQ.tmp and renamed when complete (a .tmp found at open is removed: its source is
 * intact).
 *
 * Not thread-safe: the producer's thread owns its spool.
 */
#ifndef GPUHEALTH_SPOOL_H
#define GPUHEALTH_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bus/record.h"

struct spool_seg {
	uint64_t seq;
	uint64_t size;   /* bytes in the file (valid part) */
	uint64_t events; /* records not yet read */
};

/* The owner reads dir, max_bytes, events and bytes; the rest is the spool's. */
struct spool {
	char *dir;              /* owned */
	struct spool_seg *segs; /* ascending seq; segs[0] is read, segs[nsegs-1] written */
	size_t nsegs, capsegs;
	int rd_fd;        /* on segs[0], -1 when closed */
	uint64_t rd_off;  /* next record in segs[0] */
	FILE *wr;         /* on segs[nsegs-1], NULL when closed */
	uint64_t seg_max; /* rotate the written segment past this size */
	uint64_t max_bytes;
	uint64_t events, bytes; /* unread */
	uint64_t next_seq;      /* above every segment name seen, kept or moved aside */
};

/* Opens the spool in dir (created when missing) bounded by max_bytes: its segments from an
 * earlier run are counted, to be read first; damaged records and files moved aside are counted
 * in *damaged (and logged). Returns 0, or -ENOMEM, -EPERM (a directory others may write to),
 * -errno, with a message in err naming --spool-dir. Call spool_close() afterwards, also on
 * failure. */
int spool_open(struct spool *sp, const char *dir, uint64_t max_bytes, uint64_t *damaged, char *err,
               size_t errlen);

/* Appends a copy of r (r stays the caller's) to the newest segment, buffered (spool_flush());
 * the caller keeps within max_bytes. Returns 0 or -errno. */
int spool_append(struct spool *sp, const struct record *r);

/* Writes the newest segment's buffer to the kernel. Returns 0 or -errno. */
int spool_flush(struct spool *sp);

/* The oldest record (caller owns), or NULL when the spool is empty. Returns 0, or -errno /
 * -EBADMSG (the rest of that segment is given up and *lost counts its records). */
int spool_pop(struct spool *sp, struct record **out, uint64_t *lost);

/* At close: writes recs (older than everything spooled; they stay the caller's) and the unread
 * rest of a half-read head segment into a new head segment, fsync'd, then removes the
 * half-read one. *written is the number of recs written. Returns 0 or -errno. */
int spool_prepend(struct spool *sp, struct record_queue *recs, uint64_t *written);

/* Syncs the newest segment, closes the files and frees; *sp is left closed. */
void spool_close(struct spool *sp);

/* Reads every record of a spool directory in replay order without consuming it (see
 * producer_spool_scan()). Returns 0, cb's value, or -errno. */
int spool_scan(const char *dir,
               int (*cb)(const char *key, size_t klen, const char *val, size_t vlen, void *ud),
               void *ud);

#endif
