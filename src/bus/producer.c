#include "bus/producer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bus/kafka_conf.h"
#include "core/log.h"
#include "core/timeutil.h"

/* ------------------------------------------------------------------ records */

/* One event: key then value in data[]. Owned by whichever list or librdkafka message holds
 * it; freed after its delivery report, a drop, or a write to the spool. */
struct rec {
	struct rec *next;
	uint64_t wal; /* the journal segment that holds it until it is settled; 0: none */
	uint32_t klen, vlen;
	char data[];
};

struct recq {
	struct rec *head, *tail;
	size_t n;
	uint64_t bytes; /* key + value bytes of its records */
};

static uint64_t rec_bytes(const struct rec *r) { return (uint64_t)r->klen + r->vlen; }

static struct rec *rec_new(const char *key, size_t klen, const char *val, size_t vlen)
{
	if (klen > UINT32_MAX || vlen > UINT32_MAX || klen + vlen > SIZE_MAX - sizeof(struct rec))
		return NULL;
	struct rec *r = malloc(sizeof(*r) + klen + vlen);
	if (!r)
		return NULL;
	r->next = NULL;
	r->wal = 0;
	r->klen = (uint32_t)klen;
	r->vlen = (uint32_t)vlen;
	memcpy(r->data, key, klen);
	memcpy(r->data + klen, val, vlen);
	return r;
}

static void q_push(struct recq *q, struct rec *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
	q->bytes += rec_bytes(r);
}

static struct rec *q_pop(struct recq *q)
{
	struct rec *r = q->head;
	if (!r)
		return NULL;
	q->head = r->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	q->bytes -= rec_bytes(r);
	r->next = NULL;
	return r;
}

/* Puts all of src, in its order, in front of dst. */
static void q_prepend(struct recq *dst, struct recq *src)
{
	if (!src->head)
		return;
	src->tail->next = dst->head;
	if (!dst->tail)
		dst->tail = src->tail;
	dst->head = src->head;
	dst->n += src->n;
	dst->bytes += src->bytes;
	src->head = src->tail = NULL;
	src->n = 0;
	src->bytes = 0;
}

static void q_free(struct recq *q)
{
	struct rec *r;
	while ((r = q_pop(q)))
		free(r);
}

/* ------------------------------------------------------------------ spool */

#define SPOOL_MAGIC "GHSPOOL1"
#define SPOOL_HDR 8u
#define REC_HDR 12u /* u32 klen, u32 vlen, u32 crc32(key, value) */
#define SPOOL_FIRST_SEQ ((uint64_t)1 << 40) /* room below for segments written at close */

struct seg {
	uint64_t seq;
	uint64_t size;   /* bytes in the file (valid part) */
	uint64_t events; /* records not yet read */
};

struct spool {
	char *dir;            /* owned */
	struct seg *segs;     /* ascending seq; segs[0] is read, segs[nsegs-1] written */
	size_t nsegs, capsegs;
	int rd_fd;            /* on segs[0], -1 when closed */
	uint64_t rd_off;      /* next record in segs[0] */
	FILE *wr;             /* on segs[nsegs-1], NULL when closed */
	uint64_t seg_max;     /* rotate the written segment past this size */
	uint64_t max_bytes;
	uint64_t events, bytes; /* unread */
	uint64_t next_seq;      /* above every segment name seen, kept or moved aside */
};

static void seg_path(const struct spool *sp, uint64_t seq, const char *ext, char *out, size_t n)
{
	snprintf(out, n, "%s/spool-%020" PRIu64 ".%s", sp->dir, seq, ext);
}

/* Creates path for writing: exclusive (never an existing file or a symbolic link planted in
 * its place), mode 0600 (events are fleet data: only this user reads them). NULL and errno on
 * failure. */
static FILE *create_private(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "wb");
	if (!f) {
		int e = errno;
		close(fd);
		unlink(path);
		errno = e;
	}
	return f; /* caller owns */
}

/* Opens a spool or journal file found in the directory: not through a symbolic link, and only a
 * regular file of this user with no other name (a file planted by someone else is not read,
 * nor written through). Loosens nothing: a file left 0644 by an older version becomes 0600.
 * Returns the descriptor (caller owns); -errno, with why[] set (and why[0] != '\0') when the
 * file is one to move aside rather than a failure of this process. */
static int open_own(const char *path, int flags, char *why, size_t whylen)
{
	why[0] = '\0';
	int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			snprintf(why, whylen, "a symbolic link");
		else if (e == EISDIR)
			snprintf(why, whylen, "a directory");
		else if (e == EACCES || e == EPERM || e == ENXIO || e == EWOULDBLOCK)
			snprintf(why, whylen, "not readable and writable by this user (%s)",
				 strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode))
		snprintf(why, whylen, "not a regular file");
	else if (st.st_uid != geteuid())
		snprintf(why, whylen, "owned by another user (uid %u, this user is uid %u)",
			 (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_nlink != 1)
		snprintf(why, whylen, "a hard link (%u names)", (unsigned)st.st_nlink);
	if (why[0]) {
		close(fd);
		return -EPERM;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	if ((st.st_mode & 0077) && fchmod(fd, 0600) != 0)
		log_warn("producer: cannot make %s private (chmod 600): %s", path, strerror(errno));
	return fd;
}

/* Moves a file that is not ours, or not a spool file, out of the way: renamed to NAME.bad
 * (NAME.bad.2, ... when taken), which no scan reads, and reported. Never fatal: the collector
 * starts without it. Returns true when it was moved. */
static bool move_aside(const char *path, const char *why)
{
	char bad[4300];
	for (int i = 1; i <= 99; i++) {
		if (i == 1)
			snprintf(bad, sizeof(bad), "%s.bad", path);
		else
			snprintf(bad, sizeof(bad), "%s.bad.%d", path, i);
		if (renameat2(AT_FDCWD, path, AT_FDCWD, bad, RENAME_NOREPLACE) == 0) {
			log_warn("producer: %s is %s: moved aside to %s, not read (look at it, then "
				 "delete it)",
				 path, why, bad);
			return true;
		}
		if (errno == EEXIST)
			continue;
		if (errno == EINVAL && access(bad, F_OK) != 0 && rename(path, bad) == 0) {
			log_warn("producer: %s is %s: moved aside to %s, not read (look at it, then "
				 "delete it)",
				 path, why, bad);
			return true;
		}
		break;
	}
	log_warn("producer: %s is %s and cannot be moved aside (%s): ignored; remove it", path,
		 why, strerror(errno));
	return false;
}

/* The spool directory: created 0700; refused when others may write into it and it is not
 * this user's (they could plant or swap the files it reads). Returns 0 or -errno (message in
 * err). */
static int spool_dir_check(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		int e = errno;
		snprintf(err, errlen, "--spool-dir '%s': cannot create it: %s", dir, strerror(e));
		return -e;
	}
	struct stat st;
	if (stat(dir, &st) != 0) {
		int e = errno;
		snprintf(err, errlen, "--spool-dir '%s': cannot open it: %s", dir, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "--spool-dir '%s' is not a directory: give a directory",
			 dir);
		return -ENOTDIR;
	}
	unsigned me = (unsigned)geteuid(), mode = (unsigned)(st.st_mode & 07777);
	if ((st.st_mode & S_IWOTH) && (st.st_mode & S_ISVTX)) {
		/* /tmp and its kind, whoever owns them: shared on purpose, not to be "fixed";
		 * anyone may create a file there under the next segment's name */
		snprintf(err, errlen,
			 "--spool-dir '%s' is a shared directory (mode %04o): other users could "
			 "plant files under the spool's names. Give a directory of this user's own, "
			 "e.g. 'mkdir -m 700 %s/gpuhealth-spool' and --spool-dir %s/gpuhealth-spool",
			 dir, mode, dir, dir);
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "--spool-dir '%s' is writable by other users (mode %04o) and owned by uid "
			 "%u, not by this user (uid %u): anyone who can write there could plant or "
			 "replace the spooled events. Give a directory of this user's own "
			 "(--spool-dir, e.g. one made with 'mkdir -m 700'), or fix this one: "
			 "'chown %u %s && chmod 700 %s'",
			 dir, mode, (unsigned)st.st_uid, me, me, dir, dir);
		return -EPERM;
	}
	if (st.st_mode & S_IWOTH)
		log_warn("producer: --spool-dir '%s' is writable by every user (mode %04o): others "
			 "can plant files there; 'chmod 700 %s'",
			 dir, mode, dir);
	return 0;
}

