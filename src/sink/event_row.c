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

#include "core/fields.h"
#include "core/timeutil.h"

#define MAX_TEXT 512 /* longest identity string accepted (uuid, hostname, ...) */

static char copy_sql[4096];
static pthread_once_t copy_once = PTHREAD_ONCE_INIT;

static void build_copy_sql(void)
{
	size_t n;
	const struct field_def *f = fields_all(&n);
	size_t o = (size_t)snprintf(copy_sql, sizeof(copy_sql),
				    "COPY gpuhealth_stage (time, gpu_key, uuid, mig_instance, hostname, gpu_index");
	for (size_t i = 0; i < n && o < sizeof(copy_sql); i++)
		o += (size_t)snprintf(copy_sql + o, sizeof(copy_sql) - o, ", %s", f[i].key);
	if (o < sizeof(copy_sql))
		snprintf(copy_sql + o, sizeof(copy_sql) - o,
			 ", extra, mig_profile, model, pci_bus_id, device, driver_version, cluster, "
			 "datacenter, rack) FROM STDIN");
}

const char *event_row_copy_sql(void)
{
	pthread_once(&copy_once, build_copy_sql);
	return copy_sql;
}

static void reasonf(char *r, size_t rl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reasonf(char *r, size_t rl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r, rl, fmt, ap);
	va_end(ap);
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

/* An optional string member: absent or null -> NULL; other types are an error. */
static int opt_string(json_t *obj, const char *key, const char *where, const char **out, char *r,
		      size_t rl)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		reasonf(r, rl, "%s%s must be a string or null, got %s", where, key, json_type_name(v));
		return -EINVAL;
	}
	if (strlen(json_string_value(v)) > MAX_TEXT) {
		reasonf(r, rl, "%s%s is longer than %d characters", where, key, MAX_TEXT);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

/* An optional non-negative integer member. has=false when absent or null. */
static int opt_int(json_t *obj, const char *key, const char *where, long long *out, bool *has,
		   char *r, size_t rl)
{
	json_t *v = json_object_get(obj, key);
	*has = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		reasonf(r, rl, "%s%s must be a non-negative integer or null", where, key);
		return -EINVAL;
	}
	*out = (long long)json_integer_value(v);
	*has = true;
	return 0;
}

struct range {
	const char *key;
	double lo, hi;
	const char *what;
};

/* Impossible values: a sample carrying one is rejected, not stored. */
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

static int check_range(const char *key, double v, char *r, size_t rl)
{
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (strcmp(ranges[i].key, key) == 0 && (v < ranges[i].lo || v > ranges[i].hi)) {
			reasonf(r, rl, "metrics.%s = %g: %s", key, v, ranges[i].what);
			return -EINVAL;
		}
	return 0;
}

/* Writes one metric value (column), or \N. */
static int put_metric(struct strbuf *sb, const struct field_def *f, json_t *v, char *r, size_t rl)
{
	if (!v || json_is_null(v))
		return strbuf_append(sb, "\\N", 2);
	if (!json_is_number(v)) {
		reasonf(r, rl, "metrics.%s must be a number or null, got %s", f->key, json_type_name(v));
		return -EINVAL;
	}
	double d = json_number_value(v);
	if (check_range(f->key, d, r, rl))
		return -EINVAL;
	if (f->kind == FIELD_GAUGE) {
		if (json_is_integer(v))
			return strbuf_printf(sb, "%lld", (long long)json_integer_value(v));
		return strbuf_printf(sb, "%.17g", d);
	}
	/* counters and codes are 64-bit integers */
	long long iv;
	if (json_is_integer(v)) {
		iv = (long long)json_integer_value(v);
	} else if (d == floor(d) && fabs(d) < 9.2e18) {
		iv = (long long)d;
	} else {
		reasonf(r, rl, "metrics.%s = %g: a counter must be a whole number", f->key, d);
		return -EINVAL;
	}
	if (iv < 0) {
		reasonf(r, rl, "metrics.%s = %lld: a counter cannot be negative", f->key, iv);
		return -EINVAL;
	}
	return strbuf_printf(sb, "%lld", iv);
}

