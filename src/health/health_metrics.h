/*
 * health_metrics: each GPU's latest verdict of the scorer (health score, status, failure
 * probability, recommended action) as Prometheus text, labelled like dcgm-exporter's series
 * (gpu, UUID, Hostname, GPU_I_ID for a MIG instance, cluster, datacenter, rack) plus the
 * workload that held the GPU (namespace, pod, container). The scorer thread writes; the HTTP
 * thread of --metrics-listen renders. Values are copied under the lock and rendered outside
 * it. A GPU not evaluated for stale_s seconds (the scorer's clock) leaves the exposition.
 */
#ifndef GPUHEALTH_HEALTH_HEALTH_METRICS_H
#define GPUHEALTH_HEALTH_HEALTH_METRICS_H

#include <stddef.h>

#include "core/strbuf.h"
#include "health/rules.h"

#define HEALTH_METRICS_STALE_S 600.0

struct health_metrics;

/* stale_s <= 0: HEALTH_METRICS_STALE_S. Returns 0 or -ENOMEM; *out owned by the caller. */
int health_metrics_create(struct health_metrics **out, double stale_s);
/* Takes NULL. */
void health_metrics_destroy(struct health_metrics *m);

/* The labels of GPU key from its event (JSON text, len bytes): called for each sample, as the
 * workload changes. Text that is not an event object is ignored. Returns 0 or -ENOMEM. */
int health_metrics_note_event(struct health_metrics *m, const char *key, const char *text,
                              size_t len);

/* GPU key's verdict, evaluated at now (time_mono()). A GPU without a noted event is labelled
 * with its key's UUID (and GPU_I_ID). Returns 0 or -ENOMEM. */
int health_metrics_set(struct health_metrics *m, const char *key, int score,
                       enum health_status status, double probability, enum health_action action,
                       double now);

/* Appends the four families (HELP, TYPE, one series per GPU and status/action) for the GPUs
 * evaluated within stale_s of now; drops the others. Returns 0 or -ENOMEM. */
int health_metrics_render(struct health_metrics *m, struct strbuf *out, double now);

/* GPUs held (stale ones included until the next render). */
size_t health_metrics_count(struct health_metrics *m);

#endif
