#include "prom/prom.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Longest number text handed to strtod (the rare slow path); longer values are bad values. */
#define NUM_TEXT_MAX 512

void prom_limits_default(struct prom_limits *lim)
{
	lim->max_line = PROM_DEFAULT_MAX_LINE;
	lim->max_labels = PROM_DEFAULT_MAX_LABELS;
	lim->max_body = PROM_DEFAULT_MAX_BODY;
}

const char *prom_strerror(enum prom_err err)
{
	switch (err) {
	case PROM_E_NONE: return "no error";
	case PROM_E_LINE_TOO_LONG: return "line longer than the limit";
	case PROM_E_BAD_NAME: return "missing or invalid metric name";
	case PROM_E_BAD_LABEL_NAME: return "invalid label name";
	case PROM_E_NO_EQUALS: return "label name not followed by '='";
	case PROM_E_NO_QUOTE: return "label value not in double quotes";
	case PROM_E_BAD_ESCAPE: return "invalid escape in label value (only \\\\ \\\" \\n)";
	case PROM_E_UNTERMINATED: return "label value or label set not closed on the line";
	case PROM_E_BAD_LABEL_SEP: return "expected ',' or '}' after a label";
	case PROM_E_DUP_LABEL: return "label name repeated";
	case PROM_E_TOO_MANY_LABELS: return "more labels than the limit";
	case PROM_E_NO_VALUE: return "sample has no value";
	case PROM_E_BAD_VALUE: return "value is not a number";
	case PROM_E_BAD_TIMESTAMP: return "timestamp is not an integer (milliseconds)";
	case PROM_E_TRAILING: return "text after the timestamp";
	case PROM_E_BAD_HELP_TYPE: return "# HELP or # TYPE without a valid metric name";
	case PROM_E_BAD_TYPE: return "# TYPE with an unknown type";
	case PROM_E_ABORTED: return "parse stopped by the consumer";
	}
	return "unknown error";
}

bool prom_slice_eq(struct prom_slice s, const char *text)
{
	size_t n = strlen(text);
	return s.len == n && memcmp(s.ptr, text, n) == 0;
}

const struct prom_label *prom_sample_label(const struct prom_sample *s, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < s->nlabels; i++)
		if (s->labels[i].name.len == n && memcmp(s->labels[i].name.ptr, name, n) == 0)
			return &s->labels[i];
	return NULL;
}

int prom_unescape(struct prom_slice in, char *out, size_t size, size_t *outlen)
{
	size_t o = 0;
	int rc = 0;
	if (size == 0)
		return -EINVAL;
	for (size_t i = 0; i < in.len; i++) {
		char c = in.ptr[i];
		if (c == '\\' && i + 1 < in.len) {
			char e = in.ptr[i + 1];
			if (e == '\\' || e == '"') {
				c = e;
				i++;
			} else if (e == 'n') {
				c = '\n';
				i++;
			}
		}
		if (o + 1 >= size) {
			rc = -ENOSPC;
			goto out;
		}
		out[o++] = c;
	}
out:
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return rc;
}

/* ---- character classes (ASCII only, as the format says): one table lookup per byte */

enum { C_LSTART = 1, C_LCHAR = 2, C_MSTART = 4, C_MCHAR = 8 };
static const unsigned char cclass[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0,
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0, 0, 0,
    0,  0,  0,  0,  10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 12, 0,  0, 0, 0, 0, /* 0-9 : */
    0,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,             /* A-O */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 0,  0,  0,  0,  15,             /* P-Z _ */
    0,  15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,             /* a-o */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 0,  0,  0,  0,  0,              /* p-z */
};

static inline bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}
static inline bool is_digit(char c)
{
	return (unsigned char)(c - '0') < 10;
}
static inline bool is_lname_start(char c)
{
	return cclass[(unsigned char)c] & C_LSTART;
}
static inline bool is_mname_start(char c)
{
	return cclass[(unsigned char)c] & C_MSTART;
}

static inline const char *skip_blanks(const char *q, const char *le)
{
	while (q < le && is_blank(*q))
		q++;
	return q;
}

static bool ieq(const char *p, size_t n, const char *lower)
{
	size_t m = strlen(lower);
	if (n != m)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((p[i] | 0x20) != lower[i])
			return false;
	return true;
}

