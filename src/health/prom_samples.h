/*
 * prom_samples: the samples of one dcgm-exporter scrape straight into health samples (one per
 * GPU or MIG instance), for in-process scoring without Kafka (the console, the scenario tests).
 * The same mapping as collect/events.h followed by health_sample_from_json(): the UUID label
 * (gpu_uuid on NVLink series) with "/GPU_I_ID" under MIG is the key, hostname/Hostname the
 * host, modelName the model; known fields by core/fields.h; blank sentinels and non-finite
 * values are left invalid. No JSON, no allocation per sample.
 */
#ifndef GPUHEALTH_HEALTH_PROM_SAMPLES_H
#define GPUHEALTH_HEALTH_PROM_SAMPLES_H

#include <stddef.h>

#include "health/sample.h"
#include "prom/prom.h"

struct prom_samples;

/* max_gpus: samples of more GPUs are counted in prom_samples_dropped(). Returns 0 or -ENOMEM. */
int prom_samples_create(struct prom_samples **out, size_t max_gpus);
void prom_samples_destroy(struct prom_samples *ps);

/* Starts a scrape taken at time (epoch seconds). */
void prom_samples_begin(struct prom_samples *ps, double time);
/* A prom_sample_cb; ud is the struct prom_samples. Always returns 0. */
int prom_samples_cb(const struct prom_sample *s, void *ud);

size_t prom_samples_count(const struct prom_samples *ps);
const struct health_sample *prom_samples_get(const struct prom_samples *ps, size_t i);
/* DCGM_FI_ samples that could not be placed (no UUID, too many GPUs). */
size_t prom_samples_dropped(const struct prom_samples *ps);

#endif