static int seg_insert(struct spool *sp, size_t at, struct seg s)
{
	if (sp->nsegs == sp->capsegs) {
		size_t cap = sp->capsegs ? sp->capsegs * 2 : 16;
		struct seg *g = realloc(sp->segs, cap * sizeof(*g));
		if (!g)
			return -ENOMEM;
		sp->segs = g;
		sp->capsegs = cap;
	}
	memmove(&sp->segs[at + 1], &sp->segs[at], (sp->nsegs - at) * sizeof(*sp->segs));
	sp->segs[at] = s;
	sp->nsegs++;
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct seg *)a)->seq, y = ((const struct seg *)b)->seq;
	return x < y ? -1 : x > y;
}

static uint32_t rec_crc(const char *k, uint32_t klen, const char *v, uint32_t vlen)
{
	uLong c = crc32(0L, Z_NULL, 0);
	c = crc32(c, (const Bytef *)k, klen);
	c = crc32(c, (const Bytef *)v, vlen);
	return (uint32_t)c;
}

static int pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;
		got += (size_t)r;
	}
	return 0;
}

/* Reads the record at off. *out (caller owns) or NULL at a clean end of file. Returns 0,
 * -EBADMSG (damaged or cut short), -ENOMEM, -errno. */
static int read_rec(int fd, uint64_t off, uint64_t size, struct rec **out, uint64_t *next)
{
	*out = NULL;
	if (off == size)
		return 0;
	if (size - off < REC_HDR)
		return -EBADMSG;
	uint32_t h[3];
	int rc = pread_full(fd, h, sizeof(h), off);
	if (rc)
		return rc == -ENODATA ? -EBADMSG : rc;
	if ((uint64_t)h[0] + h[1] > size - off - REC_HDR)
		return -EBADMSG;
	struct rec *r = malloc(sizeof(*r) + (size_t)h[0] + h[1]);
	if (!r)
		return -ENOMEM;
	r->next = NULL;
	r->wal = 0;
	r->klen = h[0];
	r->vlen = h[1];
	rc = pread_full(fd, r->data, (size_t)h[0] + h[1], off + REC_HDR);
	if (rc || rec_crc(r->data, r->klen, r->data + r->klen, r->vlen) != h[2]) {
		free(r);
		return rc && rc != -ENODATA ? rc : -EBADMSG;
	}
	*out = r;
	*next = off + REC_HDR + h[0] + h[1];
	return 0;
}

/* Copies bytes [off, size) of fd into a new file NAME.bad (or .bad.N), so that a cut cannot lose
 * what is in them. Returns the name in out, or "" when it could not be kept. */
static void keep_tail(int fd, uint64_t off, uint64_t size, const char *path, char *out,
		      size_t outlen)
{
	out[0] = '\0';
	FILE *f = NULL;
	for (int i = 1; i <= 99 && !f; i++) {
		if (i == 1)
			snprintf(out, outlen, "%s.bad", path);
		else
			snprintf(out, outlen, "%s.bad.%d", path, i);
		f = create_private(out);
		if (!f && errno != EEXIST)
			break;
	}
	if (!f) {
		out[0] = '\0';
		return;
	}
	char buf[65536];
	int rc = 0;
	while (!rc && off < size) {
		size_t want = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		rc = pread_full(fd, buf, want, off);
		if (!rc && fwrite(buf, 1, want, f) != want)
			rc = -EIO;
		off += want;
	}
	if (fclose(f) != 0 || rc) {
		unlink(out);
		out[0] = '\0';
	}
}

/* Counts the records of one segment; cuts a damaged tail off (a crash mid-write; a damaged
 * record with whole records after it is kept in NAME.bad first). Returns 0 or -errno; -EPERM
 * or -EBADMSG with why[] set: the file is not a spool segment of this user, to move aside. */
static int seg_scan(struct spool *sp, struct seg *s, uint64_t *damaged, char *why, size_t whylen)
{
	char path[4200];
	seg_path(sp, s->seq, "gh", path, sizeof(path));
	int fd = open_own(path, O_RDWR, why, whylen);
	if (fd < 0)
		return fd;
	int rc = 0;
	struct stat stt;
	if (fstat(fd, &stt) != 0) {
		rc = -errno;
		goto out;
	}
	uint64_t size = (uint64_t)stt.st_size, off = SPOOL_HDR;
	char magic[SPOOL_HDR];
	if (size < SPOOL_HDR && (size == 0 || (pread_full(fd, magic, (size_t)size, 0) == 0 &&
						memcmp(magic, SPOOL_MAGIC, (size_t)size) == 0))) {
		/* a run killed before the segment's header left its buffer: nothing in it (what
		 * was on its way here is in the journal) */
		log_warn("producer: spool file %s was cut before its header (a killed run); "
			 "taken as empty",
			 path);
		if (ftruncate(fd, 0) != 0 || pwrite(fd, SPOOL_MAGIC, SPOOL_HDR, 0) != SPOOL_HDR) {
			rc = errno ? -errno : -EIO;
			goto out;
		}
		s->events = 0;
		s->size = SPOOL_HDR;
		goto out;
	}
	if (size < SPOOL_HDR || pread_full(fd, magic, SPOOL_HDR, 0) != 0 ||
	    memcmp(magic, SPOOL_MAGIC, SPOOL_HDR) != 0) {
		snprintf(why, whylen, "not a gpuhealth spool segment (no %s header)", SPOOL_MAGIC);
		rc = -EBADMSG;
		goto out;
	}
	s->events = 0;
	for (;;) {
		struct rec *r = NULL;
		uint64_t next = off;
		rc = read_rec(fd, off, size, &r, &next);
		if (rc == -EBADMSG) {
			/* a record cut by a crash ends the file; a whole one with a bad checksum
			 * may have whole records after it: keep those bytes before the cut */
			uint32_t h[2] = {0, 0};
			bool whole = size - off >= REC_HDR && pread_full(fd, h, sizeof(h), off) == 0 &&
				     (uint64_t)h[0] + h[1] <= size - off - REC_HDR;
			char kept[4300] = "";
			if (whole)
				keep_tail(fd, off, size, path, kept, sizeof(kept));
			if (kept[0])
				log_error("producer: spool file %s: damaged record at byte %" PRIu64
					  " (bad checksum): the %" PRIu64 " bytes from there are "
					  "moved to %s and not sent",
					  path, off, size - off, kept);
			else
				log_error("producer: spool file %s: damaged record at byte %" PRIu64
					  " (%" PRIu64 " bytes cut off; the events in them are lost)",
					  path, off, size - off);
			(*damaged)++;
			if (ftruncate(fd, (off_t)off) != 0) {
				rc = -errno;
				goto out;
			}
			size = off;
			rc = 0;
			break;
		}
		if (rc)
			goto out;
		if (!r)
			break;
		free(r);
		s->events++;
		off = next;
	}
	s->size = size;
out:
	close(fd);
	return rc;
}

