-- gpuhealth schema, migration 004: the sink's pipeline counters, stored so that Grafana can
-- show Kafka consumer lag and dead letters over time. Each running sink inserts one row every
-- stats period (10 s) with its counters since it started (consumed, rows_written,
-- dead_letters, db_errors: they restart at 0 with the process, so take deltas per instance)
-- and its consumer lag at that moment. Rows older than the raw-sample retention are deleted by
-- gpuhealth_drop_expired(), which the sink's maintenance calls (on TimescaleDB too).

CREATE TABLE pipeline_stats (
    time           timestamptz NOT NULL,
    service        text NOT NULL,   -- 'sink'
    instance       text NOT NULL,   -- hostname:pid of the process
    consumer_group text,
    topic          text,
    lag            bigint,          -- messages behind the partition ends; NULL unknown
    consumed       bigint NOT NULL, -- messages read from Kafka since the process started
    rows_written   bigint NOT NULL, -- new rows committed to gpu_metrics since it started
    dead_letters   bigint NOT NULL, -- events sent to the dead-letter topic since it started
    db_errors      bigint NOT NULL, -- failed attempts to write a batch since it started
    PRIMARY KEY (service, instance, time)
);
CREATE INDEX pipeline_stats_time_idx ON pipeline_stats (time DESC);

-- As in migration 001, plus: pipeline_stats rows older than the retention are deleted, with
-- either storage (TimescaleDB's policies do not cover this plain table).
CREATE OR REPLACE FUNCTION gpuhealth_drop_expired(now_ts timestamptz DEFAULT now())
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
    DELETE FROM pipeline_stats WHERE time < now_ts - keep;
    RETURN dropped;
END
$$;

GRANT SELECT, INSERT ON pipeline_stats TO gpuhealth_writer;
GRANT SELECT ON pipeline_stats TO gpuhealth_reader;
