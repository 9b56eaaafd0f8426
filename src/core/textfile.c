#include "core/textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/utf8.h"

int textfile_check(const char *text, size_t len, size_t max_line, const char *name, char *err,
                   size_t errlen)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t line = 1, start = 0, i = 0;
	while (i < len) {
		if (s[i] == '\n') {
			line++;
			start = ++i;
			continue;
		}
		size_t col = i - start + 1;
		if (s[i] == '\0') {
			snprintf(err, errlen,
			         "%s:%zu: NUL byte at column %zu; the file must be text", name,
			         line, col);
			return -EINVAL;
		}
		int32_t cp;
		size_t k = utf8_decode(s + i, len - i, &cp);
		if (cp < 0) {
			snprintf(
			    err, errlen,
			    "%s:%zu: invalid UTF-8 (byte 0x%02x at column %zu); save the file as "
			    "UTF-8 text",
			    name, line, s[i], col);
			return -EINVAL;
		}
		i += k;
		size_t ll = i - start;
		if (ll > max_line &&
		    !(ll == max_line + 1 && s[i - 1] == '\r' && (i == len || s[i] == '\n'))) {
			snprintf(err, errlen, "%s:%zu: line longer than %zu bytes", name, line,
			         max_line);
			return -EINVAL;
		}
	}
	return 0;
}

int textfile_read(const char *path, size_t max_bytes, size_t max_line, char **out, size_t *len,
                  char *err, size_t errlen)
{
	int rc = 0;
	char *buf = NULL;
	size_t n = 0;
	*out = NULL;
	*len = 0;
	/* O_NONBLOCK: opening a FIFO with no writer would wait for ever */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "'%s': %s", path, strerror(-rc));
		goto out;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "'%s': %s", path, strerror(-rc));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		snprintf(err, errlen, "'%s': a directory, not a file; name a file", path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "'%s': not a regular file (a %s); name a file", path,
		         S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "device"
		         : S_ISFIFO(st.st_mode)                     ? "FIFO or pipe"
		         : S_ISSOCK(st.st_mode)                     ? "socket"
		                                                    : "special file");
		goto out;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > max_bytes) {
		rc = -EFBIG;
		snprintf(err, errlen, "'%s': %jd bytes, over the limit of %zu", path,
		         (intmax_t)st.st_size, max_bytes);
		goto out;
	}
	/* the size may change while it is read: read at most max_bytes + 1 whatever fstat said */
	size_t cap = (size_t)st.st_size + 1;
	buf = malloc(cap + 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "'%s': out of memory", path);
		goto out;
	}
	for (;;) {
		if (n == cap) {
			if (cap > max_bytes)
				break;
			size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
			char *nb = realloc(buf, ncap + 1);
			if (!nb) {
				rc = -ENOMEM;
				snprintf(err, errlen, "'%s': out of memory", path);
				goto out;
			}
			buf = nb; /* owned here until handed to *out */
			cap = ncap;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			snprintf(err, errlen, "'%s': %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max_bytes) {
		rc = -EFBIG;
		snprintf(err, errlen, "'%s': over the limit of %zu bytes", path, max_bytes);
		goto out;
	}
	buf[n] = '\0';
	if ((rc = textfile_check(buf, n, max_line, path, err, errlen)) != 0)
		goto out;
	*out = buf; /* ownership to the caller */
	*len = n;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