/*
 * The hot loops: the end of a name, and the end of a label value. dcgm-exporter lines are
 * ~300 bytes of label names and values, so on x86-64 these look at 16 bytes per step with
 * SSE2 (part of the x86-64 baseline); elsewhere, and for the last bytes of a line, byte by
 * byte with the table above.
 */
#if defined(__SSE2__)
#include <emmintrin.h>

/* Bit i set when byte i of v is in [lo, hi] (ASCII bounds; bytes >= 0x80 never are). */
static inline __m128i in_range(__m128i v, char lo, char hi)
{
	return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8((char)(lo - 1))),
	                     _mm_cmplt_epi8(v, _mm_set1_epi8((char)(hi + 1))));
}

/* Mask of the name characters in 16 bytes: letters, digits, '_' and, for metric names, ':'. */
static inline unsigned name_mask(__m128i v, bool colon)
{
	__m128i ok = _mm_or_si128(in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z'),
	                          in_range(v, '0', '9'));
	ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8('_')));
	if (colon)
		ok = _mm_or_si128(ok, _mm_cmpeq_epi8(v, _mm_set1_epi8(':')));
	return (unsigned)_mm_movemask_epi8(ok);
}
#endif

/* The end of a run of name characters (metric names when colon) from q, bounded by le. */
static inline const char *scan_name(const char *q, const char *le, bool colon)
{
	const unsigned cls = colon ? C_MCHAR : C_LCHAR;
#if defined(__SSE2__)
	while (le - q >= 16) {
		unsigned bad =
		    ~name_mask(_mm_loadu_si128((const __m128i *)(const void *)q), colon) & 0xffffu;
		if (bad)
			return q + __builtin_ctz(bad);
		q += 16;
	}
#endif
	while (q < le && (cclass[(unsigned char)*q] & cls))
		q++;
	return q;
}

/* The first '"' or '\\' in [q, le), or le. */
static inline const char *find_quote_or_backslash(const char *q, const char *le)
{
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\');
	while (le - q >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
		unsigned hit = (unsigned)_mm_movemask_epi8(
		    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)));
		if (hit)
			return q + __builtin_ctz(hit);
		q += 16;
	}
#endif
	while (q < le && *q != '"' && *q != '\\')
		q++;
	return q;
}

