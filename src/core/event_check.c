#include "core/event_check.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fields.h"
#include "core/hash.h"
#include "core/timeutil.h"

static void reasonf(char *r, size_t rl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reasonf(char *r, size_t rl, const char *fmt, ...)
{
	if (!r || !rl)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r, rl, fmt, ap);
	va_end(ap);
}

void event_check_format_number(double v, char *buf, size_t len)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

json_t *event_check_load(const char *text, size_t len, char *r, size_t rl)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		reasonf(r, rl, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
		        jerr.text);
	return root;
}

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

int event_check_time(const char *text, const struct event_check_opts *o, double *t, char *r,
                     size_t rl)
{
	char lo[40], hi[40];
	if (time_parse_rfc3339(text, t)) {
		reasonf(r, rl, "time '%.64s' is not RFC 3339 (e.g. 2026-11-28T12:00:10.000Z)",
		        text);
		return -EINVAL;
	}
	if (!(*t >= o->now - o->max_age_s)) {
		if (r && time_format_rfc3339(o->now - o->max_age_s, lo, sizeof(lo)))
			snprintf(lo, sizeof(lo), "?");
		reasonf(
		    r, rl,
		    "time %.64s is older than the retention: the oldest accepted is %s (now - %.0f "
		    "s)",
		    text, r ? lo : "", o->max_age_s);
		return -EINVAL;
	}
	if (!(*t <= o->now + o->max_skew_s)) {
		if (r && time_format_rfc3339(o->now + o->max_skew_s, hi, sizeof(hi)))
			snprintf(hi, sizeof(hi), "?");
		reasonf(r, rl,
		        "time %.64s is more than %.0f s in the future: the newest accepted is %s "
		        "(now + the allowed clock skew, --max-clock-skew)",
		        text, o->max_skew_s, r ? hi : "");
		return -EINVAL;
	}
	return 0;
}

struct range {
	const char *key;
	double lo, hi;
	const char *what;
};

/* Impossible values: a sample carrying one is refused, not stored. */
static const struct range ranges[] = {
    {"gpu_temp", -40, 200, "temperature outside -40..200 C"},
    {"memory_temp", -40, 200, "temperature outside -40..200 C"},
    {"power_usage", 0, INFINITY, "negative power"},
    {"power_limit", 0, INFINITY, "negative power limit"},
    {"gpu_util", 0, 100, "utilization outside 0..100 %"},
    {"mem_copy_util", 0, 100, "utilization outside 0..100 %"},
    {"enc_util", 0, 100, "utilization outside 0..100 %"},
    {"dec_util", 0, 100, "utilization outside 0..100 %"},
    {"fb_free", 0, INFINITY, "negative memory size"},
    {"fb_used", 0, INFINITY, "negative memory size"},
    {"fb_reserved", 0, INFINITY, "negative memory size"},
};
#define NRANGES (sizeof(ranges) / sizeof(ranges[0]))

int event_check_range(const char *key, double v, char *r, size_t rl)
{
	for (size_t i = 0; i < NRANGES; i++)
		if (strcmp(ranges[i].key, key) == 0 && !(v >= ranges[i].lo && v <= ranges[i].hi)) {
			char num[40];
			event_check_format_number(v, num, sizeof(num));
			reasonf(r, rl, "metrics.%s = %s: %s", key, num, ranges[i].what);
			return -EINVAL;
		}
	return 0;
}

/* The range of each field by its position in fields_all(), or -1 (the fast path's lookup). */
static int range_of[128];
static pthread_once_t range_once = PTHREAD_ONCE_INIT;

static void build_range_of(void)
{
	size_t nf;
	const struct field_def *f = fields_all(&nf);
	for (size_t i = 0; i < sizeof(range_of) / sizeof(range_of[0]); i++) {
		range_of[i] = -1;
		for (size_t j = 0; i < nf && j < NRANGES; j++)
			if (strcmp(ranges[j].key, f[i].key) == 0)
				range_of[i] = (int)j;
	}
}

bool event_check_in_range(size_t i, double v)
{
	pthread_once(&range_once, build_range_of);
	if (i >= sizeof(range_of) / sizeof(range_of[0]))
		return false;
	int r = range_of[i];
	return r < 0 || (v >= ranges[r].lo && v <= ranges[r].hi);
}

