/* strbuf: a growable byte buffer with a hard upper bound. */
#ifndef GPUHEALTH_STRBUF_H
#define GPUHEALTH_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct strbuf {
	char *data; /* owned; always NUL-terminated when cap > 0 */
	size_t len;
	size_t cap;
	size_t max;    /* growth stops here; 0 = no bound */
	bool overflow; /* an append did not fit under max */
};

void strbuf_init(struct strbuf *sb, size_t max);
void strbuf_free(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb); /* keeps the memory */
/* Append functions return 0, or -ENOMEM/-ENOSPC (and set overflow) leaving the text unchanged. */
int strbuf_append(struct strbuf *sb, const void *p, size_t n);
int strbuf_puts(struct strbuf *sb, const char *s);
int strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a Prometheus text-format label value wants it: \, " and newline escaped. */
int strbuf_put_label_value(struct strbuf *sb, const char *s);
/* strbuf_append for the hot paths (a row's columns, several per row): straight into the
 * buffer when n bytes fit (a constant n becomes a plain store), else strbuf_append. Same
 * result and errors. */
static inline int strbuf_append_fast(struct strbuf *sb, const void *p, size_t n)
{
	if (sb->data && sb->len + n < sb->cap) {
		memcpy(sb->data + sb->len, p, n);
		sb->len += n;
		sb->data[sb->len] = '\0';
		return 0;
	}
	return strbuf_append(sb, p, n);
}
/* Makes room for n more bytes at once (one allocation instead of doublings). 0, -ENOMEM or
 * -ENOSPC (past max: nothing is reserved, overflow is not set). */
int strbuf_reserve(struct strbuf *sb, size_t n);
/* Truncates to len (<= current length). */
void strbuf_truncate(struct strbuf *sb, size_t len);

#endif