/* ---- numbers */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* strtod on a short copy, in the C locale whatever the process locale is. */
static int slow_strtod(const char *t, size_t n, double *out)
{
	char tmp[NUM_TEXT_MAX];
	char *endp;
	if (n >= sizeof(tmp))
		return -ERANGE;
	memcpy(tmp, t, n);
	tmp[n] = '\0';
	pthread_once(&c_locale_once, c_locale_init);
	if (c_locale != (locale_t)0)
		*out = strtod_l(tmp, &endp, c_locale);
	else
		*out = strtod(tmp, &endp);
	return endp == tmp + n ? 0 : -EINVAL;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * Parses one value token. Decimal text only (what Go's and Python's float parsers agree on,
 * less hex and underscores), or NaN / [+-]Inf / [+-]Infinity in any case.
 * Fast path (Clinger): a mantissa of at most 2^53 scaled by at most 10^22 is exact in one
 * IEEE operation; everything else goes to strtod.
 */
static int parse_value(const char *t, size_t n, struct prom_value *v)
{
	size_t i = 0;
	uint64_t m = 0;
	bool m_over = false, any_digit = false, has_dot = false, has_exp = false;
	long frac_digits = 0, exp = 0;

	memset(v, 0, sizeof(*v));
	if (n == 0)
		return -EINVAL;
	if (t[0] == '+' || t[0] == '-') {
		v->negative = t[0] == '-';
		i = 1;
	}
	if (i < n && !is_digit(t[i]) && t[i] != '.') {
		if (i == 0 && ieq(t, n, "nan")) {
			v->form = PROM_FORM_SPECIAL;
			v->d = NAN;
			return 0;
		}
		if (ieq(t + i, n - i, "inf") || ieq(t + i, n - i, "infinity")) {
			v->form = PROM_FORM_SPECIAL;
			v->d = v->negative ? -INFINITY : INFINITY;
			return 0;
		}
		return -EINVAL;
	}
	for (; i < n && is_digit(t[i]); i++) {
		unsigned dgt = (unsigned)(t[i] - '0');
		any_digit = true;
		if (m_over || m > (UINT64_MAX - dgt) / 10)
			m_over = true; /* exact only below 2^64; strtod takes over */
		else
			m = m * 10 + dgt;
	}
	if (i < n && t[i] == '.') {
		has_dot = true;
		for (i++; i < n && is_digit(t[i]); i++) {
			unsigned dgt = (unsigned)(t[i] - '0');
			any_digit = true;
			if (m_over || m > (UINT64_MAX - dgt) / 10) {
				m_over = true;
			} else {
				m = m * 10 + dgt;
				frac_digits++;
			}
		}
	}
	if (!any_digit)
		return -EINVAL;
	if (i < n && (t[i] == 'e' || t[i] == 'E')) {
		bool eneg = false, edigit = false;
		has_exp = true;
		i++;
		if (i < n && (t[i] == '+' || t[i] == '-')) {
			eneg = t[i] == '-';
			i++;
		}
		for (; i < n && is_digit(t[i]); i++) {
			edigit = true;
			if (exp < 100000)
				exp = exp * 10 + (t[i] - '0');
		}
		if (!edigit)
			return -EINVAL;
		if (eneg)
			exp = -exp;
	}
	if (i != n)
		return -EINVAL;

	if (!has_dot && !has_exp) {
		v->form = PROM_FORM_INT;
		if (!m_over) {
			v->exact = true;
			if (v->negative) {
				if (m > (uint64_t)INT64_MAX + 1) {
					v->exact = false;
				} else {
					v->i64 =
					    m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
					v->d = -(double)m;
					return 0;
				}
			} else {
				v->u64 = m;
				v->i64 = m <= (uint64_t)INT64_MAX ? (int64_t)m : 0;
				v->d = (double)m;
				return 0;
			}
		}
		return slow_strtod(t, n, &v->d);
	}
	v->form = PROM_FORM_FLOAT;
	if (!m_over && m <= (UINT64_C(1) << 53)) {
		long e = exp - frac_digits;
		if (e >= 0 && e <= 22) {
			v->d = (double)m * pow10_exact[e];
			goto sign;
		}
		if (e < 0 && e >= -22) {
			v->d = (double)m / pow10_exact[-e];
			goto sign;
		}
	}
	return slow_strtod(t, n, &v->d);
sign:
	if (v->negative)
		v->d = -v->d;
	return 0;
}

static int parse_timestamp(const char *t, size_t n, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	uint64_t m = 0;
	if (n > 0 && (t[0] == '+' || t[0] == '-')) {
		neg = t[0] == '-';
		i = 1;
	}
	if (i == n)
		return -EINVAL;
	for (; i < n; i++) {
		uint64_t dgt;
		if (!is_digit(t[i]))
			return -EINVAL;
		dgt = (uint64_t)(t[i] - '0');
		if (m > ((uint64_t)INT64_MAX + 1 - dgt) / 10)
			return -ERANGE;
		m = m * 10 + dgt;
	}
	if (!neg && m > (uint64_t)INT64_MAX)
		return -ERANGE;
	*out = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m) : (int64_t)m;
	return 0;
}

/* ---- lines */

struct parser {
	const struct prom_limits *lim;
	prom_sample_cb cb;
	void *ud;
	struct prom_stats *st;
	/* the last # TYPE and # HELP seen */
	struct prom_slice type_name;
	enum prom_type type;
	struct prom_slice help_name;
	struct prom_slice help;
	bool help_escaped;
	struct prom_label labels[PROM_LABELS_CAP];
	/* prom_parse_cached: the label-set cache, and where this line is in its family */
	struct prom_cache *cache;
	struct prom_slice last_name; /* metric name of the last sample line */
	size_t fam_line;             /* its index in the run of lines with that name */
};

struct cache_slot {
	const char *blk; /* label text, '{' to '}', in the body being parsed; NULL = empty */
	size_t blklen;
	size_t nlabels;
	struct prom_label labels[PROM_CACHE_LABELS];
};

struct prom_cache {
	size_t used; /* slots [0, used) may hold a line: only they are cleared (and so resident) */
	struct cache_slot slot[PROM_CACHE_SLOTS];
};

struct prom_cache *prom_cache_new(void)
{
	return calloc(1, sizeof(struct prom_cache));
}

void prom_cache_free(struct prom_cache *c)
{
	free(c);
}

