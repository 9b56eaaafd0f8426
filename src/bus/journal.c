#include "bus/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/log.h"

#define WAL_SEG_MAX ((uint64_t)8 << 20)

static void journal_path(const char *dir, uint64_t seq, char *out, size_t n)
{
	snprintf(out, n, "%s/journal-%020" PRIu64 ".gh", dir, seq);
}

/* Lists the journal segments of dir in ascending order. Returns 0 or -errno. */
static int journal_list(const char *dir, uint64_t **out, size_t *n)
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
		if (grow_array((void **)out, &cap, *n + 1, sizeof(**out), 16)) {
			rc = -ENOMEM;
			break;
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

int journal_replay(struct journal *j,
                   int (*send)(void *ud, const char *key, size_t klen, const char *val,
                               size_t vlen),
                   int (*sync)(void *ud), void *ud, uint64_t *moved, char *err, size_t errlen)
{
	*moved = 0;
	uint64_t *seqs = NULL;
	size_t n = 0;
	int rc = journal_list(j->dir, &seqs, &n);
	if (rc) {
		snprintf(err, errlen, "--spool-dir '%s': cannot list its journal: %s", j->dir,
		         strerror(-rc));
		return rc;
	}
	if (n)
		j->seq = seqs[n - 1]; /* new segments follow the old ones */
	uint64_t events = 0, damaged = 0, aside = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		char path[4200];
		journal_path(j->dir, seqs[i], path, sizeof(path));
		char why[128];
		int fd = record_file_open(path, O_RDONLY, why, sizeof(why));
		if (fd < 0 && why[0]) { /* planted or foreign: out of the way, never fatal */
			record_file_move_aside(path, why);
			aside++;
			continue;
		}
		if (fd < 0) {
			rc = fd;
			snprintf(err, errlen, "--spool-dir '%s': cannot read %s: %s", j->dir, path,
			         strerror(-fd));
			break;
		}
		struct stat st;
		char magic[RECORD_FILE_HDR];
		uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0,
		         off = RECORD_FILE_HDR;
		size_t head = size < RECORD_FILE_HDR ? (size_t)size : RECORD_FILE_HDR;
		if (record_pread(fd, magic, head, 0) != 0 ||
		    memcmp(magic, RECORD_MAGIC, head) != 0) {
			close(fd); /* not a journal segment: kept aside, not deleted */
			snprintf(why, sizeof(why), "not a gpuhealth journal segment (no %s header)",
			         RECORD_MAGIC);
			record_file_move_aside(path, why);
			aside++;
			continue;
		}
		if (size < RECORD_FILE_HDR)
			off = size; /* killed before its header was written: nothing in it */
		while (off < size) {
			struct record *r = NULL;
			uint64_t next = off;
			int r2 = record_read(fd, off, size, &r, &next);
			if (r2 || !r) { /* a record cut by the kill: it was never acknowledged */
				damaged += r2 == -EBADMSG;
				free(r);
				break;
			}
			rc = send(ud, r->data, r->klen, r->data + r->klen, r->vlen);
			free(r);
			if (rc) {
				snprintf(err, errlen, "cannot queue the journal's events: %s",
				         strerror(-rc));
				break;
			}
			events++;
			off = next;
		}
		close(fd);
		if (!rc && (rc = sync(ud)) == 0)
			unlink(path);
		else if (rc && !err[0])
			snprintf(err, errlen, "--spool-dir '%s': cannot write the journal: %s",
			         j->dir, strerror(-rc));
	}
	free(seqs);
	*moved = aside; /* each reported by record_file_move_aside */
	n -= aside;
	if (n && !rc)
		log_info(
		    "producer: %" PRIu64 " events in the journal of an earlier run that did not "
		    "stop cleanly (%zu segments%s): sent again; any the broker already had are "
		    "removed downstream by (GPU, time)",
		    events, n, damaged ? ", its last record cut short" : "");
	return rc;
}

void journal_collect(struct journal *j, struct spool *sp)
{
	bool flushed = false;
	size_t keep = 0;
	/* everything written so far is settled: end the segment, so that it goes now and a kill
	 * leaves only unsettled events behind (few duplicates on the next start) */
	if (j->wr && j->nsegs && j->segs[j->nsegs - 1].seq == j->seq &&
	    !j->segs[j->nsegs - 1].pending && j->size > RECORD_FILE_HDR) {
		fclose(j->wr);
		j->wr = NULL;
	}
	for (size_t i = 0; i < j->nsegs; i++) {
		struct journal_seg *g = &j->segs[i];
		bool current = j->wr && g->seq == j->seq;
		if (g->pending || current) {
			j->segs[keep++] = *g;
			continue;
		}
		if (!flushed) {
			if (spool_flush(sp) != 0) {
				/* keep the journal: the spool may not hold them */
				j->segs[keep++] = *g;
				continue;
			}
			flushed = true;
		}
		char path[4200];
		journal_path(j->dir, g->seq, path, sizeof(path));
		unlink(path);
	}
	j->nsegs = keep;
}

void journal_settle(struct journal *j, struct record *r)
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

int journal_append(struct journal *j, struct record *r)
{
	if (j->wr && j->size >= WAL_SEG_MAX) {
		int rc = fflush(j->wr) != 0 ? -errno : 0;
		fclose(j->wr);
		j->wr = NULL;
		if (rc)
			return rc;
	}
	if (!j->wr) {
		if (grow_array((void **)&j->segs, &j->capsegs, j->nsegs + 1, sizeof(*j->segs), 16))
			return -ENOMEM;
		char path[4200];
		j->seq++;
		journal_path(j->dir, j->seq, path, sizeof(path));
		FILE *f = record_file_create(path);
		if (!f)
			return -errno;
		setvbuf(f, NULL, _IOFBF, 1 << 20);
		if (fwrite(RECORD_MAGIC, 1, RECORD_FILE_HDR, f) != RECORD_FILE_HDR) {
			fclose(f);
			unlink(path);
			return -EIO;
		}
		j->wr = f;
		j->size = RECORD_FILE_HDR;
		j->segs[j->nsegs++] = (struct journal_seg){.seq = j->seq, .pending = 0};
	}
	uint32_t h[3] = {r->klen, r->vlen,
	                 record_crc(r->data, r->klen, r->data + r->klen, r->vlen)};
	if (fwrite(h, sizeof(h), 1, j->wr) != 1 ||
	    fwrite(r->data, 1, (size_t)r->klen + r->vlen, j->wr) != (size_t)r->klen + r->vlen) {
		fclose(j->wr); /* a cut record ends the segment; the replay stops there */
		j->wr = NULL;
		return -EIO;
	}
	j->size += RECORD_HDR + (uint64_t)r->klen + r->vlen;
	j->segs[j->nsegs - 1].pending++;
	r->wal = j->seq;
	j->dirty = true;
	return 0;
}

int journal_sync(struct journal *j)
{
	if (!j->wr || !j->dirty)
		return 0;
	j->dirty = false;
	return fflush(j->wr) != 0 ? -errno : 0;
}

void journal_remove_all(struct journal *j)
{
	if (j->wr)
		fclose(j->wr);
	j->wr = NULL;
	for (size_t i = 0; i < j->nsegs; i++) {
		char path[4200];
		journal_path(j->dir, j->segs[i].seq, path, sizeof(path));
		unlink(path);
	}
	j->nsegs = 0;
}

void journal_free(struct journal *j)
{
	if (j->wr)
		fclose(j->wr); /* left on disk: replayed by the next start */
	j->wr = NULL;
	free(j->segs);
	j->segs = NULL;
	j->nsegs = j->capsegs = 0;
}
