/*
 * sample: one event-v1 JSON (docs/event-v1.md, the repository's copy of the shared contract) -> the values the health rules
 * read, with a validity bit per field. No I/O; jansson only for the parse.
 */
#ifndef GPUHEALTH_HEALTH_SAMPLE_H
#define GPUHEALTH_HEALTH_SAMPLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fields the health rules and the predictor read: HS_<HSID> of the HEALTH rows of
 * core/fields.def (units there). */
#define GH_HEALTH(hsid, dcgm, key, ev) HS_##hsid,
#define GH_NO_HEALTH(hsid, dcgm, key, ev)
enum hs_field {
#define GH_FIELD(id, dcgm, alias, key, kind, unit, ptype, help, pos, ev, hs, hsid)                 \
	GH_##hs(hsid, dcgm, key, ev)
#include "core/fields.def"
#undef GH_FIELD
	HS_COUNT
};
#undef GH_HEALTH
#undef GH_NO_HEALTH

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
