-- gpuhealth schema, migration 007: ANALYZE keeps statistics only for the columns queries
-- select rows by (gpu_key and time; gpu_key and minute for the rollups), not for the ~60
-- metric columns. A day's partition grows by 100,000s of rows a minute in a large fleet, and
-- autovacuum re-analyzes it every 10 % of growth: early in the day every half minute or so,
-- each time sorting a 30,000-row sample of every column (measured: ~9 % of PostgreSQL's CPU
-- at 200,704 GPUs, bench/e2e.sh). The planner never uses the metric columns' statistics to
-- choose an index (they have none); a filter on one is estimated with the default
-- selectivities instead. A column's target is set back with ALTER COLUMN ... SET STATISTICS -1.
-- New partitions take their parent's targets (gpuhealth_ensure_partitions below: PostgreSQL
-- does not copy them to a table created as PARTITION OF).
DO $lean$
DECLARE
    t record;
    cols text;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('gpu_metrics'::regclass, ARRAY['gpu_key', 'time']),
                                   ('gpu_metrics_1min'::regclass, ARRAY['gpu_key', 'minute'])) v(rel, keep) LOOP
        SELECT string_agg(format('ALTER COLUMN %I SET STATISTICS 0', attname), ', ' ORDER BY attnum)
          INTO cols
          FROM pg_attribute
         WHERE attrelid = t.rel AND attnum > 0 AND NOT attisdropped AND attname <> ALL (t.keep);
        IF cols IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s ', t.rel) || cols; -- recurses to partitions/chunks
        END IF;
    END LOOP;
END
$lean$;

-- As in migration 001, plus: a new partition takes gpu_metrics' per-column statistics targets.
CREATE OR REPLACE FUNCTION gpuhealth_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    d date;
    made integer := 0;
    part text;
    stats text;
BEGIN
    IF gpuhealth_storage() <> 'partitioned' THEN
        RETURN 0;
    END IF;
    SELECT string_agg(format('ALTER COLUMN %I SET STATISTICS %s', attname, attstattarget), ', ' ORDER BY attnum)
      INTO stats
      FROM pg_attribute
     WHERE attrelid = 'gpu_metrics'::regclass AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0;
    FOR d IN SELECT generate_series((from_ts AT TIME ZONE 'UTC')::date,
                                    (to_ts AT TIME ZONE 'UTC')::date, interval '1 day')::date LOOP
        part := 'gpu_metrics_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass(part) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('gpuhealth_partitions'));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF gpu_metrics FOR VALUES FROM (%L) TO (%L)',
                               part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
                IF stats IS NOT NULL THEN
                    EXECUTE format('ALTER TABLE %I ', part) || stats;
                END IF;
                made := made + 1;
            END IF;
        END IF;
    END LOOP;
    RETURN made;
END
$$;