static int spool_open(struct spool *sp, const char *dir, uint64_t max_bytes, uint64_t *damaged,
		      char *err, size_t errlen)
{
	memset(sp, 0, sizeof(*sp));
	sp->rd_fd = -1;
	sp->max_bytes = max_bytes;
	sp->seg_max = max_bytes / 8;
	if (sp->seg_max < ((uint64_t)1 << 20))
		sp->seg_max = (uint64_t)1 << 20;
	if (sp->seg_max > ((uint64_t)64 << 20))
		sp->seg_max = (uint64_t)64 << 20;
	if (!(sp->dir = strdup(dir)))
		return -ENOMEM;
	int rc = spool_dir_check(dir, err, errlen);
	if (rc)
		return rc;
	DIR *d = opendir(dir);
	if (!d) {
		int e = errno;
		snprintf(err, errlen, "--spool-dir '%s': cannot open it: %s", dir, strerror(e));
		return -e;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long long seq;
		char ext[8] = "";
		int used = 0;
		if (sscanf(de->d_name, "spool-%20llu.%7[a-z]%n", &seq, ext, &used) != 2 ||
		    de->d_name[used] != '\0')
			continue;
		if (strcmp(ext, "tmp") == 0) { /* a close that did not finish: its source is intact */
			char path[4200];
			seg_path(sp, (uint64_t)seq, "tmp", path, sizeof(path));
			log_warn("producer: removing unfinished spool file %s", path);
			unlink(path);
			continue;
		}
		if (strcmp(ext, "gh") != 0)
			continue;
		if ((uint64_t)seq >= sp->next_seq) /* new segments never take a name in use */
			sp->next_seq = (uint64_t)seq + 1;
		struct seg s = {.seq = (uint64_t)seq};
		if ((rc = seg_insert(sp, sp->nsegs, s)))
			break;
	}
	closedir(d);
	if (rc)
		return rc;
	if (sp->nsegs > 1)
		qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), cmp_seg);
	size_t keep = 0;
	for (size_t i = 0; i < sp->nsegs; i++) {
		char why[128];
		rc = seg_scan(sp, &sp->segs[i], damaged, why, sizeof(why));
		if (rc && why[0]) { /* planted or foreign: out of the way, never fatal */
			char path[4200];
			seg_path(sp, sp->segs[i].seq, "gh", path, sizeof(path));
			move_aside(path, why);
			(*damaged)++;
			continue;
		}
		if (rc) {
			snprintf(err, errlen, "--spool-dir '%s': cannot read segment %" PRIu64 ": %s", dir,
				 sp->segs[i].seq, strerror(-rc));
			return rc;
		}
		sp->events += sp->segs[i].events;
		sp->bytes += sp->segs[i].size - SPOOL_HDR;
		sp->segs[keep++] = sp->segs[i];
	}
	sp->nsegs = keep;
	sp->rd_off = SPOOL_HDR;
	return 0;
}

static int spool_append(struct spool *sp, const struct rec *r)
{
	char path[4200];
	if (sp->wr && sp->segs[sp->nsegs - 1].size >= sp->seg_max) {
		if (fclose(sp->wr) != 0) {
			sp->wr = NULL;
			return -errno;
		}
		sp->wr = NULL;
	}
	if (!sp->wr) {
		uint64_t seq = sp->nsegs ? sp->segs[sp->nsegs - 1].seq + 1 : SPOOL_FIRST_SEQ;
		if (seq < sp->next_seq)
			seq = sp->next_seq;
		sp->next_seq = seq + 1;
		seg_path(sp, seq, "gh", path, sizeof(path));
		FILE *f = create_private(path);
		if (!f)
			return -errno;
		setvbuf(f, NULL, _IOFBF, 1 << 20);
		struct seg s = {.seq = seq, .size = SPOOL_HDR, .events = 0};
		int rc = seg_insert(sp, sp->nsegs, s);
		if (rc || fwrite(SPOOL_MAGIC, 1, SPOOL_HDR, f) != SPOOL_HDR) {
			fclose(f);
			unlink(path);
			if (!rc)
				sp->nsegs--;
			return rc ? rc : -EIO;
		}
		if (sp->nsegs == 1)
			sp->rd_off = SPOOL_HDR;
		sp->wr = f;
	}
	uint32_t h[3] = {r->klen, r->vlen, rec_crc(r->data, r->klen, r->data + r->klen, r->vlen)};
	if (fwrite(h, sizeof(h), 1, sp->wr) != 1 ||
	    fwrite(r->data, 1, (size_t)r->klen + r->vlen, sp->wr) != (size_t)r->klen + r->vlen) {
		/* The segment may now end in a cut record: reads stop at its known size, the next
		 * open cuts the rest off, and the next append starts a new segment. */
		fclose(sp->wr);
		sp->wr = NULL;
		return -EIO;
	}
	uint64_t n = REC_HDR + (uint64_t)r->klen + r->vlen;
	struct seg *s = &sp->segs[sp->nsegs - 1];
	s->size += n;
	s->events++;
	sp->events++;
	sp->bytes += n;
	return 0;
}

static void spool_drop_head(struct spool *sp)
{
	char path[4200];
	if (sp->rd_fd >= 0)
		close(sp->rd_fd);
	sp->rd_fd = -1;
	if (sp->nsegs == 1 && sp->wr) {
		fclose(sp->wr);
		sp->wr = NULL;
	}
	seg_path(sp, sp->segs[0].seq, "gh", path, sizeof(path));
	unlink(path);
	sp->events -= sp->segs[0].events;
	sp->bytes -= sp->segs[0].size - sp->rd_off;
	memmove(&sp->segs[0], &sp->segs[1], (sp->nsegs - 1) * sizeof(*sp->segs));
	sp->nsegs--;
	sp->rd_off = SPOOL_HDR;
}

/* The oldest record, or NULL when the spool is empty. Returns 0, or -errno / -EBADMSG (the rest
 * of that segment is given up and *lost counts its records). */
