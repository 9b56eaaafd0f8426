/*
 * A stand-in libnvidia-ml.so.1 for the tests: the NVML functions src/nvml/nvml.c uses, with
 * values scripted in the file that $NVML_STUB_SCRIPT names. The file is read again on every
 * call, so a test can change the values between two updates.
 *
 * Script: one "KEY VALUE" per line, '#' starts a comment. A missing key makes the function
 * answer NVML_ERROR_NOT_SUPPORTED; a value "!N" makes it answer error code N (e.g. !15 GPU is
 * lost, !999 unknown error). Keys:
 *   init                       nvmlInit_v2's answer (default 0)
 *   driver                     driver version string
 *   count                      GPUs (nvmlDeviceGetCount_v2)
 *   gN.handle                  nvmlDeviceGetHandleByIndex_v2's answer for GPU N (default 0)
 *   gN.uuid gN.name gN.serial gN.pci gN.minor
 *   gN.sm_clock gN.mem_clock gN.temp gN.memory_temp gN.power_mw gN.energy_mj gN.pcie_replay
 *   gN.util_gpu gN.util_mem gN.enc gN.dec
 *   gN.fb_free_mib gN.fb_used_mib gN.fb_reserved_mib (v2; gN.mem_v1_only 1: only v1)
 *   gN.ecc_sbe_vol gN.ecc_dbe_vol gN.ecc_sbe_agg gN.ecc_dbe_agg
 *   gN.retired_sbe gN.retired_dbe gN.retired_pending
 *   gN.remap_corr gN.remap_unc gN.remap_pending gN.remap_failure
 *   gN.clocks_event gN.pcie_tx_kb gN.pcie_rx_kb gN.power_violation_ns gN.thermal_violation_ns
 *   gN.nvlink_flit gN.nvlink_data gN.slowdown gN.shutdown gN.max_op
 *   gN.power_limit_mw gN.enforced_limit_mw
 *   gN.events                  nvmlDeviceRegisterEvents' answer (default 0)
 *   gN.xid                     an XID delivered once by nvmlEventSetWait_v2 (again when the
 *                              value changes)
 *   gN.mig                     1: MIG enabled; gN.migK.gi, gN.migK.slices, gN.migK.mem_mb,
 *                              gN.migK.fb_free_mib, gN.migK.fb_used_mib for slot K (0..6)
 *   gN.profileP.name, gN.profileP.slices, gN.profileP.mem_mb
 *                              GPU instance profile P (nvmlDeviceGetGpuInstanceProfileInfoV)
 *   gN.procs gN.gprocs         the compute and the graphics processes of GPU N
 *                              (nvmlDeviceGet{Compute,Graphics}RunningProcesses_v3):
 *                              "PID:MIB,PID:MIB,..." ("PID:-": memory not available), "" none;
 *                              a buffer too small answers NVML_ERROR_INSUFFICIENT_SIZE with the
 *                              count needed, as NVML does; gN.procs_v1 1: only the v1 functions
 *                              answer (the _v3 ones say NVML_ERROR_FUNCTION_NOT_FOUND, as
 *                              an older driver's do)
 * Counters of calls the tests check: the file $NVML_STUB_SCRIPT.calls gets "init N shutdown M"
 * written at every nvmlInit_v2 / nvmlShutdown; $NVML_STUB_SCRIPT.procs gets "calls N
 * insufficient M" at every process query (M: answers of NVML_ERROR_INSUFFICIENT_SIZE).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
typedef struct stub_dev *nvmlDevice_t;
typedef struct stub_set *nvmlEventSet_t;

#define NOT_SUPPORTED     3
#define NOT_FOUND         6
#define INVALID_ARGUMENT  2
#define INSUFFICIENT_SIZE 7
#define TIMEOUT           10

#define MAX_DEV 64
#define MAX_MIG 7

struct stub_dev {
	int gpu, mig; /* mig -1: the GPU itself */
};
struct stub_set {
	int registered[MAX_DEV];
};

static struct stub_dev devs[MAX_DEV];
static struct stub_dev migs[MAX_DEV][MAX_MIG];
static struct stub_set the_set;
static char delivered[MAX_DEV][32];
static int n_init, n_shutdown;

