#include "nvml/nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "core/grow.h"
#include "core/log.h"

/* ---- the part of NVML's API used here, as its nvml.h (API version 12) declares it */

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;
typedef struct nvmlEventSet_st *nvmlEventSet_t;

enum {
	NVML_SUCCESS = 0,
	NVML_ERROR_INVALID_ARGUMENT = 2,
	NVML_ERROR_NOT_SUPPORTED = 3,
	NVML_ERROR_NOT_FOUND = 6,
	NVML_ERROR_INSUFFICIENT_SIZE = 7,
	NVML_ERROR_TIMEOUT = 10,
	NVML_ERROR_FUNCTION_NOT_FOUND = 13,
	NVML_ERROR_GPU_IS_LOST = 15,
};

enum { NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2 }; /* nvmlClockType_t */
enum { NVML_TEMPERATURE_GPU = 0 };              /* nvmlTemperatureSensors_t */
enum {                                          /* nvmlTemperatureThresholds_t */
       NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0,
       NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1,
       NVML_TEMPERATURE_THRESHOLD_GPU_MAX = 3,
};
enum { NVML_MEMORY_ERROR_TYPE_CORRECTED = 0, NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1 };
enum { NVML_VOLATILE_ECC = 0, NVML_AGGREGATE_ECC = 1 }; /* nvmlEccCounterType_t */
enum {                                                  /* nvmlPageRetirementCause_t */
       NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0,
       NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1,
};
enum { NVML_PERF_POLICY_POWER = 0, NVML_PERF_POLICY_THERMAL = 1 }; /* nvmlPerfPolicyType_t */
enum { NVML_PCIE_UTIL_TX_BYTES = 0, NVML_PCIE_UTIL_RX_BYTES = 1 }; /* KB/s */
enum { NVML_FEATURE_ENABLED = 1 };                                 /* nvmlEnableState_t */
enum { NVML_DEVICE_MIG_ENABLE = 1 };
enum { /* nvmlValueType_t */
       NVML_VALUE_TYPE_DOUBLE = 0,
       NVML_VALUE_TYPE_UNSIGNED_INT = 1,
       NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
       NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
       NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
       NVML_VALUE_TYPE_SIGNED_INT = 5,
       NVML_VALUE_TYPE_UNSIGNED_SHORT = 6,
};
/* field ids of nvmlDeviceGetFieldValues */
#define NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL 38
#define NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL 45
#define NVML_FI_DEV_MEMORY_TEMP                       82
#define nvmlEventTypeXidCriticalError                 0x0000000000000008ULL
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE               96
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE               96
#define NVML_DEVICE_SERIAL_BUFFER_SIZE                30
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE        80

