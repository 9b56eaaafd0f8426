-- gpuhealth schema, migration 006: the 1-minute rollups of recent minutes are written once per
-- (GPU, minute) when the minute closes, not merged again by every batch that brings a sample of
-- it (six merges of a 62-column row per GPU and minute at a 10 s interval: half of
-- PostgreSQL's work per sample in a fleet of 100,000s of GPUs).
--
-- gpuhealth_rollup_mark.through is a whole minute with this promise: every gpu_metrics row
-- with time < through is counted in gpu_metrics_1min, and no row with time >= through is.
-- A batch transaction share-locks the mark (SELECT ... FOR SHARE) and merges at once only its
-- rows below it (a late row: the old way); its rows at or after it wait for their minute to
-- close. The sink closes minutes with the mark locked FOR UPDATE (so no batch that read the
-- old mark is still open): it writes the rollups it kept in memory for the rows it committed
-- itself when the database holds exactly those rows in the range, else the database
-- recomputes them from gpu_metrics (another sink wrote rows there, a restart lost the memory,
-- a redelivered batch). Readers that want the newest minutes too use gpu_metrics_1min_current.

CREATE TABLE gpuhealth_rollup_mark (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    through timestamptz NOT NULL
);
-- an existing database has merged every row it holds: the mark starts after the newest one
INSERT INTO gpuhealth_rollup_mark (through)
SELECT coalesce(date_trunc('minute', max(time)) + interval '1 minute', '-infinity') FROM gpu_metrics;

-- An empty gpuhealth_rollup_stage in this session (created when missing, without the notice a
-- second CREATE ... IF NOT EXISTS gives): the functions below stage what they computed there
-- and merge it with gpuhealth_merge_rollups(), the one copy of the merge (schema/003).
CREATE FUNCTION gpuhealth_rollup_stage_clear() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.gpuhealth_rollup_stage') IS NULL THEN
        PERFORM gpuhealth_create_rollup_stage();
    ELSE
        TRUNCATE gpuhealth_rollup_stage;
    END IF;
END
$$;

-- With the mark locked FOR UPDATE: the mark, and the rows in [mark, to_ts) (what the caller
-- compares with the rows it kept the rollups of).
CREATE FUNCTION gpuhealth_rollup_lock(to_ts timestamptz, OUT through timestamptz, OUT rows_between bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT m.through INTO through FROM gpuhealth_rollup_mark m FOR UPDATE;
    IF to_ts > through THEN
        SELECT count(*) INTO rows_between FROM gpu_metrics WHERE time >= through AND time < to_ts;
    ELSE
        rows_between := 0;
    END IF;
END
$$;

-- Moves the mark to to_ts (the caller merged the rollups of [mark, to_ts) itself).
CREATE FUNCTION gpuhealth_rollup_close(to_ts timestamptz) RETURNS void LANGUAGE sql AS $$
    UPDATE gpuhealth_rollup_mark SET through = greatest(through, to_ts);
$$;

-- Computes the rollups of [mark, to_ts) from gpu_metrics, at most 5 minutes from the first row
-- at a time, and moves the mark past them. Returns the new mark (to_ts, or short of it: call
-- again). The caller holds the mark locked (gpuhealth_rollup_lock).
CREATE FUNCTION gpuhealth_rollup_recompute(to_ts timestamptz) RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
    from_ts timestamptz;
    first timestamptz;
BEGIN
    SELECT m.through INTO from_ts FROM gpuhealth_rollup_mark m FOR UPDATE;
    IF to_ts <= from_ts THEN
        RETURN from_ts;
    END IF;
    SELECT min(time) INTO first FROM gpu_metrics WHERE time >= from_ts AND time < to_ts;
    IF first IS NOT NULL THEN
        to_ts := least(to_ts, date_trunc('minute', first) + interval '5 minutes');
        PERFORM set_config('work_mem', '256MB', true);
        PERFORM gpuhealth_rollup_stage_clear();
        INSERT INTO gpuhealth_rollup_stage (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum, gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n, power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum, mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min, sm_clock_max, sm_clock_sum, sm_clock_n, gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum, gr_engine_active_n, tensor_active_min, tensor_active_max, tensor_active_sum, tensor_active_n, total_energy_min, total_energy_max, pcie_replay_min, pcie_replay_max, ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max, ecc_sbe_aggregate_min, ecc_sbe_aggregate_max, ecc_dbe_aggregate_min, ecc_dbe_aggregate_max, correctable_remapped_rows_min, correctable_remapped_rows_max, uncorrectable_remapped_rows_min, uncorrectable_remapped_rows_max, power_violation_min, power_violation_max, thermal_violation_min, thermal_violation_max, nvlink_crc_flit_errors_min, nvlink_crc_flit_errors_max, nvlink_crc_data_errors_min, nvlink_crc_data_errors_max)
        SELECT gpu_key, date_trunc('minute', time), count(*), min(gpu_temp), max(gpu_temp), sum(gpu_temp), count(gpu_temp), min(memory_temp), max(memory_temp), sum(memory_temp), count(memory_temp), min(power_usage), max(power_usage), sum(power_usage), count(power_usage), min(gpu_util), max(gpu_util), sum(gpu_util), count(gpu_util), min(mem_copy_util), max(mem_copy_util), sum(mem_copy_util), count(mem_copy_util), min(fb_used), max(fb_used), sum(fb_used), count(fb_used), min(sm_clock), max(sm_clock), sum(sm_clock), count(sm_clock), min(gr_engine_active), max(gr_engine_active), sum(gr_engine_active), count(gr_engine_active), min(tensor_active), max(tensor_active), sum(tensor_active), count(tensor_active), min(total_energy), max(total_energy), min(pcie_replay), max(pcie_replay), min(ecc_sbe_volatile), max(ecc_sbe_volatile), min(ecc_dbe_volatile), max(ecc_dbe_volatile), min(ecc_sbe_aggregate), max(ecc_sbe_aggregate), min(ecc_dbe_aggregate), max(ecc_dbe_aggregate), min(correctable_remapped_rows), max(correctable_remapped_rows), min(uncorrectable_remapped_rows), max(uncorrectable_remapped_rows), min(power_violation), max(power_violation), min(thermal_violation), max(thermal_violation), min(nvlink_crc_flit_errors), max(nvlink_crc_flit_errors), min(nvlink_crc_data_errors), max(nvlink_crc_data_errors)
        FROM gpu_metrics
        WHERE time >= from_ts AND time < to_ts
        GROUP BY 1, 2;
        PERFORM gpuhealth_merge_rollups();
        TRUNCATE gpuhealth_rollup_stage;
    END IF;
    UPDATE gpuhealth_rollup_mark SET through = to_ts;
    RETURN to_ts;
END
$$;

-- The staged path (a redelivered batch): the rollups of the rows this transaction inserted,
-- only those below the mark (the rest are counted when their minute closes).
CREATE FUNCTION gpuhealth_rollup_new(from_ts timestamptz, to_ts timestamptz, below timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM gpuhealth_rollup_stage_clear();
    INSERT INTO gpuhealth_rollup_stage (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum, gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n, power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum, mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min, sm_clock_max, sm_clock_sum, sm_clock_n, gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum, gr_engine_active_n, tensor_active_min, tensor_active_max, tensor_active_sum, tensor_active_n, total_energy_min, total_energy_max, pcie_replay_min, pcie_replay_max, ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max, ecc_sbe_aggregate_min, ecc_sbe_aggregate_max, ecc_dbe_aggregate_min, ecc_dbe_aggregate_max, correctable_remapped_rows_min, correctable_remapped_rows_max, uncorrectable_remapped_rows_min, uncorrectable_remapped_rows_max, power_violation_min, power_violation_max, thermal_violation_min, thermal_violation_max, nvlink_crc_flit_errors_min, nvlink_crc_flit_errors_max, nvlink_crc_data_errors_min, nvlink_crc_data_errors_max)
        SELECT gpu_key, date_trunc('minute', time), count(*), min(gpu_temp), max(gpu_temp), sum(gpu_temp), count(gpu_temp), min(memory_temp), max(memory_temp), sum(memory_temp), count(memory_temp), min(power_usage), max(power_usage), sum(power_usage), count(power_usage), min(gpu_util), max(gpu_util), sum(gpu_util), count(gpu_util), min(mem_copy_util), max(mem_copy_util), sum(mem_copy_util), count(mem_copy_util), min(fb_used), max(fb_used), sum(fb_used), count(fb_used), min(sm_clock), max(sm_clock), sum(sm_clock), count(sm_clock), min(gr_engine_active), max(gr_engine_active), sum(gr_engine_active), count(gr_engine_active), min(tensor_active), max(tensor_active), sum(tensor_active), count(tensor_active), min(total_energy), max(total_energy), min(pcie_replay), max(pcie_replay), min(ecc_sbe_volatile), max(ecc_sbe_volatile), min(ecc_dbe_volatile), max(ecc_dbe_volatile), min(ecc_sbe_aggregate), max(ecc_sbe_aggregate), min(ecc_dbe_aggregate), max(ecc_dbe_aggregate), min(correctable_remapped_rows), max(correctable_remapped_rows), min(uncorrectable_remapped_rows), max(uncorrectable_remapped_rows), min(power_violation), max(power_violation), min(thermal_violation), max(thermal_violation), min(nvlink_crc_flit_errors), max(nvlink_crc_flit_errors), min(nvlink_crc_data_errors), max(nvlink_crc_data_errors)
        FROM gpu_metrics
        WHERE time BETWEEN from_ts AND to_ts AND time < below AND xmin = xid(pg_current_xact_id())
        GROUP BY 1, 2;
    n := gpuhealth_merge_rollups();
    TRUNCATE gpuhealth_rollup_stage;
    RETURN n;
END
$$;

-- gpu_metrics_1min and the minutes not closed yet (computed from gpu_metrics when read): what
-- charts and the API read, so the newest minutes are there too.
CREATE VIEW gpu_metrics_1min_current AS
SELECT * FROM gpu_metrics_1min
UNION ALL
SELECT gpu_key,
       date_trunc('minute', time) AS minute,
       count(*)::integer AS samples,
       min(gpu_temp) AS gpu_temp_min,
       max(gpu_temp) AS gpu_temp_max,
       sum(gpu_temp) AS gpu_temp_sum,
       count(gpu_temp)::integer AS gpu_temp_n,
       min(memory_temp) AS memory_temp_min,
       max(memory_temp) AS memory_temp_max,
       sum(memory_temp) AS memory_temp_sum,
       count(memory_temp)::integer AS memory_temp_n,
       min(power_usage) AS power_usage_min,
       max(power_usage) AS power_usage_max,
       sum(power_usage) AS power_usage_sum,
       count(power_usage)::integer AS power_usage_n,
       min(gpu_util) AS gpu_util_min,
       max(gpu_util) AS gpu_util_max,
       sum(gpu_util) AS gpu_util_sum,
       count(gpu_util)::integer AS gpu_util_n,
       min(mem_copy_util) AS mem_copy_util_min,
       max(mem_copy_util) AS mem_copy_util_max,
       sum(mem_copy_util) AS mem_copy_util_sum,
       count(mem_copy_util)::integer AS mem_copy_util_n,
       min(fb_used) AS fb_used_min,
       max(fb_used) AS fb_used_max,
       sum(fb_used) AS fb_used_sum,
       count(fb_used)::integer AS fb_used_n,
       min(sm_clock) AS sm_clock_min,
       max(sm_clock) AS sm_clock_max,
       sum(sm_clock) AS sm_clock_sum,
       count(sm_clock)::integer AS sm_clock_n,
       min(gr_engine_active) AS gr_engine_active_min,
       max(gr_engine_active) AS gr_engine_active_max,
       sum(gr_engine_active) AS gr_engine_active_sum,
       count(gr_engine_active)::integer AS gr_engine_active_n,
       min(tensor_active) AS tensor_active_min,
       max(tensor_active) AS tensor_active_max,
       sum(tensor_active) AS tensor_active_sum,
       count(tensor_active)::integer AS tensor_active_n,
       min(total_energy) AS total_energy_min,
       max(total_energy) AS total_energy_max,
       min(pcie_replay) AS pcie_replay_min,
       max(pcie_replay) AS pcie_replay_max,
       min(ecc_sbe_volatile) AS ecc_sbe_volatile_min,
       max(ecc_sbe_volatile) AS ecc_sbe_volatile_max,
       min(ecc_dbe_volatile) AS ecc_dbe_volatile_min,
       max(ecc_dbe_volatile) AS ecc_dbe_volatile_max,
       min(ecc_sbe_aggregate) AS ecc_sbe_aggregate_min,
       max(ecc_sbe_aggregate) AS ecc_sbe_aggregate_max,
       min(ecc_dbe_aggregate) AS ecc_dbe_aggregate_min,
       max(ecc_dbe_aggregate) AS ecc_dbe_aggregate_max,
       min(correctable_remapped_rows) AS correctable_remapped_rows_min,
       max(correctable_remapped_rows) AS correctable_remapped_rows_max,
       min(uncorrectable_remapped_rows) AS uncorrectable_remapped_rows_min,
       max(uncorrectable_remapped_rows) AS uncorrectable_remapped_rows_max,
       min(power_violation) AS power_violation_min,
       max(power_violation) AS power_violation_max,
       min(thermal_violation) AS thermal_violation_min,
       max(thermal_violation) AS thermal_violation_max,
       min(nvlink_crc_flit_errors) AS nvlink_crc_flit_errors_min,
       max(nvlink_crc_flit_errors) AS nvlink_crc_flit_errors_max,
       min(nvlink_crc_data_errors) AS nvlink_crc_data_errors_min,
       max(nvlink_crc_data_errors) AS nvlink_crc_data_errors_max
FROM gpu_metrics
WHERE time >= (SELECT through FROM gpuhealth_rollup_mark)
GROUP BY 1, 2;

CREATE OR REPLACE VIEW v_gpu_metrics_1min AS
SELECT gpu_key, minute, samples,
       gpu_temp_min, gpu_temp_max, gpu_temp_sum / NULLIF(gpu_temp_n, 0) AS gpu_temp_avg,
       memory_temp_min, memory_temp_max, memory_temp_sum / NULLIF(memory_temp_n, 0) AS memory_temp_avg,
       power_usage_min, power_usage_max, power_usage_sum / NULLIF(power_usage_n, 0) AS power_usage_avg,
       gpu_util_min, gpu_util_max, gpu_util_sum / NULLIF(gpu_util_n, 0) AS gpu_util_avg,
       mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum / NULLIF(mem_copy_util_n, 0) AS mem_copy_util_avg,
       fb_used_min, fb_used_max, fb_used_sum / NULLIF(fb_used_n, 0) AS fb_used_avg,
       sm_clock_min, sm_clock_max, sm_clock_sum / NULLIF(sm_clock_n, 0) AS sm_clock_avg,
       gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum / NULLIF(gr_engine_active_n, 0) AS gr_engine_active_avg,
       tensor_active_min, tensor_active_max, tensor_active_sum / NULLIF(tensor_active_n, 0) AS tensor_active_avg,
       total_energy_max - total_energy_min AS total_energy_delta,
       pcie_replay_max - pcie_replay_min AS pcie_replay_delta,
       ecc_sbe_volatile_max - ecc_sbe_volatile_min AS ecc_sbe_volatile_delta,
       ecc_dbe_volatile_max - ecc_dbe_volatile_min AS ecc_dbe_volatile_delta,
       ecc_sbe_aggregate_max - ecc_sbe_aggregate_min AS ecc_sbe_aggregate_delta,
       ecc_dbe_aggregate_max - ecc_dbe_aggregate_min AS ecc_dbe_aggregate_delta,
       correctable_remapped_rows_max - correctable_remapped_rows_min AS correctable_remapped_rows_delta,
       uncorrectable_remapped_rows_max - uncorrectable_remapped_rows_min AS uncorrectable_remapped_rows_delta,
       power_violation_max - power_violation_min AS power_violation_delta,
       thermal_violation_max - thermal_violation_min AS thermal_violation_delta,
       nvlink_crc_flit_errors_max - nvlink_crc_flit_errors_min AS nvlink_crc_flit_errors_delta,
       nvlink_crc_data_errors_max - nvlink_crc_data_errors_min AS nvlink_crc_data_errors_delta
FROM gpu_metrics_1min_current;

GRANT SELECT, UPDATE ON gpuhealth_rollup_mark TO gpuhealth_writer;
GRANT SELECT ON gpuhealth_rollup_mark, gpu_metrics_1min_current TO gpuhealth_reader, gpuhealth_writer;