static void bad_line(struct parser *ps, size_t line, const char *ls, const char *at,
                     enum prom_err why)
{
	struct prom_stats *st = ps->st;
	st->bad_lines++;
	if (st->nbad < PROM_BAD_RECORDED) {
		st->bad[st->nbad].line = line;
		st->bad[st->nbad].col = (size_t)(at - ls) + 1;
		st->bad[st->nbad].reason = why;
		st->nbad++;
	}
}

static bool slice_same(struct prom_slice a, const char *p, size_t n)
{
	return a.len == n && memcmp(a.ptr, p, n) == 0;
}

/* Is `name` a sample of the family `fam` of type `t`? */
static bool in_family(struct prom_slice fam, enum prom_type t, struct prom_slice name)
{
	static const char *const sfx[] = {"_sum", "_count", "_bucket"};
	if (fam.len == 0 || name.len < fam.len || memcmp(name.ptr, fam.ptr, fam.len) != 0)
		return false;
	if (name.len == fam.len)
		return true;
	if (t != PROM_TYPE_SUMMARY && t != PROM_TYPE_HISTOGRAM)
		return false;
	for (size_t i = 0; i < 3; i++) {
		if (i == 2 && t != PROM_TYPE_HISTOGRAM)
			break;
		if (slice_same((struct prom_slice){name.ptr + fam.len, name.len - fam.len}, sfx[i],
		               strlen(sfx[i])))
			return true;
	}
	return false;
}

static void parse_comment(struct parser *ps, size_t line, const char *ls, const char *q,
                          const char *le)
{
	const char *n0;
	bool help;
	ps->st->comments++;
	q = skip_blanks(q + 1, le);
	/* the first word must be exactly HELP or TYPE; anything else is a plain comment */
	if (le - q < 4 || (memcmp(q, "HELP", 4) != 0 && memcmp(q, "TYPE", 4) != 0) ||
	    (le - q > 4 && !is_blank(q[4])))
		return;
	help = q[0] == 'H';
	q = skip_blanks(q + 4, le);
	n0 = q;
	if (q >= le || !is_mname_start(*q)) {
		bad_line(ps, line, ls, q, PROM_E_BAD_HELP_TYPE);
		return;
	}
	q = scan_name(q, le, true);
	if (q < le && !is_blank(*q)) {
		bad_line(ps, line, ls, q, PROM_E_BAD_HELP_TYPE);
		return;
	}
	struct prom_slice name = {n0, (size_t)(q - n0)};
	q = skip_blanks(q, le);
	if (help) {
		ps->help_name = name;
		ps->help = (struct prom_slice){q, (size_t)(le - q)};
		ps->help_escaped = memchr(q, '\\', (size_t)(le - q)) != NULL;
		return;
	}
	const char *t0 = q;
	while (q < le && !is_blank(*q))
		q++;
	size_t tl = (size_t)(q - t0);
	enum prom_type t;
	if (ieq(t0, tl, "counter"))
		t = PROM_TYPE_COUNTER;
	else if (ieq(t0, tl, "gauge"))
		t = PROM_TYPE_GAUGE;
	else if (ieq(t0, tl, "histogram"))
		t = PROM_TYPE_HISTOGRAM;
	else if (ieq(t0, tl, "summary"))
		t = PROM_TYPE_SUMMARY;
	else if (ieq(t0, tl, "untyped"))
		t = PROM_TYPE_UNTYPED;
	else {
		bad_line(ps, line, ls, t0, PROM_E_BAD_TYPE);
		return;
	}
	if (skip_blanks(q, le) != le) {
		bad_line(ps, line, ls, skip_blanks(q, le), PROM_E_BAD_TYPE);
		return;
	}
	ps->type_name = name;
	ps->type = t;
}

