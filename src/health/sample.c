#include "health/sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/event_check.h"
#include "core/timeutil.h"

/* Where each field lives in the event: metrics.<key>, or extra.<DCGM name> (an EXTRA row of
 * core/fields.def). */
#define GH_WHERE_EVENT(dcgm, key) key, false
#define GH_WHERE_EXTRA(dcgm, key) dcgm, true
#define GH_HEALTH(hsid, dcgm, key, ev) [HS_##hsid] = {GH_WHERE_##ev(dcgm, key)},
#define GH_NO_HEALTH(hsid, dcgm, key, ev)
static const struct {
	const char *key;
	bool extra;
} where[HS_COUNT] = {
#define GH_FIELD(id, dcgm, alias, key, kind, unit, ptype, help, pos, ev, hs, hsid)                 \
	GH_##hs(hsid, dcgm, key, ev)
#include "core/fields.def"
#undef GH_FIELD
};
#undef GH_HEALTH
#undef GH_NO_HEALTH
#undef GH_WHERE_EVENT
#undef GH_WHERE_EXTRA

const char *health_sample_field_name(enum hs_field f)
{
	return (unsigned)f < HS_COUNT ? where[f].key : "?";
}

void health_sample_set(struct health_sample *s, enum hs_field f, double v)
{
	if ((unsigned)f >= HS_COUNT || !isfinite(v))
		return;
	s->v[f] = v;
	s->u[f] = v >= 0 && v < 18446744073709551616.0 ? (uint64_t)v : 0;
	s->valid |= 1u << f;
}

static void copy_str(char *dst, size_t cap, const json_t *j)
{
	const char *s = json_is_string(j) ? json_string_value(j) : "";
	snprintf(dst, cap, "%s", s);
}

int health_sample_from_json(const json_t *ev, struct health_sample *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->index = -1;
	if (!json_is_object(ev)) {
		snprintf(err, errlen, "not a JSON object");
		return -EINVAL;
	}
	const json_t *ver = json_object_get(ev, "schema_version");
	if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
		snprintf(err, errlen, "schema_version is not 1");
		return -EINVAL;
	}
	const json_t *gpu = json_object_get(ev, "gpu");
	const json_t *uuid = json_object_get(gpu, "uuid");
	if (!json_is_string(uuid) || !*json_string_value(uuid)) {
		snprintf(err, errlen, "gpu.uuid missing");
		return -EINVAL;
	}
	const json_t *mig = json_object_get(gpu, "mig_instance");
	if (json_is_integer(mig))
		snprintf(out->key, sizeof(out->key), "%s/%lld", json_string_value(uuid),
			 (long long)json_integer_value(mig));
	else
		snprintf(out->key, sizeof(out->key), "%s", json_string_value(uuid));
	const json_t *t = json_object_get(ev, "time");
	if (!json_is_string(t) || time_parse_rfc3339(json_string_value(t), &out->time) != 0) {
		snprintf(err, errlen, "time missing or not RFC 3339");
		return -EINVAL;
	}
	copy_str(out->host, sizeof(out->host), json_object_get(ev, "hostname"));
	copy_str(out->model, sizeof(out->model), json_object_get(gpu, "model"));
	const json_t *idx = json_object_get(gpu, "index");
	if (json_is_integer(idx))
		out->index = (int)json_integer_value(idx);
	const json_t *metrics = json_object_get(ev, "metrics");
	const json_t *extra = json_object_get(ev, "extra");
	for (unsigned f = 0; f < HS_COUNT; f++) {
		const json_t *j = json_object_get(where[f].extra ? extra : metrics, where[f].key);
		if (json_is_integer(j)) {
			json_int_t v = json_integer_value(j);
			out->v[f] = (double)v;
			out->u[f] = v > 0 ? (uint64_t)v : 0;
			out->valid |= 1u << f;
		} else if (json_is_real(j)) {
			health_sample_set(out, (enum hs_field)f, json_real_value(j));
		}
	}
	return 0;
}

int health_sample_parse(const char *text, size_t len, struct health_sample *out, char *err,
			size_t errlen)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);
	if (!j) {
		memset(out, 0, sizeof(*out));
		snprintf(err, errlen, "invalid JSON: %s", je.text);
		return -EINVAL;
	}
	int rc = health_sample_from_json(j, out, err, errlen);
	json_decref(j);
	return rc;
}

int health_sample_parse_checked(const char *text, size_t len, const struct event_check_opts *o,
				struct health_sample *out, char *err, size_t errlen)
{
	double t;
	memset(out, 0, sizeof(*out));
	json_t *j = event_check_load(text, len, err, errlen);
	if (!j)
		return -EINVAL;
	int rc = event_check_json(j, o, &t, err, errlen);
	if (!rc)
		rc = health_sample_from_json(j, out, err, errlen);
	json_decref(j);
	return rc;
}
