/*
 * predict: the probability that a GPU fails within a horizon, from its trends (rules.h), with
 * no I/O. A logistic model with hand-set coefficients (no fleet failure data to fit them yet);
 * formula, coefficients and version are documented in docs/health.md. Change a coefficient
 * only together with PREDICT_MODEL_VERSION.
 */
#ifndef GPUHEALTH_HEALTH_PREDICT_H
#define GPUHEALTH_HEALTH_PREDICT_H

#include <stddef.h>

#include "health/rules.h"

#define PREDICT_MODEL_VERSION "gh-logit-1"
#define PREDICT_BASE_HORIZON_H 24.0 /* the logistic model's own horizon */

/* Coefficients of z = B0 + sum Bi * xi; p24 = 1 / (1 + exp(-z)). */
#define PREDICT_B0 (-7.0)
#define PREDICT_B_SBE_RATE 2.5    /* x = log10(1 + SBE per hour over 5 min) */
#define PREDICT_B_SBE_GROWTH 1.0  /* x = log2((1 + SBE/h last min) / (1 + SBE/h 5 min)), 0..3 */
#define PREDICT_SBE_GROWTH_MIN_COUNT 5 /* growth counts only with this many errors in 5 min */
#define PREDICT_B_ROWS 1.2        /* x = log10(1 + correctable remapped rows in 24 h) */
#define PREDICT_B_PENDING 1.5     /* x = 1 when a row remap or page retirement is pending */
#define PREDICT_B_THERMAL 3.0     /* x = share of the last 10 min with thermal violation growth */
#define PREDICT_B_PCIE 0.8        /* x = PCIe replays per minute / the link's limit, up to 4 */
#define PREDICT_B_HEAT 2.0        /* x = (10 - margin to slowdown in C) / 10, 0..1 */
#define PREDICT_HEAT_MARGIN_C 10.0

#define PREDICT_MAX_TERMS 8

struct prediction {
	double probability; /* within horizon_h */
	double horizon_h;
	double z;           /* the logistic model's linear score */
	int nterms;
	struct {
		const char *name;    /* "sbe_rate", "sbe_growth", ... */
		double x;            /* the feature */
		double contribution; /* coefficient x feature */
	} terms[PREDICT_MAX_TERMS];
	bool failing;                 /* the GPU already fails its health rules: probability 1 */
	enum health_action required;  /* the least action that addresses the trend */
};

/*
 * Evaluates the model for a GPU with these trends and current status. horizon_h > 0.
 * p_h = 1 - (1 - p24)^(h / 24) (a constant hazard over the horizon). A GPU whose status is
 * fail has probability 1 (it has failed already).
 */
void predict_eval(const struct health_trends *t, enum health_status status, double horizon_h,
		  struct prediction *out);

/* Alert level with hysteresis: at risk at >= level; an open risk alert holds down to
 * level * PREDICT_CLEAR_FRACTION. Returns HEALTH_WARN when at risk, else HEALTH_PASS. */
#define PREDICT_CLEAR_FRACTION 0.8
enum health_status predict_risk_status(double probability, double level, bool open);

#endif
