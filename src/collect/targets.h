/*
 * targets: the collector's list of scrape URLs, from --target / SCRAPE_TARGETS and from a
 * targets file (re-read on SIGHUP).
 *
 * Targets file: one http:// or https:// URL per line; blank lines and lines whose first
 * non-blank character is '#' are ignored; a '#' after blanks ends a line early (a comment).
 * Anything else is an error naming FILE:LINE and what to write instead. A URL listed twice in
 * one file is an error too (it would be scraped twice as often).
 */
#ifndef GPUHEALTH_TARGETS_H
#define GPUHEALTH_TARGETS_H

#include <stdbool.h>
#include <stddef.h>

#define TARGETS_MAX_URL 2048 /* bytes of one URL */
#define TARGETS_MAX 100000   /* targets in one collector */
#define TARGETS_FILE_MAX_BYTES ((size_t)32 << 20) /* a targets file's size */
#define TARGETS_FILE_MAX_LINE 4096                /* bytes of one line, comment included */

struct targets {
	char **urls;    /* owned, NUL-terminated, in the order given */
	char **origins; /* owned: "--target", "FILE:LINE" */
	size_t n, cap;
};

void targets_init(struct targets *t);
void targets_free(struct targets *t);

/* Checks one URL: http or https, a host, no blanks or control characters, at most
 * TARGETS_MAX_URL bytes. Returns 0 or -EINVAL with the reason in err (without the URL). */
int targets_check_url(const char *url, char *err, size_t errlen);

/* Adds a URL found at origin (copied). Returns 0; -EINVAL (bad URL), -EEXIST (already listed;
 * err names where) or -E2BIG (over TARGETS_MAX), with a message naming origin in err; -ENOMEM. */
int targets_add(struct targets *t, const char *url, const char *origin, char *err, size_t errlen);

/* Parses the text of a targets file; name is used in messages ("FILE:LINE: ..."). Returns 0 or
 * the first error (the targets before it stay in t). */
int targets_parse(struct targets *t, const char *text, size_t len, const char *name, char *err,
		  size_t errlen);

/* Reads and parses a targets file (through textfile_read: a regular file of at most
 * TARGETS_FILE_MAX_BYTES, UTF-8 without NUL bytes, lines of at most TARGETS_FILE_MAX_LINE
 * bytes). Returns 0, -errno (cannot read it, or not such a file: the message names the file
 * and line), or a parse error. */
int targets_load_file(struct targets *t, const char *path, char *err, size_t errlen);

/* Index of url in t, or -1. */
/* The userinfo of url ("user:password@", the '@' included) if it has one: its offset and
 * length. Such credentials are sent by the scraper as basic authentication and never shown. */
bool targets_url_userinfo(const char *url, size_t *off, size_t *len);

/* url as it may be shown: any userinfo written as "***@". Always terminated within outlen. */
void targets_url_redact(const char *url, char *out, size_t outlen);

long targets_find(const struct targets *t, const char *url);

#endif
