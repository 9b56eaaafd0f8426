#include "core/strbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *sb, size_t max)
{
	memset(sb, 0, sizeof(*sb));
	sb->max = max;
}

void strbuf_free(struct strbuf *sb)
{
	free(sb->data);
	memset(sb, 0, sizeof(*sb));
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->overflow = false;
	if (sb->data)
		sb->data[0] = '\0';
}

static int reserve(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	if (sb->max && need > sb->max + 1) {
		sb->overflow = true;
		return -ENOSPC;
	}
	if (need <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	if (sb->max && cap > sb->max + 1)
		cap = sb->max + 1;
	char *p = realloc(sb->data, cap);
	if (!p)
		return -ENOMEM;
	sb->data = p;
	sb->cap = cap;
	return 0;
}

int strbuf_reserve(struct strbuf *sb, size_t n)
{
	bool was = sb->overflow;
	int rc = reserve(sb, n);
	sb->overflow = was;
	return rc;
}

int strbuf_append(struct strbuf *sb, const void *p, size_t n)
{
	int rc = reserve(sb, n);
	if (rc)
		return rc;
	memcpy(sb->data + sb->len, p, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
	return 0;
}

int strbuf_puts(struct strbuf *sb, const char *s)
{
	return strbuf_append(sb, s, strlen(s));
}

int strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int rc = reserve(sb, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}

void strbuf_truncate(struct strbuf *sb, size_t len)
{
	if (len < sb->len) {
		sb->len = len;
		sb->data[len] = '\0';
	}
}

int strbuf_put_label_value(struct strbuf *sb, const char *s)
{
	int rc = 0;
	for (const char *p = s; *p && !rc; p++) {
		if (*p == '\\')
			rc = strbuf_puts(sb, "\\\\");
		else if (*p == '"')
			rc = strbuf_puts(sb, "\\\"");
		else if (*p == '\n')
			rc = strbuf_puts(sb, "\\n");
		else
			rc = strbuf_append(sb, p, 1);
	}
	return rc;
}
