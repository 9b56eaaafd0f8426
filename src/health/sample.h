/*
 * sample: one event-v1 JSON (../shared/contracts/event-v1.md) -> the values the health rules
 * read, with a validity bit per field. No I/O; jansson only for the parse.
 */
#ifndef GPUHEALTH_HEALTH_SAMPLE_H
#define GPUHEALTH_HEALTH_SAMPLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fields the health rules and the predictor read. */
enum hs_field {
	HS_GPU_TEMP,        /* °C */
	HS_MEMORY_TEMP,     /* °C */
	HS_SLOWDOWN_TEMP,   /* °C */
	HS_SHUTDOWN_TEMP,   /* °C */
	HS_MAX_OP_TEMP,     /* °C, extra.DCGM_FI_DEV_GPU_MAX_OP_TEMP */
	HS_POWER,           /* W */
	HS_POWER_LIMIT,     /* W */
	HS_GPU_UTIL,        /* % */
	HS_PCIE_REPLAY,     /* counter */
	HS_XID,             /* code of the last XID (sticky gauge) */
	HS_SBE_VOL,         /* counters */
	HS_DBE_VOL,
	HS_SBE_AGG,
	HS_DBE_AGG,
	HS_RETIRED_SBE,
	HS_RETIRED_DBE,
	HS_RETIRED_PENDING,
	HS_UNCORR_ROWS,
	HS_CORR_ROWS,
	HS_REMAP_FAILURE,   /* 0/1 */
	HS_REMAP_PENDING,   /* 0/1 */
	HS_CLOCK_REASONS,   /* bitmask */
	HS_POWER_VIOLATION, /* counter, time throttled */
	HS_THERMAL_VIOLATION,
	HS_NVLINK_CRC_FLIT, /* counters */
	HS_NVLINK_CRC_DATA,
	HS_COUNT
};

#define HS_KEY_MAX 160
#define HS_HOST_MAX 128
#define HS_MODEL_MAX 96

struct health_sample {
	char key[HS_KEY_MAX];     /* UUID, or UUID/GPU_I_ID: the Kafka key */
	char host[HS_HOST_MAX];   /* "" when unknown */
	char model[HS_MODEL_MAX]; /* "" when unknown */
	int index;                /* -1 when unknown */
	double time;              /* epoch seconds */
	uint32_t valid;           /* bit (1 << hs_field): present and not null */
	double v[HS_COUNT];       /* every field as a number */
	uint64_t u[HS_COUNT];     /* counters and codes, exact (0 for negative or fractional) */
};

static inline bool health_sample_has(const struct health_sample *s, enum hs_field f)
{
	return (s->valid >> f) & 1u;
}

/* The event key of a field ("gpu_temp"), for reasons and tests. */
const char *health_sample_field_name(enum hs_field f);

/* Sets a field (tests and in-process producers). */
void health_sample_set(struct health_sample *s, enum hs_field f, double v);

/*
 * Decodes an event-v1 object. Returns 0, or -EINVAL with the reason in err (not an object,
 * schema_version other than 1, no gpu.uuid, no or bad time). Unknown metrics are ignored, null
 * ones left invalid.
 */
int health_sample_from_json(const json_t *event, struct health_sample *out, char *err,
			    size_t errlen);
/* The same from JSON text (len bytes, need not be NUL-terminated). */
int health_sample_parse(const char *text, size_t len, struct health_sample *out, char *err,
			size_t errlen);

struct event_check_opts;
/*
 * The scorer's intake: the text checked by the one event validator (core/event_check.h, the
 * sink's rules and reasons: time inside [now - retention, now + allowed skew], ranges, types),
 * then decoded. Returns 0, or -EINVAL with the validator's reason in err (a dead letter).
 */
int health_sample_parse_checked(const char *text, size_t len, const struct event_check_opts *o,
				struct health_sample *out, char *err, size_t errlen);

#endif