typedef struct {
	unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
	unsigned int version; /* sizeof | 2 << 24 */
	unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
#define nvmlMemory_v2 ((unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24)))
typedef struct {
	unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
	char busIdLegacy[16];
	unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
	char busId[32];
} nvmlPciInfo_t;
typedef struct {
	unsigned long long referenceTime, violationTime; /* µs, ns */
} nvmlViolationTime_t;
typedef union {
	double dVal;
	int siVal;
	unsigned int uiVal;
	unsigned long ulVal;
	unsigned long long ullVal;
	signed long long sllVal;
	unsigned short usVal;
} nvmlValue_t;
typedef struct {
	unsigned int fieldId, scopeId;
	long long timestamp, latencyUsec;
	int valueType;
	nvmlReturn_t nvmlReturn;
	nvmlValue_t value;
} nvmlFieldValue_t;
typedef struct {
	nvmlDevice_t device;
	unsigned long long eventType, eventData;
	unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;
typedef struct {
	unsigned int multiprocessorCount, sharedCopyEngineCount, sharedDecoderCount,
	    sharedEncoderCount, sharedJpegCount, sharedOfaCount, gpuInstanceSliceCount,
	    computeInstanceSliceCount;
	unsigned long long memorySizeMB;
} nvmlDeviceAttributes_t;
typedef struct {
	unsigned int version; /* sizeof | 2 << 24 */
	unsigned int id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount,
	    copyEngineCount, decoderCount, encoderCount, jpegCount, ofaCount;
	unsigned long long memorySizeMB;
	char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE]; /* "MIG 1g.10gb" */
} nvmlGpuInstanceProfileInfo_v2_t;
#define nvmlGpuInstanceProfileInfo_v2                                                              \
	((unsigned int)(sizeof(nvmlGpuInstanceProfileInfo_v2_t) | (2u << 24)))
#define NVML_GPU_INSTANCE_PROFILE_COUNT 0xA /* profile ids 0 (1 slice) .. 9 (1 slice rev 2) */

/* nvmlDeviceGet{Compute,Graphics}RunningProcesses_v3 and _v2 fill this; the unversioned (v1)
 * functions only its first two members (nvmlProcessInfo_v1_t) */
typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory; /* bytes; NVML_VALUE_NOT_AVAILABLE when unknown */
	unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;
#define NVML_VALUE_NOT_AVAILABLE (~0ULL)

/* The functions, resolved with dlsym. The first five are required, the rest optional (a
 * missing one leaves its fields absent). */
#define NVML_FUNCS(REQ, OPT)                                                                       \
	REQ(nvmlReturn_t, nvmlInit_v2, (void))                                                     \
	REQ(nvmlReturn_t, nvmlShutdown, (void))                                                    \
	REQ(const char *, nvmlErrorString, (nvmlReturn_t))                                         \
	REQ(nvmlReturn_t, nvmlDeviceGetCount_v2, (unsigned int *))                                 \
	REQ(nvmlReturn_t, nvmlDeviceGetHandleByIndex_v2, (unsigned int, nvmlDevice_t *))           \
	OPT(nvmlReturn_t, nvmlSystemGetDriverVersion, (char *, unsigned int))                      \
	OPT(nvmlReturn_t, nvmlDeviceGetName, (nvmlDevice_t, char *, unsigned int))                 \
	OPT(nvmlReturn_t, nvmlDeviceGetUUID, (nvmlDevice_t, char *, unsigned int))                 \
	OPT(nvmlReturn_t, nvmlDeviceGetSerial, (nvmlDevice_t, char *, unsigned int))               \
	OPT(nvmlReturn_t, nvmlDeviceGetPciInfo_v3, (nvmlDevice_t, nvmlPciInfo_t *))                \
	OPT(nvmlReturn_t, nvmlDeviceGetMinorNumber, (nvmlDevice_t, unsigned int *))                \
	OPT(nvmlReturn_t, nvmlDeviceGetMemoryInfo, (nvmlDevice_t, nvmlMemory_t *))                 \
	OPT(nvmlReturn_t, nvmlDeviceGetMemoryInfo_v2, (nvmlDevice_t, nvmlMemory_v2_t *))           \
	OPT(nvmlReturn_t, nvmlDeviceGetTemperature, (nvmlDevice_t, int, unsigned int *))           \
	OPT(nvmlReturn_t, nvmlDeviceGetTemperatureThreshold, (nvmlDevice_t, int, unsigned int *))  \
	OPT(nvmlReturn_t, nvmlDeviceGetPowerUsage, (nvmlDevice_t, unsigned int *))                 \
	OPT(nvmlReturn_t, nvmlDeviceGetPowerManagementLimit, (nvmlDevice_t, unsigned int *))       \
	OPT(nvmlReturn_t, nvmlDeviceGetEnforcedPowerLimit, (nvmlDevice_t, unsigned int *))         \
	OPT(nvmlReturn_t, nvmlDeviceGetTotalEnergyConsumption,                                     \
	    (nvmlDevice_t, unsigned long long *))                                                  \
	OPT(nvmlReturn_t, nvmlDeviceGetClockInfo, (nvmlDevice_t, int, unsigned int *))             \
	OPT(nvmlReturn_t, nvmlDeviceGetUtilizationRates, (nvmlDevice_t, nvmlUtilization_t *))      \
	OPT(nvmlReturn_t, nvmlDeviceGetEncoderUtilization,                                         \
	    (nvmlDevice_t, unsigned int *, unsigned int *))                                        \
	OPT(nvmlReturn_t, nvmlDeviceGetDecoderUtilization,                                         \
	    (nvmlDevice_t, unsigned int *, unsigned int *))                                        \
	OPT(nvmlReturn_t, nvmlDeviceGetTotalEccErrors,                                             \
	    (nvmlDevice_t, int, int, unsigned long long *))                                        \
	OPT(nvmlReturn_t, nvmlDeviceGetRetiredPages,                                               \
	    (nvmlDevice_t, int, unsigned int *, unsigned long long *))                             \
	OPT(nvmlReturn_t, nvmlDeviceGetRetiredPagesPendingStatus, (nvmlDevice_t, int *))           \
	OPT(nvmlReturn_t, nvmlDeviceGetRemappedRows,                                               \
	    (nvmlDevice_t, unsigned int *, unsigned int *, unsigned int *, unsigned int *))        \
	OPT(nvmlReturn_t, nvmlDeviceGetCurrentClocksEventReasons,                                  \
	    (nvmlDevice_t, unsigned long long *))                                                  \
	OPT(nvmlReturn_t, nvmlDeviceGetCurrentClocksThrottleReasons,                               \
	    (nvmlDevice_t, unsigned long long *))                                                  \
	OPT(nvmlReturn_t, nvmlDeviceGetPcieReplayCounter, (nvmlDevice_t, unsigned int *))          \
	OPT(nvmlReturn_t, nvmlDeviceGetPcieThroughput, (nvmlDevice_t, int, unsigned int *))        \
	OPT(nvmlReturn_t, nvmlDeviceGetViolationStatus,                                            \
	    (nvmlDevice_t, int, nvmlViolationTime_t *))                                            \
	OPT(nvmlReturn_t, nvmlDeviceGetFieldValues, (nvmlDevice_t, int, nvmlFieldValue_t *))       \
	OPT(nvmlReturn_t, nvmlEventSetCreate, (nvmlEventSet_t *))                                  \
	OPT(nvmlReturn_t, nvmlDeviceRegisterEvents,                                                \
	    (nvmlDevice_t, unsigned long long, nvmlEventSet_t))                                    \
	OPT(nvmlReturn_t, nvmlEventSetWait_v2, (nvmlEventSet_t, nvmlEventData_t *, unsigned int))  \
	OPT(nvmlReturn_t, nvmlEventSetFree, (nvmlEventSet_t))                                      \
	OPT(nvmlReturn_t, nvmlDeviceGetMigMode, (nvmlDevice_t, unsigned int *, unsigned int *))    \
	OPT(nvmlReturn_t, nvmlDeviceGetMaxMigDeviceCount, (nvmlDevice_t, unsigned int *))          \
	OPT(nvmlReturn_t, nvmlDeviceGetMigDeviceHandleByIndex,                                     \
	    (nvmlDevice_t, unsigned int, nvmlDevice_t *))                                          \
	OPT(nvmlReturn_t, nvmlDeviceGetGpuInstanceId, (nvmlDevice_t, unsigned int *))              \
	OPT(nvmlReturn_t, nvmlDeviceGetAttributes_v2, (nvmlDevice_t, nvmlDeviceAttributes_t *))    \
	OPT(nvmlReturn_t, nvmlDeviceGetGpuInstanceProfileInfoV,                                    \
	    (nvmlDevice_t, unsigned int, nvmlGpuInstanceProfileInfo_v2_t *))                       \
	OPT(nvmlReturn_t, nvmlDeviceGetComputeRunningProcesses_v3,                                 \
	    (nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *))                                   \
	OPT(nvmlReturn_t, nvmlDeviceGetComputeRunningProcesses_v2,                                 \
	    (nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *))                                   \
	OPT(nvmlReturn_t, nvmlDeviceGetComputeRunningProcesses,                                    \
	    (nvmlDevice_t, unsigned int *, nvmlProcessInfo_v1_t *))                                \
	OPT(nvmlReturn_t, nvmlDeviceGetGraphicsRunningProcesses_v3,                                \
	    (nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *))                                   \
	OPT(nvmlReturn_t, nvmlDeviceGetGraphicsRunningProcesses_v2,                                \
	    (nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *))                                   \
	OPT(nvmlReturn_t, nvmlDeviceGetGraphicsRunningProcesses,                                   \
	    (nvmlDevice_t, unsigned int *, nvmlProcessInfo_v1_t *))

struct nvml_api {
#define FIELD(ret, name, args) ret(*name) args;
	NVML_FUNCS(FIELD, FIELD)
#undef FIELD
};

/* ---- the module */

#define MAX_GPUS        1024 /* what one collector scrape takes (EVENTS_MAX_GPUS) */
#define MAX_MIG_PER_GPU 8    /* MIG devices per GPU: 7 on today's GPUs */

struct gpu {
	nvmlDevice_t h;
	struct sim_gpu id; /* identity (index, uuid, pci_bus_id, device, model_name) */
	char serial[NVML_DEVICE_SERIAL_BUFFER_SIZE + 2];
	bool events; /* registered for XID events */
	bool have_xid;
	unsigned long long xid;
	bool lost;
	uint64_t warned; /* fields whose error is logged already */
	bool warned_mig;
	/* the processes of the last update (compute and graphics merged by PID); nprocs -1 when
	 * the driver reports neither kind */
	struct fleet_process *procs;
	size_t procs_cap;
	int nprocs;
	bool warned_procs;
};

struct nvml {
	void *dl;
	struct nvml_api f;
	char library[512];
	char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE + 1];
	bool initialized;
	nvmlEventSet_t events;
	struct gpu *gpus;
	size_t ngpus;
	struct sim_gpu *out; /* entries of the last update */
	char (*serials)[NVML_DEVICE_SERIAL_BUFFER_SIZE + 2];
	size_t nout, cap;
	double t;
	unsigned long errors;
	nvmlProcessInfo_t *pbuf; /* the process queries' buffer, grown, kept across updates */
	size_t pcap;
	nvml_process_hook *proc_hook; /* told each GPU's processes after every update */
	void *proc_ud;
};