int event_row_append(const char *payload, size_t len, const struct event_row_opts *opts,
		     struct strbuf *out, struct event_row_info *info, char *r, size_t rl)
{
	int rc = -EINVAL;
	json_t *extra_out = NULL;
	char *extra_text = NULL;
	size_t mark = out->len;
	json_error_t jerr;
	json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		reasonf(r, rl, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		reasonf(r, rl, "the event must be a JSON object, got %s", json_type_name(root));
		goto out;
	}
	json_t *sv = json_object_get(root, "schema_version");
	if (!json_is_integer(sv)) {
		reasonf(r, rl, "schema_version missing or not an integer");
		goto out;
	}
	if (json_integer_value(sv) != 1) {
		reasonf(r, rl, "schema_version %lld is not supported (this sink reads version 1)",
			(long long)json_integer_value(sv));
		goto out;
	}
	json_t *tv = json_object_get(root, "time");
	if (!json_is_string(tv)) {
		reasonf(r, rl, "time missing or not a string (RFC 3339 UTC expected)");
		goto out;
	}
	double t;
	if (time_parse_rfc3339(json_string_value(tv), &t)) {
		reasonf(r, rl, "time '%.64s' is not RFC 3339 (e.g. 2026-11-28T12:00:10.000Z)",
			json_string_value(tv));
		goto out;
	}
	if (t < opts->now - opts->max_age_s) {
		reasonf(r, rl, "time %.64s is older than the retention (%.0f s)", json_string_value(tv),
			opts->max_age_s);
		goto out;
	}
	if (t > opts->now + opts->max_future_s) {
		reasonf(r, rl, "time %.64s is more than %.0f s in the future", json_string_value(tv),
			opts->max_future_s);
		goto out;
	}
	json_t *gpu = json_object_get(root, "gpu");
	if (!json_is_object(gpu)) {
		reasonf(r, rl, "gpu missing or not an object");
		goto out;
	}
	const char *uuid = NULL, *hostname, *model, *pci, *device, *driver, *mig_profile;
	const char *cluster, *dc, *rack;
	if (opt_string(gpu, "uuid", "gpu.", &uuid, r, rl))
		goto out;
	if (!uuid || !*uuid) {
		reasonf(r, rl, "gpu.uuid missing or empty");
		goto out;
	}
	long long index = 0, mig = 0;
	bool has_index, has_mig;
	if (opt_int(gpu, "index", "gpu.", &index, &has_index, r, rl) ||
	    opt_int(gpu, "mig_instance", "gpu.", &mig, &has_mig, r, rl) ||
	    opt_string(gpu, "model", "gpu.", &model, r, rl) ||
	    opt_string(gpu, "pci_bus_id", "gpu.", &pci, r, rl) ||
	    opt_string(gpu, "device", "gpu.", &device, r, rl) ||
	    opt_string(gpu, "driver_version", "gpu.", &driver, r, rl) ||
	    opt_string(gpu, "mig_profile", "gpu.", &mig_profile, r, rl) ||
	    opt_string(root, "hostname", "", &hostname, r, rl) ||
	    opt_string(root, "cluster", "", &cluster, r, rl) ||
	    opt_string(root, "datacenter", "", &dc, r, rl) || opt_string(root, "rack", "", &rack, r, rl))
		goto out;
	json_t *metrics = json_object_get(root, "metrics");
	if (metrics && !json_is_object(metrics) && !json_is_null(metrics)) {
		reasonf(r, rl, "metrics must be an object, got %s", json_type_name(metrics));
		goto out;
	}
	json_t *extra = json_object_get(root, "extra");
	if (extra && !json_is_object(extra) && !json_is_null(extra)) {
		reasonf(r, rl, "extra must be an object, got %s", json_type_name(extra));
		goto out;
	}

	if (has_mig)
		snprintf(info->gpu_key, sizeof(info->gpu_key), "%s/%lld", uuid, mig);
	else
		snprintf(info->gpu_key, sizeof(info->gpu_key), "%s", uuid);
	info->time = t;

	/* time, gpu_key, uuid, mig_instance, hostname, gpu_index */
	char ts[40];
	time_format_rfc3339(t, ts, sizeof(ts));
	rc = strbuf_printf(out, "%s\t", ts);
	if (!rc)
		rc = put_text(out, info->gpu_key);
	if (!rc)
		rc = strbuf_append(out, "\t", 1);
	if (!rc)
		rc = put_text(out, uuid);
	if (!rc)
		rc = has_mig ? strbuf_printf(out, "\t%lld\t", mig) : strbuf_append(out, "\t\\N\t", 4);
	if (!rc)
		rc = put_text(out, hostname);
	if (!rc)
		rc = has_index ? strbuf_printf(out, "\t%lld", index) : strbuf_append(out, "\t\\N", 3);
	if (rc)
		goto fail;

	size_t nf;
	const struct field_def *fields = fields_all(&nf);
	for (size_t i = 0; i < nf; i++) {
		rc = strbuf_append(out, "\t", 1);
		if (!rc)
			rc = put_metric(out, &fields[i], metrics ? json_object_get(metrics, fields[i].key) : NULL,
					r, rl);
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
	rc = strbuf_append(out, "\t", 1);
	if (rc)
		goto fail;
	if (json_object_size(extra_out) == 0) {
		rc = strbuf_append(out, "\\N", 2);
	} else {
		extra_text = json_dumps(extra_out, JSON_COMPACT | JSON_SORT_KEYS);
		rc = extra_text ? put_text(out, extra_text) : -ENOMEM;
	}
	const char *tail[] = {mig_profile, model, pci, device, driver, cluster, dc, rack};
	for (size_t i = 0; !rc && i < sizeof(tail) / sizeof(tail[0]); i++) {
		rc = strbuf_append(out, "\t", 1);
		if (!rc)
			rc = put_text(out, tail[i]);
	}
	if (!rc)
		rc = strbuf_append(out, "\n", 1);
	if (rc)
		goto fail;
	goto out;
fail:
	strbuf_truncate(out, mark); /* never half a row */
out:
	free(extra_text);
	json_decref(extra_out);
	json_decref(root);
	return rc;
}
