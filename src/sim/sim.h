/*
 * sim: a fleet of simulated GPUs, deterministic and free of I/O.
 *
 * The values of every GPU at simulated time t are a pure function of the seed, the model, the
 * injected faults and t (the poll interval only says how long a fell-off-bus GPU stays
 * listed): the state advances in fixed steps of SIM_STEP_S simulated seconds, and a time
 * between steps is reached by a partial step on a copy. Randomness is a counter-based hash of
 * (seed, GPU, step), so nothing depends on how often or in what increments sim_advance is
 * called.
 *
 * Model: a 300 s workload cycle per GPU (idle about 10 % for 60 s, ramp to 90 % for 60 s,
 * peak for 120 s, ramp down for 60 s) with its own phase; power follows load and is capped at
 * the power limit; temperature follows power through a first-order thermal lag; clocks drop
 * and the clock-event bits are set when power- or thermally limited; rare ECC errors, PCIe
 * replays; counters only grow. Faults from inject.h change this at their time.
 */
#ifndef GPUHEALTH_SIM_H
#define GPUHEALTH_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim/inject.h"

#define SIM_STEP_S  1.0
#define SIM_CYCLE_S 300.0

/* Clock event reasons (DCGM_CLOCKS_EVENT_REASON_*). */
#define SIM_CLK_GPU_IDLE       0x001u
#define SIM_CLK_SW_POWER_CAP   0x004u
#define SIM_CLK_HW_SLOWDOWN    0x008u
#define SIM_CLK_SW_THERMAL     0x020u
#define SIM_CLK_HW_THERMAL     0x040u
#define SIM_CLK_HW_POWER_BRAKE 0x080u

/* The fields a simulated GPU reports, in the order dcgm-exporter's default-counters.csv lists
 * them, then the opt-in health fields: SIM_F_<ID> of each row of core/fields.def (units,
 * names and help there). */
enum sim_field {
#define GH_FIELD(id, dcgm, alias, key, kind, unit, ptype, help, pos, ev, hs, hsid) SIM_F_##id,
#include "core/fields.def"
#undef GH_FIELD
	SIM_F_COUNT
};

/* A model's constants. */
struct sim_model {
	const char *name;       /* as --model spells it, e.g. "A100-SXM4-80GB" */
	const char *model_name; /* the NVML name dcgm-exporter puts in modelName */
	const char *driver_version;
	double power_limit_w, idle_w_min, idle_w_max;
	unsigned sm_clock_max, sm_clock_idle, mem_clock; /* MHz */
	uint64_t fb_total_mib, fb_reserved_mib;
	double slowdown_c, shutdown_c, max_op_c;
	double pcie_replay_warn_per_min; /* DCGM's health limit for the PCIe generation x16 */
	double nvlink_bytes_per_s;       /* all links, one direction */
	bool has_retired_pages;          /* pre-Ampere page retirement (false: row remapping) */
};

/* Finds a model by name (case-insensitive). Returns NULL when unknown. */
const struct sim_model *sim_model_find(const char *name);
/* "A100-SXM4-80GB, H100-SXM5-80GB, H200" for messages. */
const char *sim_model_names(void);

/* One GPU as a scraper would see it at the current simulated time. A value type: the sim owns
 * the array sim_gpus() returns; it changes on the next sim_advance. */
struct sim_gpu {
	unsigned index;
	char uuid[48];
	char pci_bus_id[20];
	char device[24];
	bool present;            /* false once the GPU has fallen off the bus */
	uint64_t valid;          /* bit (1 << field): the GPU reports the field */
	uint64_t u[SIM_F_COUNT]; /* the value of every integer field, exact */
	double f[SIM_F_COUNT];   /* every field as a number (unrounded for gauges) */
	/* Set by live sources (nvml.h); the simulator leaves them empty. */
	char model_name[96];   /* modelName of this GPU; "": render_opts.model_name */
	char mig_profile[32];  /* GPU_I_PROFILE, e.g. "1g.10gb"; "": not a MIG instance */
	unsigned mig_instance; /* GPU_I_ID, when mig_profile is set */
	/* With sim_params.k8s: the Kubernetes pod that holds the GPU, as dcgm-exporter's pod
	 * mapping labels it (pod, namespace, container); all "" while none does. */
	char pod[64], pod_namespace[32], container[32];
};

/* True for the fields printed with a decimal point (%f), like dcgm-exporter's FP64 fields. */
bool sim_field_is_float(enum sim_field field);

struct sim_params {
	const struct sim_model *model;
	unsigned n_gpus;
	uint64_t seed;
	double poll_interval; /* simulated seconds between updates (how long XID 79 stays listed) */
	const struct inject_spec *faults; /* copied */
	size_t n_faults;
	/* Kubernetes pods: each GPU's workload cycle is one pod's run. A pod holds the GPU from
	 * the end of the idle phase (60 s into the cycle) to the end of the cycle, none during the
	 * idle phase; a new pod (name, namespace, container drawn from the seed, the GPU and the
	 * cycle's number) each cycle. */
	bool k8s;
};

struct sim;

/* Creates a fleet at simulated time 0. Returns 0, -EINVAL (bad parameters) or -ENOMEM. */
int sim_create(struct sim **out, const struct sim_params *params);
void sim_destroy(struct sim *sim);

/* Moves simulated time forward to t (seconds). Returns 0, or -EINVAL when t is before the
 * current time or not finite. */
int sim_advance(struct sim *sim, double t);
double sim_time(const struct sim *sim);
size_t sim_gpu_count(const struct sim *sim);
/* The GPUs at the current time, sim_gpu_count() of them (absent ones have present == false). */
const struct sim_gpu *sim_gpus(const struct sim *sim);
const struct sim_model *sim_model(const struct sim *sim);

/* The load (0..1) of the workload cycle at position pos (seconds) in the cycle, noise-free. */
double sim_cycle_load(double pos);

#endif
