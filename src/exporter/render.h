/*
 * render: the Prometheus text (format 0.0.4) that NVIDIA's dcgm-exporter writes, from a
 * snapshot of simulated GPUs.
 *
 * One family per DCGM field: `# HELP`, `# TYPE`, then one sample per GPU that reports the
 * field, with dcgm-exporter's labels in its order (gpu, UUID, pci_bus_id, device, modelName,
 * the host label, DCGM_FI_DRIVER_VERSION; err_code and err_msg on DCGM_FI_DEV_XID_ERRORS).
 * Fields a GPU cannot report are left out, and a family without samples is left out whole,
 * as dcgm-exporter does. Integers print as integers, FP64 fields as %f.
 * Writes into a caller buffer; nothing is allocated per sample.
 */
#ifndef GPUHEALTH_EXPORTER_RENDER_H
#define GPUHEALTH_EXPORTER_RENDER_H

#include <stdbool.h>
#include <stddef.h>

#include "sim/sim.h"

struct render_opts {
	const char *hostname;       /* value of the host label */
	const char *host_label;     /* "hostname" (current dcgm-exporter) or "Hostname" (older) */
	const char *driver_version; /* DCGM_FI_DRIVER_VERSION */
	const char *model_name;     /* modelName */
	bool k8s; /* dcgm-exporter's Kubernetes labels container, namespace, pod on every sample
	             (from sim_gpu's pod fields; "" where no pod holds the GPU) */
};

/* The DCGM name, Prometheus type and help of a field. */
const char *render_field_name(enum sim_field field);
const char *render_field_type(enum sim_field field);

/* The message dcgm-exporter's err_msg label gives an XID code ("Unknown Error" if unknown). */
const char *render_xid_message(unsigned xid);

/* Upper bound of the text for n GPUs with these options. */
size_t render_bound(size_t n_gpus, const struct render_opts *opts);

/*
 * Writes the exposition of gpus[0..n) (absent GPUs are skipped) into buf[0..cap).
 * Returns 0 with *len set (the text is NUL-terminated too), or -ENOSPC when cap is too small
 * (render_bound() is always enough).
 */
int render_exposition(const struct sim_gpu *gpus, size_t n, const struct render_opts *opts,
                      char *buf, size_t cap, size_t *len);

#endif