static int spool_pop(struct spool *sp, struct rec **out, uint64_t *lost)
{
	*out = NULL;
	while (sp->nsegs) {
		struct seg *s = &sp->segs[0];
		if (s->events == 0) {
			spool_drop_head(sp);
			continue;
		}
		if (sp->nsegs == 1 && sp->wr && fflush(sp->wr) != 0)
			return -errno;
		if (sp->rd_fd < 0) {
			char path[4200];
			seg_path(sp, s->seq, "gh", path, sizeof(path));
			sp->rd_fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			if (sp->rd_fd < 0)
				return -errno;
		}
		uint64_t next = sp->rd_off;
		int rc = read_rec(sp->rd_fd, sp->rd_off, s->size, out, &next);
		if (rc == -EBADMSG || (rc == 0 && !*out)) {
			*lost += s->events;
			spool_drop_head(sp);
			return -EBADMSG;
		}
		if (rc)
			return rc;
		sp->bytes -= next - sp->rd_off;
		sp->rd_off = next;
		s->events--;
		sp->events--;
		if (s->events == 0)
			spool_drop_head(sp);
		return 0;
	}
	return 0;
}

static int fsync_file(FILE *f)
{
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		return -errno;
	return 0;
}

/* At close: writes recs (older than everything spooled) and the unread rest of a half-read
 * head segment into a new head segment, then removes the half-read one. Returns 0 or -errno. */
static int spool_prepend(struct spool *sp, struct recq *recs, uint64_t *written)
{
	char tmp[4200], path[4200], old[4200];
	bool half = sp->nsegs && sp->rd_off > SPOOL_HDR && sp->segs[0].events > 0;
	if (!recs->n && !half)
		return 0;
	if (sp->wr && fsync_file(sp->wr) != 0)
		return -errno;
	uint64_t seq = sp->nsegs ? sp->segs[0].seq - 1 : SPOOL_FIRST_SEQ;
	uint64_t nbytes = 0; /* record bytes written for recs */
	seg_path(sp, seq, "tmp", tmp, sizeof(tmp));
	seg_path(sp, seq, "gh", path, sizeof(path));
	FILE *f = create_private(tmp);
	if (!f)
		return -errno;
	int rc = 0;
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	if (fwrite(SPOOL_MAGIC, 1, SPOOL_HDR, f) != SPOOL_HDR)
		rc = -EIO;
	for (struct rec *r = recs->head; r && !rc; r = r->next) {
		uint32_t h[3] = {r->klen, r->vlen,
				 rec_crc(r->data, r->klen, r->data + r->klen, r->vlen)};
		if (fwrite(h, sizeof(h), 1, f) != 1 ||
		    fwrite(r->data, 1, (size_t)r->klen + r->vlen, f) != (size_t)r->klen + r->vlen)
			rc = -EIO;
		nbytes += REC_HDR + (uint64_t)r->klen + r->vlen;
	}
	if (!rc && half) { /* copy the unread rest of the head segment */
		seg_path(sp, sp->segs[0].seq, "gh", old, sizeof(old));
		int fd = open(old, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
		char buf[65536];
		uint64_t off = sp->rd_off;
		while (!rc && off < sp->segs[0].size) {
			size_t want = sp->segs[0].size - off < sizeof(buf) ? (size_t)(sp->segs[0].size - off)
									   : sizeof(buf);
			rc = pread_full(fd, buf, want, off);
			if (!rc && fwrite(buf, 1, want, f) != want)
				rc = -EIO;
			off += want;
		}
		if (fd >= 0)
			close(fd);
	}
	if (!rc)
		rc = fsync_file(f);
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) != 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	if (half) {
		if (sp->rd_fd >= 0)
			close(sp->rd_fd);
		sp->rd_fd = -1;
		if (sp->nsegs == 1 && sp->wr) {
			fclose(sp->wr);
			sp->wr = NULL;
		}
		unlink(old);
		/* the new segment stands in for the half-read one */
		sp->segs[0].seq = seq;
		sp->segs[0].size = SPOOL_HDR + nbytes + (sp->segs[0].size - sp->rd_off);
		sp->segs[0].events += recs->n;
		sp->rd_off = SPOOL_HDR;
	} else {
		struct seg s = {.seq = seq, .size = SPOOL_HDR + nbytes, .events = recs->n};
		int irc = seg_insert(sp, 0, s);
		if (irc)
			return irc;
		if (sp->rd_fd >= 0) /* it was open on the old head */
			close(sp->rd_fd);
		sp->rd_fd = -1;
		sp->rd_off = SPOOL_HDR;
	}
	sp->events += recs->n;
	sp->bytes += nbytes;
	*written = recs->n;
	return 0;
}

static void spool_close(struct spool *sp)
{
	if (sp->wr) {
		if (fsync_file(sp->wr) != 0)
			log_error("producer: spool %s: cannot sync the last segment: %s", sp->dir,
				  strerror(errno));
		fclose(sp->wr);
	}
	if (sp->rd_fd >= 0)
		close(sp->rd_fd);
	sp->wr = NULL;
	sp->rd_fd = -1;
	free(sp->segs);
	free(sp->dir);
	memset(sp, 0, sizeof(*sp));
	sp->rd_fd = -1;
}

int producer_spool_scan(const char *dir,
			int (*cb)(const char *key, size_t klen, const char *val, size_t vlen,
				  void *ud),
			void *ud)
{
	struct spool sp;
	uint64_t damaged = 0;
	char err[256];
	int rc = spool_open(&sp, dir, UINT64_MAX, &damaged, err, sizeof(err));
	/* read without consuming: walk the segments by hand */
	for (size_t i = 0; !rc && i < sp.nsegs; i++) {
		char path[4200];
		seg_path(&sp, sp.segs[i].seq, "gh", path, sizeof(path));
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			break;
		}
		uint64_t off = SPOOL_HDR;
		for (;;) {
			struct rec *r = NULL;
			uint64_t next = off;
			rc = read_rec(fd, off, sp.segs[i].size, &r, &next);
			if (rc || !r)
				break;
			rc = cb(r->data, r->klen, r->data + r->klen, r->vlen, ud);
			free(r);
			if (rc)
				break;
			off = next;
		}
		close(fd);
	}
	spool_close(&sp);
	return rc;
}

/* ------------------------------------------------------------------ journal */

/* With a spool directory, every event that producer_send() accepts (and every event read back
 * from the spool) is first appended to a journal segment, journal-SEQ.gh in the same record
 * format as the spool, and written to the kernel by producer_sync() (the collector calls it
 * after each scrape, before it logs the scrape) and by every poll. A segment is removed once
 * each of its events is settled: delivered, failed for good, dropped and counted, or in the
 * spool file (the spool is flushed first). A run ended by SIGKILL leaves its segments behind;
 * the next start sends their events again, so an accepted event is not lost: at worst it is
 * delivered twice, and the sink keeps one row per (GPU, time). Not fsync'd: it survives the
 * process, not the machine. */
#define WAL_SEG_MAX ((uint64_t)8 << 20)

struct walseg {
	uint64_t seq;
	uint64_t pending; /* events not settled yet */
};

struct journal {
	const char *dir;     /* the spool's */
	FILE *wr;            /* on the newest segment, NULL when none */
	uint64_t seq;        /* of the newest segment */
	uint64_t size;       /* bytes in the newest segment */
	struct walseg *segs; /* ascending seq; the last one is written when wr is open */
	size_t nsegs, capsegs;
	bool dirty; /* written since the last sync */
};

