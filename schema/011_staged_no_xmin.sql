-- gpuhealth schema, migration 011 (issue #21, item 1; renumbered on merge): the sink's staged
-- path (a batch that met a row already present: a redelivery, a late row) without a system
-- column and without ON CONFLICT on gpu_metrics.
--
-- Before: gpuhealth_ingest_staged() ran INSERT ... ON CONFLICT DO NOTHING into gpu_metrics and
-- gpuhealth_rollup_new() found the rows it had inserted by xmin = the current transaction.
-- TimescaleDB refuses xmin through a compressed chunk ("transparent decompression only
-- supports tableoid system column"), so a batch whose rows fall in a compressed chunk failed
-- for ever; and ON CONFLICT DO NOTHING on a compressed chunk lost rows before TimescaleDB
-- 2.18.1 (its bug #7672).
--
-- Now: the staged rows whose (gpu_key, time) is already in gpu_metrics are left out by an
-- anti-join (a plain read, which works through compressed chunks), the batch's own repeats
-- are kept once, what remains is copied to gpuhealth_stage_new and inserted with a plain
-- INSERT. gpuhealth_rollup_new() computes the rollups from gpuhealth_stage_new: exactly the rows
-- this transaction inserted. A concurrent writer that commits the same key between the
-- anti-join and the INSERT makes the INSERT fail with unique_violation; the sink then runs the
-- whole transaction again (src/sink/sink.c), and the anti-join sees that row.

-- As in migration 001, plus gpuhealth_stage_new: the rows of the staged batch that were new.
CREATE OR REPLACE FUNCTION gpuhealth_create_stage() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS gpuhealth_stage (LIKE gpu_metrics INCLUDING DEFAULTS)
        ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS gpuhealth_stage_new (LIKE gpu_metrics INCLUDING DEFAULTS)
        ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS gpuhealth_ident (
        gpu_key text, uuid text, mig_instance integer, mig_profile text, gpu_index integer,
        hostname text, model text, pci_bus_id text, device text, driver_version text,
        cluster text, datacenter text, rack text, first_seen timestamptz, last_seen timestamptz
    ) ON COMMIT DELETE ROWS;
END
$$;

-- Moves the staged batch into gpu_metrics: rows already present are left out (so a redelivered
-- batch changes nothing), a (gpu_key, time) the batch holds twice is inserted once. Returns
-- how many rows were new and how many were not.
CREATE OR REPLACE FUNCTION gpuhealth_ingest_staged(OUT inserted bigint, OUT duplicates bigint)
LANGUAGE plpgsql AS $$
DECLARE
    staged bigint;
BEGIN
    IF to_regclass('pg_temp.gpuhealth_stage_new') IS NULL THEN
        CREATE TEMP TABLE gpuhealth_stage_new (LIKE gpu_metrics INCLUDING DEFAULTS)
            ON COMMIT DELETE ROWS;
    ELSE
        TRUNCATE gpuhealth_stage_new;
    END IF;
    SELECT count(*) INTO staged FROM gpuhealth_stage;
    INSERT INTO gpuhealth_stage_new (time, gpu_key, uuid, mig_instance, hostname, gpu_index, sm_clock, mem_clock, gpu_temp, memory_temp, power_usage, power_limit, total_energy, pcie_replay, gpu_util, mem_copy_util, enc_util, dec_util, xid, fb_free, fb_used, fb_reserved, ecc_sbe_volatile, ecc_dbe_volatile, ecc_sbe_aggregate, ecc_dbe_aggregate, retired_pages_sbe, retired_pages_dbe, retired_pages_pending, uncorrectable_remapped_rows, correctable_remapped_rows, row_remap_failure, row_remap_pending, clocks_event_reasons, power_violation, thermal_violation, nvlink_crc_flit_errors, nvlink_crc_data_errors, nvlink_bandwidth_total, slowdown_temp, shutdown_temp, gr_engine_active, sm_active, sm_occupancy, tensor_active, dram_active, pcie_tx_bytes, pcie_rx_bytes, extra)
    SELECT DISTINCT ON (s.gpu_key, s.time) s.time, s.gpu_key, s.uuid, s.mig_instance, s.hostname, s.gpu_index, s.sm_clock, s.mem_clock, s.gpu_temp, s.memory_temp, s.power_usage, s.power_limit, s.total_energy, s.pcie_replay, s.gpu_util, s.mem_copy_util, s.enc_util, s.dec_util, s.xid, s.fb_free, s.fb_used, s.fb_reserved, s.ecc_sbe_volatile, s.ecc_dbe_volatile, s.ecc_sbe_aggregate, s.ecc_dbe_aggregate, s.retired_pages_sbe, s.retired_pages_dbe, s.retired_pages_pending, s.uncorrectable_remapped_rows, s.correctable_remapped_rows, s.row_remap_failure, s.row_remap_pending, s.clocks_event_reasons, s.power_violation, s.thermal_violation, s.nvlink_crc_flit_errors, s.nvlink_crc_data_errors, s.nvlink_bandwidth_total, s.slowdown_temp, s.shutdown_temp, s.gr_engine_active, s.sm_active, s.sm_occupancy, s.tensor_active, s.dram_active, s.pcie_tx_bytes, s.pcie_rx_bytes, s.extra
    FROM gpuhealth_stage s
    WHERE NOT EXISTS (SELECT 1 FROM gpu_metrics m WHERE m.gpu_key = s.gpu_key AND m.time = s.time);
    GET DIAGNOSTICS inserted = ROW_COUNT;
    INSERT INTO gpu_metrics (time, gpu_key, uuid, mig_instance, hostname, gpu_index, sm_clock, mem_clock, gpu_temp, memory_temp, power_usage, power_limit, total_energy, pcie_replay, gpu_util, mem_copy_util, enc_util, dec_util, xid, fb_free, fb_used, fb_reserved, ecc_sbe_volatile, ecc_dbe_volatile, ecc_sbe_aggregate, ecc_dbe_aggregate, retired_pages_sbe, retired_pages_dbe, retired_pages_pending, uncorrectable_remapped_rows, correctable_remapped_rows, row_remap_failure, row_remap_pending, clocks_event_reasons, power_violation, thermal_violation, nvlink_crc_flit_errors, nvlink_crc_data_errors, nvlink_bandwidth_total, slowdown_temp, shutdown_temp, gr_engine_active, sm_active, sm_occupancy, tensor_active, dram_active, pcie_tx_bytes, pcie_rx_bytes, extra)
    SELECT time, gpu_key, uuid, mig_instance, hostname, gpu_index, sm_clock, mem_clock, gpu_temp, memory_temp, power_usage, power_limit, total_energy, pcie_replay, gpu_util, mem_copy_util, enc_util, dec_util, xid, fb_free, fb_used, fb_reserved, ecc_sbe_volatile, ecc_dbe_volatile, ecc_sbe_aggregate, ecc_dbe_aggregate, retired_pages_sbe, retired_pages_dbe, retired_pages_pending, uncorrectable_remapped_rows, correctable_remapped_rows, row_remap_failure, row_remap_pending, clocks_event_reasons, power_violation, thermal_violation, nvlink_crc_flit_errors, nvlink_crc_data_errors, nvlink_bandwidth_total, slowdown_temp, shutdown_temp, gr_engine_active, sm_active, sm_occupancy, tensor_active, dram_active, pcie_tx_bytes, pcie_rx_bytes, extra
    FROM gpuhealth_stage_new;
    duplicates := staged - inserted;
END
$$;

-- The rollups of the rows the staged path inserted in this transaction (gpuhealth_stage_new)
-- between from_ts and to_ts (and below the rollup mark: the rest are counted when their minute
-- closes, schema/006).
CREATE OR REPLACE FUNCTION gpuhealth_rollup_new(from_ts timestamptz, to_ts timestamptz, below timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF to_regclass('pg_temp.gpuhealth_stage_new') IS NULL THEN
        RETURN 0; -- no staged batch in this session: nothing was inserted the staged way
    END IF;
    PERFORM gpuhealth_rollup_stage_clear();
    INSERT INTO gpuhealth_rollup_stage (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum, gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n, power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum, mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min, sm_clock_max, sm_clock_sum, sm_clock_n, gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum, gr_engine_active_n, tensor_active_min, tensor_active_max, tensor_active_sum, tensor_active_n, total_energy_min, total_energy_max, pcie_replay_min, pcie_replay_max, ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max, ecc_sbe_aggregate_min, ecc_sbe_aggregate_max, ecc_dbe_aggregate_min, ecc_dbe_aggregate_max, correctable_remapped_rows_min, correctable_remapped_rows_max, uncorrectable_remapped_rows_min, uncorrectable_remapped_rows_max, power_violation_min, power_violation_max, thermal_violation_min, thermal_violation_max, nvlink_crc_flit_errors_min, nvlink_crc_flit_errors_max, nvlink_crc_data_errors_min, nvlink_crc_data_errors_max)
        SELECT gpu_key, date_trunc('minute', time), count(*), min(gpu_temp), max(gpu_temp), sum(gpu_temp), count(gpu_temp), min(memory_temp), max(memory_temp), sum(memory_temp), count(memory_temp), min(power_usage), max(power_usage), sum(power_usage), count(power_usage), min(gpu_util), max(gpu_util), sum(gpu_util), count(gpu_util), min(mem_copy_util), max(mem_copy_util), sum(mem_copy_util), count(mem_copy_util), min(fb_used), max(fb_used), sum(fb_used), count(fb_used), min(sm_clock), max(sm_clock), sum(sm_clock), count(sm_clock), min(gr_engine_active), max(gr_engine_active), sum(gr_engine_active), count(gr_engine_active), min(tensor_active), max(tensor_active), sum(tensor_active), count(tensor_active), min(total_energy), max(total_energy), min(pcie_replay), max(pcie_replay), min(ecc_sbe_volatile), max(ecc_sbe_volatile), min(ecc_dbe_volatile), max(ecc_dbe_volatile), min(ecc_sbe_aggregate), max(ecc_sbe_aggregate), min(ecc_dbe_aggregate), max(ecc_dbe_aggregate), min(correctable_remapped_rows), max(correctable_remapped_rows), min(uncorrectable_remapped_rows), max(uncorrectable_remapped_rows), min(power_violation), max(power_violation), min(thermal_violation), max(thermal_violation), min(nvlink_crc_flit_errors), max(nvlink_crc_flit_errors), min(nvlink_crc_data_errors), max(nvlink_crc_data_errors)
        FROM gpuhealth_stage_new
        WHERE time BETWEEN from_ts AND to_ts AND time < below
        GROUP BY 1, 2;
    n := gpuhealth_merge_rollups();
    TRUNCATE gpuhealth_rollup_stage;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION gpuhealth_rollup_new(from_ts timestamptz, to_ts timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF to_regclass('pg_temp.gpuhealth_stage_new') IS NULL THEN
        RETURN 0; -- no staged batch in this session: nothing was inserted the staged way
    END IF;
    PERFORM gpuhealth_rollup_stage_clear();
    INSERT INTO gpuhealth_rollup_stage (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum, gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n, power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum, mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min, sm_clock_max, sm_clock_sum, sm_clock_n, gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum, gr_engine_active_n, tensor_active_min, tensor_active_max, tensor_active_sum, tensor_active_n, total_energy_min, total_energy_max, pcie_replay_min, pcie_replay_max, ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max, ecc_sbe_aggregate_min, ecc_sbe_aggregate_max, ecc_dbe_aggregate_min, ecc_dbe_aggregate_max, correctable_remapped_rows_min, correctable_remapped_rows_max, uncorrectable_remapped_rows_min, uncorrectable_remapped_rows_max, power_violation_min, power_violation_max, thermal_violation_min, thermal_violation_max, nvlink_crc_flit_errors_min, nvlink_crc_flit_errors_max, nvlink_crc_data_errors_min, nvlink_crc_data_errors_max)
        SELECT gpu_key, date_trunc('minute', time), count(*), min(gpu_temp), max(gpu_temp), sum(gpu_temp), count(gpu_temp), min(memory_temp), max(memory_temp), sum(memory_temp), count(memory_temp), min(power_usage), max(power_usage), sum(power_usage), count(power_usage), min(gpu_util), max(gpu_util), sum(gpu_util), count(gpu_util), min(mem_copy_util), max(mem_copy_util), sum(mem_copy_util), count(mem_copy_util), min(fb_used), max(fb_used), sum(fb_used), count(fb_used), min(sm_clock), max(sm_clock), sum(sm_clock), count(sm_clock), min(gr_engine_active), max(gr_engine_active), sum(gr_engine_active), count(gr_engine_active), min(tensor_active), max(tensor_active), sum(tensor_active), count(tensor_active), min(total_energy), max(total_energy), min(pcie_replay), max(pcie_replay), min(ecc_sbe_volatile), max(ecc_sbe_volatile), min(ecc_dbe_volatile), max(ecc_dbe_volatile), min(ecc_sbe_aggregate), max(ecc_sbe_aggregate), min(ecc_dbe_aggregate), max(ecc_dbe_aggregate), min(correctable_remapped_rows), max(correctable_remapped_rows), min(uncorrectable_remapped_rows), max(uncorrectable_remapped_rows), min(power_violation), max(power_violation), min(thermal_violation), max(thermal_violation), min(nvlink_crc_flit_errors), max(nvlink_crc_flit_errors), min(nvlink_crc_data_errors), max(nvlink_crc_data_errors)
        FROM gpuhealth_stage_new
        WHERE time BETWEEN from_ts AND to_ts
        GROUP BY 1, 2;
    n := gpuhealth_merge_rollups();
    TRUNCATE gpuhealth_rollup_stage;
    RETURN n;
END
$$;