static const char *errstr(const struct nvml *n, nvmlReturn_t rc)
{
	const char *s = n->f.nvmlErrorString ? n->f.nvmlErrorString(rc) : NULL;
	return s ? s : "unknown NVML error";
}

/* Copies src into dst[size], truncated and NUL-terminated. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t len = strnlen(src, size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* The result of one NVML call for field f (or a pseudo field >= SIM_F_COUNT for identity):
 * true on success; an error other than NOT_SUPPORTED is counted and logged once. */
static bool ok(struct nvml *n, struct gpu *g, unsigned f, const char *what, nvmlReturn_t rc)
{
	if (rc == NVML_SUCCESS)
		return true;
	if (rc == NVML_ERROR_NOT_SUPPORTED)
		return false;
	if (rc == NVML_ERROR_GPU_IS_LOST) {
		if (!g->lost)
			log_warn("nvml: GPU %u (%s) is lost: %s; it is no longer listed",
			         g->id.index, g->id.uuid, errstr(n, rc));
		g->lost = true;
		return false;
	}
	n->errors++;
	uint64_t bit = f < 64 ? 1ull << f : 1ull << 63;
	if (!(g->warned & bit)) {
		g->warned |= bit;
		log_warn("nvml: GPU %u: %s failed: %s (the field is left out)", g->id.index, what,
		         errstr(n, rc));
	}
	return false;
}

static void set_u(struct sim_gpu *o, enum sim_field f, uint64_t v)
{
	o->valid |= 1ull << f;
	o->u[f] = v;
	o->f[f] = (double)v;
}

static void set_f(struct sim_gpu *o, enum sim_field f, double v)
{
	o->valid |= 1ull << f;
	o->f[f] = v;
	o->u[f] = v > 0 ? (uint64_t)llround(v) : 0;
}

#define CALL(fn, ...) (n->f.fn ? n->f.fn(__VA_ARGS__) : NVML_ERROR_NOT_SUPPORTED)

/* One NVML query of a table: the field it fills, its arguments, its name for messages. */
struct query {
	enum sim_field f;
	int a, b;
	const char *what;
};

