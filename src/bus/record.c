#include "bus/record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/log.h"

/* ------------------------------------------------------------------ in memory */

struct record *record_new(const char *key, size_t klen, const char *val, size_t vlen)
{
	if (klen > UINT32_MAX || vlen > UINT32_MAX ||
	    klen + vlen > SIZE_MAX - sizeof(struct record))
		return NULL;
	struct record *r = malloc(sizeof(*r) + klen + vlen);
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

void record_queue_push(struct record_queue *q, struct record *r)
{
	r->next = NULL;
	if (q->tail)
		q->tail->next = r;
	else
		q->head = r;
	q->tail = r;
	q->n++;
	q->bytes += record_bytes(r);
}

struct record *record_queue_pop(struct record_queue *q)
{
	struct record *r = q->head;
	if (!r)
		return NULL;
	q->head = r->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	q->bytes -= record_bytes(r);
	r->next = NULL;
	return r;
}

void record_queue_prepend(struct record_queue *dst, struct record_queue *src)
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

void record_queue_free(struct record_queue *q)
{
	struct record *r;
	while ((r = record_queue_pop(q)))
		free(r);
}

/* ------------------------------------------------------------------ on disk */

uint32_t record_crc(const char *k, uint32_t klen, const char *v, uint32_t vlen)
{
	uLong c = crc32(0L, Z_NULL, 0);
	c = crc32(c, (const Bytef *)k, klen);
	c = crc32(c, (const Bytef *)v, vlen);
	return (uint32_t)c;
}

int record_pread(int fd, void *buf, size_t n, uint64_t off)
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

int record_read(int fd, uint64_t off, uint64_t size, struct record **out, uint64_t *next)
{
	*out = NULL;
	if (off == size)
		return 0;
	if (size - off < RECORD_HDR)
		return -EBADMSG;
	uint32_t h[3];
	int rc = record_pread(fd, h, sizeof(h), off);
	if (rc)
		return rc == -ENODATA ? -EBADMSG : rc;
	if ((uint64_t)h[0] + h[1] > size - off - RECORD_HDR)
		return -EBADMSG;
	struct record *r = malloc(sizeof(*r) + (size_t)h[0] + h[1]);
	if (!r)
		return -ENOMEM;
	r->next = NULL;
	r->wal = 0;
	r->klen = h[0];
	r->vlen = h[1];
	rc = record_pread(fd, r->data, (size_t)h[0] + h[1], off + RECORD_HDR);
	if (rc || record_crc(r->data, r->klen, r->data + r->klen, r->vlen) != h[2]) {
		free(r);
		return rc && rc != -ENODATA ? rc : -EBADMSG;
	}
	*out = r;
	*next = off + RECORD_HDR + h[0] + h[1];
	return 0;
}

FILE *record_file_create(const char *path)
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

int record_file_open(const char *path, int flags, char *why, size_t whylen)
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

bool record_file_move_aside(const char *path, const char *why)
{
	char bad[4300];
	for (int i = 1; i <= 99; i++) {
		if (i == 1)
			snprintf(bad, sizeof(bad), "%s.bad", path);
		else
			snprintf(bad, sizeof(bad), "%s.bad.%d", path, i);
		if (renameat2(AT_FDCWD, path, AT_FDCWD, bad, RENAME_NOREPLACE) == 0) {
			log_warn(
			    "producer: %s is %s: moved aside to %s, not read (look at it, then "
			    "delete it)",
			    path, why, bad);
			return true;
		}
		if (errno == EEXIST)
			continue;
		if (errno == EINVAL && access(bad, F_OK) != 0 && rename(path, bad) == 0) {
			log_warn(
			    "producer: %s is %s: moved aside to %s, not read (look at it, then "
			    "delete it)",
			    path, why, bad);
			return true;
		}
		break;
	}
	log_warn("producer: %s is %s and cannot be moved aside (%s): ignored; remove it", path, why,
	         strerror(errno));
	return false;
}
