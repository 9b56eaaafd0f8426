/*
 * rules: GPU health from a stream of samples, with no I/O.
 *
 * Keeps per-GPU state (the previous counters, a short history for rates over windows, the
 * sticky XID gauge's last value, XID events still held, hysteresis of gauge thresholds) and
 * evaluates each new sample into five component scores (thermal, memory/ECC, power,
 * PCIe/NVLink, XID/driver), an overall score 0..100, a status pass/warn/fail, and the reasons.
 * The rules follow DCGM's health watches and NVIDIA's XID catalog; every threshold is a named
 * constant below, documented with its source in docs/health.md.
 *
 * "Fell off the bus": a GPU that stops reporting while its host's other GPUs keep reporting
 * for more than RULES_MISSING_INTERVALS sample intervals; see rules_missing().
 */
#ifndef GPUHEALTH_HEALTH_RULES_H
#define GPUHEALTH_HEALTH_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "health/sample.h"

/* ---- thresholds (docs/health.md gives the source of each) */
/* MEM: DCGM DcgmHealthWatch.cpp */
#define RULES_RETIRED_PAGES_FAIL 63    /* SBE + DBE retired pages >= this: fail */
#define RULES_RETIRED_DBE_FAIL 15      /* DBE retired pages > this ... */
#define RULES_RETIRED_DBE_NEW_WEEK 1   /* ... and more than this many new in the past week: fail */
#define RULES_UNCORR_ROWS_WARN 512     /* uncorrectable remapped rows >= this: warn */
#define RULES_SBE_INFO_PER_H 60.0      /* SBE rate above this lowers the memory score (no status) */
/* PCIE: DCGM replay limit per lane per minute by generation, x16 links */
#define RULES_PCIE_LANES 16
#define RULES_PCIE_WINDOW_S 60.0
/* THERMAL / POWER: DCGM warns when a violation counter grew over its 1-minute window */
#define RULES_VIOLATION_WINDOW_S 60.0
#define RULES_TEMP_WARN_MARGIN_C 2.0   /* warn at GPU_MAX_OP_TEMP - this (notes §5) */
#define RULES_TEMP_HYST_C 2.0          /* a temperature warning ends this far below its start */
#define RULES_MAX_OP_BELOW_SLOWDOWN_C 4.0 /* GPU_MAX_OP_TEMP when not reported: slowdown - this */
/* NVLINK: DCGM: any CRC error warns (limit 1); >= 100/s fails */
#define RULES_NVLINK_CRC_FAIL_PER_S 100.0
/* XID: how long an XID event keeps its severity (the gauge is sticky: a change is the event) */
#define RULES_XID_FAIL_HOLD_S 3600.0
#define RULES_XID_WARN_HOLD_S 900.0
/* fell off the bus */
#define RULES_MISSING_INTERVALS 3
/* scores */
#define RULES_SCORE_FAIL_MAX 20  /* a component with a fail reason scores at most this */
#define RULES_SCORE_WARN_MAX 60  /* ... with a warn reason */
#define RULES_SCORE_INFO_DEDUCT 5 /* each informational reason */
/* clock event bits (DCGM_CLOCKS_EVENT_REASON_*) */
#define RULES_CLK_SW_POWER_CAP 0x004u
#define RULES_CLK_HW_SLOWDOWN 0x008u
#define RULES_CLK_SW_THERMAL 0x020u
#define RULES_CLK_HW_THERMAL 0x040u
#define RULES_CLK_HW_POWER_BRAKE 0x080u

enum health_status { HEALTH_PASS = 0, HEALTH_WARN = 1, HEALTH_FAIL = 2 };

enum health_component {
	HC_THERMAL,
	HC_MEMORY,
	HC_POWER,
	HC_INTERCONNECT, /* PCIe and NVLink */
	HC_XID,          /* XID and driver */
	HC_COUNT
};

/* The actions of the economic recommendation, least invasive first. */
enum health_action { ACT_KEEP = 0, ACT_DRAIN, ACT_RESET, ACT_REBOOT, ACT_RMA, ACT_COUNT };

const char *health_status_name(enum health_status s);    /* "pass", "warn", "fail" */
const char *health_component_name(enum health_component c); /* "thermal", ... */
const char *health_action_name(enum health_action a);    /* "keep", "drain", "reset", ... */

#define HEALTH_REASON_CODE 32
#define HEALTH_REASON_TEXT 128
#define HEALTH_MAX_REASONS 12

struct health_reason {
	char code[HEALTH_REASON_CODE];  /* e.g. "dbe_volatile", "xid_79", "temp_slowdown" */
	enum health_component comp;
	enum health_status sev;         /* HEALTH_PASS: informational (lowers the score only) */
	enum health_action remedy;      /* the least action that clears the cause */
	bool event;                     /* a fail-class event: alerts are raised at once */
	char text[HEALTH_REASON_TEXT];
};

/* The trends the failure predictor reads (predict.h). */
struct health_trends {
	double sbe_per_h;        /* single-bit ECC errors per hour over the last 5 min */
	double sbe_per_h_recent; /* ... over the last minute */
	double sbe_count;        /* errors in the 5-minute window */
	double corr_rows_24h;    /* growth of correctable remapped rows over the last 24 h */
	bool pending;            /* row remap pending, or pages pending retirement */
	double thermal_frac;     /* share of the last 10 min in which THERMAL_VIOLATION grew */
	double pcie_ratio;       /* PCIe replays per minute / the link's DCGM limit */
	double temp_margin_c;    /* slowdown temperature - GPU temperature; NAN unknown */
};

struct health_result {
	char key[HS_KEY_MAX];
	char host[HS_HOST_MAX];
	double time;
	int score;                        /* 0..100 */
	enum health_status status;
	int comp[HC_COUNT];               /* 0..100 */
	size_t nreasons;
	struct health_reason reasons[HEALTH_MAX_REASONS]; /* worst first */
	bool event;                       /* a reason is a fail-class event new in this sample */
	bool missing;                     /* the GPU fell off the bus (no sample) */
	enum health_action remedy;        /* the strongest remedy over warn and fail reasons */
	struct health_trends trends;
};

struct rules_opts {
	double interval_s;     /* expected time between samples of one GPU (default 10) */
	int missing_intervals; /* K of "fell off the bus" (default RULES_MISSING_INTERVALS) */
};

struct rules;

/* Returns 0 or -ENOMEM/-EINVAL. opts may be NULL (defaults). */
int rules_create(struct rules **out, const struct rules_opts *opts);
void rules_destroy(struct rules *r);

/*
 * Feeds one sample and evaluates the GPU at its time into *res. Returns 0, -EALREADY when the
 * sample is not newer than the last one of that GPU (a redelivery: ignored, *res untouched), or
 * -ENOMEM.
 */
int rules_update(struct rules *r, const struct health_sample *s, struct health_result *res);

/*
 * The GPUs of host that are silent at time now while the host still reports (call it when a
 * sample of host arrives with a newer time). Writes up to max results, one per silent GPU
 * (status fail, reason "fell_off_bus"), and returns how many; 0 when now is not newer than the
 * last call for host.
 */
size_t rules_missing(struct rules *r, const char *host, double now, struct health_result *res,
		     size_t max);

/* What an XID code means in the catalog the rules use (e.g. 79: "GPU fell off the bus"), or
 * NULL for a code not in it. */
const char *rules_xid_what(unsigned code);

/* GPUs known. */
size_t rules_gpu_count(const struct rules *r);

/* The PCIe replay limit per minute of a GPU model's link (DCGM per-lane rate x 16 lanes). */
double rules_pcie_limit_per_min(const char *model);

#endif
