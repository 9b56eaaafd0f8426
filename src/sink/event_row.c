#include "sink/event_row.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/event_check.h"
#include "core/fields.h"
#include "core/timeutil.h"
#include "store/pgcopy.h"

#define MAX_TEXT EVENT_CHECK_MAX_TEXT

static char copy_sql[4096];
static pthread_once_t copy_once = PTHREAD_ONCE_INIT;

static void build_copy_sql(void)
{
	size_t n;
	const struct field_def *f = fields_all(&n);
	size_t o = (size_t)snprintf(copy_sql, sizeof(copy_sql),
	                            "(time, gpu_key, uuid, mig_instance, hostname, gpu_index");
	for (size_t i = 0; i < n && o < sizeof(copy_sql); i++)
		o += (size_t)snprintf(copy_sql + o, sizeof(copy_sql) - o, ", %s", f[i].key);
	if (o < sizeof(copy_sql))
		snprintf(copy_sql + o, sizeof(copy_sql) - o, ", extra)");
}

const char *event_row_columns(void)
{
	pthread_once(&copy_once, build_copy_sql);
	return copy_sql;
}

/* COPY text format: backslash, tab, newline and carriage return are escaped. */
static int put_text(struct strbuf *sb, const char *s)
{
	if (!s)
		return strbuf_append(sb, "\\N", 2);
	for (const char *p = s; *p; p++) {
		const char *esc = NULL;
		switch (*p) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: break;
		}
		int rc = esc ? strbuf_append(sb, esc, 2) : strbuf_append(sb, p, 1);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * The field named [k, k+n). A producer writes its metrics in one order, so each thread
 * remembers which field followed each field last time and tries that first (the contract's
 * order until it has seen one), before the hash lookup. *prev is the index + 1 of the field
 * before this one, 0 at the start of the object; the guess only saves time, never decides.
 */
#define MAX_FAST_FIELDS 64
static _Thread_local unsigned char next_after[MAX_FAST_FIELDS + 1];
static size_t key_len[MAX_FAST_FIELDS]; /* strlen of each field's key, for the guess */
static pthread_once_t key_len_once = PTHREAD_ONCE_INIT;

static void build_key_len(void)
{
	size_t nf;
	const struct field_def *f = fields_all(&nf);
	for (size_t i = 0; i < nf && i < MAX_FAST_FIELDS; i++)
		key_len[i] = strlen(f[i].key);
}

static const struct field_def *field_at_hint(const char *k, size_t n, size_t *prev)
{
	size_t nf;
	const struct field_def *f = fields_all(&nf);
	size_t guess = next_after[*prev] ? next_after[*prev] - 1u : *prev;
	const struct field_def *d = NULL;
	if (guess < nf && key_len[guess] == n && memcmp(f[guess].key, k, n) == 0)
		d = &f[guess];
	else if ((d = fields_by_keyn(k, n)) != NULL)
		next_after[*prev] = (unsigned char)(fields_index(d) + 1);
	if (d)
		*prev = fields_index(d) + 1;
	return d;
}

/* Writes one metric value (a binary COPY field), or NULL; event_check_json() has checked it. */
static int put_metric(struct strbuf *sb, const struct field_def *f, json_t *v)
{
	if (!v || json_is_null(v))
		return pgcopy_null(sb);
	double d = json_number_value(v);
	if (f->kind == FIELD_GAUGE)
		return pgcopy_float8(sb, d);
	/* counters and codes are 64-bit integers */
	return pgcopy_int8(sb,
	                   json_is_integer(v) ? (long long)json_integer_value(v) : (long long)d);
}

/* An optional string member (checked): NULL when absent or null. */
static const char *opt_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An optional integer member (checked): has=false when absent or null. */
static long long opt_int(json_t *obj, const char *key, bool *has)
{
	json_t *v = json_object_get(obj, key);
	*has = json_is_integer(v);
	return *has ? (long long)json_integer_value(v) : 0;
}

/* The row's fixed columns after its tuple header: time, gpu_key, uuid, mig_instance,
 * hostname, gpu_index (host NULL, mig and index < 0: null). */
static int put_fixed(struct strbuf *out, size_t nf, double t, const char *gpu_key, const char *uuid,
                     size_t ulen, long long mig, const char *host, size_t hlen, long long index)
{
	int rc = pgcopy_tuple(out, (int16_t)(EVENT_ROW_FIXED_COLUMNS + nf + 1));
	if (!rc)
		rc = pgcopy_timestamptz(out, t);
	if (!rc)
		rc = pgcopy_text(out, gpu_key, strlen(gpu_key));
	if (!rc)
		rc = pgcopy_text(out, uuid, ulen);
	if (!rc)
		rc = mig >= 0 ? pgcopy_int4(out, (int32_t)mig) : pgcopy_null(out);
	if (!rc)
		rc = host ? pgcopy_text(out, host, hlen) : pgcopy_null(out);
	if (!rc)
		rc = index >= 0 ? pgcopy_int4(out, (int32_t)index) : pgcopy_null(out);
	return rc;
}

static const char *const workload_members[3] = {"namespace", "pod", "container"};

/* opts->workload from the checked "workload" member (NULL, null or an object of strings/nulls):
 * empty when no member is a non-empty string. */
static int put_workload_json(struct strbuf *sb, json_t *w)
{
	strbuf_reset(sb);
	const char *v[3] = {NULL, NULL, NULL};
	bool any = false;
	for (int i = 0; i < 3; i++) {
		v[i] = json_is_object(w) ? opt_str(w, workload_members[i]) : NULL;
		if (v[i] && !v[i][0])
			v[i] = NULL; /* dcgm-exporter's "" is "no pod" */
		any |= v[i] != NULL;
	}
	int rc = 0;
	for (int i = 0; any && !rc && i < 3; i++) {
		if (i)
			rc = strbuf_append(sb, "\t", 1);
		if (!rc)
			rc = put_text(sb, v[i]);
	}
	return rc;
}

/* The general path: jansson builds the document; every rejection reason is written here. */
static int append_slow(const char *payload, size_t len, const struct event_row_opts *opts,
                       struct strbuf *out, struct strbuf *ident, struct event_row_info *info,
                       char *r, size_t rl)
{
	int rc = -EINVAL;
	json_t *extra_out = NULL;
	char *extra_text = NULL;
	size_t mark = out->len, imark = ident->len;
	struct event_check_opts co = {
	    .now = opts->now, .max_age_s = opts->max_age_s, .max_skew_s = opts->max_future_s};
	double t;
	json_t *root = event_check_load(payload, len, r, rl);
	if (!root || event_check_json(root, &co, &t, r, rl))
		goto out;
	json_t *gpu = json_object_get(root, "gpu");
	const char *uuid = opt_str(gpu, "uuid");
	bool has_index, has_mig;
	long long index = opt_int(gpu, "index", &has_index);
	long long mig = opt_int(gpu, "mig_instance", &has_mig);
	const char *model = opt_str(gpu, "model"), *pci = opt_str(gpu, "pci_bus_id");
	const char *device = opt_str(gpu, "device"), *driver = opt_str(gpu, "driver_version");
	const char *mig_profile = opt_str(gpu, "mig_profile");
	const char *hostname = opt_str(root, "hostname"), *cluster = opt_str(root, "cluster");
	const char *dc = opt_str(root, "datacenter"), *rack = opt_str(root, "rack");
	json_t *metrics = json_object_get(root, "metrics");
	json_t *extra = json_object_get(root, "extra");

	info->fast = false;
	if (has_mig)
		snprintf(info->gpu_key, sizeof(info->gpu_key), "%s/%lld", uuid, mig);
	else
		snprintf(info->gpu_key, sizeof(info->gpu_key), "%s", uuid);
	info->time = t;

	/* time, gpu_key, uuid, mig_instance, hostname, gpu_index, the fields, extra */
	size_t nf;
	const struct field_def *fields = fields_all(&nf);
	rc = put_fixed(out, nf, t, info->gpu_key, uuid, strlen(uuid), has_mig ? mig : -1, hostname,
	               hostname ? strlen(hostname) : 0, has_index ? index : -1);
	if (rc)
		goto fail;
	for (size_t i = 0; i < nf; i++) {
		rc = put_metric(out, &fields[i],
		                json_is_object(metrics) ? json_object_get(metrics, fields[i].key)
		                                        : NULL);
		if (rc)
			goto fail;
	}

	/* Metrics this sink does not know (a newer producer) are kept in extra, never dropped. */
	extra_out = json_is_object(extra) ? json_deep_copy(extra) : json_object();
	if (!extra_out) {
		rc = -ENOMEM;
		goto fail;
	}
	if (json_is_object(metrics)) {
		const char *k;
		json_t *v;
		json_object_foreach(metrics, k, v)
		{
			if (!fields_by_key(k) && !json_object_get(extra_out, k))
				json_object_set(extra_out, k, v);
		}
	}
	if (json_object_size(extra_out) == 0) {
		rc = pgcopy_null(out);
	} else {
		extra_text = json_dumps(extra_out, JSON_COMPACT | JSON_SORT_KEYS);
		rc = extra_text ? pgcopy_jsonb(out, extra_text, strlen(extra_text)) : -ENOMEM;
	}
	if (!rc && opts->workload)
		rc = put_workload_json(opts->workload, json_object_get(root, "workload"));
	/* the identity: gpu_key, uuid, mig_instance, mig_profile, index, hostname, model,
	 * pci_bus_id, device, driver_version, cluster, datacenter, rack (COPY text) */
	if (!rc)
		rc = put_text(ident, info->gpu_key);
	if (!rc)
		rc = strbuf_append(ident, "\t", 1);
	if (!rc)
		rc = put_text(ident, uuid);
	if (!rc)
		rc = has_mig ? strbuf_printf(ident, "\t%lld\t", mig)
		             : strbuf_append(ident, "\t\\N\t", 4);
	if (!rc)
		rc = put_text(ident, mig_profile);
	if (!rc)
		rc = has_index ? strbuf_printf(ident, "\t%lld", index)
		               : strbuf_append(ident, "\t\\N", 3);
	const char *tail[] = {hostname, model, pci, device, driver, cluster, dc, rack};
	for (size_t i = 0; !rc && i < sizeof(tail) / sizeof(tail[0]); i++) {
		rc = strbuf_append(ident, "\t", 1);
		if (!rc)
			rc = put_text(ident, tail[i]);
	}
	if (rc)
		goto fail;
	goto out;
fail:
	strbuf_truncate(out, mark); /* never half a row */
	strbuf_truncate(ident, imark);
out:
	free(extra_text);
	json_decref(extra_out);
	json_decref(root);
	return rc;
}

/*
 * The fast path: one pass over the bytes, no document, for the events a collector writes
 * (no escapes in strings, only known keys, integer counters). Anything else -- and anything
 * invalid -- returns FAST_FALLBACK and the general path decides, so reasons come from one
 * place and both paths write the same row.
 */
#define FAST_FALLBACK 1
#define MAX_DEPTH     32

struct slice {
	const char *p;
	size_t n;
	bool set;  /* the key was present */
	bool null; /* its value was null */
};

struct scan {
	const char *p, *end;
};

static void ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static bool eat(struct scan *s, char c)
{
	ws(s);
	if (s->p < s->end && *s->p == c) {
		s->p++;
		return true;
	}
	return false;
}

/*
 * The first byte at or after p (before end) that a string scan must look at: a quote, a
 * backslash, a control byte (< 0x20) or non-ASCII (>= 0x80); end when there is none. Eight
 * bytes at a time: such a byte sets the high bit of its byte in m (haszero/hasless of Bit
 * Twiddling Hacks, exact for the lowest such byte, the one that decides); the byte loop takes
 * the last few bytes of the payload (and every byte where the word trick is not built).
 */
static const char *plain_run(const char *p, const char *end)
{
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	for (; end - p >= 8; p += 8) {
		uint64_t w, q, bs, m;
		memcpy(&w, p, 8);
		q = w ^ (ones * '"');
		bs = w ^ (ones * '\\');
		m = (((q - ones) & ~q) | ((bs - ones) & ~bs) | ((w - ones * 0x20) & ~w) | w) &
		    highs;
		if (m)
			return p + __builtin_ctzll(m) / 8;
	}
#endif
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
			break;
	}
	return p;
}

