/* src/nvml through the stand-in libnvidia-ml.so.1 of tests/nvml_stub, loaded by the same
 * dlopen path as the driver's library. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/strbuf.h"
#include "nvml/nvml.h"

#ifndef NVML_STUB_PATH
#error "NVML_STUB_PATH: the path of the stand-in library (tests/CMakeLists.txt)"
#endif

static char script_path[256];

/* The values tests/nvml_stub answers: an H100 with every field, a V100 with page retirement,
 * an error and no memory v2, an A100 in MIG mode with two MIG devices. */
static const char base_script[] = "driver 550.54.15\n"
                                  "count 3\n"
                                  "g0.uuid GPU-11111111-2222-3333-4444-555555555555\n"
                                  "g0.name NVIDIA H100 80GB HBM3\n"
                                  "g0.serial 1650123456789\n"
                                  "g0.pci 00000000:19:00.0\n"
                                  "g0.minor 4\n"
                                  "g0.sm_clock 1980\n"
                                  "g0.mem_clock 2619\n"
                                  "g0.temp 45\n"
                                  "g0.memory_temp 52\n"
                                  "g0.power_mw 312456\n"
                                  "g0.energy_mj 123456789012\n"
                                  "g0.pcie_replay 3\n"
                                  "g0.util_gpu 97\n"
                                  "g0.util_mem 41\n"
                                  "g0.enc 0\n"
                                  "g0.dec 7\n"
                                  "g0.fb_free_mib 1000\n"
                                  "g0.fb_used_mib 79000\n"
                                  "g0.fb_reserved_mib 559\n"
                                  "g0.ecc_sbe_vol 2\n"
                                  "g0.ecc_dbe_vol 0\n"
                                  "g0.ecc_sbe_agg 17\n"
                                  "g0.ecc_dbe_agg 1\n"
                                  "g0.remap_corr 4\n"
                                  "g0.remap_unc 1\n"
                                  "g0.remap_pending 1\n"
                                  "g0.remap_failure 0\n"
                                  "g0.clocks_event 0x44\n"
                                  "g0.pcie_tx_kb 1000\n"
                                  "g0.pcie_rx_kb 2000\n"
                                  "g0.power_violation_ns 5000000\n"
                                  "g0.thermal_violation_ns 0\n"
                                  "g0.nvlink_flit 6\n"
                                  "g0.nvlink_data 8\n"
                                  "g0.slowdown 87\n"
                                  "g0.shutdown 92\n"
                                  "g0.max_op 85\n"
                                  "g0.power_limit_mw 700000\n"
                                  "g0.enforced_limit_mw 650000\n"
                                  "g0.xid 79\n"
                                  "g1.uuid GPU-aaaaaaaa-2222-3333-4444-555555555555\n"
                                  "g1.name Tesla V100-SXM2-16GB\n"
                                  "g1.pci 00000000:3B:00.0\n"
                                  "g1.minor 1\n"
                                  "g1.temp 38\n"
                                  "g1.power_mw 45000\n"
                                  "g1.mem_v1_only 1\n"
                                  "g1.fb_free_mib 16000\n"
                                  "g1.fb_used_mib 100\n"
                                  "g1.fb_reserved_mib 60\n"
                                  "g1.retired_sbe 2\n"
                                  "g1.retired_dbe 1\n"
                                  "g1.retired_pending 1\n"
                                  "g1.util_gpu !999\n"
                                  "g2.uuid GPU-bbbbbbbb-2222-3333-4444-555555555555\n"
                                  "g2.name NVIDIA A100-SXM4-80GB\n"
                                  "g2.pci 00000000:4C:00.0\n"
                                  "g2.minor 2\n"
                                  "g2.temp 33\n"
                                  "g2.mig 1\n"
                                  "g2.mig0.gi 1\n"
                                  "g2.mig0.slices 1\n"
                                  "g2.mig0.mem_mb 9856\n"
                                  "g2.mig0.fb_free_mib 9000\n"
                                  "g2.mig0.fb_used_mib 856\n"
                                  "g2.mig2.gi 5\n"
                                  "g2.mig2.slices 3\n"
                                  "g2.mig2.mem_mb 40192\n"
                                  "g2.mig2.fb_free_mib 1000\n"
                                  "g2.mig2.fb_used_mib 38936\n"
                                  "g2.profile0.name MIG 1g.10gb+me\n"
                                  "g2.profile0.slices 1\n"
                                  "g2.profile0.mem_mb 9856\n"
                                  "g2.profile2.name MIG 3g.40gb\n"
                                  "g2.profile2.slices 3\n"
                                  "g2.profile2.mem_mb 40192\n";