static void wal_path(const char *dir, uint64_t seq, char *out, size_t n)
{
	snprintf(out, n, "%s/journal-%020" PRIu64 ".gh", dir, seq);
}

/* Lists the journal segments of dir in ascending order. Returns 0 or -errno. */
static int wal_list(const char *dir, uint64_t **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	size_t cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long long seq;
		int used = 0;
		if (sscanf(de->d_name, "journal-%20llu.gh%n", &seq, &used) != 1 ||
		    de->d_name[used] != '\0')
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *g = realloc(*out, cap * sizeof(*g));
			if (!g) {
				rc = -ENOMEM;
				break;
			}
			*out = g;
		}
		(*out)[(*n)++] = (uint64_t)seq;
	}
	closedir(d);
	for (size_t i = 1; !rc && i < *n; i++) /* insertion sort: a handful of files */
		for (size_t j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
			uint64_t t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return rc;
}

/* Removes the segments that are settled and no longer written. The spool is flushed first, so
 * an event settled by going to the spool is in its file before its journal entry goes. */
static void wal_collect(struct journal *j, struct spool *sp)
{
	bool flushed = false;
	size_t keep = 0;
	/* everything written so far is settled: end the segment, so that it goes now and a kill
	 * leaves only unsettled events behind (few duplicates on the next start) */
	if (j->wr && j->nsegs && j->segs[j->nsegs - 1].seq == j->seq &&
	    !j->segs[j->nsegs - 1].pending && j->size > SPOOL_HDR) {
		fclose(j->wr);
		j->wr = NULL;
	}
	for (size_t i = 0; i < j->nsegs; i++) {
		struct walseg *g = &j->segs[i];
		bool current = j->wr && g->seq == j->seq;
		if (g->pending || current) {
			j->segs[keep++] = *g;
			continue;
		}
		if (!flushed && sp->wr) {
			if (fflush(sp->wr) != 0) {
				/* keep the journal: the spool may not hold them */
				j->segs[keep++] = *g;
				continue;
			}
			flushed = true;
		}
		char path[4200];
		wal_path(j->dir, g->seq, path, sizeof(path));
		unlink(path);
	}
	j->nsegs = keep;
}

static void wal_settle(struct journal *j, struct rec *r)
{
	if (!r->wal)
		return;
	for (size_t i = 0; i < j->nsegs; i++)
		if (j->segs[i].seq == r->wal) {
			if (j->segs[i].pending)
				j->segs[i].pending--;
			break;
		}
	r->wal = 0;
}

/* Appends r to the journal (buffered: producer_sync() writes it out). Returns 0 or -errno; on
 * an error r is not journaled (r->wal stays 0). */
static int wal_append(struct journal *j, struct rec *r)
{
	if (j->wr && j->size >= WAL_SEG_MAX) {
		int rc = fflush(j->wr) != 0 ? -errno : 0;
		fclose(j->wr);
		j->wr = NULL;
		if (rc)
			return rc;
	}
	if (!j->wr) {
		if (j->nsegs == j->capsegs) {
			size_t cap = j->capsegs ? j->capsegs * 2 : 16;
			struct walseg *g = realloc(j->segs, cap * sizeof(*g));
			if (!g)
				return -ENOMEM;
			j->segs = g;
			j->capsegs = cap;
		}
		char path[4200];
		j->seq++;
		wal_path(j->dir, j->seq, path, sizeof(path));
		FILE *f = create_private(path);
		if (!f)
			return -errno;
		setvbuf(f, NULL, _IOFBF, 1 << 20);
		if (fwrite(SPOOL_MAGIC, 1, SPOOL_HDR, f) != SPOOL_HDR) {
			fclose(f);
			unlink(path);
			return -EIO;
		}
		j->wr = f;
		j->size = SPOOL_HDR;
		j->segs[j->nsegs++] = (struct walseg){.seq = j->seq, .pending = 0};
	}
	uint32_t h[3] = {r->klen, r->vlen, rec_crc(r->data, r->klen, r->data + r->klen, r->vlen)};
	if (fwrite(h, sizeof(h), 1, j->wr) != 1 ||
	    fwrite(r->data, 1, (size_t)r->klen + r->vlen, j->wr) != (size_t)r->klen + r->vlen) {
		fclose(j->wr); /* a cut record ends the segment; the replay stops there */
		j->wr = NULL;
		return -EIO;
	}
	j->size += REC_HDR + (uint64_t)r->klen + r->vlen;
	j->segs[j->nsegs - 1].pending++;
	r->wal = j->seq;
	j->dirty = true;
	return 0;
}

static int wal_sync(struct journal *j)
{
	if (!j->wr || !j->dirty)
		return 0;
	j->dirty = false;
	return fflush(j->wr) != 0 ? -errno : 0;
}

/* At a clean close, once everything pending is delivered or in the (fsync'd) spool. */
static void wal_remove_all(struct journal *j)
{
	if (j->wr)
		fclose(j->wr);
	j->wr = NULL;
	for (size_t i = 0; i < j->nsegs; i++) {
		char path[4200];
		wal_path(j->dir, j->segs[i].seq, path, sizeof(path));
		unlink(path);
	}
	j->nsegs = 0;
}

static void wal_free(struct journal *j)
{
	if (j->wr)
		fclose(j->wr); /* left on disk: replayed by the next start */
	j->wr = NULL;
	free(j->segs);
	j->segs = NULL;
	j->nsegs = j->capsegs = 0;
}

/* ------------------------------------------------------------------ producer */

struct producer {
	rd_kafka_t *rk;        /* owned */
	rd_kafka_topic_t *rkt; /* owned */
	char *topic;           /* owned */
	_Atomic size_t buffer_events;     /* memory queue bounds: producer_set_buffer() */
	_Atomic uint64_t buffer_bytes;    /* 0: none */
	size_t max_event_bytes;           /* 0: none */
	_Atomic int64_t credit;           /* producer_set_credit(): -1 no bound, 0 hold */
	bool has_spool;
	struct spool spool;
	struct journal wal; /* with the spool */
	double flush_timeout_s, drop_log_s;
	bool closed;

	struct recq mem;   /* waiting for room in librdkafka, oldest first */
	struct recq retry; /* failed-not-persisted reports of this poll, in report order */
	struct producer_stats c; /* counters, this thread only */
	uint64_t drops_unlogged;
	uint64_t refused_unlogged;
	double last_drop_log;
	double last_err_log;
	uint64_t fail_unlogged;

	pthread_mutex_t lock; /* guards pub */
	struct producer_stats pub;
};

static void publish(struct producer *p)
{
	p->c.queued = p->mem.n;
	p->c.queued_bytes = p->mem.bytes;
	p->c.held = atomic_load(&p->credit) == 0;
	p->c.spool_events = p->has_spool ? p->spool.events : 0;
	p->c.spool_bytes = p->has_spool ? p->spool.bytes : 0;
	pthread_mutex_lock(&p->lock);
	p->pub = p->c;
	pthread_mutex_unlock(&p->lock);
}

static void set_error(struct producer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct producer *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->c.last_error, sizeof(p->c.last_error), fmt, ap);
	va_end(ap);
}

