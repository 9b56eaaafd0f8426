/*
 * mock_dcgm: the `gpuhealth mock-dcgm` mode: a simulated fleet (sim/) behind a dcgm-exporter
 * compatible /metrics (exporter/), until SIGINT/SIGTERM or --duration.
 */
#ifndef GPUHEALTH_MOCK_DCGM_H
#define GPUHEALTH_MOCK_DCGM_H

struct service_ops;

/* The mode as a service (service_main; SIGHUP has nothing to reload). Its exit status: 0 on a
 * clean stop, 1 on a runtime failure (such as the port being in use), 2 on bad usage (unknown
 * --model, bad --inject, bad --host-label). */
extern const struct service_ops mock_dcgm_service_ops;

#endif