typedef struct {
	unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
	unsigned int version;
	unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
typedef struct {
	unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
	char busIdLegacy[16];
	unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
	char busId[32];
} nvmlPciInfo_t;
typedef struct {
	unsigned long long referenceTime, violationTime;
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

/* Looks key up in the script: 0 with the value text in out, an error code, or NOT_SUPPORTED
 * when the key is not there. */
static int lookup(const char *key, char *out, size_t outlen)
{
	const char *path = getenv("NVML_STUB_SCRIPT");
	FILE *f = path ? fopen(path, "r") : NULL;
	int rc = NOT_SUPPORTED;
	if (!f)
		return rc;
	char line[512];
	size_t klen = strlen(key);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, key, klen) != 0 || (line[klen] != ' ' && line[klen] != '\t'))
			continue;
		const char *v = line + klen;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v == '!') {
			rc = atoi(v + 1);
		} else {
			snprintf(out, outlen, "%s", v);
			rc = 0;
		}
		break;
	}
	fclose(f);
	return rc;
}

static int get_u(const char *key, unsigned long long *v)
{
	char buf[128];
	int rc = lookup(key, buf, sizeof(buf));
	if (rc == 0)
		*v = strtoull(buf, NULL, 0);
	return rc;
}

static int dev_u(nvmlDevice_t d, const char *what, unsigned long long *v)
{
	char key[64];
	if (!d)
		return INVALID_ARGUMENT;
	if (d->mig >= 0)
		snprintf(key, sizeof(key), "g%d.mig%d.%s", d->gpu, d->mig, what);
	else
		snprintf(key, sizeof(key), "g%d.%s", d->gpu, what);
	return get_u(key, v);
}

static int dev_ui(nvmlDevice_t d, const char *what, unsigned int *v)
{
	unsigned long long x = 0;
	int rc = dev_u(d, what, &x);
	if (rc == 0)
		*v = (unsigned)x;
	return rc;
}

static int dev_s(nvmlDevice_t d, const char *what, char *out, unsigned len)
{
	char key[64];
	snprintf(key, sizeof(key), "g%d.%s", d->gpu, what);
	return lookup(key, out, len);
}

static void write_calls(void)
{
	const char *path = getenv("NVML_STUB_SCRIPT");
	char p[1024];
	if (!path)
		return;
	snprintf(p, sizeof(p), "%s.calls", path);
	FILE *f = fopen(p, "w");
	if (f) {
		fprintf(f, "init %d shutdown %d\n", n_init, n_shutdown);
		fclose(f);
	}
}

nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlInit_v2(void)
{
	unsigned long long v = 0;
	int rc = get_u("init", &v);
	if (rc == NOT_SUPPORTED)
		rc = 0;
	if (rc == 0) {
		memset(delivered, 0, sizeof(delivered)); /* a new session: events are new again */
		n_init++;
		write_calls();
	}
	return rc;
}

nvmlReturn_t nvmlShutdown(void);
nvmlReturn_t nvmlShutdown(void)
{
	n_shutdown++;
	write_calls();
	return 0;
}

const char *nvmlErrorString(nvmlReturn_t rc);
const char *nvmlErrorString(nvmlReturn_t rc)
{
	switch (rc) {
	case 0: return "Success";
	case 3: return "Not Supported";
	case 9: return "Driver Not Loaded";
	case 15: return "GPU is lost";
	default: return "Unknown Error";
	}
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned len);
nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned len)
{
	return lookup("driver", v, len);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *count);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *count)
{
	unsigned long long v = 0;
	int rc = get_u("count", &v);
	if (rc == 0)
		*count = v > MAX_DEV ? MAX_DEV : (unsigned)v;
	return rc;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d)
{
	if (i >= MAX_DEV)
		return INVALID_ARGUMENT;
	char key[32];
	unsigned long long v;
	snprintf(key, sizeof(key), "g%u.handle", i);
	int rc = get_u(key, &v);
	if (rc != 0 && rc != NOT_SUPPORTED)
		return rc;
	devs[i] = (struct stub_dev){(int)i, -1};
	*d = &devs[i];
	return 0;
}

#define STR_FN(fn, key)                                                                            \
	nvmlReturn_t fn(nvmlDevice_t d, char *out, unsigned len);                                  \
	nvmlReturn_t fn(nvmlDevice_t d, char *out, unsigned len)                                   \
	{                                                                                          \
		return dev_s(d, key, out, len);                                                    \
	}
STR_FN(nvmlDeviceGetName, "name")
STR_FN(nvmlDeviceGetUUID, "uuid")
STR_FN(nvmlDeviceGetSerial, "serial")

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p);
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t *p)
{
	memset(p, 0, sizeof(*p));
	return dev_s(d, "pci", p->busId, sizeof(p->busId));
}

