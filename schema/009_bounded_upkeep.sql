-- gpuhealth schema, migration 009: the upkeep functions the writer role may call decide their
-- range in the database. gpuhealth_drop_expired(t) and gpuhealth_ensure_partitions(a, b) run
-- as the schema owner (SECURITY DEFINER) and used to trust the caller's times: a t 100 years
-- ahead dropped every partition of gpu_metrics and every rollup; a range of 3 years created
-- 1,097 tables. Now the database computes the window from now() and gpuhealth_settings, and a
-- caller's arguments can only narrow it (they are clamped to it, never an error, so that the
-- sink's batch transaction is not aborted by an edge of the window):
--   * gpuhealth_drop_expired(t): the cut-off is least(t, now()) - retention; NULL or a t after
--     now() means now(). An earlier t drops less.
--   * gpuhealth_ensure_partitions(a, b): creates only the days of [a, b] within
--     [now() - retention, now() + partitions_ahead_days]: at most retention (in days) +
--     partitions_ahead_days + 1 partitions, whatever the range. NULL means that end of the
--     window. Rows outside the window have no partition and are refused by PostgreSQL (the sink
--     sends such events to the dead-letter topic before: --max-future, the retention).
-- A retention that is missing, not an interval or not positive, or a partitions_ahead_days
-- outside 0..366, is an error naming the setting (before, a missing retention let
-- ensure_partitions reach back without bound).

-- The window the writer's upkeep works in: [oldest, newest].
CREATE FUNCTION gpuhealth_upkeep_window(OUT keep interval, OUT oldest timestamptz, OUT newest timestamptz)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
DECLARE
    v_keep text := (SELECT value FROM gpuhealth_settings WHERE key = 'retention');
    v_ahead text := (SELECT value FROM gpuhealth_settings WHERE key = 'partitions_ahead_days');
    ahead integer;
BEGIN
    BEGIN
        keep := v_keep::interval;
    EXCEPTION WHEN OTHERS THEN
        keep := NULL;
    END;
    IF keep IS NULL OR keep <= interval '0' THEN
        RAISE EXCEPTION 'gpuhealth_settings retention is %, not a positive interval',
            coalesce(quote_literal(v_keep), 'missing')
            USING HINT = 'UPDATE gpuhealth_settings SET value = ''7 days'' WHERE key = ''retention'' (as the schema owner)';
    END IF;
    IF v_ahead IS NULL OR v_ahead !~ '^\s*[0-9]{1,3}\s*$' THEN
        ahead := -1;
    ELSE
        ahead := v_ahead::integer;
    END IF;
    IF ahead NOT BETWEEN 0 AND 366 THEN
        RAISE EXCEPTION 'gpuhealth_settings partitions_ahead_days is %, not a whole number 0..366',
            coalesce(quote_literal(v_ahead), 'missing')
            USING HINT = 'UPDATE gpuhealth_settings SET value = ''2'' WHERE key = ''partitions_ahead_days'' (as the schema owner)';
    END IF;
    oldest := now() - keep;
    newest := now() + ahead * interval '1 day';
END
$$;

CREATE OR REPLACE FUNCTION gpuhealth_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    w record;
    lo timestamptz;
    hi timestamptz;
    d date;
    made integer := 0;
    part text;
    stats text;
BEGIN
    IF gpuhealth_storage() <> 'partitioned' THEN
        RETURN 0;
    END IF;
    SELECT * INTO w FROM gpuhealth_upkeep_window();
    lo := greatest(coalesce(from_ts, w.oldest), w.oldest);
    hi := least(coalesce(to_ts, w.newest), w.newest);
    IF lo > hi THEN
        RETURN 0;
    END IF;
    SELECT string_agg(format('ALTER COLUMN %I SET STATISTICS %s', attname, attstattarget), ', ' ORDER BY attnum)
      INTO stats
      FROM pg_attribute
     WHERE attrelid = 'gpu_metrics'::regclass AND attnum > 0 AND NOT attisdropped AND attstattarget >= 0;
    FOR d IN SELECT generate_series((lo AT TIME ZONE 'UTC')::date,
                                    (hi AT TIME ZONE 'UTC')::date, interval '1 day')::date LOOP
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

CREATE OR REPLACE FUNCTION gpuhealth_drop_expired(now_ts timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    w record;
    keep_rollup interval;
    v_rollup text := (SELECT value FROM gpuhealth_settings WHERE key = 'rollup_retention');
    at_ts timestamptz := least(coalesce(now_ts, now()), now());
    r record;
    dropped integer := 0;
BEGIN
    SELECT * INTO w FROM gpuhealth_upkeep_window();
    BEGIN
        keep_rollup := v_rollup::interval;
    EXCEPTION WHEN OTHERS THEN
        keep_rollup := NULL;
    END;
    IF keep_rollup IS NULL OR keep_rollup <= interval '0' THEN
        RAISE EXCEPTION 'gpuhealth_settings rollup_retention is %, not a positive interval',
            coalesce(quote_literal(v_rollup), 'missing')
            USING HINT = 'UPDATE gpuhealth_settings SET value = ''90 days'' WHERE key = ''rollup_retention'' (as the schema owner)';
    END IF;
    IF gpuhealth_storage() = 'partitioned' THEN
        PERFORM pg_advisory_xact_lock(hashtext('gpuhealth_partitions'));
        FOR r IN SELECT c.relname FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'gpu_metrics'::regclass AND c.relname ~ '^gpu_metrics_p[0-9]{8}$' LOOP
            IF (to_date(substr(r.relname, 14), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= at_ts - w.keep THEN
                EXECUTE format('DROP TABLE %I', r.relname);
                dropped := dropped + 1;
            END IF;
        END LOOP;
        DELETE FROM gpu_metrics_1min WHERE minute < at_ts - keep_rollup;
    END IF;
    DELETE FROM pipeline_stats WHERE time < at_ts - w.keep;
    RETURN dropped;
END
$$;
