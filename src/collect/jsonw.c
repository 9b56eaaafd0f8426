#include "collect/jsonw.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Terminates the text: 0, or -ENOSPC with the buffer cut and *len the length needed. */
int jsonw_finish(const struct jsonw *w, size_t *len)
{
	*len = w->len;
	if (w->len >= w->size) {
		if (w->size > 0)
			w->buf[w->size - 1] = '\0';
		return -ENOSPC;
	}
	w->buf[w->len] = '\0';
	return 0;
}

void jsonw_put(struct jsonw *w, const char *s, size_t n)
{
	if (w->len < w->size) {
		size_t room = w->size - w->len;
		memcpy(w->buf + w->len, s, n < room ? n : room);
	}
	w->len += n;
}

void jsonw_string(struct jsonw *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;
	jsonw_put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t el = 2;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jsonw_put(w, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		jsonw_put(w, esc, el);
	}
	jsonw_put(w, s + run, n - run);
	jsonw_put(w, "\"", 1);
}

/* The shortest %.Ng (N = 15..17) that reads back to d, with ".0" added to whole numbers.
 * The caller has switched this thread to the C locale (a '.' whatever LC_NUMERIC says). */
void jsonw_real(struct jsonw *w, double d)
{
	char tmp[40];
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (n <= 0 || (size_t)n >= sizeof(tmp) - 2)
			break;
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (n <= 0 || (size_t)n >= sizeof(tmp) - 2) {
		jsonw_put(w, "null", 4); /* cannot happen for a finite double */
		return;
	}
	if (!strpbrk(tmp, ".eE")) {
		tmp[n++] = '.';
		tmp[n++] = '0';
	}
	jsonw_put(w, tmp, (size_t)n);
}

static int put_json(struct jsonw *w, const json_t *j, int depth)
{
	char tmp[32];
	int n;
	const char *k;
	json_t *v;
	bool first = true;

	if (depth > 64)
		return -EINVAL;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		jsonw_put(w, "{", 1);
		json_object_foreach((json_t *)j, k, v)
		{
			if (!first)
				jsonw_put(w, ",", 1);
			first = false;
			jsonw_string(w, k, strlen(k));
			jsonw_put(w, ":", 1);
			if (put_json(w, v, depth + 1))
				return -EINVAL;
		}
		jsonw_put(w, "}", 1);
		return 0;
	case JSON_ARRAY:
		jsonw_put(w, "[", 1);
		for (size_t i = 0; i < json_array_size(j); i++) {
			if (i)
				jsonw_put(w, ",", 1);
			if (put_json(w, json_array_get(j, i), depth + 1))
				return -EINVAL;
		}
		jsonw_put(w, "]", 1);
		return 0;
	case JSON_STRING: jsonw_string(w, json_string_value(j), json_string_length(j)); return 0;
	case JSON_INTEGER:
		n = snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		jsonw_put(w, tmp, (size_t)n);
		return 0;
	case JSON_REAL: jsonw_real(w, json_real_value(j)); return 0;
	case JSON_TRUE: jsonw_put(w, "true", 4); return 0;
	case JSON_FALSE: jsonw_put(w, "false", 5); return 0;
	case JSON_NULL: jsonw_put(w, "null", 4); return 0;
	}
	return -EINVAL;
}

/* Writes u's decimal digits (at least one) backwards ending before tmp[*n], then '-' when neg;
 * *n moves to the first character. tmp must have room for 21. */
static void digits_back(char *tmp, size_t *n, uint64_t u, bool neg)
{
	do {
		tmp[--*n] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		tmp[--*n] = '-';
}

void jsonw_int(struct jsonw *w, int64_t v)
{
	char tmp[24];
	size_t n = sizeof(tmp);
	digits_back(tmp, &n, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, v < 0);
	jsonw_put(w, tmp + n, sizeof(tmp) - n);
}

/* Reals with few decimals (most gauges) without printf: the fewest decimals k (0..8) for
 * which m = round(d 10^k) gives back d as m / 10^k. With |m| < 2^53 and 10^k exact, that
 * division is correctly rounded, so it is what strtod makes of the text "m / 10^k": the text
 * reads back to d exactly. False: not such a number (jsonw_real writes it). */
bool jsonw_real_fast(struct jsonw *w, double d)
{
	static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
	double a = fabs(d);
	if (!(a < 1e15) || (d == 0 && signbit(d)) || (a != 0 && a < 1e-4))
		return false;
	for (int k = 0; k <= 8; k++) {
		double x = d * p10[k];
		if (fabs(x) >= 9007199254740992.0) /* 2^53 */
			return false;
		int64_t m = llround(x);
		if ((double)m / p10[k] != d)
			continue;
		/* m / 10^k: the whole part, '.', then k decimals (or "0" for a whole number) */
		char tmp[40];
		size_t n = sizeof(tmp);
		uint64_t u = m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
		if (k == 0)
			tmp[--n] = '0';
		for (int i = 0; i < k; i++) {
			tmp[--n] = (char)('0' + u % 10);
			u /= 10;
		}
		tmp[--n] = '.';
		digits_back(tmp, &n, u, m < 0);
		jsonw_put(w, tmp + n, sizeof(tmp) - n);
		return true;
	}
	return false;
}

int jsonw_value(struct jsonw *w, const json_t *j)
{
	return put_json(w, j, 0);
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

locale_t jsonw_c_locale(void)
{
	pthread_once(&c_locale_once, c_locale_init);
	return c_locale != (locale_t)0 ? uselocale(c_locale) : (locale_t)0;
}

void jsonw_locale_restore(locale_t old)
{
	if (old != (locale_t)0)
		uselocale(old);
}