#define U_FN(fn, key)                                                                              \
	nvmlReturn_t fn(nvmlDevice_t d, unsigned *v);                                              \
	nvmlReturn_t fn(nvmlDevice_t d, unsigned *v)                                               \
	{                                                                                          \
		return dev_ui(d, key, v);                                                          \
	}
#define ULL_FN(fn, key)                                                                            \
	nvmlReturn_t fn(nvmlDevice_t d, unsigned long long *v);                                    \
	nvmlReturn_t fn(nvmlDevice_t d, unsigned long long *v)                                     \
	{                                                                                          \
		return dev_u(d, key, v);                                                           \
	}
U_FN(nvmlDeviceGetMinorNumber, "minor")
U_FN(nvmlDeviceGetPowerUsage, "power_mw")
U_FN(nvmlDeviceGetPowerManagementLimit, "power_limit_mw")
U_FN(nvmlDeviceGetEnforcedPowerLimit, "enforced_limit_mw")
U_FN(nvmlDeviceGetPcieReplayCounter, "pcie_replay")
U_FN(nvmlDeviceGetGpuInstanceId, "gi")
ULL_FN(nvmlDeviceGetTotalEnergyConsumption, "energy_mj")
ULL_FN(nvmlDeviceGetCurrentClocksEventReasons, "clocks_event")

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m)
{
	unsigned long long fr, us, rs = 0;
	int rc = dev_u(d, "fb_free_mib", &fr);
	if (rc == 0)
		rc = dev_u(d, "fb_used_mib", &us);
	if (rc != 0)
		return rc;
	if (d->mig < 0 && dev_u(d, "fb_reserved_mib", &rs) != 0)
		rs = 0;
	m->free = fr << 20;
	m->used = (us + rs) << 20; /* v1: used includes what the driver reserves */
	m->total = m->free + m->used;
	return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m);
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *m)
{
	unsigned long long fr, us, rs, x;
	if (m->version != (unsigned)(sizeof(nvmlMemory_v2_t) | (2u << 24)))
		return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
	int rc = dev_u(d, "mem_v1_only", &x);
	if (rc == 0 && x)
		return NOT_SUPPORTED; /* a driver before nvmlDeviceGetMemoryInfo_v2 */
	if ((rc = dev_u(d, "fb_free_mib", &fr)) || (rc = dev_u(d, "fb_used_mib", &us)) ||
	    (rc = dev_u(d, "fb_reserved_mib", &rs)))
		return rc;
	m->free = fr << 20;
	m->used = us << 20;
	m->reserved = rs << 20;
	m->total = m->free + m->used + m->reserved;
	return 0;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned *t);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned *t)
{
	return sensor == 0 ? dev_ui(d, "temp", t) : INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t d, int which, unsigned *t);
nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t d, int which, unsigned *t)
{
	static const char *const keys[] = {"shutdown", "slowdown", "mem_max", "max_op"};
	return which >= 0 && which < 4 ? dev_ui(d, keys[which], t) : INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned *c);
nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned *c)
{
	return type == 1   ? dev_ui(d, "sm_clock", c)
	       : type == 2 ? dev_ui(d, "mem_clock", c)
	                   : INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u)
{
	int rc = dev_ui(d, "util_gpu", &u->gpu);
	return rc ? rc : dev_ui(d, "util_mem", &u->memory);
}

nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned *u, unsigned *p);
nvmlReturn_t nvmlDeviceGetEncoderUtilization(nvmlDevice_t d, unsigned *u, unsigned *p)
{
	*p = 1000000;
	return dev_ui(d, "enc", u);
}

nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned *u, unsigned *p);
nvmlReturn_t nvmlDeviceGetDecoderUtilization(nvmlDevice_t d, unsigned *u, unsigned *p)
{
	*p = 1000000;
	return dev_ui(d, "dec", u);
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                         unsigned long long *v);
nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int type, int counter,
                                         unsigned long long *v)
{
	static const char *const keys[2][2] = {{"ecc_sbe_vol", "ecc_sbe_agg"},
	                                       {"ecc_dbe_vol", "ecc_dbe_agg"}};
	if (type < 0 || type > 1 || counter < 0 || counter > 1)
		return INVALID_ARGUMENT;
	return dev_u(d, keys[type][counter], v);
}

nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t d, int cause, unsigned *count,
                                       unsigned long long *addrs);
nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t d, int cause, unsigned *count,
                                       unsigned long long *addrs)
{
	unsigned n = 0;
	int rc = dev_ui(d, cause == 0 ? "retired_sbe" : "retired_dbe", &n);
	if (rc)
		return rc;
	unsigned room = *count;
	*count = n;
	if (n > room)
		return INSUFFICIENT_SIZE;
	for (unsigned i = 0; addrs && i < n; i++)
		addrs[i] = 0x1000ull * (i + 1);
	return 0;
}

nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t d, int *pending);
nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t d, int *pending)
{
	unsigned v = 0;
	int rc = dev_ui(d, "retired_pending", &v);
	if (rc == 0)
		*pending = v ? 1 : 0;
	return rc;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned *corr, unsigned *unc,
                                       unsigned *pending, unsigned *failed);
nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned *corr, unsigned *unc,
                                       unsigned *pending, unsigned *failed)
{
	int rc;
	if ((rc = dev_ui(d, "remap_corr", corr)) || (rc = dev_ui(d, "remap_unc", unc)) ||
	    (rc = dev_ui(d, "remap_pending", pending)) || (rc = dev_ui(d, "remap_failure", failed)))
		return rc;
	return 0;
}

nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned *v);
nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t d, int counter, unsigned *v)
{
	return dev_ui(d, counter == 0 ? "pcie_tx_kb" : "pcie_rx_kb", v);
}

nvmlReturn_t nvmlDeviceGetViolationStatus(nvmlDevice_t d, int policy, nvmlViolationTime_t *vt);
nvmlReturn_t nvmlDeviceGetViolationStatus(nvmlDevice_t d, int policy, nvmlViolationTime_t *vt)
{
	vt->referenceTime = 1;
	return dev_u(d, policy == 0 ? "power_violation_ns" : "thermal_violation_ns",
	             &vt->violationTime);
}

nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int n, nvmlFieldValue_t *v);
nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t d, int n, nvmlFieldValue_t *v)
{
	for (int i = 0; i < n; i++) {
		const char *key = v[i].fieldId == 82   ? "memory_temp"
		                  : v[i].fieldId == 38 ? "nvlink_flit"
		                  : v[i].fieldId == 45 ? "nvlink_data"
		                                       : NULL;
		if (!key) {
			v[i].nvmlReturn = NOT_SUPPORTED;
			continue;
		}
		/* as the driver does: temperatures as unsigned int, counters as unsigned long long
		 */
		if (v[i].fieldId == 82) {
			v[i].valueType = 1;
			v[i].nvmlReturn = dev_ui(d, key, &v[i].value.uiVal);
		} else {
			v[i].valueType = 3;
			v[i].nvmlReturn = dev_u(d, key, &v[i].value.ullVal);
		}
	}
	return 0;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set);
nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
	memset(&the_set, 0, sizeof(the_set));
	*set = &the_set;
	return 0;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set);
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set)
{
	unsigned long long v;
	int rc = dev_u(d, "events", &v);
	if (rc != 0 && rc != NOT_SUPPORTED)
		return rc;
	if (!(types & 8ull) || set != &the_set)
		return INVALID_ARGUMENT;
	set->registered[d->gpu] = 1;
	return 0;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned timeout);
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned timeout)
{
	(void)timeout;
	for (int i = 0; i < MAX_DEV; i++) {
		char key[32], val[32];
		if (!set->registered[i])
			continue;
		snprintf(key, sizeof(key), "g%d.xid", i);
		if (lookup(key, val, sizeof(val)) != 0 || strcmp(val, delivered[i]) == 0)
			continue;
		snprintf(delivered[i], sizeof(delivered[i]), "%s", val);
		memset(data, 0, sizeof(*data));
		data->device = &devs[i];
		data->eventType = 8;
		data->eventData = strtoull(val, NULL, 0);
		data->gpuInstanceId = 0xFFFFFFFFu;
		data->computeInstanceId = 0xFFFFFFFFu;
		return 0;
	}
	return TIMEOUT;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
	return set == &the_set ? 0 : INVALID_ARGUMENT;
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned *cur, unsigned *pend);
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned *cur, unsigned *pend)
{
	int rc = dev_ui(d, "mig", cur);
	if (rc == 0)
		*pend = *cur;
	return rc;
}

nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned *count);
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned *count)
{
	*count = MAX_MIG;
	return d->mig < 0 ? 0 : NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned i, nvmlDevice_t *m);
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned i, nvmlDevice_t *m)
{
	char key[48], val[32];
	if (i >= MAX_MIG || d->mig >= 0)
		return INVALID_ARGUMENT;
	snprintf(key, sizeof(key), "g%d.mig%u.gi", d->gpu, i);
	if (lookup(key, val, sizeof(val)) != 0)
		return NOT_FOUND;
	migs[d->gpu][i] = (struct stub_dev){d->gpu, (int)i};
	*m = &migs[d->gpu][i];
	return 0;
}

nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t d, nvmlDeviceAttributes_t *a);
nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t d, nvmlDeviceAttributes_t *a)
{
	memset(a, 0, sizeof(*a));
	int rc = dev_ui(d, "slices", &a->gpuInstanceSliceCount);
	return rc ? rc : dev_u(d, "mem_mb", &a->memorySizeMB);
}

typedef struct {
	unsigned int version;
	unsigned int id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount,
	    copyEngineCount, decoderCount, encoderCount, jpegCount, ofaCount;
	unsigned long long memorySizeMB;
	char name[96];
} nvmlGpuInstanceProfileInfo_v2_t;

nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t d, unsigned p,
                                                  nvmlGpuInstanceProfileInfo_v2_t *info);
nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t d, unsigned p,
                                                  nvmlGpuInstanceProfileInfo_v2_t *info)
{
	char key[48];
	unsigned long long v;
	if (info->version != (unsigned)(sizeof(*info) | (2u << 24)))
		return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
	if (d->mig >= 0)
		return NOT_SUPPORTED;
	int rc;
	snprintf(key, sizeof(key), "g%d.profile%u.name", d->gpu, p);
	if ((rc = lookup(key, info->name, sizeof(info->name))))
		return rc;
	snprintf(key, sizeof(key), "g%d.profile%u.slices", d->gpu, p);
	if ((rc = get_u(key, &v)))
		return rc;
	info->sliceCount = (unsigned)v;
	snprintf(key, sizeof(key), "g%d.profile%u.mem_mb", d->gpu, p);
	if ((rc = get_u(key, &v)))
		return rc;
	info->memorySizeMB = v;
	info->id = p;
	return 0;
}

/* ---- processes */

typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory;
	unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

static int n_proc_calls, n_proc_insufficient;

static void write_proc_calls(void)
{
	const char *path = getenv("NVML_STUB_SCRIPT");
	char p[1024];
	if (!path)
		return;
	snprintf(p, sizeof(p), "%s.procs", path);
	FILE *f = fopen(p, "w");
	if (f) {
		fprintf(f, "calls %d insufficient %d\n", n_proc_calls, n_proc_insufficient);
		fclose(f);
	}
}

/* The scripted list of GPU d's processes of one kind into v2 (or v1) entries. */
static nvmlReturn_t procs(nvmlDevice_t d, const char *what, int version, unsigned *count,
                          void *infos)
{
	char buf[480];
	unsigned long long v1only = 0;
	if (!d || !count)
		return INVALID_ARGUMENT;
	if (dev_u(d, "procs_v1", &v1only) == 0 && v1only && version > 1)
		return 13; /* NVML_ERROR_FUNCTION_NOT_FOUND */
	int rc = dev_s(d, what, buf, sizeof(buf));
	if (rc)
		return rc;
	n_proc_calls++;
	unsigned n = 0, have = *count;
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		unsigned pid = (unsigned)strtoul(tok, NULL, 10);
		const char *c = strchr(tok, ':');
		unsigned long long mem = c && c[1] != '-' ? strtoull(c + 1, NULL, 10) << 20 : ~0ULL;
		if (n < have && infos) {
			if (version > 1)
				((nvmlProcessInfo_t *)infos)[n] =
				    (nvmlProcessInfo_t){pid, mem, ~0u, ~0u};
			else
				((nvmlProcessInfo_v1_t *)infos)[n] =
				    (nvmlProcessInfo_v1_t){pid, mem};
		}
		n++;
	}
	*count = n;
	if (n > have) {
		n_proc_insufficient++;
		write_proc_calls();
		return INSUFFICIENT_SIZE;
	}
	write_proc_calls();
	return 0;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned *c,
                                                     nvmlProcessInfo_t *p);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned *c,
                                                     nvmlProcessInfo_t *p)
{
	return procs(d, "procs", 3, c, p);
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned *c,
                                                      nvmlProcessInfo_t *p);
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned *c,
                                                      nvmlProcessInfo_t *p)
{
	return procs(d, "gprocs", 3, c, p);
}
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned *c,
                                                  nvmlProcessInfo_v1_t *p);
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned *c,
                                                  nvmlProcessInfo_v1_t *p)
{
	return procs(d, "procs", 1, c, p);
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t d, unsigned *c,
                                                   nvmlProcessInfo_v1_t *p);
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t d, unsigned *c,
                                                   nvmlProcessInfo_v1_t *p)
{
	return procs(d, "gprocs", 1, c, p);
}