static void read_fields(struct nvml *n, struct gpu *g, struct sim_gpu *o)
{
	nvmlDevice_t h = g->h;
	unsigned v;
	unsigned long long ull;

	if (ok(n, g, SIM_F_SM_CLOCK, "nvmlDeviceGetClockInfo(SM)",
	       CALL(nvmlDeviceGetClockInfo, h, NVML_CLOCK_SM, &v)))
		set_u(o, SIM_F_SM_CLOCK, v);
	if (ok(n, g, SIM_F_MEM_CLOCK, "nvmlDeviceGetClockInfo(MEM)",
	       CALL(nvmlDeviceGetClockInfo, h, NVML_CLOCK_MEM, &v)))
		set_u(o, SIM_F_MEM_CLOCK, v);
	if (ok(n, g, SIM_F_GPU_TEMP, "nvmlDeviceGetTemperature",
	       CALL(nvmlDeviceGetTemperature, h, NVML_TEMPERATURE_GPU, &v)))
		set_u(o, SIM_F_GPU_TEMP, v);
	if (ok(n, g, SIM_F_POWER_USAGE, "nvmlDeviceGetPowerUsage",
	       CALL(nvmlDeviceGetPowerUsage, h, &v)))
		set_f(o, SIM_F_POWER_USAGE, v / 1000.0); /* mW */
	if (ok(n, g, SIM_F_TOTAL_ENERGY, "nvmlDeviceGetTotalEnergyConsumption",
	       CALL(nvmlDeviceGetTotalEnergyConsumption, h, &ull)))
		set_u(o, SIM_F_TOTAL_ENERGY, ull); /* mJ */
	if (ok(n, g, SIM_F_PCIE_REPLAY, "nvmlDeviceGetPcieReplayCounter",
	       CALL(nvmlDeviceGetPcieReplayCounter, h, &v)))
		set_u(o, SIM_F_PCIE_REPLAY, v);
	nvmlUtilization_t ut;
	if (ok(n, g, SIM_F_GPU_UTIL, "nvmlDeviceGetUtilizationRates",
	       CALL(nvmlDeviceGetUtilizationRates, h, &ut))) {
		set_u(o, SIM_F_GPU_UTIL, ut.gpu);
		set_u(o, SIM_F_MEM_COPY_UTIL, ut.memory);
	}
	unsigned period;
	if (ok(n, g, SIM_F_ENC_UTIL, "nvmlDeviceGetEncoderUtilization",
	       CALL(nvmlDeviceGetEncoderUtilization, h, &v, &period)))
		set_u(o, SIM_F_ENC_UTIL, v);
	if (ok(n, g, SIM_F_DEC_UTIL, "nvmlDeviceGetDecoderUtilization",
	       CALL(nvmlDeviceGetDecoderUtilization, h, &v, &period)))
		set_u(o, SIM_F_DEC_UTIL, v);
	if (g->have_xid)
		set_u(o, SIM_F_XID, g->xid);

	/* memory: v2 splits off what the driver reserves (DCGM_FI_DEV_FB_RESERVED) */
	nvmlMemory_v2_t m2 = {.version = nvmlMemory_v2};
	nvmlMemory_t m1;
	nvmlReturn_t rc = CALL(nvmlDeviceGetMemoryInfo_v2, h, &m2);
	if (rc == NVML_SUCCESS) {
		set_u(o, SIM_F_FB_FREE, m2.free >> 20);
		set_u(o, SIM_F_FB_USED, m2.used >> 20);
		set_u(o, SIM_F_FB_RESERVED, m2.reserved >> 20);
	} else if (ok(n, g, SIM_F_FB_FREE, "nvmlDeviceGetMemoryInfo",
	              CALL(nvmlDeviceGetMemoryInfo, h, &m1))) {
		set_u(o, SIM_F_FB_FREE, m1.free >> 20);
		set_u(o, SIM_F_FB_USED, m1.used >> 20);
	}

	unsigned corr, unc, pending, failed;
	if (ok(n, g, SIM_F_CORRECTABLE_REMAPPED_ROWS, "nvmlDeviceGetRemappedRows",
	       CALL(nvmlDeviceGetRemappedRows, h, &corr, &unc, &pending, &failed))) {
		set_u(o, SIM_F_CORRECTABLE_REMAPPED_ROWS, corr);
		set_u(o, SIM_F_UNCORRECTABLE_REMAPPED_ROWS, unc);
		set_u(o, SIM_F_ROW_REMAP_PENDING, pending != 0);
		set_u(o, SIM_F_ROW_REMAP_FAILURE, failed != 0);
	}
	if (ok(n, g, SIM_F_PCIE_TX_BYTES, "nvmlDeviceGetPcieThroughput(TX)",
	       CALL(nvmlDeviceGetPcieThroughput, h, NVML_PCIE_UTIL_TX_BYTES, &v)))
		set_u(o, SIM_F_PCIE_TX_BYTES, (uint64_t)v * 1024); /* KB/s */
	if (ok(n, g, SIM_F_PCIE_RX_BYTES, "nvmlDeviceGetPcieThroughput(RX)",
	       CALL(nvmlDeviceGetPcieThroughput, h, NVML_PCIE_UTIL_RX_BYTES, &v)))
		set_u(o, SIM_F_PCIE_RX_BYTES, (uint64_t)v * 1024);

	static const struct query ecc[] = {
	    /* a: the error type, b: the counter */
	    {SIM_F_ECC_SBE_VOL, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC,
	     "nvmlDeviceGetTotalEccErrors(corrected, volatile)"},
	    {SIM_F_ECC_DBE_VOL, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC,
	     "nvmlDeviceGetTotalEccErrors(uncorrected, volatile)"},
	    {SIM_F_ECC_SBE_AGG, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC,
	     "nvmlDeviceGetTotalEccErrors(corrected, aggregate)"},
	    {SIM_F_ECC_DBE_AGG, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC,
	     "nvmlDeviceGetTotalEccErrors(uncorrected, aggregate)"},
	};
	for (size_t i = 0; i < sizeof(ecc) / sizeof(ecc[0]); i++)
		if (ok(n, g, ecc[i].f, ecc[i].what,
		       CALL(nvmlDeviceGetTotalEccErrors, h, ecc[i].a, ecc[i].b, &ull)))
			set_u(o, ecc[i].f, ull);

	/* page retirement (before Ampere): a count query with no buffer answers
	 * NVML_ERROR_INSUFFICIENT_SIZE when there are pages */
	static const struct query ret[] = {
	    /* a: the cause */
	    {SIM_F_RETIRED_SBE, NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, 0,
	     "nvmlDeviceGetRetiredPages(single-bit)"},
	    {SIM_F_RETIRED_DBE, NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR, 0,
	     "nvmlDeviceGetRetiredPages(double-bit)"},
	};
	for (size_t i = 0; i < sizeof(ret) / sizeof(ret[0]); i++) {
		unsigned count = 0;
		rc = CALL(nvmlDeviceGetRetiredPages, h, ret[i].a, &count, NULL);
		if (rc == NVML_ERROR_INSUFFICIENT_SIZE || ok(n, g, ret[i].f, ret[i].what, rc))
			set_u(o, ret[i].f, count);
	}
	int pend_state;
	if (ok(n, g, SIM_F_RETIRED_PENDING, "nvmlDeviceGetRetiredPagesPendingStatus",
	       CALL(nvmlDeviceGetRetiredPagesPendingStatus, h, &pend_state)))
		set_u(o, SIM_F_RETIRED_PENDING, pend_state == NVML_FEATURE_ENABLED);

	/* clock event reasons: the name since driver 535, the throttle name before */
	rc = n->f.nvmlDeviceGetCurrentClocksEventReasons
	         ? n->f.nvmlDeviceGetCurrentClocksEventReasons(h, &ull)
	         : CALL(nvmlDeviceGetCurrentClocksThrottleReasons, h, &ull);
	if (ok(n, g, SIM_F_CLOCKS_EVENT_REASONS, "nvmlDeviceGetCurrentClocksEventReasons", rc))
		set_u(o, SIM_F_CLOCKS_EVENT_REASONS, ull); /* same bits as DCGM's */

	nvmlViolationTime_t vt;
	if (ok(n, g, SIM_F_POWER_VIOLATION, "nvmlDeviceGetViolationStatus(power)",
	       CALL(nvmlDeviceGetViolationStatus, h, NVML_PERF_POLICY_POWER, &vt)))
		set_u(o, SIM_F_POWER_VIOLATION, vt.violationTime);
	if (ok(n, g, SIM_F_THERMAL_VIOLATION, "nvmlDeviceGetViolationStatus(thermal)",
	       CALL(nvmlDeviceGetViolationStatus, h, NVML_PERF_POLICY_THERMAL, &vt)))
		set_u(o, SIM_F_THERMAL_VIOLATION, vt.violationTime);

	/* fields only the field-value API has */
	static const struct {
		enum sim_field f;
		unsigned id;
		const char *what;
	} fv_ids[] = {
	    {SIM_F_MEMORY_TEMP, NVML_FI_DEV_MEMORY_TEMP, "NVML_FI_DEV_MEMORY_TEMP"},
	    {SIM_F_NVLINK_CRC_FLIT_ERRORS, NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL,
	     "NVML_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL"},
	    {SIM_F_NVLINK_CRC_DATA_ERRORS, NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL,
	     "NVML_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL"},
	};
	enum { NFV = sizeof(fv_ids) / sizeof(fv_ids[0]) };
	nvmlFieldValue_t fv[NFV];
	memset(fv, 0, sizeof(fv));
	for (size_t i = 0; i < NFV; i++)
		fv[i].fieldId = fv_ids[i].id;
	rc = CALL(nvmlDeviceGetFieldValues, h, (int)NFV, fv);
	if (ok(n, g, SIM_F_MEMORY_TEMP, "nvmlDeviceGetFieldValues", rc)) {
		for (size_t i = 0; i < NFV; i++) {
			if (!ok(n, g, fv_ids[i].f, fv_ids[i].what, fv[i].nvmlReturn))
				continue;
			const nvmlValue_t *val = &fv[i].value;
			switch (fv[i].valueType) {
			case NVML_VALUE_TYPE_DOUBLE:
				if (isfinite(val->dVal) && val->dVal >= 0)
					set_u(o, fv_ids[i].f, (uint64_t)llround(val->dVal));
				break;
			case NVML_VALUE_TYPE_UNSIGNED_INT: set_u(o, fv_ids[i].f, val->uiVal); break;
			case NVML_VALUE_TYPE_UNSIGNED_LONG:
				set_u(o, fv_ids[i].f, val->ulVal);
				break;
			case NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
				set_u(o, fv_ids[i].f, val->ullVal);
				break;
			case NVML_VALUE_TYPE_SIGNED_LONG_LONG:
				if (val->sllVal >= 0)
					set_u(o, fv_ids[i].f, (uint64_t)val->sllVal);
				break;
			case NVML_VALUE_TYPE_SIGNED_INT:
				if (val->siVal >= 0)
					set_u(o, fv_ids[i].f, (uint64_t)val->siVal);
				break;
			case NVML_VALUE_TYPE_UNSIGNED_SHORT:
				set_u(o, fv_ids[i].f, val->usVal);
				break;
			default: break; /* a type this build does not know: left out */
			}
		}
	}

	static const struct query thr[] = {
	    /* a: the threshold */
	    {SIM_F_SLOWDOWN_TEMP, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, 0,
	     "nvmlDeviceGetTemperatureThreshold(SLOWDOWN)"},
	    {SIM_F_SHUTDOWN_TEMP, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, 0,
	     "nvmlDeviceGetTemperatureThreshold(SHUTDOWN)"},
	    {SIM_F_GPU_MAX_OP_TEMP, NVML_TEMPERATURE_THRESHOLD_GPU_MAX, 0,
	     "nvmlDeviceGetTemperatureThreshold(GPU_MAX)"},
	};
	for (size_t i = 0; i < sizeof(thr) / sizeof(thr[0]); i++)
		if (ok(n, g, thr[i].f, thr[i].what,
		       CALL(nvmlDeviceGetTemperatureThreshold, h, thr[i].a, &v)))
			set_u(o, thr[i].f, v);
	if (ok(n, g, SIM_F_POWER_MGMT_LIMIT, "nvmlDeviceGetPowerManagementLimit",
	       CALL(nvmlDeviceGetPowerManagementLimit, h, &v)))
		set_f(o, SIM_F_POWER_MGMT_LIMIT, v / 1000.0);
	if (ok(n, g, SIM_F_ENFORCED_POWER_LIMIT, "nvmlDeviceGetEnforcedPowerLimit",
	       CALL(nvmlDeviceGetEnforcedPowerLimit, h, &v)))
		set_f(o, SIM_F_ENFORCED_POWER_LIMIT, v / 1000.0);
}