static void write_script(const char *text, const char *more)
{
	FILE *f = fopen(script_path, "w");
	assert_non_null(f);
	fputs(text, f);
	if (more)
		fputs(more, f);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(script_path, sizeof(script_path), "/tmp/gpuhealth-nvml-test-%ld.script",
	         (long)getpid());
	setenv("NVML_STUB_SCRIPT", script_path, 1);
	write_script(base_script, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char calls[300];
	snprintf(calls, sizeof(calls), "%s.calls", script_path);
	unlink(script_path);
	unlink(calls);
	return 0;
}

static bool has(const struct sim_gpu *g, enum sim_field f)
{
	return (g->valid >> f) & 1;
}

static void test_missing_library(void **state)
{
	(void)state;
	struct nvml *n = (struct nvml *)1;
	char err[1024] = "";
	int rc = nvml_open(&n, "/nonexistent/libnvidia-ml.so.1", err, sizeof(err));
	assert_int_equal(rc, -ENOENT);
	assert_null(n);
	assert_non_null(strstr(err, "tried /nonexistent/libnvidia-ml.so.1"));
	assert_non_null(strstr(err, "Install the NVIDIA driver"));
	assert_non_null(strstr(err, "NVML_LIBRARY"));
}

static void test_not_nvml(void **state)
{
	(void)state;
	struct nvml *n = NULL;
	char err[1024] = "";
	/* a real shared library without NVML's functions */
	int rc = nvml_open(&n, "libm.so.6", err, sizeof(err));
	assert_int_equal(rc, -ENOSYS);
	assert_null(n);
	assert_non_null(strstr(err, "has no nvmlInit_v2"));
}

static void test_driver_not_loaded(void **state)
{
	(void)state;
	write_script(base_script, "init !9\n");
	struct nvml *n = NULL;
	char err[1024] = "";
	assert_int_equal(nvml_open(&n, NVML_STUB_PATH, err, sizeof(err)), -ENODEV);
	assert_null(n);
	assert_non_null(strstr(err, "did not start: Driver Not Loaded"));
	assert_non_null(strstr(err, "nvidia-smi"));
	write_script("count 0\n", NULL);
	assert_int_equal(nvml_open(&n, NVML_STUB_PATH, err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "finds no GPU"));
	write_script(base_script, NULL);
}

static void test_fields(void **state)
{
	(void)state;
	struct nvml *n = NULL;
	char err[1024] = "";
	assert_int_equal(nvml_open(&n, NVML_STUB_PATH, err, sizeof(err)), 0);
	assert_string_equal(nvml_driver_version(n), "550.54.15");
	assert_string_equal(nvml_model_name(n), "NVIDIA H100 80GB HBM3");
	assert_string_equal(nvml_library(n), NVML_STUB_PATH);
	assert_int_equal(nvml_gpu_devices(n), 3);
	assert_int_equal(nvml_count(n), 5); /* 3 GPUs + 2 MIG devices */
	const struct sim_gpu *g = nvml_gpus(n);

	/* GPU 0: every field NVML has */
	assert_true(g[0].present);
	assert_int_equal(g[0].index, 0);
	assert_string_equal(g[0].uuid, "GPU-11111111-2222-3333-4444-555555555555");
	assert_string_equal(g[0].pci_bus_id, "00000000:19:00.0");
	assert_string_equal(g[0].device, "nvidia4"); /* the minor number, as /dev/nvidia4 */
	assert_string_equal(g[0].model_name, "NVIDIA H100 80GB HBM3");
	assert_string_equal(g[0].mig_profile, "");
	assert_string_equal(nvml_serial(n, 0), "1650123456789");
	static const struct {
		enum sim_field f;
		uint64_t v;
	} want[] = {
	    {SIM_F_SM_CLOCK, 1980},
	    {SIM_F_MEM_CLOCK, 2619},
	    {SIM_F_GPU_TEMP, 45},
	    {SIM_F_MEMORY_TEMP, 52},
	    {SIM_F_TOTAL_ENERGY, 123456789012ull},
	    {SIM_F_PCIE_REPLAY, 3},
	    {SIM_F_GPU_UTIL, 97},
	    {SIM_F_MEM_COPY_UTIL, 41},
	    {SIM_F_ENC_UTIL, 0},
	    {SIM_F_DEC_UTIL, 7},
	    {SIM_F_XID, 79},
	    {SIM_F_FB_FREE, 1000},
	    {SIM_F_FB_USED, 79000},
	    {SIM_F_FB_RESERVED, 559},
	    {SIM_F_ECC_SBE_VOL, 2},
	    {SIM_F_ECC_DBE_VOL, 0},
	    {SIM_F_ECC_SBE_AGG, 17},
	    {SIM_F_ECC_DBE_AGG, 1},
	    {SIM_F_CORRECTABLE_REMAPPED_ROWS, 4},
	    {SIM_F_UNCORRECTABLE_REMAPPED_ROWS, 1},
	    {SIM_F_ROW_REMAP_PENDING, 1},
	    {SIM_F_ROW_REMAP_FAILURE, 0},
	    {SIM_F_CLOCKS_EVENT_REASONS, 0x44},
	    {SIM_F_PCIE_TX_BYTES, 1024000},
	    {SIM_F_PCIE_RX_BYTES, 2048000},
	    {SIM_F_POWER_VIOLATION, 5000000},
	    {SIM_F_THERMAL_VIOLATION, 0},
	    {SIM_F_NVLINK_CRC_FLIT_ERRORS, 6},
	    {SIM_F_NVLINK_CRC_DATA_ERRORS, 8},
	    {SIM_F_SLOWDOWN_TEMP, 87},
	    {SIM_F_SHUTDOWN_TEMP, 92},
	    {SIM_F_GPU_MAX_OP_TEMP, 85},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (!has(&g[0], want[i].f))
			fail_msg("GPU 0 lacks field %d", (int)want[i].f);
		assert_int_equal(g[0].u[want[i].f], want[i].v);
	}
	assert_true(has(&g[0], SIM_F_POWER_USAGE));
	assert_float_equal(g[0].f[SIM_F_POWER_USAGE], 312.456, 1e-9);
	assert_float_equal(g[0].f[SIM_F_POWER_MGMT_LIMIT], 700.0, 1e-9);
	assert_float_equal(g[0].f[SIM_F_ENFORCED_POWER_LIMIT], 650.0, 1e-9);
	/* no page retirement on this GPU (row remapping instead), and the profiling fields
	 * (DCGM_FI_PROF_*) are not NVML's: absent, not zero */
	assert_false(has(&g[0], SIM_F_RETIRED_SBE));
	assert_false(has(&g[0], SIM_F_RETIRED_PENDING));
	assert_false(has(&g[0], SIM_F_SM_ACTIVE));
	assert_false(has(&g[0], SIM_F_GR_ENGINE_ACTIVE));
	assert_false(has(&g[0], SIM_F_NVLINK_BANDWIDTH_TOTAL));

	/* GPU 1: memory v1 (no reserved; used includes it), retired pages, a failing call */
	assert_true(g[1].present);
	assert_string_equal(g[1].model_name, "Tesla V100-SXM2-16GB");
	assert_string_equal(nvml_serial(n, 1), "");
	assert_int_equal(g[1].u[SIM_F_FB_FREE], 16000);
	assert_int_equal(g[1].u[SIM_F_FB_USED], 160);
	assert_false(has(&g[1], SIM_F_FB_RESERVED));
	assert_int_equal(g[1].u[SIM_F_RETIRED_SBE], 2);
	assert_int_equal(g[1].u[SIM_F_RETIRED_DBE], 1);
	assert_int_equal(g[1].u[SIM_F_RETIRED_PENDING], 1);
	assert_false(has(&g[1], SIM_F_GPU_UTIL)); /* NVML_ERROR_UNKNOWN: left out */
	assert_false(has(&g[1], SIM_F_MEM_COPY_UTIL));
	assert_false(has(&g[1], SIM_F_SM_CLOCK)); /* not supported */
	assert_false(has(&g[1], SIM_F_ECC_SBE_VOL));
	assert_false(has(&g[1], SIM_F_XID));
	assert_false(has(&g[1], SIM_F_CORRECTABLE_REMAPPED_ROWS));
	assert_true(nvml_errors(n) >= 1);

	/* GPU 2 in MIG mode: the GPU, then its MIG devices with the parent's identity */
	assert_int_equal(g[2].valid, 1ull << SIM_F_GPU_TEMP);
	for (int k = 3; k < 5; k++) {
		assert_true(g[k].present);
		assert_int_equal(g[k].index, 2);
		assert_string_equal(g[k].uuid, g[2].uuid);
		assert_string_equal(g[k].device, "nvidia2");
		assert_int_equal(g[k].valid, (1ull << SIM_F_FB_FREE) | (1ull << SIM_F_FB_USED));
	}
	assert_string_equal(g[3].mig_profile, "1g.10gb+me"); /* the profile's name */
	assert_int_equal(g[3].mig_instance, 1);
	assert_int_equal(g[3].u[SIM_F_FB_USED], 856);
	assert_string_equal(g[4].mig_profile, "3g.40gb");
	assert_int_equal(g[4].mig_instance, 5);
	assert_int_equal(g[4].u[SIM_F_FB_FREE], 1000);
	nvml_close(n);

	char calls[300], line[64] = "";
	snprintf(calls, sizeof(calls), "%s.calls", script_path);
	FILE *f = fopen(calls, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	int ni = -1, ns = -2;
	assert_int_equal(sscanf(line, "init %d shutdown %d", &ni, &ns), 2);
	assert_int_equal(ni, ns); /* every successful nvmlInit_v2 has its nvmlShutdown */
}

static void test_update_xid_lost(void **state)
{
	(void)state;
	struct nvml *n = NULL;
	char err[1024] = "";
	assert_int_equal(nvml_open(&n, NVML_STUB_PATH, err, sizeof(err)), 0);
	const struct sim_gpu *g = nvml_gpus(n);
	assert_int_equal(g[0].u[SIM_F_XID], 79);
	assert_false(has(&g[1], SIM_F_XID));

	/* new values and a new XID on GPU 1 are read by the next update; GPU 0 keeps its last */
	write_script(base_script, "g1.xid 48\ng1.sm_clock 1530\n");
	assert_int_equal(nvml_update(n, 10), 0);
	g = nvml_gpus(n);
	assert_true(nvml_time(n) == 10);
	assert_int_equal(g[0].u[SIM_F_XID], 79);
	assert_true(has(&g[1], SIM_F_XID));
	assert_int_equal(g[1].u[SIM_F_XID], 48);
	assert_int_equal(g[1].u[SIM_F_SM_CLOCK], 1530);

	/* a GPU NVML calls lost is listed as not present from then on */
	char lost[sizeof(base_script) + 64];
	snprintf(lost, sizeof(lost), "%s", base_script);
	char *p = strstr(lost, "g1.temp 38");
	assert_non_null(p);
	memcpy(p, "g1.temp !15", 11);
	write_script(lost, NULL);
	assert_int_equal(nvml_update(n, 20), 0);
	g = nvml_gpus(n);
	assert_false(g[1].present);
	assert_true(g[0].present);
	write_script(base_script, NULL);
	assert_int_equal(nvml_update(n, 30), 0);
	assert_false(nvml_gpus(n)[1].present);
	nvml_close(n);
}

static void test_mig_profile_fallback(void **state)
{
	(void)state;
	/* profiles not readable: the name from the MIG device's slices and memory (GiB rounded
	 * up, as NVIDIA names its profiles); the first line of a key wins */
	write_script("g2.profile0.name !4\ng2.profile2.name !4\n", base_script);
	struct nvml *n = NULL;
	char err[1024] = "";
	assert_int_equal(nvml_open(&n, NVML_STUB_PATH, err, sizeof(err)), 0);
	assert_int_equal(nvml_count(n), 5);
	assert_string_equal(nvml_gpus(n)[3].mig_profile, "1g.10gb");
	assert_string_equal(nvml_gpus(n)[4].mig_profile, "3g.40gb");
	nvml_close(n);
	write_script(base_script, NULL);
}

static void test_handle_error(void **state)
{
	(void)state;
	write_script(base_script, "g1.handle !4\n");
	struct nvml *n = NULL;
	char err[1024] = "";
	assert_int_equal(nvml_open(&n, NVML_STUB_PATH, err, sizeof(err)), 0);
	assert_int_equal(nvml_gpu_devices(n), 2); /* GPU 1 left out (no permission) */
	const struct sim_gpu *g = nvml_gpus(n);
	assert_int_equal(g[0].index, 0);
	assert_int_equal(g[1].index, 2);
	nvml_close(n);
	write_script(base_script, NULL);
}

static void test_exposition(void **state)
{
	(void)state;
	struct nvml *n = NULL;
	char err[1024] = "";
	assert_int_equal(nvml_open(&n, NVML_STUB_PATH, err, sizeof(err)), 0);
	struct strbuf sb;
	strbuf_init(&sb, 0);
	struct render_opts ro = {.hostname = "node-1", .host_label = "hostname"};
	assert_int_equal(nvml_read_exposition(n, &ro, 1, &sb, err, sizeof(err)), 0);
	assert_non_null(sb.data);
	const char *t = sb.data;
	assert_non_null(strstr(
	    t, "DCGM_FI_DEV_GPU_TEMP{gpu=\"1\",UUID=\"GPU-aaaaaaaa-2222-3333-4444-555555555555\","
	       "pci_bus_id=\"00000000:3B:00.0\",device=\"nvidia1\",modelName=\"Tesla "
	       "V100-SXM2-16GB\",hostname=\"node-1\",DCGM_FI_DRIVER_VERSION=\"550.54.15\"} 38\n"));
	assert_non_null(strstr(t,
	                       "DCGM_FI_DEV_FB_USED{gpu=\"2\",UUID=\"GPU-bbbbbbbb-2222-3333-4444-"
	                       "555555555555\",pci_bus_id=\"00000000:4C:00.0\",device=\"nvidia2\","
	                       "modelName=\"NVIDIA A100-SXM4-80GB\",GPU_I_PROFILE=\"1g.10gb+me\","
	                       "GPU_I_ID=\"1\",hostname=\"node-1\",DCGM_FI_DRIVER_VERSION=\"550."
	                       "54.15\"} 856\n"));
	assert_non_null(strstr(t, "DCGM_FI_DEV_POWER_USAGE{gpu=\"0\""));
	assert_non_null(strstr(t, "} 312.456000\n"));
	assert_non_null(strstr(t, "err_code=\"79\",err_msg=\"GPU has fallen off the bus\"} 79\n"));
	assert_null(strstr(t, "DCGM_FI_DEV_GPU_UTIL{gpu=\"1\"")); /* its error: left out */
	assert_null(strstr(t, "DCGM_FI_PROF_SM_ACTIVE"));         /* no family without a sample */
	assert_non_null(strstr(t, "DCGM_FI_PROF_PCIE_TX_BYTES{gpu=\"0\"")); /* NVML has it */
	strbuf_free(&sb);
	nvml_close(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_library),      cmocka_unit_test(test_not_nvml),
	    cmocka_unit_test(test_driver_not_loaded),    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_update_xid_lost),      cmocka_unit_test(test_handle_error),
	    cmocka_unit_test(test_mig_profile_fallback), cmocka_unit_test(test_exposition),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
