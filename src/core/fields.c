#include "core/fields.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static const struct field_def table[] = {
    {"DCGM_FI_DEV_SM_CLOCK", NULL, "sm_clock", FIELD_GAUGE, "MHz"},
    {"DCGM_FI_DEV_MEM_CLOCK", NULL, "mem_clock", FIELD_GAUGE, "MHz"},
    {"DCGM_FI_DEV_GPU_TEMP", NULL, "gpu_temp", FIELD_GAUGE, "Cel"},
    {"DCGM_FI_DEV_MEMORY_TEMP", NULL, "memory_temp", FIELD_GAUGE, "Cel"},
    {"DCGM_FI_DEV_POWER_USAGE", NULL, "power_usage", FIELD_GAUGE, "W"},
    {"DCGM_FI_DEV_POWER_MGMT_LIMIT", NULL, "power_limit", FIELD_GAUGE, "W"},
    {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", NULL, "total_energy", FIELD_COUNTER, "mJ"},
    {"DCGM_FI_DEV_PCIE_REPLAY_COUNTER", NULL, "pcie_replay", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_GPU_UTIL", NULL, "gpu_util", FIELD_GAUGE, "%"},
    {"DCGM_FI_DEV_MEM_COPY_UTIL", NULL, "mem_copy_util", FIELD_GAUGE, "%"},
    {"DCGM_FI_DEV_ENC_UTIL", NULL, "enc_util", FIELD_GAUGE, "%"},
    {"DCGM_FI_DEV_DEC_UTIL", NULL, "dec_util", FIELD_GAUGE, "%"},
    {"DCGM_FI_DEV_XID_ERRORS", NULL, "xid", FIELD_CODE, "code"},
    {"DCGM_FI_DEV_FB_FREE", NULL, "fb_free", FIELD_GAUGE, "MiB"},
    {"DCGM_FI_DEV_FB_USED", NULL, "fb_used", FIELD_GAUGE, "MiB"},
    {"DCGM_FI_DEV_FB_RESERVED", NULL, "fb_reserved", FIELD_GAUGE, "MiB"},
    {"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", NULL, "ecc_sbe_volatile", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", NULL, "ecc_dbe_volatile", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", NULL, "ecc_sbe_aggregate", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", NULL, "ecc_dbe_aggregate", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_RETIRED_SBE", NULL, "retired_pages_sbe", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_RETIRED_DBE", NULL, "retired_pages_dbe", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_RETIRED_PENDING", NULL, "retired_pages_pending", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", NULL, "uncorrectable_remapped_rows", FIELD_COUNTER,
     "1"},
    {"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", NULL, "correctable_remapped_rows", FIELD_COUNTER,
     "1"},
    {"DCGM_FI_DEV_ROW_REMAP_FAILURE", NULL, "row_remap_failure", FIELD_CODE, "0/1"},
    {"DCGM_FI_DEV_ROW_REMAP_PENDING", NULL, "row_remap_pending", FIELD_CODE, "0/1"},
    {"DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
     "clocks_event_reasons", FIELD_CODE, "bitmask"},
    {"DCGM_FI_DEV_POWER_VIOLATION", NULL, "power_violation", FIELD_COUNTER, "us"},
    {"DCGM_FI_DEV_THERMAL_VIOLATION", NULL, "thermal_violation", FIELD_COUNTER, "us"},
    {"DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", NULL, "nvlink_crc_flit_errors", FIELD_COUNTER,
     "1"},
    {"DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL", NULL, "nvlink_crc_data_errors", FIELD_COUNTER,
     "1"},
    {"DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", NULL, "nvlink_bandwidth_total", FIELD_COUNTER, "1"},
    {"DCGM_FI_DEV_SLOWDOWN_TEMP", NULL, "slowdown_temp", FIELD_GAUGE, "Cel"},
    {"DCGM_FI_DEV_SHUTDOWN_TEMP", NULL, "shutdown_temp", FIELD_GAUGE, "Cel"},
    {"DCGM_FI_PROF_GR_ENGINE_ACTIVE", NULL, "gr_engine_active", FIELD_GAUGE, "ratio"},
    {"DCGM_FI_PROF_SM_ACTIVE", NULL, "sm_active", FIELD_GAUGE, "ratio"},
    {"DCGM_FI_PROF_SM_OCCUPANCY", NULL, "sm_occupancy", FIELD_GAUGE, "ratio"},
    {"DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", NULL, "tensor_active", FIELD_GAUGE, "ratio"},
    {"DCGM_FI_PROF_DRAM_ACTIVE", NULL, "dram_active", FIELD_GAUGE, "ratio"},
    {"DCGM_FI_PROF_PCIE_TX_BYTES", NULL, "pcie_tx_bytes", FIELD_GAUGE, "B/s"},
    {"DCGM_FI_PROF_PCIE_RX_BYTES", NULL, "pcie_rx_bytes", FIELD_GAUGE, "B/s"},
};

const struct field_def *fields_all(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

static bool eq(const char *s, const char *name, size_t len)
{
	return s && strlen(s) == len && memcmp(s, name, len) == 0;
}

/* Hash tables over the names (built once): index + 1 per slot, 0 empty. The table holds about
 * 40 fields (with aliases ~50 names); 256 slots keep probes short. */
#define SLOTS 256
static unsigned char by_key[SLOTS], by_dcgm[SLOTS];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static size_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a, then the high bits folded in */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	h ^= h >> 32;
	return (size_t)(h * 0x9E3779B97F4A7C15ull >> 56) & (SLOTS - 1);
}

static void put(unsigned char *t, const char *name, size_t i)
{
	size_t j = hash(name, strlen(name));
	while (t[j])
		j = (j + 1) & (SLOTS - 1);
	t[j] = (unsigned char)(i + 1);
}

static void build(void)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		put(by_key, table[i].key, i);
		put(by_dcgm, table[i].dcgm, i);
		if (table[i].alias)
			put(by_dcgm, table[i].alias, i);
	}
}

const struct field_def *fields_by_dcgm(const char *name, size_t len)
{
	pthread_once(&once, build);
	for (size_t j = hash(name, len); by_dcgm[j]; j = (j + 1) & (SLOTS - 1)) {
		const struct field_def *f = &table[by_dcgm[j] - 1];
		if (eq(f->dcgm, name, len) || eq(f->alias, name, len))
			return f;
	}
	return NULL;
}

const struct field_def *fields_by_keyn(const char *key, size_t len)
{
	pthread_once(&once, build);
	for (size_t j = hash(key, len); by_key[j]; j = (j + 1) & (SLOTS - 1)) {
		const struct field_def *f = &table[by_key[j] - 1];
		if (eq(f->key, key, len))
			return f;
	}
	return NULL;
}

const struct field_def *fields_by_key(const char *key)
{
	return fields_by_keyn(key, strlen(key));
}

size_t fields_index(const struct field_def *f)
{
	return (size_t)(f - table);
}

_Static_assert(sizeof(table) / sizeof(table[0]) < 255 &&
                   2 * sizeof(table) / sizeof(table[0]) < SLOTS / 2,
               "fields: the name hash tables are too small");
