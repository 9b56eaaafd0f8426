/*
 * mock_dcgm: the `gpuhealth mock-dcgm` mode: a simulated fleet (sim/) behind a dcgm-exporter
 * compatible /metrics (exporter/), until SIGINT/SIGTERM or --duration.
 */
#ifndef GPUHEALTH_MOCK_DCGM_H
#define GPUHEALTH_MOCK_DCGM_H

struct config;

/* Runs the mode. Returns the exit status: 0 on a clean stop, 1 on a runtime failure (such as
 * the port being in use), 2 on bad usage (unknown --model, bad --inject, bad --host-label). */
int mock_dcgm_run(struct config *cfg);

#endif