/* A string without escapes or non-ASCII bytes (else fallback). */
static int fstr(struct scan *s, struct slice *out)
{
	ws(s);
	if (s->p >= s->end || *s->p != '"')
		return FAST_FALLBACK;
	const char *b = ++s->p;
	s->p = plain_run(s->p, s->end);
	if (s->p >= s->end || *s->p != '"')
		return FAST_FALLBACK;
	out->p = b;
	out->n = (size_t)(s->p - b);
	s->p++;
	return 0;
}

/* The literal w (n bytes, a keyword: a byte loop beats a call to memcmp at this length). */
static bool lit(struct scan *s, const char *w, size_t n)
{
	ws(s);
	if ((size_t)(s->end - s->p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s->p[i] != w[i])
			return false;
	s->p += n;
	return true;
}

/* A JSON number (strict grammar); is_int when it has no fraction or exponent. */
static int fnum(struct scan *s, struct slice *out, bool *is_int)
{
	ws(s);
	const char *b = s->p, *e = s->end, *p = s->p;
	*is_int = true;
	if (p < e && *p == '-')
		p++;
	if (p >= e || *p < '0' || *p > '9')
		return FAST_FALLBACK;
	if (*p == '0')
		p++;
	else
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	if (p < e && *p == '.') {
		*is_int = false;
		p++;
		if (p >= e || *p < '0' || *p > '9')
			return FAST_FALLBACK;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		*is_int = false;
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (p >= e || *p < '0' || *p > '9')
			return FAST_FALLBACK;
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	}
	out->p = b;
	out->n = (size_t)(p - b);
	s->p = p;
	return 0;
}

/* Powers of ten a double holds exactly. */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/*
 * The value of a JSON number fnum() accepted (is_int as fnum() said): d, the nearest double
 * (as strtod gives it), and, when exact_int, iv, the integer it writes exactly (no fraction or
 * exponent). Without strtod's cost for the common forms: an integer, or up to 15 significant
 * digits with up to 22 after the point (one division of two exact doubles, so correctly
 * rounded); other fractions and exponents go through strtod. Returns 0, or -ERANGE where the
 * general path decides (an integer past long long, an overflow or underflow, a number of 64
 * characters or more).
 */
static int number_value(const char *p, size_t n, bool is_int, double *d, long long *iv,
                        bool *exact_int)
{
	const char *e = p + n, *q = p;
	bool neg = q < e && *q == '-';
	uint64_t m = 0;
	int digits = 0, frac = 0;
	q += neg;
	/* significant digits into m (at most 19: m < 10^19 fits); a longer one stops short of e */
	for (; q < e && *q >= '0' && *q <= '9' && digits < 19; q++) {
		m = m * 10 + (uint64_t)(*q - '0');
		digits += m != 0;
	}
	if (q < e && *q == '.')
		for (q++; q < e && *q >= '0' && *q <= '9' && digits < 19; q++, frac++) {
			m = m * 10 + (uint64_t)(*q - '0');
			digits += m != 0;
		}
	*exact_int = false;
	if (is_int) { /* fnum() saw no fraction and no exponent */
		/* an integer: past long long (jansson's json_int_t) it is the general path's to
		 * refuse; "-0" is 0, as jansson reads it */
		uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
		if (q != e || m > lim)
			return -ERANGE;
		*iv = !neg ? (long long)m : m == lim ? INT64_MIN : -(long long)m;
		*d = (double)*iv;
		*exact_int = true;
		return 0;
	}
	if (q == e && digits <= 15 && frac <= 22) {
		double v = (double)m / pow10_exact[frac];
		*d = neg ? -v : v;
		return 0;
	}
	char nb[64];
	if (n >= sizeof(nb))
		return -ERANGE;
	memcpy(nb, p, n);
	nb[n] = '\0';
	errno = 0;
	*d = strtod(nb, NULL);
	return errno ? -ERANGE : 0;
}

/* c is one of the bytes of set (never its terminator: strchr finds the '\0' of any set, and a
 * payload is bytes that may hold a NUL anywhere). */
static bool in_set(char c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

/* Skips any JSON value, validating it (escapes allowed; non-ASCII falls back). */
#define MAX_FAST_KEYS 32

static int skip_value(struct scan *s, int depth)
{
	if (depth > MAX_DEPTH)
		return FAST_FALLBACK;
	ws(s);
	if (s->p >= s->end)
		return FAST_FALLBACK;
	char c = *s->p;
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		s->p++;
		if (eat(s, close))
			return 0;
		/* an object's keys, to refuse duplicates as the general path does (jansson's
		 * JSON_REJECT_DUPLICATES): more keys than this, or a key with an escape, falls back
		 */
		struct slice keys[MAX_FAST_KEYS];
		size_t nkeys = 0;
		do {
			if (c == '{') {
				ws(s);
				const char *kb = s->p;
				if (s->p >= s->end || *s->p != '"' || skip_value(s, depth + 1))
					return FAST_FALLBACK;
				size_t kn = (size_t)(s->p - kb); /* the key with its quotes */
				if (!eat(s, ':'))
					return FAST_FALLBACK;
				if (nkeys == MAX_FAST_KEYS || memchr(kb, '\\', kn))
					return FAST_FALLBACK;
				for (size_t i = 0; i < nkeys; i++)
					if (keys[i].n == kn && memcmp(keys[i].p, kb, kn) == 0)
						return FAST_FALLBACK; /* a duplicate key */
				keys[nkeys].p = kb;
				keys[nkeys++].n = kn;
			}
			if (skip_value(s, depth + 1))
				return FAST_FALLBACK;
		} while (eat(s, ','));
		return eat(s, close) ? 0 : FAST_FALLBACK;
	}
	if (c == '"') {
		s->p++;
		while ((s->p = plain_run(s->p, s->end)) < s->end && *s->p != '"') {
			unsigned char ch = (unsigned char)*s->p;
			if (ch < 0x20 || ch >= 0x80)
				return FAST_FALLBACK;
			if (ch == '\\') {
				s->p++;
				if (s->p >= s->end || !in_set(*s->p, "\"\\/bfnrtu"))
					return FAST_FALLBACK;
				if (*s->p == 'u') {
					for (int i = 1; i <= 4; i++)
						if (s->p + i >= s->end ||
						    !in_set(s->p[i], "0123456789abcdefABCDEF"))
							return FAST_FALLBACK;
					s->p += 4;
				}
			}
			s->p++;
		}
		if (s->p >= s->end)
			return FAST_FALLBACK;
		s->p++;
		return 0;
	}
	if (lit(s, "true", 4) || lit(s, "false", 5) || lit(s, "null", 4))
		return 0;
	struct slice n;
	bool is_int;
	return fnum(s, &n, &is_int);
}

/* string or null */
static int fstr_or_null(struct scan *s, struct slice *out)
{
	if (out->set)
		return FAST_FALLBACK; /* duplicate key */
	out->set = true;
	if (lit(s, "null", 4)) {
		out->null = true;
		return 0;
	}
	return fstr(s, out);
}

/* non-negative integer or null */
static int fint_or_null(struct scan *s, struct slice *out, long long *v)
{
	if (out->set)
		return FAST_FALLBACK;
	out->set = true;
	if (lit(s, "null", 4)) {
		out->null = true;
		return 0;
	}
	bool is_int;
	if (fnum(s, out, &is_int) || !is_int || out->n > 18 || out->p[0] == '-')
		return FAST_FALLBACK;
	*v = 0;
	for (size_t i = 0; i < out->n; i++)
		*v = *v * 10 + (out->p[i] - '0');
	return *v > INT32_MAX ? FAST_FALLBACK : 0;
}

/* k is the key "name" (a string literal: its length and the comparison are constants). */
#define key_is(k, name) ((k)->n == sizeof(name) - 1 && memcmp((k)->p, name, sizeof(name) - 1) == 0)

struct fast_event {
	struct slice sv, time, hostname, cluster, dc, rack, extra, labels, workload;
	struct slice uuid, model, pci, device, driver, mig_profile, index, mig;
	struct slice w_namespace, w_pod, w_container;
	long long sv_v, index_v, mig_v;
	struct slice metric[MAX_FAST_FIELDS];
	bool metric_int[MAX_FAST_FIELDS];
	bool gpu_set, metrics_set;
};

/* The start of a member's value that is null or an object, seen once per event (*set): MEMBERS
 * when an object with members follows (its '{' eaten), 0 when null or {} (nothing more to
 * read), FAST_FALLBACK otherwise. null: not when !nullable. */
#define MEMBERS 2
static int object_start(struct scan *s, bool *set, bool nullable)
{
	if (*set)
		return FAST_FALLBACK;
	*set = true;
	if (nullable && lit(s, "null", 4))
		return 0;
	if (!eat(s, '{'))
		return FAST_FALLBACK;
	return eat(s, '}') ? 0 : MEMBERS;
}

#define MEMBER_KEY(lit) lit, sizeof(lit) - 1
/* An object's known members: a string or null into str, or an integer or null into str and
 * *num (num != NULL). */
struct member {
	const char *key;
	size_t klen; /* MEMBER_KEY: a literal's length, fixed at compile time */
	struct slice *str;
	long long *num;
};

/* The members after object_start() said MEMBERS, through the closing '}'. An unknown key (a
 * member of a newer contract) or a duplicate falls back: the general path decides. */
static int scan_members(struct scan *s, const struct member *m, size_t n)
{
	do {
		struct slice k = {0};
		if (fstr(s, &k) || !eat(s, ':'))
			return FAST_FALLBACK;
		size_t i = 0;
		while (i < n && !(k.n == m[i].klen && memcmp(k.p, m[i].key, k.n) == 0))
			i++;
		if (i == n)
			return FAST_FALLBACK;
		int rc = m[i].num ? fint_or_null(s, m[i].str, m[i].num) : fstr_or_null(s, m[i].str);
		if (rc)
			return rc;
	} while (eat(s, ','));
	return eat(s, '}') ? 0 : FAST_FALLBACK;
}

static int scan_gpu(struct scan *s, struct fast_event *ev)
{
	const struct member m[] = {
	    {MEMBER_KEY("uuid"), &ev->uuid, NULL},
	    {MEMBER_KEY("index"), &ev->index, &ev->index_v},
	    {MEMBER_KEY("mig_instance"), &ev->mig, &ev->mig_v},
	    {MEMBER_KEY("model"), &ev->model, NULL},
	    {MEMBER_KEY("pci_bus_id"), &ev->pci, NULL},
	    {MEMBER_KEY("device"), &ev->device, NULL},
	    {MEMBER_KEY("driver_version"), &ev->driver, NULL},
	    {MEMBER_KEY("mig_profile"), &ev->mig_profile, NULL},
	};
	int rc = object_start(s, &ev->gpu_set, false);
	return rc == MEMBERS ? scan_members(s, m, sizeof(m) / sizeof(m[0])) : rc;
}

/* labels: null, or an object of plain strings (checked here, not stored: no column yet). A
 * duplicate key, too many keys or a string too long falls back: the general path refuses. */
static int scan_labels(struct scan *s, struct fast_event *ev)
{
	int rc = object_start(s, &ev->labels.set, true);
	if (rc != MEMBERS)
		return rc;
	struct slice keys[EVENT_CHECK_MAX_LABELS];
	size_t nkeys = 0;
	do {
		struct slice k = {0}, v = {0};
		if (nkeys == EVENT_CHECK_MAX_LABELS || fstr(s, &k) || !eat(s, ':') || fstr(s, &v) ||
		    k.n > MAX_TEXT || v.n > MAX_TEXT)
			return FAST_FALLBACK;
		for (size_t i = 0; i < nkeys; i++)
			if (keys[i].n == k.n && memcmp(keys[i].p, k.p, k.n) == 0)
				return FAST_FALLBACK; /* a duplicate key */
		keys[nkeys++] = k;
	} while (eat(s, ','));
	return eat(s, '}') ? 0 : FAST_FALLBACK;
}

/* workload: null, or {namespace, pod, container} each a plain string or null (not stored). */
static int scan_workload(struct scan *s, struct fast_event *ev)
{
	const struct member m[] = {
	    {MEMBER_KEY("namespace"), &ev->w_namespace, NULL},
	    {MEMBER_KEY("pod"), &ev->w_pod, NULL},
	    {MEMBER_KEY("container"), &ev->w_container, NULL},
	};
	int rc = object_start(s, &ev->workload.set, true);
	return rc == MEMBERS ? scan_members(s, m, sizeof(m) / sizeof(m[0])) : rc;
}

static int scan_metrics(struct scan *s, struct fast_event *ev)
{
	int rc = object_start(s, &ev->metrics_set, true);
	if (rc != MEMBERS)
		return rc;
	size_t prev = 0;
	pthread_once(&key_len_once, build_key_len); /* for field_at_hint() */
	do {
		struct slice k = {0};
		if (fstr(s, &k) || !eat(s, ':'))
			return FAST_FALLBACK;
		const struct field_def *f = field_at_hint(k.p, k.n, &prev);
		if (!f) /* unknown metric: the general path keeps it in extra */
			return FAST_FALLBACK;
		size_t i = fields_index(f);
		struct slice *m = &ev->metric[i];
		if (m->set)
			return FAST_FALLBACK;
		m->set = true;
		if (lit(s, "null", 4))
			m->null = true;
		else if (fnum(s, m, &ev->metric_int[i]))
			return FAST_FALLBACK;
	} while (eat(s, ','));
	return eat(s, '}') ? 0 : FAST_FALLBACK;
}

static int put_slice(struct strbuf *sb, const struct slice *sl)
{
	if (!sl->set || sl->null)
		return strbuf_append_fast(sb, "\\N", 2);
	/* fstr() admitted no escapes and no control bytes: nothing for COPY to escape but a
	 * backslash, which fstr() refused. */
	return strbuf_append_fast(sb, sl->p, sl->n);
}

/* A tab and v in decimal (strbuf_printf's cost per row, without it). */
static int put_int(struct strbuf *sb, long long v)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	*--p = '\t';
	return strbuf_append_fast(sb, p, (size_t)(buf + sizeof(buf) - p));
}