static int grow(struct nvml *n, size_t need)
{
	/* two arrays of one capacity: each grows alike from it; cap moves when both have */
	size_t co = n->cap, cs = n->cap;
	if (grow_array((void **)&n->out, &co, need, sizeof(*n->out), 8) ||
	    grow_array((void **)&n->serials, &cs, need, sizeof(*n->serials), 8))
		return -ENOMEM;
	n->cap = co;
	return 0;
}

/* The GPU_I_PROFILE of a MIG device, e.g. "1g.10gb": the name of the parent's GPU instance
 * profile with the same slices and memory (nvmlDeviceGetGpuInstanceProfileInfoV needs no
 * privilege, unlike looking the instance up by id), without its "MIG " prefix; else the name
 * NVIDIA's profiles follow, slices "g." memory in GiB rounded up "gb". */
static void mig_profile_name(struct nvml *n, struct gpu *g, const nvmlDeviceAttributes_t *at,
                             char *out, size_t size)
{
	for (unsigned p = 0;
	     n->f.nvmlDeviceGetGpuInstanceProfileInfoV && p < NVML_GPU_INSTANCE_PROFILE_COUNT;
	     p++) {
		nvmlGpuInstanceProfileInfo_v2_t info;
		memset(&info, 0, sizeof(info));
		info.version = nvmlGpuInstanceProfileInfo_v2;
		if (n->f.nvmlDeviceGetGpuInstanceProfileInfoV(g->h, p, &info) != NVML_SUCCESS ||
		    info.sliceCount != at->gpuInstanceSliceCount ||
		    info.memorySizeMB != at->memorySizeMB)
			continue;
		info.name[sizeof(info.name) - 1] = '\0';
		const char *name = strncmp(info.name, "MIG ", 4) == 0 ? info.name + 4 : info.name;
		if (*name) {
			copy_str(out, size, name);
			return;
		}
	}
	snprintf(out, size, "%ug.%llugb", at->gpuInstanceSliceCount,
	         (at->memorySizeMB + 1023) / 1024);
}

/* The MIG devices of g after its entry. */
static int read_mig(struct nvml *n, struct gpu *g)
{
	unsigned cur = 0, pend = 0, max = 0;
	if (!n->f.nvmlDeviceGetMigMode || !n->f.nvmlDeviceGetMigDeviceHandleByIndex ||
	    n->f.nvmlDeviceGetMigMode(g->h, &cur, &pend) != NVML_SUCCESS ||
	    cur != NVML_DEVICE_MIG_ENABLE)
		return 0;
	if (CALL(nvmlDeviceGetMaxMigDeviceCount, g->h, &max) != NVML_SUCCESS ||
	    max > MAX_MIG_PER_GPU)
		max = MAX_MIG_PER_GPU;
	for (unsigned i = 0; i < max; i++) {
		nvmlDevice_t mh;
		nvmlReturn_t rc = n->f.nvmlDeviceGetMigDeviceHandleByIndex(g->h, i, &mh);
		if (rc == NVML_ERROR_NOT_FOUND || rc == NVML_ERROR_INVALID_ARGUMENT)
			continue; /* no MIG device in that slot */
		if (rc != NVML_SUCCESS) {
			if (!g->warned_mig)
				log_warn("nvml: GPU %u: nvmlDeviceGetMigDeviceHandleByIndex(%u) "
				         "failed: %s",
				         g->id.index, i, errstr(n, rc));
			g->warned_mig = true;
			n->errors++;
			continue;
		}
		unsigned gi;
		if (CALL(nvmlDeviceGetGpuInstanceId, mh, &gi) != NVML_SUCCESS)
			continue; /* without GPU_I_ID it cannot be told from its siblings */
		if (n->nout >= MAX_GPUS)
			break;
		if (grow(n, n->nout + 1))
			return -ENOMEM;
		struct sim_gpu *o = &n->out[n->nout];
		*o = g->id;
		o->present = true;
		o->mig_instance = gi;
		nvmlDeviceAttributes_t at;
		if (CALL(nvmlDeviceGetAttributes_v2, mh, &at) == NVML_SUCCESS)
			mig_profile_name(n, g, &at, o->mig_profile, sizeof(o->mig_profile));
		else
			copy_str(o->mig_profile, sizeof(o->mig_profile), "unknown");
		nvmlMemory_t m;
		if (CALL(nvmlDeviceGetMemoryInfo, mh, &m) == NVML_SUCCESS) {
			set_u(o, SIM_F_FB_FREE, m.free >> 20);
			set_u(o, SIM_F_FB_USED, m.used >> 20);
		}
		copy_str(n->serials[n->nout], sizeof(n->serials[0]), g->serial);
		n->nout++;
	}
	return 0;
}

static void drain_events(struct nvml *n)
{
	if (!n->events || !n->f.nvmlEventSetWait_v2)
		return;
	for (int k = 0; k < 4096; k++) { /* bounded: a storm waits for the next update */
		nvmlEventData_t d;
		memset(&d, 0, sizeof(d));
		nvmlReturn_t rc = n->f.nvmlEventSetWait_v2(n->events, &d, 0);
		if (rc == NVML_ERROR_TIMEOUT)
			return;
		if (rc != NVML_SUCCESS) {
			n->errors++;
			log_debug("nvml: nvmlEventSetWait_v2: %s", errstr(n, rc));
			return;
		}
		if (!(d.eventType & nvmlEventTypeXidCriticalError))
			continue;
		for (size_t i = 0; i < n->ngpus; i++)
			if (n->gpus[i].h == d.device) {
				n->gpus[i].have_xid = true;
				n->gpus[i].xid = d.eventData;
				log_warn("nvml: GPU %u (%s): XID %llu", n->gpus[i].id.index,
				         n->gpus[i].id.uuid, d.eventData);
			}
	}
}

