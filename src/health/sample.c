#include "health/sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/event_check.h"
#include "core/timeutil.h"

/* Where each field lives in the event: metrics.<key>, or extra.<DCGM name>. */
static const struct {
	const char *key;
	bool extra;
} where[HS_COUNT] = {
	[HS_GPU_TEMP] = {"gpu_temp", false},
	[HS_MEMORY_TEMP] = {"memory_temp", false},
	[HS_SLOWDOWN_TEMP] = {"slowdown_temp", false},
	[HS_SHUTDOWN_TEMP] = {"shutdown_temp", false},
	[HS_MAX_OP_TEMP] = {"DCGM_FI_DEV_GPU_MAX_OP_TEMP", true},
	[HS_POWER] = {"power_usage", false},
	[HS_POWER_LIMIT] = {"power_limit", false},
	[HS_GPU_UTIL] = {"gpu_util", false},
	[HS_PCIE_REPLAY] = {"pcie_replay", false},
	[HS_XID] = {"xid", false},
	[HS_SBE_VOL] = {"ecc_sbe_volatile", false},
	[HS_DBE_VOL] = {"ecc_dbe_volatile", false},
	[HS_SBE_AGG] = {"ecc_sbe_aggregate", false},
	[HS_DBE_AGG] = {"ecc_dbe_aggregate", false},
	[HS_RETIRED_SBE] = {"retired_pages_sbe", false},
	[HS_RETIRED_DBE] = {"retired_pages_dbe", false},
	[HS_RETIRED_PENDING] = {"retired_pages_pending", false},
	[HS_UNCORR_ROWS] = {"uncorrectable_remapped_rows", false},
	[HS_CORR_ROWS] = {"correctable_remapped_rows", false},
	[HS_REMAP_FAILURE] = {"row_remap_failure", false},
	[HS_REMAP_PENDING] = {"row_remap_pending", false},
	[HS_CLOCK_REASONS] = {"clocks_event_reasons", false},
	[HS_POWER_VIOLATION] = {"power_violation", false},
	[HS_THERMAL_VIOLATION] = {"thermal_violation", false},
	[HS_NVLINK_CRC_FLIT] = {"nvlink_crc_flit_errors", false},
	[HS_NVLINK_CRC_DATA] = {"nvlink_crc_data_errors", false},
};

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
