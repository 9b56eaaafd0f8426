#include "bus/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/log.h"

#define SPOOL_FIRST_SEQ ((uint64_t)1 << 40) /* room below for segments written at close */

static void seg_path(const struct spool *sp, uint64_t seq, const char *ext, char *out, size_t n)
{
	snprintf(out, n, "%s/spool-%020" PRIu64 ".%s", sp->dir, seq, ext);
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
		snprintf(err, errlen, "--spool-dir '%s' is not a directory: give a directory", dir);
		return -ENOTDIR;
	}
	unsigned me = (unsigned)geteuid(), mode = (unsigned)(st.st_mode & 07777);
	if ((st.st_mode & S_IWOTH) && (st.st_mode & S_ISVTX)) {
		/* /tmp and its kind, whoever owns them: shared on purpose, not to be "fixed";
		 * anyone may create a file there under the next segment's name */
		snprintf(
		    err, errlen,
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

static int seg_insert(struct spool *sp, size_t at, struct spool_seg s)
{
	if (grow_array((void **)&sp->segs, &sp->capsegs, sp->nsegs + 1, sizeof(*sp->segs), 16))
		return -ENOMEM;
	memmove(&sp->segs[at + 1], &sp->segs[at], (sp->nsegs - at) * sizeof(*sp->segs));
	sp->segs[at] = s;
	sp->nsegs++;
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct spool_seg *)a)->seq, y = ((const struct spool_seg *)b)->seq;
	return x < y ? -1 : x > y;
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
		f = record_file_create(out);
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
		rc = record_pread(fd, buf, want, off);
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
static int seg_scan(struct spool *sp, struct spool_seg *s, uint64_t *damaged, char *why,
                    size_t whylen)
{
	char path[4200];
	seg_path(sp, s->seq, "gh", path, sizeof(path));
	int fd = record_file_open(path, O_RDWR, why, whylen);
	if (fd < 0)
		return fd;
	int rc = 0;
	struct stat stt;
	if (fstat(fd, &stt) != 0) {
		rc = -errno;
		goto out;
	}
	uint64_t size = (uint64_t)stt.st_size, off = RECORD_FILE_HDR;
	char magic[RECORD_FILE_HDR];
	if (size < RECORD_FILE_HDR &&
	    (size == 0 || (record_pread(fd, magic, (size_t)size, 0) == 0 &&
	                   memcmp(magic, RECORD_MAGIC, (size_t)size) == 0))) {
		/* a run killed before the segment's header left its buffer: nothing in it (what
		 * was on its way here is in the journal) */
		log_warn("producer: spool file %s was cut before its header (a killed run); "
		         "taken as empty",
		         path);
		if (ftruncate(fd, 0) != 0 ||
		    pwrite(fd, RECORD_MAGIC, RECORD_FILE_HDR, 0) != RECORD_FILE_HDR) {
			rc = errno ? -errno : -EIO;
			goto out;
		}
		s->events = 0;
		s->size = RECORD_FILE_HDR;
		goto out;
	}
	if (size < RECORD_FILE_HDR || record_pread(fd, magic, RECORD_FILE_HDR, 0) != 0 ||
	    memcmp(magic, RECORD_MAGIC, RECORD_FILE_HDR) != 0) {
		snprintf(why, whylen, "not a gpuhealth spool segment (no %s header)", RECORD_MAGIC);
		rc = -EBADMSG;
		goto out;
	}
	s->events = 0;
	for (;;) {
		struct record *r = NULL;
		uint64_t next = off;
		rc = record_read(fd, off, size, &r, &next);
		if (rc == -EBADMSG) {
			/* a record cut by a crash ends the file; a whole one with a bad checksum
			 * may have whole records after it: keep those bytes before the cut */
			uint32_t h[2] = {0, 0};
			bool whole = size - off >= RECORD_HDR &&
			             record_pread(fd, h, sizeof(h), off) == 0 &&
			             (uint64_t)h[0] + h[1] <= size - off - RECORD_HDR;
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
				          " (%" PRIu64
				          " bytes cut off; the events in them are lost)",
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

int spool_open(struct spool *sp, const char *dir, uint64_t max_bytes, uint64_t *damaged, char *err,
               size_t errlen)
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
		if (strcmp(ext, "tmp") ==
		    0) { /* a close that did not finish: its source is intact */
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
		struct spool_seg s = {.seq = (uint64_t)seq};
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
			record_file_move_aside(path, why);
			(*damaged)++;
			continue;
		}
		if (rc) {
			snprintf(err, errlen,
			         "--spool-dir '%s': cannot read segment %" PRIu64 ": %s", dir,
			         sp->segs[i].seq, strerror(-rc));
			return rc;
		}
		sp->events += sp->segs[i].events;
		sp->bytes += sp->segs[i].size - RECORD_FILE_HDR;
		sp->segs[keep++] = sp->segs[i];
	}
	sp->nsegs = keep;
	sp->rd_off = RECORD_FILE_HDR;
	return 0;
}

int spool_append(struct spool *sp, const struct record *r)
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
		FILE *f = record_file_create(path);
		if (!f)
			return -errno;
		setvbuf(f, NULL, _IOFBF, 1 << 20);
		struct spool_seg s = {.seq = seq, .size = RECORD_FILE_HDR, .events = 0};
		int rc = seg_insert(sp, sp->nsegs, s);
		if (rc || fwrite(RECORD_MAGIC, 1, RECORD_FILE_HDR, f) != RECORD_FILE_HDR) {
			fclose(f);
			unlink(path);
			if (!rc)
				sp->nsegs--;
			return rc ? rc : -EIO;
		}
		if (sp->nsegs == 1)
			sp->rd_off = RECORD_FILE_HDR;
		sp->wr = f;
	}
	uint32_t h[3] = {r->klen, r->vlen,
	                 record_crc(r->data, r->klen, r->data + r->klen, r->vlen)};
	if (fwrite(h, sizeof(h), 1, sp->wr) != 1 ||
	    fwrite(r->data, 1, (size_t)r->klen + r->vlen, sp->wr) != (size_t)r->klen + r->vlen) {
		/* The segment may now end in a cut record: reads stop at its known size, the next
		 * open cuts the rest off, and the next append starts a new segment. */
		fclose(sp->wr);
		sp->wr = NULL;
		return -EIO;
	}
	uint64_t n = RECORD_HDR + (uint64_t)r->klen + r->vlen;
	struct spool_seg *s = &sp->segs[sp->nsegs - 1];
	s->size += n;
	s->events++;
	sp->events++;
	sp->bytes += n;
	return 0;
}