static int append_fast(const char *payload, size_t len, const struct event_row_opts *opts,
                       struct strbuf *out, struct strbuf *ident, struct event_row_info *info)
{
	struct fast_event ev;
	memset(&ev, 0, sizeof(ev));
	struct scan s = {payload, payload + len};
	size_t nf;
	const struct field_def *fields = fields_all(&nf);
	if (nf > MAX_FAST_FIELDS || !eat(&s, '{'))
		return FAST_FALLBACK;
	do {
		struct slice k = {0};
		if (fstr(&s, &k) || !eat(&s, ':'))
			return FAST_FALLBACK;
		int rc;
		if (key_is(&k, "schema_version"))
			rc = fint_or_null(&s, &ev.sv, &ev.sv_v);
		else if (key_is(&k, "time"))
			rc = fstr_or_null(&s, &ev.time);
		else if (key_is(&k, "hostname"))
			rc = fstr_or_null(&s, &ev.hostname);
		else if (key_is(&k, "cluster"))
			rc = fstr_or_null(&s, &ev.cluster);
		else if (key_is(&k, "datacenter"))
			rc = fstr_or_null(&s, &ev.dc);
		else if (key_is(&k, "rack"))
			rc = fstr_or_null(&s, &ev.rack);
		else if (key_is(&k, "gpu"))
			rc = scan_gpu(&s, &ev);
		else if (key_is(&k, "metrics"))
			rc = scan_metrics(&s, &ev);
		else if (key_is(&k, "labels"))
			rc = scan_labels(&s, &ev);
		else if (key_is(&k, "workload"))
			rc = scan_workload(&s, &ev);
		else if (key_is(&k, "extra")) {
			if (ev.extra.set)
				return FAST_FALLBACK;
			ev.extra.set = true;
			ws(&s);
			ev.extra.p = s.p;
			if (lit(&s, "null", 4)) {
				ev.extra.null = true;
				rc = 0;
			} else if (s.p < s.end && *s.p == '{') {
				rc = skip_value(&s, 1);
				ev.extra.n = (size_t)(s.p - ev.extra.p);
			} else {
				rc = FAST_FALLBACK;
			}
		} else
			rc = FAST_FALLBACK;
		if (rc)
			return rc;
	} while (eat(&s, ','));
	if (!eat(&s, '}'))
		return FAST_FALLBACK;
	ws(&s);
	if (s.p != s.end)
		return FAST_FALLBACK;

