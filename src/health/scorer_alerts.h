/*
 * scorer_alerts: the alert changes of the scorer's open batch (private to the scorer's files in
 * src/health; struct scorer and struct alert_op are scorer_int.h's). From one change of the
 * health engine's verdict, an alert_op: the message, the details and the Kafka/webhook body
 * (gpu-health-alert-v1), the workload (the judged event's; for a GPU that fell silent its own
 * last known one, read from gpu_workloads on the scorer's connection) and, with Alertmanager,
 * the alert in its model. The database writes the ops (scorer_db.h); after COMMIT each is
 * announced: to the alerts topic, the webhook and Alertmanager.
 */
#ifndef GPUHEALTH_HEALTH_SCORER_ALERTS_H
#define GPUHEALTH_HEALTH_SCORER_ALERTS_H

#include "health/health_engine.h"
#include "health/predict.h"
#include "health/rules.h"

struct scorer;
struct alert_op;

/* Adds the change c of verdict r (its prediction p, rec the recommended action's name or NULL,
 * ts its time in RFC 3339) to the open batch, and logs it. Returns 0 or -ENOMEM (nothing
 * added). */
int scorer_alerts_add(struct scorer *s, const struct health_alert_change *c,
                      const struct health_result *r, const struct prediction *p, const char *rec,
                      const char *ts);

/* After COMMIT: op's body to the alerts topic and the webhook, its Alertmanager alert to the
 * sender (which owns it from then on: op->am is NULL after). */
void scorer_alerts_announce(struct scorer *s, struct alert_op *op);

/* Frees what op owns and zeroes it. */
void scorer_alerts_free(struct alert_op *op);

#endif