int spool_flush(struct spool *sp)
{
	if (sp->wr && fflush(sp->wr) != 0)
		return -errno;
	return 0;
}

/* Closes what is open on the head segment: its reader, and its writer when it is the only one. */
static void close_head(struct spool *sp)
{
	if (sp->rd_fd >= 0)
		close(sp->rd_fd);
	sp->rd_fd = -1;
	if (sp->nsegs == 1 && sp->wr) {
		fclose(sp->wr);
		sp->wr = NULL;
	}
}

static void spool_drop_head(struct spool *sp)
{
	char path[4200];
	close_head(sp);
	seg_path(sp, sp->segs[0].seq, "gh", path, sizeof(path));
	unlink(path);
	sp->events -= sp->segs[0].events;
	sp->bytes -= sp->segs[0].size - sp->rd_off;
	memmove(&sp->segs[0], &sp->segs[1], (sp->nsegs - 1) * sizeof(*sp->segs));
	sp->nsegs--;
	sp->rd_off = RECORD_FILE_HDR;
}

int spool_pop(struct spool *sp, struct record **out, uint64_t *lost)
{
	*out = NULL;
	while (sp->nsegs) {
		struct spool_seg *s = &sp->segs[0];
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
		int rc = record_read(sp->rd_fd, sp->rd_off, s->size, out, &next);
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

int spool_prepend(struct spool *sp, struct record_queue *recs, uint64_t *written)
{
	char tmp[4200], path[4200], old[4200];
	bool half = sp->nsegs && sp->rd_off > RECORD_FILE_HDR && sp->segs[0].events > 0;
	if (!recs->n && !half)
		return 0;
	if (sp->wr && fsync_file(sp->wr) != 0)
		return -errno;
	uint64_t seq = sp->nsegs ? sp->segs[0].seq - 1 : SPOOL_FIRST_SEQ;
	uint64_t nbytes = 0; /* record bytes written for recs */
	seg_path(sp, seq, "tmp", tmp, sizeof(tmp));
	seg_path(sp, seq, "gh", path, sizeof(path));
	FILE *f = record_file_create(tmp);
	if (!f)
		return -errno;
	int rc = 0;
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	if (fwrite(RECORD_MAGIC, 1, RECORD_FILE_HDR, f) != RECORD_FILE_HDR)
		rc = -EIO;
	for (struct record *r = recs->head; r && !rc; r = r->next) {
		uint32_t h[3] = {r->klen, r->vlen,
		                 record_crc(r->data, r->klen, r->data + r->klen, r->vlen)};
		if (fwrite(h, sizeof(h), 1, f) != 1 ||
		    fwrite(r->data, 1, (size_t)r->klen + r->vlen, f) != (size_t)r->klen + r->vlen)
			rc = -EIO;
		nbytes += RECORD_HDR + (uint64_t)r->klen + r->vlen;
	}
	if (!rc && half) { /* copy the unread rest of the head segment */
		seg_path(sp, sp->segs[0].seq, "gh", old, sizeof(old));
		int fd = open(old, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			rc = -errno;
		char buf[65536];
		uint64_t off = sp->rd_off;
		while (!rc && off < sp->segs[0].size) {
			size_t want = sp->segs[0].size - off < sizeof(buf)
			                  ? (size_t)(sp->segs[0].size - off)
			                  : sizeof(buf);
			rc = record_pread(fd, buf, want, off);
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
		close_head(sp);
		unlink(old);
		/* the new segment stands in for the half-read one */
		sp->segs[0].seq = seq;
		sp->segs[0].size = RECORD_FILE_HDR + nbytes + (sp->segs[0].size - sp->rd_off);
		sp->segs[0].events += recs->n;
		sp->rd_off = RECORD_FILE_HDR;
	} else {
		struct spool_seg s = {
		    .seq = seq, .size = RECORD_FILE_HDR + nbytes, .events = recs->n};
		int irc = seg_insert(sp, 0, s);
		if (irc)
			return irc;
		if (sp->rd_fd >= 0) /* it was open on the old head */
			close(sp->rd_fd);
		sp->rd_fd = -1;
		sp->rd_off = RECORD_FILE_HDR;
	}
	sp->events += recs->n;
	sp->bytes += nbytes;
	*written = recs->n;
	return 0;
}

void spool_close(struct spool *sp)
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

int spool_scan(const char *dir,
               int (*cb)(const char *key, size_t klen, const char *val, size_t vlen, void *ud),
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
		uint64_t off = RECORD_FILE_HDR;
		for (;;) {
			struct record *r = NULL;
			uint64_t next = off;
			rc = record_read(fd, off, sp.segs[i].size, &r, &next);
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