/* Returns 0, or the callback's non-zero return. */
static int parse_line(struct parser *ps, size_t line, const char *ls, const char *le)
{
	const char *q = skip_blanks(ls, le);
	const char *err_at;
	enum prom_err why;
	struct prom_sample s;
	size_t n = 0, blklen = 0;
	uint64_t seen = 0; /* label-name filter for duplicates */

	if (q == le)
		return 0; /* blank line */
	if (*q == '#') {
		parse_comment(ps, line, ls, q, le);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	s.line = line;
	if (!is_mname_start(*q)) {
		err_at = q;
		why = PROM_E_BAD_NAME;
		goto bad;
	}
	s.name.ptr = q;
	q = scan_name(q, le, true);
	s.name.len = (size_t)(q - s.name.ptr);
	if (q < le && *q != '{' && !is_blank(*q)) {
		err_at = q;
		why = PROM_E_BAD_NAME;
		goto bad;
	}
	q = skip_blanks(q, le);
	s.label_set = -1;
	struct cache_slot *cs = NULL;
	const char *blk = q;
	if (ps->cache && q < le && *q == '{') {
		if (slice_same(ps->last_name, s.name.ptr, s.name.len))
			ps->fam_line++;
		else
			ps->fam_line = 0;
		ps->last_name = s.name;
		if (ps->fam_line < PROM_CACHE_SLOTS) {
			cs = &ps->cache->slot[ps->fam_line];
			if (cs->blk && (size_t)(le - q) >= cs->blklen &&
			    memcmp(q, cs->blk, cs->blklen) == 0) {
				/* the same bytes parse the same: the labels of that line */
				s.labels = cs->labels;
				s.nlabels = cs->nlabels;
				s.label_set = (int)ps->fam_line;
				q = skip_blanks(q + cs->blklen, le);
				cs = NULL;
				goto value;
			}
		}
	}
	if (q < le && *q == '{') {
		q++;
		for (;;) {
			struct prom_label *l;
			q = skip_blanks(q, le);
			if (q < le && *q == '}') {
				q++;
				break;
			}
			if (q >= le) {
				err_at = q;
				why = PROM_E_UNTERMINATED;
				goto bad;
			}
			if (!is_lname_start(*q)) {
				err_at = q;
				why = PROM_E_BAD_LABEL_NAME;
				goto bad;
			}
			const char *n0 = q;
			q = scan_name(q, le, false);
			size_t nl = (size_t)(q - n0);
			q = skip_blanks(q, le);
			if (q >= le || *q != '=') {
				err_at = q;
				why = PROM_E_NO_EQUALS;
				goto bad;
			}
			q = skip_blanks(q + 1, le);
			if (q >= le || *q != '"') {
				err_at = q;
				why = PROM_E_NO_QUOTE;
				goto bad;
			}
			const char *v0 = ++q;
			bool esc = false;
			for (;;) {
				q = find_quote_or_backslash(q, le);
				if (q >= le || *q == '"')
					break;
				/* a backslash */
				if (q + 1 >= le) {
					q = le;
					break;
				}
				if (q[1] != '\\' && q[1] != '"' && q[1] != 'n') {
					err_at = q;
					why = PROM_E_BAD_ESCAPE;
					goto bad;
				}
				esc = true;
				q += 2;
			}
			if (q >= le) {
				err_at = q;
				why = PROM_E_UNTERMINATED;
				goto bad;
			}
			if (n >= ps->lim->max_labels) {
				err_at = n0;
				why = PROM_E_TOO_MANY_LABELS;
				goto bad;
			}
			/* duplicates: a 64-bit filter on (length, last byte) spares the
			 * pairwise comparison for nearly every label */
			uint64_t bit = UINT64_C(1) << ((nl * 7 + (unsigned char)n0[nl - 1]) & 63);
			if (seen & bit) {
				for (size_t i = 0; i < n; i++)
					if (slice_same(ps->labels[i].name, n0, nl)) {
						err_at = n0;
						why = PROM_E_DUP_LABEL;
						goto bad;
					}
			}
			seen |= bit;
			l = &ps->labels[n++];
			l->name = (struct prom_slice){n0, nl};
			l->value = (struct prom_slice){v0, (size_t)(q - v0)};
			l->escaped = esc;
			q = skip_blanks(q + 1, le);
			if (q < le && *q == ',') {
				q++;
				continue;
			}
			if (q < le && *q == '}') {
				q++;
				break;
			}
			err_at = q;
			why = q >= le ? PROM_E_UNTERMINATED : PROM_E_BAD_LABEL_SEP;
			goto bad;
		}
		if (cs && n <= PROM_CACHE_LABELS)
			blklen = (size_t)(q - blk);
		q = skip_blanks(q, le);
	}
	s.labels = ps->labels;
	s.nlabels = n;

value:; /* (a label before a declaration: C23) */
	/* value */
	const char *v0 = q;
	while (q < le && !is_blank(*q))
		q++;
	if (q == v0) {
		err_at = q;
		why = PROM_E_NO_VALUE;
		goto bad;
	}
	if (parse_value(v0, (size_t)(q - v0), &s.value) != 0) {
		err_at = v0;
		why = PROM_E_BAD_VALUE;
		goto bad;
	}
	q = skip_blanks(q, le);
	if (q < le) {
		const char *t0 = q;
		while (q < le && !is_blank(*q))
			q++;
		if (parse_timestamp(t0, (size_t)(q - t0), &s.timestamp_ms) != 0) {
			err_at = t0;
			why = PROM_E_BAD_TIMESTAMP;
			goto bad;
		}
		s.has_timestamp = true;
		q = skip_blanks(q, le);
		if (q < le) {
			err_at = q;
			why = PROM_E_TRAILING;
			goto bad;
		}
	}

	if (in_family(ps->type_name, ps->type, s.name))
		s.type = ps->type;
	if (ps->help_name.len > 0 &&
	    (slice_same(ps->help_name, s.name.ptr, s.name.len) ||
	     (s.type != PROM_TYPE_NONE &&
	      slice_same(ps->help_name, ps->type_name.ptr, ps->type_name.len)))) {
		s.has_help = true;
		s.help = ps->help;
		s.help_escaped = ps->help_escaped;
	}
	if (blklen) {
		/* a good line: its label set takes the slot (only now, so that an id handed out
		 * always went with a sample the caller saw) */
		cs->blk = blk;
		cs->blklen = blklen;
		if (ps->fam_line >= ps->cache->used)
			ps->cache->used = ps->fam_line + 1;
		cs->nlabels = n;
		memcpy(cs->labels, ps->labels, n * sizeof(*cs->labels));
		s.label_set = (int)ps->fam_line;
		s.label_set_new = true;
	}
	ps->st->samples++;
	return ps->cb ? ps->cb(&s, ps->ud) : 0;
bad:
	bad_line(ps, line, ls, err_at, why);
	return 0;
}

int prom_parse(const char *buf, size_t len, const struct prom_limits *lim, prom_sample_cb cb,
               void *ud, struct prom_stats *st)
{
	return prom_parse_cached(buf, len, lim, cb, ud, st, NULL);
}

int prom_parse_cached(const char *buf, size_t len, const struct prom_limits *lim, prom_sample_cb cb,
                      void *ud, struct prom_stats *st, struct prom_cache *cache)
{
	struct prom_limits def;
	struct parser *ps = NULL;
	/* The parser state (with its label array) lives on the stack: no allocation. */
	struct parser pstate;
	const char *pos, *end;
	size_t line = 0;
	int rc = 0;

	if (!st || (!buf && len > 0))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->bytes = len;
	if (!lim) {
		prom_limits_default(&def);
		lim = &def;
	}
	if (lim->max_labels == 0 || lim->max_labels > PROM_LABELS_CAP)
		return -EINVAL;
	if (len > lim->max_body)
		return -EFBIG;
	ps = &pstate;
	ps->lim = lim;
	ps->cb = cb;
	ps->ud = ud;
	ps->st = st;
	ps->type_name = (struct prom_slice){NULL, 0};
	ps->type = PROM_TYPE_NONE;
	ps->help_name = (struct prom_slice){NULL, 0};
	ps->help = (struct prom_slice){NULL, 0};
	ps->help_escaped = false;
	ps->cache = cache;
	ps->last_name = (struct prom_slice){NULL, 0};
	ps->fam_line = 0;
	if (cache) { /* its lines point into the last body */
		for (size_t i = 0; i < cache->used; i++)
			cache->slot[i].blk = NULL;
		cache->used = 0;
	}

	pos = buf;
	end = buf + len;
	while (pos < end) {
		const char *nl = memchr(pos, '\n', (size_t)(end - pos));
		const char *le = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		line++;
		st->lines++;
		if (le > pos && le[-1] == '\r')
			le--;
		if ((size_t)(le - pos) > lim->max_line) {
			bad_line(ps, line, pos, pos + lim->max_line, PROM_E_LINE_TOO_LONG);
		} else {
			rc = parse_line(ps, line, pos, le);
			if (rc != 0)
				goto out;
		}
		pos = next;
	}
out:
	return rc;
}
