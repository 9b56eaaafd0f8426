/*
 * nvml: the GPUs of this machine read through NVIDIA's management library (NVML), loaded at
 * run time with dlopen: no NVIDIA header or library is needed to build, only the driver's
 * libnvidia-ml.so.1 to run. The few types, constants and functions used are declared in
 * nvml.c from the public NVML API reference (nvml.h of API version 12).
 *
 * Each update reads every GPU into a struct sim_gpu (the simulator's value type), so the
 * exporter's renderer writes it in dcgm-exporter's format and the rest of the pipeline takes
 * it unchanged: `mock-dcgm --nvml` serves it over HTTP (nvml_exporter_source), `collector
 * --nvml` parses it into events without HTTP (nvml_read_exposition), and the console's
 * pipeline can use either.
 *
 * A field is valid only when NVML returned it: NVML_ERROR_NOT_SUPPORTED (and any other error)
 * leaves it absent, never zero. Other errors than "not supported" are logged once per GPU
 * and field. A GPU that NVML reports lost (NVML_ERROR_GPU_IS_LOST) is listed as not present.
 * A MIG-enabled GPU adds one entry per MIG device (the parent's identity, GPU_I_PROFILE and
 * GPU_I_ID; its memory fields). XIDs come from NVML's event API (nvmlEventTypeXidCriticalError),
 * drained at every update: the field is the code of the last XID, absent until the first.
 *
 * Processes (issue #24): each update also lists every GPU's processes through
 * nvmlDeviceGet{Compute,Graphics}RunningProcesses (_v3, else _v2, else the v1 functions; the
 * buffer grows on NVML_ERROR_INSUFFICIENT_SIZE, bounded), merged by PID (a process in both
 * lists is compute+graphics), each with its user (/proc/PID/status Uid, getpwuid_r) and command
 * line (/proc/PID/cmdline), "" when /proc does not show them. A GPU whose driver reports
 * neither list has none (-1), not an empty one. MIG devices' processes are listed on the GPU.
 *
 * Not thread-safe: one thread calls update and reads the entries (the exporter's update
 * thread, or the collector's thread).
 */
#ifndef GPUHEALTH_NVML_H
#define GPUHEALTH_NVML_H

#include <stddef.h>

#include "core/strbuf.h"
#include "exporter/exporter.h"
#include "fleet/fleet.h"
#include "exporter/render.h"
#include "sim/sim.h"

/* The driver's soname, loaded when no library path is given. */
#define NVML_DEFAULT_LIBRARY "libnvidia-ml.so.1"

struct nvml;

/*
 * Loads the library (library NULL or "": NVML_DEFAULT_LIBRARY through the dynamic linker's
 * search path; otherwise that path), initializes NVML, finds the GPUs and reads them once.
 * Returns 0, or with one message in err saying what was tried and what to install:
 * -ENOENT (library not loadable), -ENOSYS (a required function is missing), -ENODEV (NVML
 * would not start: no driver, or no GPU), -ENOMEM.
 */
int nvml_open(struct nvml **out, const char *library, char *err, size_t errlen);
void nvml_close(struct nvml *n);

/* Told the processes of every GPU present after each update, on the updating thread: uuid,
 * the list (borrowed for the call) and its length (-1: not reported). */
typedef void nvml_process_hook(void *ud, const char *uuid, const struct fleet_process *procs,
                               int n);
void nvml_set_process_hook(struct nvml *n, nvml_process_hook *hook, void *ud);
/* GPU d (0 <= d < nvml_gpu_devices) of the last update: its UUID ("" past the end), and its
 * processes (borrowed until the next update; returns their count, -1 when not reported). */
const char *nvml_device_uuid(const struct nvml *n, size_t d);
int nvml_device_processes(const struct nvml *n, size_t d, const struct fleet_process **procs);

/* Reads every GPU again and drains the XID events. t is stored as the time of the values
 * (nvml_time). Returns 0 or -ENOMEM. */
int nvml_update(struct nvml *n, double t);
double nvml_time(const struct nvml *n);

/* The entries of the last update: one per GPU, then its MIG devices after it. */
size_t nvml_count(const struct nvml *n);
const struct sim_gpu *nvml_gpus(const struct nvml *n);
/* Physical GPUs (without MIG entries). */
size_t nvml_gpu_devices(const struct nvml *n);
/* The board serial number of entry i ("" when the GPU has none). */
const char *nvml_serial(const struct nvml *n, size_t i);
/* nvmlSystemGetDriverVersion ("" when unknown), the first GPU's name, the library loaded. */
const char *nvml_driver_version(const struct nvml *n);
const char *nvml_model_name(const struct nvml *n);
const char *nvml_library(const struct nvml *n);
/* Errors other than "not supported" since open (each logged once per GPU and field). */
unsigned long nvml_errors(const struct nvml *n);

/* n as the exporter's source: update reads the GPUs, destroy closes n (the exporter owns n
 * once exporter_create_source is called with it). */
void nvml_exporter_source(struct nvml *n, struct exporter_source *out);

/*
 * The exporter of `mock-dcgm --nvml` and of the console's pipeline with --nvml: opens NVML
 * (library as in nvml_open) and creates an exporter over it (exporter_create_source). In
 * params.render, a NULL model_name or driver_version is taken from NVML (each GPU's modelName
 * is its own name anyway); speed should be 1 (real time). Returns 0, or nvml_open's or
 * exporter_create_source's error with its message in err; hook (may be NULL) as
 * nvml_set_process_hook, called on the exporter's update thread; on error nothing is left open, and
 * a caller that was not asked for NVML explicitly may fall back to the simulator.
 */
int nvml_exporter_create(struct exporter **out, const char *library,
                         const struct exporter_params *params, nvml_process_hook *hook, void *ud,
                         char *err, size_t errlen);

/* Updates n and appends the dcgm-exporter text of its GPUs to sb (opts: the host label and
 * name; the model and driver come from NVML when opts leaves them NULL). For the collector's
 * local source. Returns 0 or -ENOMEM, with a message in err. */
int nvml_read_exposition(struct nvml *n, const struct render_opts *opts, double t,
                         struct strbuf *sb, char *err, size_t errlen);

#endif