/* An optional string member: absent or null, or a string of at most EVENT_CHECK_MAX_TEXT. */
static int opt_string(const json_t *obj, const char *key, const char *where, char *r, size_t rl)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		reasonf(r, rl, "%s%s must be a string or null, got %s", where, key,
		        json_type_name(v));
		return -EINVAL;
	}
	if (strlen(json_string_value(v)) > EVENT_CHECK_MAX_TEXT) {
		reasonf(r, rl, "%s%s is longer than %d characters (%zu)", where, key,
		        EVENT_CHECK_MAX_TEXT, strlen(json_string_value(v)));
		return -EINVAL;
	}
	return 0;
}

/* An optional integer member from 0 to INT32_MAX, or null. */
static int opt_int(const json_t *obj, const char *key, const char *where, char *r, size_t rl)
{
	json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
		char num[40] = "";
		if (json_is_integer(v))
			snprintf(num, sizeof(num), " (%lld)", (long long)json_integer_value(v));
		else if (json_is_real(v))
			event_check_format_number(json_real_value(v), num, sizeof(num));
		reasonf(r, rl, "%s%s must be an integer from 0 to %d, or null; got %s%s", where,
		        key, INT32_MAX, json_is_real(v) ? "" : json_type_name(v), num);
		return -EINVAL;
	}
	return 0;
}

static int check_metric(const struct field_def *f, const json_t *v, char *r, size_t rl)
{
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v)) {
		reasonf(r, rl, "metrics.%s must be a number or null, got %s", f->key,
		        json_type_name(v));
		return -EINVAL;
	}
	double d = json_number_value(v);
	if (event_check_range(f->key, d, r, rl))
		return -EINVAL;
	if (f->kind == FIELD_GAUGE)
		return 0;
	char num[40];
	if (!json_is_integer(v) && !(d == floor(d) && fabs(d) < 9.2e18)) {
		event_check_format_number(d, num, sizeof(num));
		reasonf(r, rl, "metrics.%s = %s: a counter must be a whole number", f->key, num);
		return -EINVAL;
	}
	long long iv = json_is_integer(v) ? (long long)json_integer_value(v) : (long long)d;
	if (iv < 0) {
		reasonf(r, rl, "metrics.%s = %lld: a counter cannot be negative (the least is 0)",
		        f->key, iv);
		return -EINVAL;
	}
	return 0;
}

/* root's member key when it is an object (*out), absent or null (*out NULL): 0; else
 * -EINVAL with "KEY must be WANT, got TYPE". */
static int opt_object(const json_t *root, const char *key, const char *want, json_t **out, char *r,
                      size_t rl)
{
	json_t *v = json_object_get(root, key);
	*out = v && !json_is_null(v) ? v : NULL;
	if (*out && !json_is_object(v)) {
		reasonf(r, rl, "%s must be %s, got %s", key, want, json_type_name(v));
		return -EINVAL;
	}
	return 0;
}

/* labels: absent, null, or an object of at most EVENT_CHECK_MAX_LABELS strings. */
static int check_labels(const json_t *root, char *r, size_t rl)
{
	json_t *labels;
	if (opt_object(root, "labels", "an object of strings", &labels, r, rl))
		return -EINVAL;
	if (!labels)
		return 0;
	if (json_object_size(labels) > EVENT_CHECK_MAX_LABELS) {
		reasonf(r, rl, "labels has %zu members: at most %d are accepted",
		        json_object_size(labels), EVENT_CHECK_MAX_LABELS);
		return -EINVAL;
	}
	const char *k;
	json_t *v;
	json_object_foreach(labels, k, v)
	{
		if (strlen(k) > EVENT_CHECK_MAX_TEXT) {
			reasonf(r, rl,
			        "labels: the key '%.64s...' is longer than %d characters (%zu)", k,
			        EVENT_CHECK_MAX_TEXT, strlen(k));
			return -EINVAL;
		}
		if (!json_is_string(v)) {
			reasonf(r, rl, "labels.%.64s must be a string, got %s", k,
			        json_type_name(v));
			return -EINVAL;
		}
		if (strlen(json_string_value(v)) > EVENT_CHECK_MAX_TEXT) {
			reasonf(r, rl, "labels.%.64s is longer than %d characters (%zu)", k,
			        EVENT_CHECK_MAX_TEXT, strlen(json_string_value(v)));
			return -EINVAL;
		}
	}
	return 0;
}

