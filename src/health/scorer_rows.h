/*
 * scorer_rows: the scorer's health rows as PostgreSQL COPY text (private to the scorer's files
 * in src/health): a score row (gpu_health_scores: time, GPU, score, status, the five
 * components, the reasons as JSON) and a prediction row (gpu_failure_predictions: time, GPU,
 * horizon, probability, model version, the prediction's reasons, the recommendation),
 * appended to the caller's buffer, and the JSON they and the alerts carry. No I/O; the JSON
 * values returned are new references, owned by the caller.
 */
#ifndef GPUHEALTH_HEALTH_SCORER_ROWS_H
#define GPUHEALTH_HEALTH_SCORER_ROWS_H

#include <jansson.h>
#include <stdbool.h>

#include "core/strbuf.h"
#include "health/econ.h"
#include "health/predict.h"
#include "health/rules.h"

/* A verdict's reasons: [{code, component, severity, remedy, event, text}, ...]; NULL when out
 * of memory. */
json_t *scorer_rows_reasons_json(const struct health_result *r);

/* The prediction's reasons: model terms, and the costs of each action when recommended. */
json_t *scorer_rows_prediction_json(const struct prediction *p, const struct econ_result *e,
                                    enum health_action required, bool recommended);

/* Appends r's score row, sampled at ts (RFC 3339), to b. Returns 0 or -ENOMEM/-ENOSPC. */
int scorer_rows_score(struct strbuf *b, const struct health_result *r, const char *ts);

/* Appends the prediction row of r to b: reasons (borrowed) from scorer_rows_prediction_json,
 * rec the recommended action's name or NULL (none). Returns 0 or -ENOMEM/-ENOSPC. */
int scorer_rows_prediction(struct strbuf *b, const struct health_result *r,
                           const struct prediction *p, const char *ts, json_t *reasons,
                           const char *rec);

#endif