/* Errors after which the message was certainly not written and producing it again is right. */
static bool retriable(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TRANSPORT:
	case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
	case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
	case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
	case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
		return true;
	default:
		return false;
	}
}

static void settle(struct producer *p, struct rec *r);
static void journal(struct producer *p, struct rec *r);

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct producer *p = opaque;
	struct rec *r = m->_private; /* ours again from here */
	p->c.in_flight--;
	p->c.in_flight_bytes -= rec_bytes(r);
	if (!m->err) {
		p->c.delivered++;
		p->c.delivered_bytes += rec_bytes(r);
		settle(p, r);
		free(r);
		return;
	}
	rd_kafka_msg_status_t st = rd_kafka_message_status(m);
	/* A purge at close may catch a message in flight: it is kept (spooled) even though the
	 * broker may have it, because a duplicate (time, GPU) is removed downstream and a loss is
	 * not. */
	if ((st == RD_KAFKA_MSG_STATUS_NOT_PERSISTED && retriable(m->err)) ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
		if (m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
		    m->err != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
			p->c.retried++;
		q_push(&p->retry, r);
		return;
	}
	p->c.failed++;
	p->fail_unlogged++;
	set_error(p, "delivery failed (%s): %s",
		  st == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED ? "possibly persisted" : "not persisted",
		  rd_kafka_err2str(m->err));
	settle(p, r);
	free(r);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct producer *p = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char buf[256];
		rd_kafka_fatal_error(rk, buf, sizeof(buf));
		p->c.fatal = true;
		set_error(p, "kafka fatal error: %s", buf);
		log_error("producer: Kafka fatal error: %s; what is pending will be spooled", buf);
		return;
	}
	set_error(p, "kafka: %s", reason);
	double now = time_mono();
	if (now - p->last_err_log >= 30) {
		log_warn("producer: %s", reason);
		p->last_err_log = now;
	} else {
		log_debug("producer: %s", reason);
	}
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* connection failures reach error_cb too, rate-limited there */
	if (level <= 4 && strcmp(fac, "FAIL") != 0)
		log_warn("producer: librdkafka %s: %s", fac, buf);
	else
		log_debug("producer: librdkafka %s: %s", fac, buf);
}

/* Hands r to librdkafka. Returns 0 (librdkafka owns it until the report), -ENOBUFS (queue full:
 * r is still the caller's), or -EIO (refused for good: r was freed and counted). */