/* ---- processes */

/* Each query's buffer starts with this many entries and grows on NVML_ERROR_INSUFFICIENT_SIZE
 * to what NVML asks for (plus a margin: processes start between two calls), at most
 * NVML_PROCS_MAX, in at most NVML_PROCS_TRIES calls. */
#define NVML_PROCS_START 4
#define NVML_PROCS_MAX   4096
#define NVML_PROCS_TRIES 4

/* The user and command line of pid from /proc ("" each when the process is gone or hidden). */
static void proc_identity(unsigned pid, struct fleet_process *p)
{
	char path[64], line[256];
	p->user[0] = p->command[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%u/status", pid);
	FILE *f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			unsigned long uid;
			if (sscanf(line, "Uid: %lu", &uid) != 1)
				continue;
			struct passwd pw, *res = NULL;
			char pwbuf[1024];
			if (getpwuid_r((uid_t)uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
				copy_str(p->user, sizeof(p->user), res->pw_name);
			else /* no name for it here (another container's user) */
				snprintf(p->user, sizeof(p->user), "%lu", uid);
			break;
		}
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%u/cmdline", pid);
	f = fopen(path, "r");
	if (f) {
		size_t len = fread(p->command, 1, sizeof(p->command) - 1, f);
		fclose(f);
		while (len && p->command[len - 1] == '\0')
			len--; /* the terminating NULs */
		for (size_t i = 0; i < len; i++)
			if (p->command[i] == '\0' || p->command[i] == '\n' || p->command[i] == '\t')
				p->command[i] = ' '; /* between arguments */
		p->command[len] = '\0';
	}
}

/* One call of a process query into buf (*cap entries, grown on INSUFFICIENT_SIZE as NVML asks,
 * bounded); v1: the function takes v1 entries. *count: the entries read. */
static nvmlReturn_t query_grow(nvmlDevice_t h, void *fn, bool v1, nvmlProcessInfo_t **buf,
                               size_t *cap, unsigned *count)
{
	nvmlReturn_t r = NVML_ERROR_INSUFFICIENT_SIZE;
	for (int tries = 0; tries < NVML_PROCS_TRIES && r == NVML_ERROR_INSUFFICIENT_SIZE;
	     tries++) {
		if (!*buf) {
			*buf = calloc(NVML_PROCS_START, sizeof(**buf));
			if (!*buf)
				return NVML_ERROR_INSUFFICIENT_SIZE;
			*cap = NVML_PROCS_START;
		}
		unsigned c = (unsigned)*cap;
		if (!v1) {
			nvmlReturn_t (*f)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_t *);
			memcpy(&f, &fn, sizeof(f));
			r = f(h, &c, *buf);
		} else {
			/* v1 entries are smaller: read them into the same bytes, then spread them
			 */
			nvmlReturn_t (*f)(nvmlDevice_t, unsigned int *, nvmlProcessInfo_v1_t *);
			memcpy(&f, &fn, sizeof(f));
			nvmlProcessInfo_v1_t *e1 = (nvmlProcessInfo_v1_t *)*buf;
			r = f(h, &c, e1);
			if (r == NVML_SUCCESS)
				for (size_t i = c <= *cap ? c : *cap; i-- > 0;) {
					nvmlProcessInfo_v1_t e = e1[i];
					(*buf)[i] =
					    (nvmlProcessInfo_t){e.pid, e.usedGpuMemory, 0, 0};
				}
		}
		if (r == NVML_SUCCESS) {
			*count = c <= *cap ? c : (unsigned)*cap;
			return r;
		}
		if (r != NVML_ERROR_INSUFFICIENT_SIZE)
			return r;
		/* c: what NVML needs now; a margin for processes starting meanwhile */
		size_t want = (size_t)c + 8 > *cap * 2 ? (size_t)c + 8 : *cap * 2;
		if (want > NVML_PROCS_MAX)
			want = NVML_PROCS_MAX;
		if (want <= *cap)
			return r; /* at the bound */
		nvmlProcessInfo_t *nb = realloc(*buf, want * sizeof(*nb));
		if (!nb)
			return r;
		*buf = nb;
		*cap = want;
	}
	return r;
}

/* One kind of processes: the _v3 function, else _v2, else v1 (a missing symbol, or one that
 * answers "not supported" or "function not found"). Returns NVML's answer. */
static nvmlReturn_t query_procs(struct nvml *n, nvmlDevice_t h, bool graphics,
                                nvmlProcessInfo_t **buf, size_t *cap, unsigned *count)
{
	void *fns[3];
	void *v3 = NULL, *v2 = NULL, *v1 = NULL;
	if (graphics) {
		memcpy(&v3, &n->f.nvmlDeviceGetGraphicsRunningProcesses_v3, sizeof(v3));
		memcpy(&v2, &n->f.nvmlDeviceGetGraphicsRunningProcesses_v2, sizeof(v2));
		memcpy(&v1, &n->f.nvmlDeviceGetGraphicsRunningProcesses, sizeof(v1));
	} else {
		memcpy(&v3, &n->f.nvmlDeviceGetComputeRunningProcesses_v3, sizeof(v3));
		memcpy(&v2, &n->f.nvmlDeviceGetComputeRunningProcesses_v2, sizeof(v2));
		memcpy(&v1, &n->f.nvmlDeviceGetComputeRunningProcesses, sizeof(v1));
	}
	fns[0] = v3;
	fns[1] = v2;
	fns[2] = v1;
	nvmlReturn_t r = NVML_ERROR_NOT_SUPPORTED;
	*count = 0;
	for (int k = 0; k < 3; k++) {
		if (!fns[k])
			continue;
		r = query_grow(h, fns[k], k == 2, buf, cap, count);
		if (r != NVML_ERROR_NOT_SUPPORTED && r != NVML_ERROR_FUNCTION_NOT_FOUND)
			return r;
	}
	return r;
}

/* Adds the entries of one kind to g's list, merging a PID seen in the other kind. */
static int add_procs(struct gpu *g, const nvmlProcessInfo_t *e, unsigned count, bool graphics)
{
	for (unsigned i = 0; i < count; i++) {
		int k = 0;
		while (k < g->nprocs && g->procs[k].pid != e[i].pid)
			k++;
		if (k < g->nprocs) { /* the same process in both lists */
			g->procs[k].type = FLEET_PROC_BOTH;
			if (isnan(g->procs[k].used_mib) &&
			    e[i].usedGpuMemory != NVML_VALUE_NOT_AVAILABLE)
				g->procs[k].used_mib =
				    (double)e[i].usedGpuMemory / (1024.0 * 1024.0);
			continue;
		}
		if (grow_array((void **)&g->procs, &g->procs_cap, (size_t)g->nprocs + 1,
		               sizeof(*g->procs), 8))
			return -ENOMEM;
		struct fleet_process *p = &g->procs[g->nprocs++];
		memset(p, 0, sizeof(*p));
		p->pid = e[i].pid;
		p->type = graphics ? FLEET_PROC_GRAPHICS : FLEET_PROC_COMPUTE;
		p->used_mib = e[i].usedGpuMemory == NVML_VALUE_NOT_AVAILABLE
		                  ? NAN
		                  : (double)e[i].usedGpuMemory / (1024.0 * 1024.0);
		proc_identity(p->pid, p);
	}
	return 0;
}

/* The processes of GPU g: -1 when neither kind is reported (not supported, an error). */
static int read_procs(struct nvml *n, struct gpu *g)
{
	g->nprocs = -1;
	bool any = false;
	for (int kind = 0; kind < 2; kind++) {
		unsigned count = 0;
		nvmlReturn_t r = query_procs(n, g->h, kind == 1, &n->pbuf, &n->pcap, &count);
		if (r != NVML_SUCCESS) {
			if (r != NVML_ERROR_NOT_SUPPORTED && r != NVML_ERROR_FUNCTION_NOT_FOUND &&
			    !g->warned_procs) {
				g->warned_procs = true;
				n->errors++;
				log_warn(
				    "nvml: GPU %u: listing its %s processes failed: %s (left out)",
				    g->id.index, kind ? "graphics" : "compute", errstr(n, r));
			}
			continue;
		}
		if (!any)
			g->nprocs = 0;
		any = true;
		if (add_procs(g, n->pbuf, count, kind == 1))
			return -ENOMEM;
	}
	return 0;
}

int nvml_update(struct nvml *n, double t)
{
	n->t = t;
	drain_events(n);
	n->nout = 0;
	for (size_t i = 0; i < n->ngpus; i++) {
		struct gpu *g = &n->gpus[i];
		if (grow(n, n->nout + 1))
			return -ENOMEM;
		struct sim_gpu *o = &n->out[n->nout];
		*o = g->id;
		o->present = !g->lost;
		copy_str(n->serials[n->nout], sizeof(n->serials[0]), g->serial);
		n->nout++;
		if (g->lost)
			continue;
		read_fields(n, g, o);
		if (!g->lost && read_procs(n, g))
			return -ENOMEM;
		if (g->lost) { /* lost during this read */
			n->out[n->nout - 1].present = false;
			continue;
		}
		if (read_mig(n, g))
			return -ENOMEM;
	}
	for (size_t i = 0; n->proc_hook && i < n->ngpus; i++)
		if (!n->gpus[i].lost)
			n->proc_hook(n->proc_ud, n->gpus[i].id.uuid, n->gpus[i].procs,
			             n->gpus[i].nprocs);
	return 0;
}

void nvml_set_process_hook(struct nvml *n, nvml_process_hook *hook, void *ud)
{
	n->proc_hook = hook;
	n->proc_ud = ud;
}

static int load(struct nvml *n, const char *library, char *err, size_t errlen)
{
	const char *lib = library && *library ? library : NVML_DEFAULT_LIBRARY;
	copy_str(n->library, sizeof(n->library), lib);
	n->dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!n->dl) {
		const char *why = dlerror();
		snprintf(
		    err, errlen,
		    "cannot load the NVIDIA management library: tried %s%s (%s). Install the "
		    "NVIDIA driver (its libnvidia-ml.so.1: Debian libnvidia-ml1 or "
		    "nvidia-driver, Ubuntu libnvidia-compute-<version>), or point --nvml-library "
		    "(NVML_LIBRARY) at it",
		    lib, library && *library ? "" : " through the library search path",
		    why ? why : "not found");
		return -ENOENT;
	}
	struct {
		const char *name;
		void **slot;
		bool required;
	} syms[] = {
#define SYM_REQ(ret, name, args) {#name, (void **)&n->f.name, true},
#define SYM_OPT(ret, name, args) {#name, (void **)&n->f.name, false},
	    NVML_FUNCS(SYM_REQ, SYM_OPT)
#undef SYM_REQ
#undef SYM_OPT
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		dlerror();
		void *p = dlsym(n->dl, syms[i].name);
		if (!p && syms[i].required) {
			snprintf(
			    err, errlen,
			    "%s is not an NVIDIA management library this program can use: it has "
			    "no %s (NVML 11 or newer, driver 450+, is needed)",
			    lib, syms[i].name);
			return -ENOSYS;
		}
		memcpy(syms[i].slot, &p,
		       sizeof(p)); /* object to function pointer, as POSIX allows */
	}
	return 0;
}

