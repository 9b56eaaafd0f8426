/*
 * inject: the fault specifications of `gpuhealth mock-dcgm --inject SPEC`.
 *
 * SPEC is a comma-separated list of key=value pairs:
 *
 *   gpu=N,fault=KIND,at=TIME[,duration=TIME][,xid=CODE]
 *
 * gpu is the GPU index (0 .. gpus-1), at the simulated time of the fault (a duration:
 * "30", "30s", "500ms", "2m"), KIND one of the names of inject_kind_name(). xid= is required
 * by fault=xid and accepted by nothing else; duration= is accepted by the lasting faults only.
 * Pure parsing: no I/O, no allocation.
 */
#ifndef GPUHEALTH_SIM_INJECT_H
#define GPUHEALTH_SIM_INJECT_H

#include <stdbool.h>
#include <stddef.h>

enum inject_kind {
	INJECT_DBE,               /* double-bit ECC error: XID 48, a row remap pending */
	INJECT_XID,               /* any XID code (xid=N) */
	INJECT_REMAP_PENDING,     /* a correctable row remap waiting for the next reset: XID 63 */
	INJECT_REMAP_FAILURE,     /* row remapping failed: XID 64, ROW_REMAP_FAILURE=1 */
	INJECT_FELL_OFF_BUS,      /* XID 79, then the GPU disappears from the output */
	INJECT_THERMAL_RUNAWAY,   /* cooling loss: temperature climbs into HW thermal slowdown */
	INJECT_POWER_BRAKE,       /* external power brake: clocks and power cut */
	INJECT_SBE_STORM,         /* rising single-bit ECC rate, XID 92, then a DBE (XID 48) */
	INJECT_NVLINK_CRC,        /* NVLink CRC flit/data errors */
	INJECT_PCIE_REPLAY_STORM, /* PCIe replays far above the health-watch threshold */
	INJECT_KIND_COUNT
};

struct inject_spec {
	unsigned gpu;
	enum inject_kind kind;
	double at;       /* simulated seconds after start */
	double duration; /* simulated seconds; < 0 when not given (the kind's default applies) */
	unsigned xid;    /* INJECT_XID only */
};

/* The accepted syntax and kinds, for messages and the man page. */
const char *inject_syntax(void);
const char *inject_kind_name(enum inject_kind kind);
/* True for the kinds that last (they accept duration=). */
bool inject_kind_lasts(enum inject_kind kind);

/* Parses one SPEC for a fleet of n_gpus GPUs. Returns 0, or -EINVAL with a message in err that
 * names the offending part and shows the accepted syntax. */
int inject_parse(const char *text, unsigned n_gpus, struct inject_spec *out, char *err,
		 size_t errlen);

#endif