static int hand_over(struct producer *p, struct rec *r)
{
	rd_kafka_resp_err_t e = rd_kafka_producev(
		p->rk, RD_KAFKA_V_RKT(p->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
		RD_KAFKA_V_MSGFLAGS(0), RD_KAFKA_V_KEY(r->data, r->klen),
		RD_KAFKA_V_VALUE(r->data + r->klen, r->vlen), RD_KAFKA_V_OPAQUE(r), RD_KAFKA_V_END);
	if (!e) {
		p->c.in_flight++;
		p->c.in_flight_bytes += rec_bytes(r);
		if (atomic_load(&p->credit) > 0)
			atomic_fetch_sub(&p->credit, 1);
		return 0;
	}
	if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
		return -ENOBUFS;
	if (e == RD_KAFKA_RESP_ERR__FATAL)
		return -ENOBUFS; /* keep it: it is spooled at close */
	p->c.failed++;
	p->fail_unlogged++;
	set_error(p, "produce refused: %s (key %.*s)", rd_kafka_err2str(e), (int)r->klen, r->data);
	settle(p, r);
	free(r);
	return -EIO;
}

static void spool_error(struct producer *p, const char *what, int rc)
{
	p->c.spool_errors++;
	set_error(p, "spool %s: %s: %s", p->spool.dir, what, strerror(-rc));
	log_error("producer: spool %s: %s: %s", p->spool.dir, what, strerror(-rc));
}

static void journal(struct producer *p, struct rec *r)
{
	if (!p->has_spool)
		return;
	int rc = wal_append(&p->wal, r);
	if (rc) {
		p->c.spool_errors++;
		set_error(p, "journal in %s: %s", p->spool.dir, strerror(-rc));
		log_error("producer: cannot write the journal in %s: %s (this event is not kept "
			  "across a crash)",
			  p->spool.dir, strerror(-rc));
	}
}

static void settle(struct producer *p, struct rec *r)
{
	if (p->has_spool)
		wal_settle(&p->wal, r);
}

/* The memory queue is at one of its bounds (events or bytes). */
static bool mem_full(const struct producer *p)
{
	uint64_t maxb = atomic_load(&p->buffer_bytes);
	return p->mem.n >= atomic_load(&p->buffer_events) || (maxb && p->mem.bytes >= maxb);
}

static bool held(const struct producer *p) { return atomic_load(&p->credit) == 0; }

/* Moves events towards librdkafka: memory -> librdkafka, spool -> memory. */
static void feed(struct producer *p)
{
	for (;;) {
		while (p->mem.head && !p->c.fatal && !held(p)) {
			struct rec *r = q_pop(&p->mem);
			if (hand_over(p, r) == -ENOBUFS) {
				struct recq one = {r, r, 1, rec_bytes(r)};
				q_prepend(&p->mem, &one);
				break;
			}
		}
		if (!p->has_spool || !p->spool.events || mem_full(p))
			return;
		while (p->spool.events && !mem_full(p)) {
			struct rec *r = NULL;
			uint64_t lost = 0;
			int rc = spool_pop(&p->spool, &r, &lost);
			if (rc) {
				p->c.dropped += lost;
				p->drops_unlogged += lost;
				spool_error(p, "reading back", rc);
				if (rc != -EBADMSG)
					return;
				continue;
			}
			if (!r)
				break;
			p->c.unspooled++;
			journal(p, r); /* out of the spool file, not yet in Kafka */
			q_push(&p->mem, r);
		}
		if (p->c.fatal || held(p) || (p->mem.head && mem_full(p)))
			return;
	}
}

static void drop_oldest(struct producer *p)
{
	struct rec *r = q_pop(&p->mem);
	if (!r) {
		uint64_t lost = 0;
		if (p->has_spool && spool_pop(&p->spool, &r, &lost) != 0) {
			p->c.dropped += lost;
			p->drops_unlogged += lost;
		}
		if (!r)
			return;
	}
	settle(p, r);
	free(r);
	p->c.dropped++;
	p->drops_unlogged++;
}

int producer_send(struct producer *p, const char *key, size_t klen, const char *value, size_t vlen)
{
	if (p->closed)
		return -EPIPE;
	if (p->max_event_bytes && klen + vlen > p->max_event_bytes) {
		/* refused before produce: one event the broker cannot hold must not take others
		 * along (an in-process broker's log drops whole batches past its size) */
		p->c.refused++;
		p->refused_unlogged++;
		set_error(p, "event of %zu bytes refused: larger than the %zu the broker takes (key %.*s)",
			  klen + vlen, p->max_event_bytes, (int)(klen < 128 ? klen : 128), key);
		publish(p);
		return 0;
	}
	struct rec *r = rec_new(key, klen, value, vlen);
	if (!r)
		return -ENOMEM;
	p->c.produced++;
	journal(p, r);
	bool spooling = p->has_spool && p->spool.events > 0;
	if (!spooling && !p->mem.head && !p->c.fatal && !held(p)) {
		int rc = hand_over(p, r);
		if (rc != -ENOBUFS) {
			publish(p);
			return 0;
		}
	}
	if (!spooling && !mem_full(p)) {
		q_push(&p->mem, r);
		publish(p);
		return 0;
	}
	if (p->has_spool) {
		uint64_t need = REC_HDR + (uint64_t)r->klen + r->vlen;
		/* past both bounds: drop the oldest; the memory queue takes the spool's oldest */
		while (p->spool.bytes + need > p->spool.max_bytes && (p->mem.head || p->spool.events)) {
			drop_oldest(p);
			if (!mem_full(p) && p->spool.events) {
				struct rec *o = NULL;
				uint64_t lost = 0;
				int rc = spool_pop(&p->spool, &o, &lost);
				p->c.dropped += lost;
				p->drops_unlogged += lost;
				if (o) {
					p->c.unspooled++;
					journal(p, o);
					q_push(&p->mem, o);
				} else if (rc && rc != -EBADMSG) {
					break;
				}
			}
		}
		if (p->spool.bytes + need <= p->spool.max_bytes) {
			int rc = spool_append(&p->spool, r);
			if (!rc) {
				p->c.spooled++;
				settle(p, r); /* its journal goes after the spool is flushed */
				free(r);
				publish(p);
				return 0;
			}
			spool_error(p, "writing", rc);
		}
		/* no room on disk at all (or a write error): keep it in memory over its bound
		 * rather than lose the newest event; the oldest makes room */
		if (mem_full(p))
			drop_oldest(p);
		q_push(&p->mem, r);
		publish(p);
		return 0;
	}
	drop_oldest(p);
	while (p->mem.head && mem_full(p)) /* the byte bound may need more than one */
		drop_oldest(p);
	q_push(&p->mem, r);
	publish(p);
	return 0;
}

void producer_set_credit(struct producer *p, int64_t events) { atomic_store(&p->credit, events); }

void producer_set_buffer(struct producer *p, size_t events, uint64_t bytes)
{
	if (events)
		atomic_store(&p->buffer_events, events);
	if (bytes)
		atomic_store(&p->buffer_bytes, bytes);
}

int producer_sync(struct producer *p)
{
	if (!p->has_spool)
		return 0;
	int rc = wal_sync(&p->wal);
	if (rc) {
		p->c.spool_errors++;
		set_error(p, "journal in %s: %s", p->spool.dir, strerror(-rc));
		log_error("producer: cannot write the journal in %s: %s", p->spool.dir,
			  strerror(-rc));
	}
	return rc;
}

static void log_losses(struct producer *p, bool force)
{
	double now = time_mono();
	if (!force && now - p->last_drop_log < p->drop_log_s)
		return;
	if (p->drops_unlogged) {
		log_warn("producer: buffer full (%zu events in memory, %" PRIu64
			 " spooled, %" PRIu64 " in librdkafka): dropped the %" PRIu64
			 " oldest events since the last report (%" PRIu64
			 " in all); raise --buffer-events or --spool-max, or give --spool-dir",
			 p->mem.n, p->has_spool ? p->spool.events : 0, p->c.in_flight, p->drops_unlogged,
			 p->c.dropped);
		p->drops_unlogged = 0;
		p->last_drop_log = now;
	}
	if (p->refused_unlogged) {
		log_error("producer: %" PRIu64 " events refused since the last report (%" PRIu64
			  " in all); last: %s",
			  p->refused_unlogged, p->c.refused, p->c.last_error);
		p->refused_unlogged = 0;
		p->last_drop_log = now;
	}
	if (p->fail_unlogged) {
		log_error("producer: %" PRIu64 " events failed for good since the last report (%" PRIu64
			  " in all); last: %s",
			  p->fail_unlogged, p->c.failed, p->c.last_error);
		p->fail_unlogged = 0;
		p->last_drop_log = now;
	}
}

void producer_poll(struct producer *p, int timeout_ms)
{
	rd_kafka_poll(p->rk, timeout_ms);
	q_prepend(&p->mem, &p->retry); /* failed-not-persisted: oldest, produce again first */
	if (!p->closed)
		feed(p);
	if (p->has_spool && p->spool.wr && fflush(p->spool.wr) != 0)
		spool_error(p, "writing", -errno);
	if (p->has_spool) {
		producer_sync(p);
		wal_collect(&p->wal, &p->spool);
	}
	log_losses(p, false);
	publish(p);
}

static bool pending(const struct producer *p)
{
	return p->mem.n || p->retry.n || p->c.in_flight || (p->has_spool && p->spool.events);
}

int producer_flush(struct producer *p, double timeout_s)
{
	double until = time_mono() + timeout_s;
	while (pending(p) && !p->c.fatal) {
		double left = until - time_mono();
		if (left <= 0)
			return -ETIMEDOUT;
		producer_poll(p, left > 0.1 ? 100 : (int)(left * 1000) + 1);
	}
	return pending(p) ? -ETIMEDOUT : 0;
}

uint64_t producer_close(struct producer *p)
{
	if (p->closed)
		return 0;
	if (producer_flush(p, p->flush_timeout_s) == 0) {
		p->closed = true;
		if (p->has_spool)
			wal_remove_all(&p->wal); /* everything is delivered */
		log_losses(p, true);
		publish(p);
		return 0;
	}
	p->closed = true;
	/* Take back what librdkafka holds: each comes back through its report as purged. */
	rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	double until = time_mono() + 10;
	while (p->c.in_flight && time_mono() < until)
		producer_poll(p, 50);
	q_prepend(&p->mem, &p->retry);
	uint64_t left = p->mem.n + (p->has_spool ? p->spool.events : 0);
	if (p->c.in_flight)
		log_error("producer: %" PRIu64 " events still in librdkafka after the purge: lost",
			  p->c.in_flight);
	if (p->has_spool) {
		uint64_t written = 0;
		int rc = spool_prepend(&p->spool, &p->mem, &written);
		if (rc) {
			spool_error(p, "writing the pending events at stop", rc);
			p->c.dropped += p->mem.n;
			log_error("producer: %zu pending events lost: the spool could not take them",
				  p->mem.n);
		} else {
			p->c.spooled += written;
			if (!p->c.in_flight) /* all of it is in the fsync'd spool now */
				wal_remove_all(&p->wal);
			log_info("producer: stopped with %" PRIu64 " events undelivered: %" PRIu64
				 " in the spool %s (%" PRIu64 " written now); they are sent on the "
				 "next start",
				 left, p->spool.events, p->spool.dir, written);
		}
	} else if (p->mem.n) {
		p->c.dropped += p->mem.n;
		log_error("producer: stopped with %zu events undelivered and no --spool-dir to keep "
			  "them: lost (counted as dropped)",
			  p->mem.n);
	}
	q_free(&p->mem);
	log_losses(p, true);
	publish(p);
	return left;
}

void producer_stats(struct producer *p, struct producer_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->pub;
	pthread_mutex_unlock(&p->lock);
}

/* Sends again the events of the journal segments an earlier run left (it was killed): each is
 * journaled anew before its old segment is removed. Returns 0 or -errno (message in err). */
static int replay_journal(struct producer *p, char *err, size_t errlen)
{
	uint64_t *seqs = NULL;
	size_t n = 0;
	int rc = wal_list(p->wal.dir, &seqs, &n);
	if (rc) {
		snprintf(err, errlen, "--spool-dir '%s': cannot list its journal: %s", p->wal.dir,
			 strerror(-rc));
		return rc;
	}
	if (n)
		p->wal.seq = seqs[n - 1]; /* new segments follow the old ones */
	uint64_t events = 0, damaged = 0, aside = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		char path[4200];
		wal_path(p->wal.dir, seqs[i], path, sizeof(path));
		char why[128];
		int fd = open_own(path, O_RDONLY, why, sizeof(why));
		if (fd < 0 && why[0]) { /* planted or foreign: out of the way, never fatal */
			move_aside(path, why);
			aside++;
			continue;
		}
		if (fd < 0) {
			rc = fd;
			snprintf(err, errlen, "--spool-dir '%s': cannot read %s: %s", p->wal.dir, path,
				 strerror(-fd));
			break;
		}
		struct stat st;
		char magic[SPOOL_HDR];
		uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0, off = SPOOL_HDR;
		size_t head = size < SPOOL_HDR ? (size_t)size : SPOOL_HDR;
		if (pread_full(fd, magic, head, 0) != 0 || memcmp(magic, SPOOL_MAGIC, head) != 0) {
			close(fd); /* not a journal segment: kept aside, not deleted */
			snprintf(why, sizeof(why), "not a gpuhealth journal segment (no %s header)",
				 SPOOL_MAGIC);
			move_aside(path, why);
			aside++;
			continue;
		}
		if (size < SPOOL_HDR)
			off = size; /* killed before its header was written: nothing in it */
		while (off < size) {
			struct rec *r = NULL;
			uint64_t next = off;
			int r2 = read_rec(fd, off, size, &r, &next);
			if (r2 || !r) { /* a record cut by the kill: it was never acknowledged */
				damaged += r2 == -EBADMSG;
				free(r);
				break;
			}
			rc = producer_send(p, r->data, r->klen, r->data + r->klen, r->vlen);
			free(r);
			if (rc) {
				snprintf(err, errlen, "cannot queue the journal's events: %s", strerror(-rc));
				break;
			}
			events++;
			off = next;
		}
		close(fd);
		if (!rc && (rc = producer_sync(p)) == 0)
			unlink(path);
		else if (rc && !err[0])
			snprintf(err, errlen, "--spool-dir '%s': cannot write the journal: %s",
				 p->wal.dir, strerror(-rc));
	}
	free(seqs);
	p->c.spool_errors += aside; /* each reported by move_aside */
	n -= aside;
	if (n && !rc)
		log_info("producer: %" PRIu64 " events in the journal of an earlier run that did not "
			 "stop cleanly (%zu segments%s): sent again; any the broker already had are "
			 "removed downstream by (GPU, time)",
			 events, n, damaged ? ", its last record cut short" : "");
	return rc;
}

