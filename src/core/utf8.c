#include "core/utf8.h"

size_t utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t want;
	int32_t v;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
	if (c >= 0xc2 && c <= 0xdf) {
		want = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		want = 3;
		v = c & 0x0f;
		if (c == 0xe0) /* overlong */
			lo = 0xa0;
		else if (c == 0xed) /* surrogates */
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		want = 4;
		v = c & 0x07;
		if (c == 0xf0) /* overlong */
			lo = 0x90;
		else if (c == 0xf4) /* above U+10FFFF */
			hi = 0x8f;
	} else {
		*cp = -1;
		return 1;
	}
	for (size_t i = 1; i < want; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*cp = -1;
			return i;
		}
		v = (v << 6) | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp = v;
	return want;
}

bool utf8_valid(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	while (*s) {
		int32_t cp;
		s += utf8_decode(s, SIZE_MAX, &cp);
		if (cp < 0)
			return false;
	}
	return true;
}
