/*
 * textcell: text from the network (pod, namespace and container names, hostnames, labels,
 * alert messages) made safe for a terminal and measured in display columns, not bytes.
 *
 * Control characters (C0, DEL, C1, U+2028/U+2029, the bidirectional overrides and isolates
 * U+202A..U+202E and U+2066..U+2069) and bytes that are not valid UTF-8 (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF; each invalid byte, or a lead byte with the
 * continuation bytes that matched, is one '?') become '?', one column wide. Printable ASCII is
 * kept byte for byte. Pure C, no ncurses.
 */
#ifndef GPUHEALTH_TEXTCELL_H
#define GPUHEALTH_TEXTCELL_H

#include <stdbool.h>
#include <stddef.h>

enum textcell_charset {
	/* a terminal that cannot show UTF-8: every non-ASCII character is one '?' of one column */
	TEXTCELL_ASCII,
	/* a UTF-8 terminal: characters are kept, their widths are wcwidth()'s (a wide CJK
	 * character is 2 columns, a combining mark 0, a character wcwidth() calls unprintable is
	 * '?'); under a locale whose codeset is not UTF-8 the widths are those of C.UTF-8 (or,
	 * where no UTF-8 locale exists, one column per character) */
	TEXTCELL_UTF8,
};

/* TEXTCELL_UTF8 when the current LC_CTYPE's codeset is UTF-8, else TEXTCELL_ASCII. */
enum textcell_charset textcell_locale_charset(void);

/*
 * Writes src, made safe as above, into dst as a cell of at most cols display columns, cut at a
 * character boundary (a wide character that does not fit whole is left out); with pad, spaces
 * fill it to cols columns. dst is always NUL-terminated; dstlen = strlen(src) + cols + 1 always
 * holds the whole cell (where dst is smaller the cell is cut to fit it, at a character
 * boundary). Returns the bytes written (without the NUL); *width, when not NULL, gets the
 * columns they take. src NULL is "".
 */
size_t textcell_fit(enum textcell_charset cs, const char *src, int cols, bool pad, char *dst,
                    size_t dstlen, int *width);

/* The display columns of src made safe as above, not cut. */
int textcell_width(enum textcell_charset cs, const char *src);

#endif