static void read_identity(struct nvml *n, struct gpu *g, unsigned index)
{
	struct sim_gpu *id = &g->id;
	memset(id, 0, sizeof(*id));
	id->index = index;
	char buf[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
	if (ok(n, g, 64, "nvmlDeviceGetUUID",
	       CALL(nvmlDeviceGetUUID, g->h, buf, (unsigned)sizeof(buf))))
		copy_str(id->uuid, sizeof(id->uuid), buf);
	nvmlPciInfo_t pci;
	if (ok(n, g, 64, "nvmlDeviceGetPciInfo_v3", CALL(nvmlDeviceGetPciInfo_v3, g->h, &pci))) {
		pci.busId[sizeof(pci.busId) - 1] = '\0';
		copy_str(id->pci_bus_id, sizeof(id->pci_bus_id), pci.busId);
	}
	unsigned minor;
	if (ok(n, g, 64, "nvmlDeviceGetMinorNumber", CALL(nvmlDeviceGetMinorNumber, g->h, &minor)))
		snprintf(id->device, sizeof(id->device), "nvidia%u", minor);
	else
		snprintf(id->device, sizeof(id->device), "nvidia%u", index);
	char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
	if (ok(n, g, 64, "nvmlDeviceGetName",
	       CALL(nvmlDeviceGetName, g->h, name, (unsigned)sizeof(name))))
		copy_str(id->model_name, sizeof(id->model_name), name);
	else
		copy_str(id->model_name, sizeof(id->model_name), "NVIDIA GPU");
	char serial[NVML_DEVICE_SERIAL_BUFFER_SIZE + 2];
	if (CALL(nvmlDeviceGetSerial, g->h, serial, (unsigned)sizeof(serial)) == NVML_SUCCESS)
		copy_str(g->serial, sizeof(g->serial), serial);
}

void nvml_close(struct nvml *n)
{
	if (!n)
		return;
	if (n->events && n->f.nvmlEventSetFree)
		n->f.nvmlEventSetFree(n->events);
	if (n->initialized)
		n->f.nvmlShutdown();
	/* the library stays mapped: NVML starts threads that may outlive nvmlShutdown's return,
	 * and unmapping their code under them would crash; dlclose would gain nothing */
	for (size_t i = 0; n->gpus && i < n->ngpus; i++)
		free(n->gpus[i].procs);
	free(n->gpus);
	free(n->pbuf);
	free(n->out);
	free(n->serials);
	free(n);
}

int nvml_open(struct nvml **out, const char *library, char *err, size_t errlen)
{
	*out = NULL;
	int rc = -ENOMEM;
	struct nvml *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((rc = load(n, library, err, errlen)) != 0)
		goto fail;
	nvmlReturn_t r = n->f.nvmlInit_v2();
	if (r != NVML_SUCCESS) {
		snprintf(err, errlen,
		         "NVML (%s) did not start: %s. Is the NVIDIA kernel driver loaded and the "
		         "GPU visible (nvidia-smi), and may this user open /dev/nvidia*?",
		         n->library, errstr(n, r));
		rc = -ENODEV;
		goto fail;
	}
	n->initialized = true;
	unsigned count = 0;
	r = n->f.nvmlDeviceGetCount_v2(&count);
	if (r != NVML_SUCCESS || count == 0) {
		snprintf(err, errlen, "NVML (%s) finds no GPU%s%s", n->library,
		         r != NVML_SUCCESS ? ": " : " on this machine",
		         r != NVML_SUCCESS ? errstr(n, r) : "");
		rc = -ENODEV;
		goto fail;
	}
	if (count > MAX_GPUS)
		count = MAX_GPUS;
	char drv[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
	if (CALL(nvmlSystemGetDriverVersion, drv, (unsigned)sizeof(drv)) == NVML_SUCCESS)
		copy_str(n->driver, sizeof(n->driver), drv);
	rc = -ENOMEM;
	if (!(n->gpus = calloc(count, sizeof(*n->gpus)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (n->f.nvmlEventSetCreate && n->f.nvmlDeviceRegisterEvents && n->f.nvmlEventSetWait_v2 &&
	    n->f.nvmlEventSetCreate(&n->events) != NVML_SUCCESS)
		n->events = NULL;
	for (unsigned i = 0; i < count; i++) {
		struct gpu *g = &n->gpus[n->ngpus];
		r = n->f.nvmlDeviceGetHandleByIndex_v2(i, &g->h);
		if (r != NVML_SUCCESS) {
			/* e.g. NVML_ERROR_NO_PERMISSION on a GPU of another container: said,
			 * skipped */
			log_warn("nvml: GPU %u is left out: nvmlDeviceGetHandleByIndex_v2: %s", i,
			         errstr(n, r));
			n->errors++;
			continue;
		}
		read_identity(n, g, i);
		if (n->events) {
			r = n->f.nvmlDeviceRegisterEvents(g->h, nvmlEventTypeXidCriticalError,
			                                  n->events);
			g->events = r == NVML_SUCCESS;
			if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_SUPPORTED)
				log_warn(
				    "nvml: GPU %u: no XID events: nvmlDeviceRegisterEvents: %s", i,
				    errstr(n, r));
		}
		n->ngpus++;
	}
	if (n->ngpus == 0) {
		snprintf(err, errlen, "NVML (%s) lists %u GPUs but none can be opened", n->library,
		         count);
		rc = -ENODEV;
		goto fail;
	}
	if ((rc = nvml_update(n, 0)) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	log_info("nvml: %s, driver %s: %zu GPUs (%s)", n->library, n->driver[0] ? n->driver : "?",
	         n->ngpus, n->gpus[0].id.model_name);
	*out = n; /* caller owns: nvml_close */
	return 0;
fail:
	nvml_close(n);
	return rc;
}

const char *nvml_device_uuid(const struct nvml *n, size_t d)
{
	return d < n->ngpus ? n->gpus[d].id.uuid : "";
}

int nvml_device_processes(const struct nvml *n, size_t d, const struct fleet_process **procs)
{
	*procs = NULL;
	if (d >= n->ngpus || n->gpus[d].lost)
		return -1;
	*procs = n->gpus[d].procs;
	return n->gpus[d].nprocs;
}

double nvml_time(const struct nvml *n)
{
	return n->t;
}
size_t nvml_count(const struct nvml *n)
{
	return n->nout;
}
const struct sim_gpu *nvml_gpus(const struct nvml *n)
{
	return n->out;
}
size_t nvml_gpu_devices(const struct nvml *n)
{
	return n->ngpus;
}
const char *nvml_serial(const struct nvml *n, size_t i)
{
	return i < n->nout ? n->serials[i] : "";
}
const char *nvml_driver_version(const struct nvml *n)
{
	return n->driver;
}
const char *nvml_model_name(const struct nvml *n)
{
	return n->ngpus ? n->gpus[0].id.model_name : "";
}
const char *nvml_library(const struct nvml *n)
{
	return n->library;
}
unsigned long nvml_errors(const struct nvml *n)
{
	return n->errors;
}

/* ---- as the exporter's source */

static int src_update(void *ud, double t)
{
	return nvml_update(ud, t);
}
static void src_view(void *ud, struct exporter_view *out)
{
	*out = (struct exporter_view){nvml_gpus(ud), nvml_count(ud), nvml_time(ud)};
}
static void src_destroy(void *ud)
{
	nvml_close(ud);
}

void nvml_exporter_source(struct nvml *n, struct exporter_source *out)
{
	*out = (struct exporter_source){src_update, src_view, src_destroy, n};
}

int nvml_exporter_create(struct exporter **out, const char *library,
                         const struct exporter_params *params, nvml_process_hook *hook, void *ud,
                         char *err, size_t errlen)
{
	struct nvml *n = NULL;
	*out = NULL;
	int rc = nvml_open(&n, library, err, errlen);
	if (rc)
		return rc;
	nvml_set_process_hook(n, hook, ud);
	struct exporter_params p = *params;
	if (!p.render.model_name)
		p.render.model_name = nvml_model_name(n);
	if (!p.render.driver_version)
		p.render.driver_version = n->driver;
	struct exporter_source src;
	nvml_exporter_source(n, &src);
	return exporter_create_source(out, &src, &p, err, errlen); /* owns n now (strings copied) */
}

int nvml_read_exposition(struct nvml *n, const struct render_opts *opts, double t,
                         struct strbuf *sb, char *err, size_t errlen)
{
	struct render_opts ro = *opts;
	if (!ro.model_name)
		ro.model_name = nvml_model_name(n);
	if (!ro.driver_version)
		ro.driver_version = n->driver;
	int rc = nvml_update(n, t);
	if (rc) {
		snprintf(err, errlen, "cannot read the GPUs: %s", strerror(-rc));
		return rc;
	}
	size_t bound = render_bound(n->nout, &ro);
	char *buf = malloc(bound);
	size_t len = 0;
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = render_exposition(n->out, n->nout, &ro, buf, bound, &len);
	if (!rc)
		rc = strbuf_append(sb, buf, len);
	free(buf);
	if (rc)
		snprintf(err, errlen, "cannot render the GPUs: %s", strerror(-rc));
	return rc;
}
