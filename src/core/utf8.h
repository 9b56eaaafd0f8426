/* utf8: the one strict UTF-8 decoder (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), for the files a user names (textfile), text shown in a terminal (textcell) and
 * the API's request text. */
#ifndef GPUHEALTH_UTF8_H
#define GPUHEALTH_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Decodes the character at s[0..n) (n >= 1). Returns its length and sets *cp; or, for an
 * invalid sequence, returns the length of the invalid part (the lead byte and the continuation
 * bytes that matched, at least 1) and sets *cp to -1. A sequence cut short by n is invalid.
 * For a NUL-terminated string n may be SIZE_MAX: the NUL is never a continuation byte, so
 * nothing past it is read.
 */
size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp);

/* Whether the NUL-terminated text is strict UTF-8. */
bool utf8_valid(const char *text);

#endif