int producer_create(struct producer **out, const struct producer_options *o, char *err,
		    size_t errlen)
{
	*out = NULL;
	int rc = -EINVAL;
	const char **props = NULL;
	rd_kafka_conf_t *conf = NULL;
	struct producer *p = NULL;
	if (!o->brokers || !*o->brokers) {
		snprintf(err, errlen, "no Kafka brokers: give --brokers HOST:PORT "
				      "(KAFKA_BOOTSTRAP_SERVERS), or --output - for standard output");
		goto fail;
	}
	if (!o->topic || !*o->topic) {
		snprintf(err, errlen, "--topic is empty: name the topic of the sample events");
		goto fail;
	}
	if (o->buffer_events < 1) {
		snprintf(err, errlen, "--buffer-events must be at least 1");
		goto fail;
	}
	rc = -ENOMEM;
	p = calloc(1, sizeof(*p));
	if (!p)
		goto fail;
	pthread_mutex_init(&p->lock, NULL);
	if (!(p->topic = strdup(o->topic)))
		goto fail;
	p->spool.rd_fd = -1;
	atomic_store(&p->buffer_events, o->buffer_events);
	atomic_store(&p->buffer_bytes, o->buffer_max_bytes);
	p->max_event_bytes = o->max_event_bytes;
	atomic_store(&p->credit, -1);
	p->flush_timeout_s = o->flush_timeout_s;
	p->drop_log_s = o->drop_log_interval_s > 0 ? o->drop_log_interval_s : 10;
	p->last_drop_log = -1e9;
	p->last_err_log = -1e9;

	/* Our defaults first, so that -X overrides any of them. */
	static const char *const defaults[] = {
		"message.timeout.ms=0", /* never give up on an event: we bound the buffer */
		"compression.codec=lz4",
		"partitioner=murmur2_random", /* the Java client's: same key, same partition */
		"linger.ms=50",
	};
	size_t nd = sizeof(defaults) / sizeof(defaults[0]);
	props = calloc(nd + o->nkafka_props, sizeof(*props));
	if (!props)
		goto fail;
	for (size_t i = 0; i < nd; i++)
		props[i] = defaults[i];
	for (size_t i = 0; i < o->nkafka_props; i++)
		props[nd + i] = o->kafka_props[i];
	rc = -EINVAL;
	conf = kafka_conf_new(KAFKA_PRODUCER, o->brokers, props, nd + o->nkafka_props, err, errlen);
	if (!conf)
		goto fail;
	rd_kafka_conf_set_opaque(conf, p);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
	char why[512];
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why));
	if (!p->rk) {
		snprintf(err, errlen, "cannot create the Kafka producer: %s", why);
		goto fail;
	}
	conf = NULL; /* owned by p->rk now */
	p->rkt = rd_kafka_topic_new(p->rk, p->topic, NULL);
	if (!p->rkt) {
		snprintf(err, errlen, "cannot use topic '%s': %s", p->topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		goto fail;
	}
	if (o->spool_dir && *o->spool_dir) {
		uint64_t damaged = 0;
		rc = spool_open(&p->spool, o->spool_dir, o->spool_max_bytes, &damaged, err, errlen);
		if (rc)
			goto fail;
		p->has_spool = true;
		p->c.spool_errors = damaged;
		if (p->spool.events)
			log_info("producer: %" PRIu64 " events (%.1f MiB) in the spool %s from an earlier "
				 "run: they are sent first",
				 p->spool.events, (double)p->spool.bytes / 1048576.0, o->spool_dir);
		p->wal.dir = p->spool.dir;
		rc = replay_journal(p, err, errlen);
		if (rc)
			goto fail;
	}
	free(props);
	publish(p);
	*out = p; /* caller owns */
	return 0;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	free(props);
	producer_destroy(p);
	return rc;
}

void producer_destroy(struct producer *p)
{
	if (!p)
		return;
	if (p->rk)
		producer_close(p);
	if (p->rkt)
		rd_kafka_topic_destroy(p->rkt);
	if (p->rk)
		rd_kafka_destroy(p->rk);
	q_free(&p->mem);
	q_free(&p->retry);
	wal_free(&p->wal);
	if (p->has_spool || p->spool.dir)
		spool_close(&p->spool);
	pthread_mutex_destroy(&p->lock);
	free(p->topic);
	free(p);
}
