/*
 * record: one event as the producer holds it (key and value in one allocation), the queue of
 * them, and the record format of the files the spool and the journal write (spool.h,
 * journal.h):
 *
 *   file    RECORD_MAGIC (RECORD_FILE_HDR bytes), then records
 *   record  u32 klen, u32 vlen, u32 crc32(key, value) (RECORD_HDR bytes, host byte order),
 *           then the key and the value
 *
 * Those files are private: created exclusive with mode 0600, opened only when they are a
 * regular file of this user with one name, moved aside (NAME.bad) when they are not.
 * No locking: each record and queue belongs to one thread at a time.
 */
#ifndef GPUHEALTH_RECORD_H
#define GPUHEALTH_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RECORD_MAGIC    "GHSPOOL1"
#define RECORD_FILE_HDR 8u
#define RECORD_HDR      12u /* u32 klen, u32 vlen, u32 crc32(key, value) */

/* One event: key then value in data[]. Owned by whichever list or librdkafka message holds
 * it; freed after its delivery report, a drop, or a write to the spool. */
struct record {
	struct record *next;
	uint64_t wal; /* the journal segment that holds it until it is settled; 0: none */
	uint32_t klen, vlen;
	char data[];
};

/* A FIFO of records, oldest at head; it owns the records it holds. */
struct record_queue {
	struct record *head, *tail;
	size_t n;
	uint64_t bytes; /* key + value bytes of its records */
};

/* Key + value bytes of r. */
static inline uint64_t record_bytes(const struct record *r)
{
	return (uint64_t)r->klen + r->vlen;
}

/* A new record with copies of key and value (caller owns; free()), or NULL (out of memory, or
 * a key or value over 4 GiB). */
struct record *record_new(const char *key, size_t klen, const char *val, size_t vlen);

/* Appends r at the tail; q owns it from here. */
void record_queue_push(struct record_queue *q, struct record *r);
/* Takes the head out (caller owns it), or NULL when q is empty. */
struct record *record_queue_pop(struct record_queue *q);
/* Puts all of src, in its order, in front of dst; src is left empty. */
void record_queue_prepend(struct record_queue *dst, struct record_queue *src);
/* Frees every record of q; q is left empty. */
void record_queue_free(struct record_queue *q);

/* The checksum of a record's key and value. */
uint32_t record_crc(const char *k, uint32_t klen, const char *v, uint32_t vlen);

/* Reads n bytes of fd at off. Returns 0, -ENODATA at the end of the file, or -errno. */
int record_pread(int fd, void *buf, size_t n, uint64_t off);

/* Reads the record at off of a file whose valid part is size bytes. *out (caller owns) or NULL
 * at a clean end of file; *next is the offset after it. Returns 0, -EBADMSG (damaged or cut
 * short), -ENOMEM, -errno. */
int record_read(int fd, uint64_t off, uint64_t size, struct record **out, uint64_t *next);

/* Creates path for writing: exclusive (never an existing file or a symbolic link planted in
 * its place), mode 0600 (events are fleet data: only this user reads them). NULL and errno on
 * failure; the caller owns the stream. */
FILE *record_file_create(const char *path);

/* Opens a spool or journal file found in the directory: not through a symbolic link, and only a
 * regular file of this user with no other name (a file planted by someone else is not read,
 * nor written through). Loosens nothing: a file left 0644 by an older version becomes 0600.
 * Returns the descriptor (caller owns); -errno, with why[] set (and why[0] != '\0') when the
 * file is one to move aside rather than a failure of this process. */
int record_file_open(const char *path, int flags, char *why, size_t whylen);

/* Moves a file that is not ours, or not a spool file, out of the way: renamed to NAME.bad
 * (NAME.bad.2, ... when taken), which no scan reads, and reported. Never fatal: the collector
 * starts without it. Returns true when it was moved. */
bool record_file_move_aside(const char *path, const char *why);

#endif
