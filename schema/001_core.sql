-- gpuhealth schema, migration 001: the GPU dimension, the samples, the 1-minute rollups,
-- and the functions the sink calls. Works on plain PostgreSQL (native range partitions by
-- day, kept by gpuhealth_ensure_partitions / gpuhealth_drop_expired) and uses TimescaleDB
-- (hypertables, compression, retention policies) when the extension can be created.
-- Roles: gpuhealth_writer (the sink and scorer: insert/select, plus update of the dimension and
-- rollups) and gpuhealth_reader (select only). The schema owner runs the migrations.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gpuhealth_writer') THEN
        CREATE ROLE gpuhealth_writer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gpuhealth_reader') THEN
        CREATE ROLE gpuhealth_reader NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'cannot create roles gpuhealth_writer/gpuhealth_reader (needs CREATEROLE); '
        'create them as a superuser and re-run "gpuhealth db migrate"';
    RAISE;
END
$roles$;

-- Settings read by the functions below; change them with UPDATE, then
-- SELECT gpuhealth_apply_policies().
CREATE TABLE gpuhealth_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO gpuhealth_settings (key, value) VALUES
    ('retention', '7 days'),
    ('compress_after', '1 hour'),
    ('rollup_retention', '90 days'),
    ('partitions_ahead_days', '2');

-- How this database stores samples: 'timescaledb' or 'partitioned'.
CREATE FUNCTION gpuhealth_storage() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
                THEN 'timescaledb' ELSE 'partitioned' END
$$;