/* workload: absent, null, or an object whose namespace/pod/container are strings or null. */
static int check_workload(const json_t *root, char *r, size_t rl)
{
	json_t *w;
	if (opt_object(root, "workload", "null or an object {namespace, pod, container}", &w, r,
	               rl))
		return -EINVAL;
	if (!w)
		return 0;
	static const char *members[] = {"namespace", "pod", "container"};
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (opt_string(w, members[i], "workload.", r, rl))
			return -EINVAL;
	return 0;
}

int event_check_json(const json_t *root, const struct event_check_opts *o, double *t, char *r,
                     size_t rl)
{
	if (!json_is_object(root)) {
		reasonf(r, rl, "the event must be a JSON object, got %s", json_type_name(root));
		return -EINVAL;
	}
	json_t *sv = json_object_get(root, "schema_version");
	if (!json_is_integer(sv)) {
		reasonf(r, rl, "schema_version missing or not an integer");
		return -EINVAL;
	}
	if (json_integer_value(sv) != 1) {
		reasonf(r, rl, "schema_version %lld is not supported (this reader reads version 1)",
		        (long long)json_integer_value(sv));
		return -EINVAL;
	}
	json_t *tv = json_object_get(root, "time");
	if (!json_is_string(tv)) {
		reasonf(r, rl, "time missing or not a string (RFC 3339 UTC expected)");
		return -EINVAL;
	}
	if (event_check_time(json_string_value(tv), o, t, r, rl))
		return -EINVAL;
	json_t *gpu = json_object_get(root, "gpu");
	if (!json_is_object(gpu)) {
		reasonf(r, rl, "gpu missing or not an object");
		return -EINVAL;
	}
	if (opt_string(gpu, "uuid", "gpu.", r, rl))
		return -EINVAL;
	json_t *uuid = json_object_get(gpu, "uuid");
	if (!json_is_string(uuid) || !*json_string_value(uuid)) {
		reasonf(r, rl, "gpu.uuid missing or empty");
		return -EINVAL;
	}
	static const char *gpu_strings[] = {"model", "pci_bus_id", "device", "driver_version",
	                                    "mig_profile"};
	static const char *top_strings[] = {"hostname", "cluster", "datacenter", "rack"};
	if (opt_int(gpu, "index", "gpu.", r, rl) || opt_int(gpu, "mig_instance", "gpu.", r, rl))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(gpu_strings) / sizeof(gpu_strings[0]); i++)
		if (opt_string(gpu, gpu_strings[i], "gpu.", r, rl))
			return -EINVAL;
	for (size_t i = 0; i < sizeof(top_strings) / sizeof(top_strings[0]); i++)
		if (opt_string(root, top_strings[i], "", r, rl))
			return -EINVAL;
	json_t *metrics = json_object_get(root, "metrics");
	if (metrics && !json_is_object(metrics) && !json_is_null(metrics)) {
		reasonf(r, rl, "metrics must be an object, got %s", json_type_name(metrics));
		return -EINVAL;
	}
	json_t *extra = json_object_get(root, "extra");
	if (extra && !json_is_object(extra) && !json_is_null(extra)) {
		reasonf(r, rl, "extra must be an object, got %s", json_type_name(extra));
		return -EINVAL;
	}
	if (check_labels(root, r, rl) || check_workload(root, r, rl))
		return -EINVAL;
	size_t nf;
	const struct field_def *fields = fields_all(&nf);
	for (size_t i = 0; json_is_object(metrics) && i < nf; i++)
		if (check_metric(&fields[i], json_object_get(metrics, fields[i].key), r, rl))
			return -EINVAL;
	return 0;
}

void event_check_dead_letter(const void *payload, size_t len, size_t bound,
                             struct event_dead_letter *d)
{
	if (!bound)
		bound = EVENT_CHECK_DLQ_PAYLOAD_MAX;
	/* FNV-1a 64 from our basis (stored: it must not change); no payload hashes as none */
	uint64_t h = hash_fnv1a64_more(HASH_FNV1A64_GH_BASIS, payload, payload ? len : 0);
	d->original_size = len;
	d->len = len > bound ? bound : len;
	d->cut = d->len < len;
	snprintf(d->hash, sizeof(d->hash), "%016llx", (unsigned long long)h);
}
