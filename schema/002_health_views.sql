-- gpuhealth schema, migration 002: health scores, failure predictions, alerts, and the views
-- that the console, the API and Grafana read. The same on plain PostgreSQL and TimescaleDB.

CREATE TABLE gpu_health_scores (
    time          timestamptz NOT NULL,
    gpu_key       text NOT NULL,
    score         smallint NOT NULL CHECK (score BETWEEN 0 AND 100),
    status        text NOT NULL CHECK (status IN ('pass', 'warn', 'fail')),
    thermal       smallint CHECK (thermal BETWEEN 0 AND 100),
    memory        smallint CHECK (memory BETWEEN 0 AND 100),
    power         smallint CHECK (power BETWEEN 0 AND 100),
    interconnect  smallint CHECK (interconnect BETWEEN 0 AND 100),
    xid           smallint CHECK (xid BETWEEN 0 AND 100),
    reasons       jsonb,
    PRIMARY KEY (gpu_key, time)
);
CREATE INDEX gpu_health_scores_time_idx ON gpu_health_scores (time DESC);

CREATE TABLE gpu_failure_predictions (
    time           timestamptz NOT NULL,
    gpu_key        text NOT NULL,
    horizon_hours  real NOT NULL CHECK (horizon_hours > 0),
    probability    double precision NOT NULL CHECK (probability BETWEEN 0 AND 1),
    model_version  text NOT NULL,
    reasons        jsonb,
    recommendation text CHECK (recommendation IN ('keep', 'drain', 'reset', 'reboot', 'rma')),
    PRIMARY KEY (gpu_key, time, horizon_hours)
);

CREATE TABLE alerts (
    id          bigserial PRIMARY KEY,
    gpu_key     text NOT NULL,
    hostname    text,
    kind        text NOT NULL,
    severity    text NOT NULL CHECK (severity IN ('warn', 'fail', 'info')),
    message     text NOT NULL,
    details     jsonb,
    raised_at   timestamptz NOT NULL,
    cleared_at  timestamptz
);
-- At most one open alert per GPU and kind: raising is deduplicated by the database too.
CREATE UNIQUE INDEX alerts_open_uniq ON alerts (gpu_key, kind) WHERE cleared_at IS NULL;
CREATE INDEX alerts_raised_idx ON alerts (raised_at DESC);

-- The newest sample of every GPU, with its identity.
CREATE VIEW v_latest_gpu_metrics AS
SELECT g.model, g.cluster, g.datacenter, g.rack, g.mig_profile,
       g.driver_version, m.*
FROM gpus g
CROSS JOIN LATERAL (
    SELECT * FROM gpu_metrics m WHERE m.gpu_key = g.gpu_key ORDER BY m.time DESC LIMIT 1
) m;

-- The newest health score of every GPU.
CREATE VIEW v_latest_health AS
SELECT g.gpu_key, g.hostname, g.gpu_index, h.time, h.score, h.status, h.thermal, h.memory,
       h.power, h.interconnect, h.xid, h.reasons
FROM gpus g
CROSS JOIN LATERAL (
    SELECT * FROM gpu_health_scores h WHERE h.gpu_key = g.gpu_key ORDER BY h.time DESC LIMIT 1
) h;

-- One row for the whole fleet: what a dashboard's top line shows.
CREATE VIEW v_fleet_summary AS
SELECT (SELECT count(*) FROM gpus)                                        AS gpus,
       (SELECT count(DISTINCT hostname) FROM gpus)                        AS hosts,
       (SELECT count(*) FROM gpus WHERE last_seen > now() - interval '5 minutes') AS gpus_reporting,
       (SELECT avg(gpu_temp) FROM v_latest_gpu_metrics)                   AS avg_gpu_temp_c,
       (SELECT max(gpu_temp) FROM v_latest_gpu_metrics)                   AS max_gpu_temp_c,
       (SELECT sum(power_usage) FROM v_latest_gpu_metrics)                AS total_power_w,
       (SELECT avg(gpu_util) FROM v_latest_gpu_metrics)                   AS avg_gpu_util_pct,
       (SELECT count(*) FROM v_latest_health WHERE status = 'pass')       AS gpus_pass,
       (SELECT count(*) FROM v_latest_health WHERE status = 'warn')       AS gpus_warn,
       (SELECT count(*) FROM v_latest_health WHERE status = 'fail')       AS gpus_fail,
       (SELECT count(*) FROM alerts WHERE cleared_at IS NULL)             AS open_alerts,
       (SELECT max(last_seen) FROM gpus)                                  AS last_sample_at;

-- Per-minute averages with counter deltas, for charts over long ranges.
CREATE VIEW v_gpu_metrics_1min AS
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
FROM gpu_metrics_1min;

GRANT SELECT, INSERT ON gpu_health_scores, gpu_failure_predictions TO gpuhealth_writer;
GRANT SELECT, INSERT, UPDATE ON alerts TO gpuhealth_writer;
GRANT USAGE ON SEQUENCE alerts_id_seq TO gpuhealth_writer;
GRANT SELECT ON gpu_health_scores, gpu_failure_predictions, alerts, v_latest_gpu_metrics,
      v_latest_health, v_fleet_summary, v_gpu_metrics_1min TO gpuhealth_reader, gpuhealth_writer;
