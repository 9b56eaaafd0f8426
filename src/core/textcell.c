#include "core/textcell.h"

#include <langinfo.h>
#include <locale.h>
#include <stdint.h>
#include <string.h>
#include <wchar.h>

#include "core/utf8.h"

static bool is_control(int32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

enum textcell_charset textcell_locale_charset(void)
{
	const char *cs = nl_langinfo(CODESET);
	return cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0) ? TEXTCELL_UTF8
	                                                                   : TEXTCELL_ASCII;
}

/* While a cell is measured under a locale that is not UTF-8: C.UTF-8's wcwidth(), through a
 * locale of this thread only (uselocale), so the process' locale is left alone. */
struct widths {
	locale_t loc, old;
	bool none; /* no UTF-8 locale at all: one column per character */
};

static void widths_begin(enum textcell_charset cs, struct widths *w)
{
	w->loc = (locale_t)0;
	w->none = false;
	if (cs != TEXTCELL_UTF8 || textcell_locale_charset() == TEXTCELL_UTF8)
		return;
	static const char *const names[] = {"C.UTF-8", "C.utf8", "en_US.UTF-8"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !w->loc; i++)
		w->loc = newlocale(LC_CTYPE_MASK, names[i], (locale_t)0);
	if (w->loc)
		w->old = uselocale(w->loc);
	else
		w->none = true;
}

static void widths_end(struct widths *w)
{
	if (w->loc) {
		uselocale(w->old);
		freelocale(w->loc);
	}
}

/* The columns of the character cp (>= 0x80, not a control) on a UTF-8 terminal, or -1 where it
 * is not printable. */
static int wide_width(const struct widths *w, int32_t cp)
{
	if (w->none)
		return 1;
	return wcwidth((wchar_t)cp);
}

static size_t fit(enum textcell_charset cs, const struct widths *wd, const char *src, int cols,
                  bool pad, char *dst, size_t dstlen, int *width)
{
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t out = 0;
	int used = 0;
	if (cols < 0)
		cols = 0;
	while (*s) {
		int32_t cp;
		size_t n = utf8_decode(s, SIZE_MAX, &cp);
		const unsigned char *bytes = s;
		size_t nbytes = n;
		int cw = 1;
		if (cp < 0 || is_control(cp)) {
			bytes = (const unsigned char *)"?";
			nbytes = 1;
		} else if (cp >= 0x80) {
			cw = cs == TEXTCELL_UTF8 ? wide_width(wd, cp) : -1;
			if (cw < 0) {
				bytes = (const unsigned char *)"?";
				nbytes = 1;
				cw = 1;
			}
		}
		if (used + cw > cols || (dst && out + nbytes >= dstlen))
			break;
		if (dst)
			memcpy(dst + out, bytes, nbytes);
		out += nbytes;
		used += cw;
		s += n;
	}
	while (pad && used < cols && (!dst || out + 1 < dstlen)) {
		if (dst)
			dst[out] = ' ';
		out++;
		used++;
	}
	if (dst && dstlen)
		dst[out] = '\0';
	if (width)
		*width = used;
	return out;
}

size_t textcell_fit(enum textcell_charset cs, const char *src, int cols, bool pad, char *dst,
                    size_t dstlen, int *width)
{
	struct widths wd;
	if (!dstlen) {
		if (width)
			*width = 0;
		return 0;
	}
	widths_begin(cs, &wd);
	size_t n = fit(cs, &wd, src, cols, pad, dst, dstlen, width);
	widths_end(&wd);
	return n;
}

int textcell_width(enum textcell_charset cs, const char *src)
{
	struct widths wd;
	int w;
	widths_begin(cs, &wd);
	fit(cs, &wd, src, INT32_MAX, false, NULL, 0, &w);
	widths_end(&wd);
	return w;
}