-- Whether to use TimescaleDB is decided by "gpuhealth db migrate" from what it checked first
-- (src/store/migrate.c: the extension available, in shared_preload_libraries, recent enough)
-- and passed in gpuhealth.storage. Run without it (psql -f), the extension is created only
-- when it is available and preloaded: CREATE EXTENSION timescaledb on a server that has the
-- package installed but not preloaded raises FATAL and ends the session (issue #21).
DO $ts$
DECLARE
    want text := coalesce(current_setting('gpuhealth.storage', true), '');
BEGIN
    IF want = 'timescaledb' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    ELSIF want = '' AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
          AND current_setting('shared_preload_libraries') ~ '(^|[\s,])timescaledb([\s,]|$)' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    END IF;
END
$ts$;

-- One row per GPU (or MIG instance). gpu_key is the Kafka key: the UUID, or UUID/GPU_I_ID.
CREATE TABLE gpus (
    gpu_key        text PRIMARY KEY,
    uuid           text NOT NULL,
    mig_instance   integer,
    mig_profile    text,
    gpu_index      integer,
    hostname       text,
    model          text,
    pci_bus_id     text,
    device         text,
    driver_version text,
    cluster        text,
    datacenter     text,
    rack           text,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL
);
CREATE INDEX gpus_host_idx ON gpus (hostname, gpu_index);

DO $metrics$
DECLARE
    cols text := $cols$(
    time                         timestamptz NOT NULL,
    gpu_key                      text NOT NULL,
    uuid                         text NOT NULL,
    mig_instance                 integer,
    hostname                     text,
    gpu_index                    integer,
    sm_clock                     double precision,
    mem_clock                    double precision,
    gpu_temp                     double precision,
    memory_temp                  double precision,
    power_usage                  double precision,
    power_limit                  double precision,
    total_energy                 bigint,
    pcie_replay                  bigint,
    gpu_util                     double precision,
    mem_copy_util                double precision,
    enc_util                     double precision,
    dec_util                     double precision,
    xid                          bigint,
    fb_free                      double precision,
    fb_used                      double precision,
    fb_reserved                  double precision,
    ecc_sbe_volatile             bigint,
    ecc_dbe_volatile             bigint,
    ecc_sbe_aggregate            bigint,
    ecc_dbe_aggregate            bigint,
    retired_pages_sbe            bigint,
    retired_pages_dbe            bigint,
    retired_pages_pending        bigint,
    uncorrectable_remapped_rows  bigint,
    correctable_remapped_rows    bigint,
    row_remap_failure            bigint,
    row_remap_pending            bigint,
    clocks_event_reasons         bigint,
    power_violation              bigint,
    thermal_violation            bigint,
    nvlink_crc_flit_errors       bigint,
    nvlink_crc_data_errors       bigint,
    nvlink_bandwidth_total       bigint,
    slowdown_temp                double precision,
    shutdown_temp                double precision,
    gr_engine_active             double precision,
    sm_active                    double precision,
    sm_occupancy                 double precision,
    tensor_active                double precision,
    dram_active                  double precision,
    pcie_tx_bytes                double precision,
    pcie_rx_bytes                double precision,
    extra                        jsonb,
    PRIMARY KEY (gpu_key, time)
)$cols$;
    rcols text := $rcols$(
    gpu_key  text NOT NULL,
    minute   timestamptz NOT NULL,
    samples  integer NOT NULL,
    gpu_temp_min double precision,
    gpu_temp_max double precision,
    gpu_temp_sum double precision,
    gpu_temp_n integer NOT NULL DEFAULT 0,
    memory_temp_min double precision,
    memory_temp_max double precision,
    memory_temp_sum double precision,
    memory_temp_n integer NOT NULL DEFAULT 0,
    power_usage_min double precision,
    power_usage_max double precision,
    power_usage_sum double precision,
    power_usage_n integer NOT NULL DEFAULT 0,
    gpu_util_min double precision,
    gpu_util_max double precision,
    gpu_util_sum double precision,
    gpu_util_n integer NOT NULL DEFAULT 0,
    mem_copy_util_min double precision,
    mem_copy_util_max double precision,
    mem_copy_util_sum double precision,
    mem_copy_util_n integer NOT NULL DEFAULT 0,
    fb_used_min double precision,
    fb_used_max double precision,
    fb_used_sum double precision,
    fb_used_n integer NOT NULL DEFAULT 0,
    sm_clock_min double precision,
    sm_clock_max double precision,
    sm_clock_sum double precision,
    sm_clock_n integer NOT NULL DEFAULT 0,
    gr_engine_active_min double precision,
    gr_engine_active_max double precision,
    gr_engine_active_sum double precision,
    gr_engine_active_n integer NOT NULL DEFAULT 0,
    tensor_active_min double precision,
    tensor_active_max double precision,
    tensor_active_sum double precision,
    tensor_active_n integer NOT NULL DEFAULT 0,
    total_energy_min bigint,
    total_energy_max bigint,
    pcie_replay_min bigint,
    pcie_replay_max bigint,
    ecc_sbe_volatile_min bigint,
    ecc_sbe_volatile_max bigint,
    ecc_dbe_volatile_min bigint,
    ecc_dbe_volatile_max bigint,
    ecc_sbe_aggregate_min bigint,
    ecc_sbe_aggregate_max bigint,
    ecc_dbe_aggregate_min bigint,
    ecc_dbe_aggregate_max bigint,
    correctable_remapped_rows_min bigint,
    correctable_remapped_rows_max bigint,
    uncorrectable_remapped_rows_min bigint,
    uncorrectable_remapped_rows_max bigint,
    power_violation_min bigint,
    power_violation_max bigint,
    thermal_violation_min bigint,
    thermal_violation_max bigint,
    nvlink_crc_flit_errors_min bigint,
    nvlink_crc_flit_errors_max bigint,
    nvlink_crc_data_errors_min bigint,
    nvlink_crc_data_errors_max bigint,
    PRIMARY KEY (gpu_key, minute)
)$rcols$;
BEGIN
    IF gpuhealth_storage() = 'timescaledb' THEN
        EXECUTE 'CREATE TABLE gpu_metrics ' || cols;
        PERFORM create_hypertable('gpu_metrics', 'time', chunk_time_interval => interval '1 day',
                                  create_default_indexes => false);
        EXECUTE 'ALTER TABLE gpu_metrics SET (timescaledb.compress, timescaledb.compress_segmentby = ''gpu_key'', timescaledb.compress_orderby = ''time DESC'')';
        EXECUTE 'CREATE TABLE gpu_metrics_1min ' || rcols;
        PERFORM create_hypertable('gpu_metrics_1min', 'minute', chunk_time_interval => interval '7 days',
                                  create_default_indexes => false);
    ELSE
        EXECUTE 'CREATE TABLE gpu_metrics ' || cols || ' PARTITION BY RANGE (time)';
        EXECUTE 'CREATE TABLE gpu_metrics_1min ' || rcols;
    END IF;
END
$metrics$;
-- "one GPU over a time range" and "latest per GPU" use the primary key (gpu_key, time);
-- fleet-wide time ranges use this one.
CREATE INDEX gpu_metrics_time_idx ON gpu_metrics (time DESC);
CREATE INDEX gpu_metrics_1min_minute_idx ON gpu_metrics_1min (minute DESC);

-- Creates the daily partitions that hold [from_ts, to_ts] (plain PostgreSQL; a no-op on
-- TimescaleDB). Runs as the schema owner so the writer role needs no DDL rights.
CREATE FUNCTION gpuhealth_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    d date;
    made integer := 0;
    part text;
BEGIN
    IF gpuhealth_storage() <> 'partitioned' THEN
        RETURN 0;
    END IF;
    FOR d IN SELECT generate_series((from_ts AT TIME ZONE 'UTC')::date,
                                    (to_ts AT TIME ZONE 'UTC')::date, interval '1 day')::date LOOP
        part := 'gpu_metrics_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('gpuhealth_partitions'));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF gpu_metrics FOR VALUES FROM (%L) TO (%L)',
                               part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
                made := made + 1;
            END IF;
        END IF;
    END LOOP;
    RETURN made;
END
$$;

-- Drops partitions wholly older than the retention and deletes expired rollups (plain
-- PostgreSQL; TimescaleDB's own retention policy does this there). Returns partitions dropped.
CREATE FUNCTION gpuhealth_drop_expired(now_ts timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    keep interval := (SELECT value FROM gpuhealth_settings WHERE key = 'retention')::interval;
    keep_rollup interval := (SELECT value FROM gpuhealth_settings WHERE key = 'rollup_retention')::interval;
    r record;
    dropped integer := 0;
BEGIN
    IF gpuhealth_storage() = 'partitioned' THEN
        PERFORM pg_advisory_xact_lock(hashtext('gpuhealth_partitions'));
        FOR r IN SELECT c.relname FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'gpu_metrics'::regclass AND c.relname ~ '^gpu_metrics_p[0-9]{8}$' LOOP
            IF (to_date(substr(r.relname, 14), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= now_ts - keep THEN
                EXECUTE format('DROP TABLE %I', r.relname);
                dropped := dropped + 1;
            END IF;
        END LOOP;
        DELETE FROM gpu_metrics_1min WHERE minute < now_ts - keep_rollup;
    END IF;
    RETURN dropped;
END
$$;

-- Applies the settings to TimescaleDB's policies (a no-op on plain PostgreSQL).
CREATE FUNCTION gpuhealth_apply_policies() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    keep interval := (SELECT value FROM gpuhealth_settings WHERE key = 'retention')::interval;
    comp interval := (SELECT value FROM gpuhealth_settings WHERE key = 'compress_after')::interval;
    keep_rollup interval := (SELECT value FROM gpuhealth_settings WHERE key = 'rollup_retention')::interval;
BEGIN
    IF gpuhealth_storage() <> 'timescaledb' THEN
        RETURN 'partitioned: retention ' || keep || ', kept by the sink';
    END IF;
    PERFORM remove_compression_policy('gpu_metrics', if_exists => true);
    PERFORM add_compression_policy('gpu_metrics', comp);
    PERFORM remove_retention_policy('gpu_metrics', if_exists => true);
    PERFORM add_retention_policy('gpu_metrics', keep);
    PERFORM remove_retention_policy('gpu_metrics_1min', if_exists => true);
    PERFORM add_retention_policy('gpu_metrics_1min', keep_rollup);
    RETURN 'timescaledb: compress after ' || comp || ', retention ' || keep;
END
$$;
SELECT gpuhealth_apply_policies();

-- The sink's per-session temporary tables: a batch normally goes straight into gpu_metrics
-- with COPY; when that meets a row already present (a redelivery) the batch is COPYed into
-- gpuhealth_stage instead and moved by gpuhealth_ingest_staged(). The GPU identities of a
-- batch go to gpuhealth_ident, merged by gpuhealth_merge_gpus().
CREATE FUNCTION gpuhealth_create_stage() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS gpuhealth_stage (LIKE gpu_metrics INCLUDING DEFAULTS)
        ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS gpuhealth_ident (
        gpu_key text, uuid text, mig_instance integer, mig_profile text, gpu_index integer,
        hostname text, model text, pci_bus_id text, device text, driver_version text,
        cluster text, datacenter text, rack text, first_seen timestamptz, last_seen timestamptz
    ) ON COMMIT DELETE ROWS;
END
$$;

-- Moves the staged batch into gpu_metrics; rows already present are ignored, so a redelivered
-- batch changes nothing. Returns how many rows were new and how many were duplicates.
CREATE FUNCTION gpuhealth_ingest_staged(OUT inserted bigint, OUT duplicates bigint)
LANGUAGE plpgsql AS $$
DECLARE
    staged bigint;
BEGIN
    SELECT count(*) INTO staged FROM gpuhealth_stage;
    WITH ins AS (
        INSERT INTO gpu_metrics (time, gpu_key, uuid, mig_instance, hostname, gpu_index, sm_clock, mem_clock, gpu_temp, memory_temp, power_usage, power_limit, total_energy, pcie_replay, gpu_util, mem_copy_util, enc_util, dec_util, xid, fb_free, fb_used, fb_reserved, ecc_sbe_volatile, ecc_dbe_volatile, ecc_sbe_aggregate, ecc_dbe_aggregate, retired_pages_sbe, retired_pages_dbe, retired_pages_pending, uncorrectable_remapped_rows, correctable_remapped_rows, row_remap_failure, row_remap_pending, clocks_event_reasons, power_violation, thermal_violation, nvlink_crc_flit_errors, nvlink_crc_data_errors, nvlink_bandwidth_total, slowdown_temp, shutdown_temp, gr_engine_active, sm_active, sm_occupancy, tensor_active, dram_active, pcie_tx_bytes, pcie_rx_bytes, extra)
        SELECT time, gpu_key, uuid, mig_instance, hostname, gpu_index, sm_clock, mem_clock, gpu_temp, memory_temp, power_usage, power_limit, total_energy, pcie_replay, gpu_util, mem_copy_util, enc_util, dec_util, xid, fb_free, fb_used, fb_reserved, ecc_sbe_volatile, ecc_dbe_volatile, ecc_sbe_aggregate, ecc_dbe_aggregate, retired_pages_sbe, retired_pages_dbe, retired_pages_pending, uncorrectable_remapped_rows, correctable_remapped_rows, row_remap_failure, row_remap_pending, clocks_event_reasons, power_violation, thermal_violation, nvlink_crc_flit_errors, nvlink_crc_data_errors, nvlink_bandwidth_total, slowdown_temp, shutdown_temp, gr_engine_active, sm_active, sm_occupancy, tensor_active, dram_active, pcie_tx_bytes, pcie_rx_bytes, extra
        FROM gpuhealth_stage
        ON CONFLICT DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO inserted FROM ins;
    duplicates := staged - inserted;
END
$$;

-- Adds the rows that this transaction inserted into gpu_metrics (between from_ts and to_ts)
-- to the 1-minute rollups. Only new rows are counted, so redelivery never counts twice.
CREATE FUNCTION gpuhealth_rollup_new(from_ts timestamptz, to_ts timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO gpu_metrics_1min AS r (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum, gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n, power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum, mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min, sm_clock_max, sm_clock_sum, sm_clock_n, gr_engine_active_min, gr_engine_active_max, gr_engine_active_sum, gr_engine_active_n, tensor_active_min, tensor_active_max, tensor_active_sum, tensor_active_n, total_energy_min, total_energy_max, pcie_replay_min, pcie_replay_max, ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max, ecc_sbe_aggregate_min, ecc_sbe_aggregate_max, ecc_dbe_aggregate_min, ecc_dbe_aggregate_max, correctable_remapped_rows_min, correctable_remapped_rows_max, uncorrectable_remapped_rows_min, uncorrectable_remapped_rows_max, power_violation_min, power_violation_max, thermal_violation_min, thermal_violation_max, nvlink_crc_flit_errors_min, nvlink_crc_flit_errors_max, nvlink_crc_data_errors_min, nvlink_crc_data_errors_max)
        SELECT gpu_key, date_trunc('minute', time), count(*), min(gpu_temp), max(gpu_temp), sum(gpu_temp), count(gpu_temp), min(memory_temp), max(memory_temp), sum(memory_temp), count(memory_temp), min(power_usage), max(power_usage), sum(power_usage), count(power_usage), min(gpu_util), max(gpu_util), sum(gpu_util), count(gpu_util), min(mem_copy_util), max(mem_copy_util), sum(mem_copy_util), count(mem_copy_util), min(fb_used), max(fb_used), sum(fb_used), count(fb_used), min(sm_clock), max(sm_clock), sum(sm_clock), count(sm_clock), min(gr_engine_active), max(gr_engine_active), sum(gr_engine_active), count(gr_engine_active), min(tensor_active), max(tensor_active), sum(tensor_active), count(tensor_active), min(total_energy), max(total_energy), min(pcie_replay), max(pcie_replay), min(ecc_sbe_volatile), max(ecc_sbe_volatile), min(ecc_dbe_volatile), max(ecc_dbe_volatile), min(ecc_sbe_aggregate), max(ecc_sbe_aggregate), min(ecc_dbe_aggregate), max(ecc_dbe_aggregate), min(correctable_remapped_rows), max(correctable_remapped_rows), min(uncorrectable_remapped_rows), max(uncorrectable_remapped_rows), min(power_violation), max(power_violation), min(thermal_violation), max(thermal_violation), min(nvlink_crc_flit_errors), max(nvlink_crc_flit_errors), min(nvlink_crc_data_errors), max(nvlink_crc_data_errors)
        FROM gpu_metrics
        WHERE time BETWEEN from_ts AND to_ts AND xmin = xid(pg_current_xact_id())
        GROUP BY 1, 2
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

-- Merges the batch's GPU identities (gpuhealth_ident) into the gpus table.
CREATE FUNCTION gpuhealth_merge_gpus() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gpus AS g (gpu_key, uuid, mig_instance, mig_profile, gpu_index, hostname, model,
                           pci_bus_id, device, driver_version, cluster, datacenter, rack,
                           first_seen, last_seen)
    SELECT DISTINCT ON (gpu_key) gpu_key, uuid, mig_instance, mig_profile, gpu_index, hostname,
           model, pci_bus_id, device, driver_version, cluster, datacenter, rack, first_seen,
           last_seen
    FROM gpuhealth_ident
    ORDER BY gpu_key, last_seen DESC
    ON CONFLICT (gpu_key) DO UPDATE SET
        first_seen = LEAST(g.first_seen, EXCLUDED.first_seen),
        last_seen = GREATEST(g.last_seen, EXCLUDED.last_seen),
        mig_profile = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.mig_profile, g.mig_profile) ELSE g.mig_profile END,
        gpu_index = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.gpu_index, g.gpu_index) ELSE g.gpu_index END,
        hostname = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.hostname, g.hostname) ELSE g.hostname END,
        model = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.model, g.model) ELSE g.model END,
        pci_bus_id = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.pci_bus_id, g.pci_bus_id) ELSE g.pci_bus_id END,
        device = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.device, g.device) ELSE g.device END,
        driver_version = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.driver_version, g.driver_version) ELSE g.driver_version END,
        cluster = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.cluster, g.cluster) ELSE g.cluster END,
        datacenter = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.datacenter, g.datacenter) ELSE g.datacenter END,
        rack = CASE WHEN EXCLUDED.last_seen >= g.last_seen THEN COALESCE(EXCLUDED.rack, g.rack) ELSE g.rack END
    WHERE EXCLUDED.last_seen > g.last_seen OR EXCLUDED.first_seen < g.first_seen;
END
$$;

GRANT SELECT ON gpuhealth_settings TO gpuhealth_writer, gpuhealth_reader;
GRANT SELECT, INSERT ON gpu_metrics TO gpuhealth_writer;
GRANT SELECT, INSERT, UPDATE ON gpus, gpu_metrics_1min TO gpuhealth_writer;
GRANT SELECT ON gpus, gpu_metrics, gpu_metrics_1min TO gpuhealth_reader;
REVOKE ALL ON FUNCTION gpuhealth_ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION gpuhealth_drop_expired(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gpuhealth_ensure_partitions(timestamptz, timestamptz) TO gpuhealth_writer;
GRANT EXECUTE ON FUNCTION gpuhealth_drop_expired(timestamptz) TO gpuhealth_writer;