	/* Validation: anything doubtful goes to the general path, which names the reason. */
	if (!ev.sv.set || ev.sv.null || ev.sv_v != 1 || !ev.time.set || ev.time.null ||
	    !ev.gpu_set || !ev.uuid.set || ev.uuid.null || ev.uuid.n == 0 || ev.uuid.n > MAX_TEXT ||
	    ev.time.n >= 64)
		return FAST_FALLBACK;
	const struct slice *texts[] = {&ev.hostname,    &ev.cluster, &ev.dc,
	                               &ev.rack,        &ev.model,   &ev.pci,
	                               &ev.device,      &ev.driver,  &ev.mig_profile,
	                               &ev.w_namespace, &ev.w_pod,   &ev.w_container};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		if (texts[i]->n > MAX_TEXT)
			return FAST_FALLBACK;
	char tbuf[64];
	memcpy(tbuf, ev.time.p, ev.time.n);
	tbuf[ev.time.n] = '\0';
	double t;
	struct event_check_opts co = {
	    .now = opts->now, .max_age_s = opts->max_age_s, .max_skew_s = opts->max_future_s};
	if (event_check_time(tbuf, &co, &t, NULL, 0))
		return FAST_FALLBACK;

	size_t mark = out->len, imark = ident->len;
	int rc;
	if (ev.mig.set && !ev.mig.null)
		snprintf(info->gpu_key, sizeof(info->gpu_key), "%.*s/%lld", (int)ev.uuid.n,
		         ev.uuid.p, ev.mig_v);
	else { /* the common case, without snprintf's cost per row */
		size_t n =
		    ev.uuid.n < sizeof(info->gpu_key) ? ev.uuid.n : sizeof(info->gpu_key) - 1;
		memcpy(info->gpu_key, ev.uuid.p, n);
		info->gpu_key[n] = '\0';
	}
	info->time = t;
	bool host = ev.hostname.set && !ev.hostname.null;
	rc = put_fixed(out, nf, t, info->gpu_key, ev.uuid.p, ev.uuid.n,
	               (ev.mig.set && !ev.mig.null) ? ev.mig_v : -1, host ? ev.hostname.p : NULL,
	               ev.hostname.n, (ev.index.set && !ev.index.null) ? ev.index_v : -1);
	for (size_t i = 0; !rc && i < nf; i++) {
		const struct slice *m = &ev.metric[i];
		if (!m->set || m->null) { /* this and the absent fields after it: one append */
			size_t j = i + 1;
			while (j < nf && (!ev.metric[j].set || ev.metric[j].null))
				j++;
			rc = pgcopy_nulls(out, j - i);
			i = j - 1;
			continue;
		}
		double d;
		long long iv = 0;
		bool exact_int;
		if (number_value(m->p, m->n, ev.metric_int[i], &d, &iv, &exact_int) ||
		    !isfinite(d) || !event_check_in_range(i, d))
			goto fallback;
		if (fields[i].kind == FIELD_GAUGE) {
			rc = pgcopy_float8(out, d);
		} else {
			if (!ev.metric_int[i])
				goto fallback; /* a fractional counter: the general path explains */
			if (!exact_int || iv < 0)
				goto fallback;
			rc = pgcopy_int8(out, iv);
		}
	}
	if (rc)
		goto fail;
	{
		/* extra as written; "{}" and null are both no extra */
		bool empty = !ev.extra.set || ev.extra.null;
		if (!empty) { /* (no pointer arithmetic on an absent extra's NULL) */
			struct scan e = {ev.extra.p, ev.extra.p + ev.extra.n};
			empty = eat(&e, '{') && eat(&e, '}');
		}
		rc = empty ? pgcopy_null(out) : pgcopy_jsonb(out, ev.extra.p, ev.extra.n);
	}
	if (!rc)
		rc = strbuf_append_fast(ident, info->gpu_key, strlen(info->gpu_key));
	if (!rc)
		rc = strbuf_append_fast(ident, "\t", 1);
	if (!rc)
		rc = strbuf_append_fast(ident, ev.uuid.p, ev.uuid.n);
	if (!rc)
		rc = (ev.mig.set && !ev.mig.null) ? strbuf_printf(ident, "\t%lld\t", ev.mig_v)
		                                  : strbuf_append_fast(ident, "\t\\N\t", 4);
	if (!rc)
		rc = put_slice(ident, &ev.mig_profile);
	if (!rc)
		rc = (ev.index.set && !ev.index.null) ? put_int(ident, ev.index_v)
		                                      : strbuf_append_fast(ident, "\t\\N", 3);
	const struct slice *tail[] = {&ev.hostname, &ev.model,   &ev.pci, &ev.device,
	                              &ev.driver,   &ev.cluster, &ev.dc,  &ev.rack};
	for (size_t i = 0; !rc && i < sizeof(tail) / sizeof(tail[0]); i++) {
		rc = strbuf_append_fast(ident, "\t", 1);
		if (!rc)
			rc = put_slice(ident, tail[i]);
	}
	if (!rc && opts->workload) {
		strbuf_reset(opts->workload);
		const struct slice *wl[3] = {&ev.w_namespace, &ev.w_pod, &ev.w_container};
		bool any = false;
		for (int i = 0; i < 3; i++)
			any |= wl[i]->set && !wl[i]->null && wl[i]->n > 0;
		for (int i = 0; any && !rc && i < 3; i++) {
			/* fstr() admitted no escapes: nothing for COPY to escape */
			if (i)
				rc = strbuf_append(opts->workload, "\t", 1);
			if (!rc)
				rc = wl[i]->set && !wl[i]->null && wl[i]->n > 0
				         ? strbuf_append(opts->workload, wl[i]->p, wl[i]->n)
				         : strbuf_append(opts->workload, "\\N", 2);
		}
	}
	if (rc)
		goto fail;
	info->fast = true;
	return 0;
fallback:
	strbuf_truncate(out, mark);
	strbuf_truncate(ident, imark);
	return FAST_FALLBACK;
fail:
	strbuf_truncate(out, mark);
	strbuf_truncate(ident, imark);
	return rc;
}

int event_row_append(const char *payload, size_t len, const struct event_row_opts *opts,
                     struct strbuf *out, struct strbuf *ident, struct event_row_info *info,
                     char *reason, size_t rlen)
{
	if (!opts->general_only) {
		int rc = append_fast(payload, len, opts, out, ident, info);
		if (rc != FAST_FALLBACK)
			return rc;
	}
	return append_slow(payload, len, opts, out, ident, info, reason, rlen);
}
