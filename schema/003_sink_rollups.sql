-- gpuhealth schema, migration 003: the sink computes a batch's 1-minute rollups itself (from
-- the rows it has just parsed, src/sink/rollup.c) and merges them here, instead of
-- gpuhealth_rollup_new() scanning the rows it has just inserted again. That function stays for
-- the sink's staged path (a redelivered batch, where only the database knows which rows are new).

-- The sink's per-session table of a batch's rollups, one row per (GPU, minute).
CREATE FUNCTION gpuhealth_create_rollup_stage() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS gpuhealth_rollup_stage (LIKE gpu_metrics_1min INCLUDING DEFAULTS)
        ON COMMIT DELETE ROWS;
END
$$;

-- Merges gpuhealth_rollup_stage into gpu_metrics_1min: the same merge as gpuhealth_rollup_new()
-- (min/max by LEAST/GREATEST, sums and counts added). The caller stages only rows that this
-- transaction inserted, so redelivery never counts twice. Returns the groups merged.
CREATE FUNCTION gpuhealth_merge_rollups() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO gpu_metrics_1min AS r (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum, gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n, power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum, mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min, sm_clock_max, sm_clock_sum, sm_clock_n, gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum, gr_engine_active_n, tensor_active_min, tensor_active_max, tensor_active_sum, tensor_active_n, total_energy_min, total_energy_max, pcie_replay_min, pcie_replay_max, ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max, ecc_sbe_aggregate_min, ecc_sbe_aggregate_max, ecc_dbe_aggregate_min, ecc_dbe_aggregate_max, correctable_remapped_rows_min, correctable_remapped_rows_max, uncorrectable_remapped_rows_min, uncorrectable_remapped_rows_max, power_violation_min, power_violation_max, thermal_violation_min, thermal_violation_max, nvlink_crc_flit_errors_min, nvlink_crc_flit_errors_max, nvlink_crc_data_errors_min, nvlink_crc_data_errors_max)
        SELECT gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum, gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n, power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum, mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min, sm_clock_max, sm_clock_sum, sm_clock_n, gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum, gr_engine_active_n, tensor_active_min, tensor_active_max, tensor_active_sum, tensor_active_n, total_energy_min, total_energy_max, pcie_replay_min, pcie_replay_max, ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max, ecc_sbe_aggregate_min, ecc_sbe_aggregate_max, ecc_dbe_aggregate_min, ecc_dbe_aggregate_max, correctable_remapped_rows_min, correctable_remapped_rows_max, uncorrectable_remapped_rows_min, uncorrectable_remapped_rows_max, power_violation_min, power_violation_max, thermal_violation_min, thermal_violation_max, nvlink_crc_flit_errors_min, nvlink_crc_flit_errors_max, nvlink_crc_data_errors_min, nvlink_crc_data_errors_max
        FROM gpuhealth_rollup_stage
        ON CONFLICT (gpu_key, minute) DO UPDATE SET
            samples = r.samples + EXCLUDED.samples,
            gpu_temp_min = LEAST(r.gpu_temp_min, EXCLUDED.gpu_temp_min),
            gpu_temp_max = GREATEST(r.gpu_temp_max, EXCLUDED.gpu_temp_max),
            gpu_temp_sum = CASE WHEN r.gpu_temp_sum IS NULL THEN EXCLUDED.gpu_temp_sum WHEN EXCLUDED.gpu_temp_sum IS NULL THEN r.gpu_temp_sum ELSE r.gpu_temp_sum + EXCLUDED.gpu_temp_sum END,
            gpu_temp_n = r.gpu_temp_n + EXCLUDED.gpu_temp_n,
            memory_temp_min = LEAST(r.memory_temp_min, EXCLUDED.memory_temp_min),
            memory_temp_max = GREATEST(r.memory_temp_max, EXCLUDED.memory_temp_max),
            memory_temp_sum = CASE WHEN r.memory_temp_sum IS NULL THEN EXCLUDED.memory_temp_sum WHEN EXCLUDED.memory_temp_sum IS NULL THEN r.memory_temp_sum ELSE r.memory_temp_sum + EXCLUDED.memory_temp_sum END,
            memory_temp_n = r.memory_temp_n + EXCLUDED.memory_temp_n,
            power_usage_min = LEAST(r.power_usage_min, EXCLUDED.power_usage_min),
            power_usage_max = GREATEST(r.power_usage_max, EXCLUDED.power_usage_max),
            power_usage_sum = CASE WHEN r.power_usage_sum IS NULL THEN EXCLUDED.power_usage_sum WHEN EXCLUDED.power_usage_sum IS NULL THEN r.power_usage_sum ELSE r.power_usage_sum + EXCLUDED.power_usage_sum END,
            power_usage_n = r.power_usage_n + EXCLUDED.power_usage_n,
            gpu_util_min = LEAST(r.gpu_util_min, EXCLUDED.gpu_util_min),
            gpu_util_max = GREATEST(r.gpu_util_max, EXCLUDED.gpu_util_max),
            gpu_util_sum = CASE WHEN r.gpu_util_sum IS NULL THEN EXCLUDED.gpu_util_sum WHEN EXCLUDED.gpu_util_sum IS NULL THEN r.gpu_util_sum ELSE r.gpu_util_sum + EXCLUDED.gpu_util_sum END,
            gpu_util_n = r.gpu_util_n + EXCLUDED.gpu_util_n,
            mem_copy_util_min = LEAST(r.mem_copy_util_min, EXCLUDED.mem_copy_util_min),
            mem_copy_util_max = GREATEST(r.mem_copy_util_max, EXCLUDED.mem_copy_util_max),
            mem_copy_util_sum = CASE WHEN r.mem_copy_util_sum IS NULL THEN EXCLUDED.mem_copy_util_sum WHEN EXCLUDED.mem_copy_util_sum IS NULL THEN r.mem_copy_util_sum ELSE r.mem_copy_util_sum + EXCLUDED.mem_copy_util_sum END,
            mem_copy_util_n = r.mem_copy_util_n + EXCLUDED.mem_copy_util_n,
            fb_used_min = LEAST(r.fb_used_min, EXCLUDED.fb_used_min),
            fb_used_max = GREATEST(r.fb_used_max, EXCLUDED.fb_used_max),
            fb_used_sum = CASE WHEN r.fb_used_sum IS NULL THEN EXCLUDED.fb_used_sum WHEN EXCLUDED.fb_used_sum IS NULL THEN r.fb_used_sum ELSE r.fb_used_sum + EXCLUDED.fb_used_sum END,
            fb_used_n = r.fb_used_n + EXCLUDED.fb_used_n,
            sm_clock_min = LEAST(r.sm_clock_min, EXCLUDED.sm_clock_min),
            sm_clock_max = GREATEST(r.sm_clock_max, EXCLUDED.sm_clock_max),
            sm_clock_sum = CASE WHEN r.sm_clock_sum IS NULL THEN EXCLUDED.sm_clock_sum WHEN EXCLUDED.sm_clock_sum IS NULL THEN r.sm_clock_sum ELSE r.sm_clock_sum + EXCLUDED.sm_clock_sum END,
            sm_clock_n = r.sm_clock_n + EXCLUDED.sm_clock_n,
            gr_engine_active_min = LEAST(r.gr_engine_active_min, EXCLUDED.gr_engine_active_min),
            gr_engine_active_max = GREATEST(r.gr_engine_active_max, EXCLUDED.gr_engine_active_max),
            gr_engine_active_sum = CASE WHEN r.gr_engine_active_sum IS NULL THEN EXCLUDED.gr_engine_active_sum WHEN EXCLUDED.gr_engine_active_sum IS NULL THEN r.gr_engine_active_sum ELSE r.gr_engine_active_sum + EXCLUDED.gr_engine_active_sum END,
            gr_engine_active_n = r.gr_engine_active_n + EXCLUDED.gr_engine_active_n,
            tensor_active_min = LEAST(r.tensor_active_min, EXCLUDED.tensor_active_min),
            tensor_active_max = GREATEST(r.tensor_active_max, EXCLUDED.tensor_active_max),
            tensor_active_sum = CASE WHEN r.tensor_active_sum IS NULL THEN EXCLUDED.tensor_active_sum WHEN EXCLUDED.tensor_active_sum IS NULL THEN r.tensor_active_sum ELSE r.tensor_active_sum + EXCLUDED.tensor_active_sum END,
            tensor_active_n = r.tensor_active_n + EXCLUDED.tensor_active_n,
            total_energy_min = LEAST(r.total_energy_min, EXCLUDED.total_energy_min),
            total_energy_max = GREATEST(r.total_energy_max, EXCLUDED.total_energy_max),
            pcie_replay_min = LEAST(r.pcie_replay_min, EXCLUDED.pcie_replay_min),
            pcie_replay_max = GREATEST(r.pcie_replay_max, EXCLUDED.pcie_replay_max),
            ecc_sbe_volatile_min = LEAST(r.ecc_sbe_volatile_min, EXCLUDED.ecc_sbe_volatile_min),
            ecc_sbe_volatile_max = GREATEST(r.ecc_sbe_volatile_max, EXCLUDED.ecc_sbe_volatile_max),
            ecc_dbe_volatile_min = LEAST(r.ecc_dbe_volatile_min, EXCLUDED.ecc_dbe_volatile_min),
            ecc_dbe_volatile_max = GREATEST(r.ecc_dbe_volatile_max, EXCLUDED.ecc_dbe_volatile_max),
            ecc_sbe_aggregate_min = LEAST(r.ecc_sbe_aggregate_min, EXCLUDED.ecc_sbe_aggregate_min),
            ecc_sbe_aggregate_max = GREATEST(r.ecc_sbe_aggregate_max, EXCLUDED.ecc_sbe_aggregate_max),
            ecc_dbe_aggregate_min = LEAST(r.ecc_dbe_aggregate_min, EXCLUDED.ecc_dbe_aggregate_min),
            ecc_dbe_aggregate_max = GREATEST(r.ecc_dbe_aggregate_max, EXCLUDED.ecc_dbe_aggregate_max),
            correctable_remapped_rows_min = LEAST(r.correctable_remapped_rows_min, EXCLUDED.correctable_remapped_rows_min),
            correctable_remapped_rows_max = GREATEST(r.correctable_remapped_rows_max, EXCLUDED.correctable_remapped_rows_max),
            uncorrectable_remapped_rows_min = LEAST(r.uncorrectable_remapped_rows_min, EXCLUDED.uncorrectable_remapped_rows_min),
            uncorrectable_remapped_rows_max = GREATEST(r.uncorrectable_remapped_rows_max, EXCLUDED.uncorrectable_remapped_rows_max),
            power_violation_min = LEAST(r.power_violation_min, EXCLUDED.power_violation_min),
            power_violation_max = GREATEST(r.power_violation_max, EXCLUDED.power_violation_max),
            thermal_violation_min = LEAST(r.thermal_violation_min, EXCLUDED.thermal_violation_min),
            thermal_violation_max = GREATEST(r.thermal_violation_max, EXCLUDED.thermal_violation_max),
            nvlink_crc_flit_errors_min = LEAST(r.nvlink_crc_flit_errors_min, EXCLUDED.nvlink_crc_flit_errors_min),
            nvlink_crc_flit_errors_max = GREATEST(r.nvlink_crc_flit_errors_max, EXCLUDED.nvlink_crc_flit_errors_max),
            nvlink_crc_data_errors_min = LEAST(r.nvlink_crc_data_errors_min, EXCLUDED.nvlink_crc_data_errors_min),
            nvlink_crc_data_errors_max = GREATEST(r.nvlink_crc_data_errors_max, EXCLUDED.nvlink_crc_data_errors_max);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
