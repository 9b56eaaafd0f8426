/*
 * idlabel: the labels of a dcgm-exporter series that name its GPU (UUID, GPU_I_ID, gpu,
 * modelName, hostname, pci_bus_id, ...) and, with dcgm-exporter's Kubernetes pod mapping, its
 * workload (pod, namespace, container): one table of their names, and which of them a label
 * is. No state, no allocation; the event builder (events.h) asks for every label of every
 * sample.
 */
#ifndef GPUHEALTH_IDLABEL_H
#define GPUHEALTH_IDLABEL_H

#include <stddef.h>

/* The labels that name a GPU: where each goes in the event is the event builder's. */
enum idlabel {
	ID_UUID,
	ID_GPU_UUID, /* NVLink series */
	ID_MIG_ID,
	ID_MIG_PROFILE,
	ID_INDEX,
	ID_MODEL,
	ID_MODEL2, /* NVLink series */
	ID_PCI,
	ID_DEVICE,
	ID_HOST,
	ID_HOST_OLD,
	ID_DRIVER,
	ID_POD, /* Kubernetes workload (dcgm-exporter's pod mapping) */
	ID_NAMESPACE,
	ID_CONTAINER,
	ID_N
};

/* Which identity label a label name is (enum idlabel), or -1: one comparison per label, picked
 * by length and first letter (this runs for every label of every sample). */
int idlabel_of(const char *name, size_t len);

#endif
