-- gpuhealth schema, migration 012 (issue #21, items 4 and 5; renumbered on merge).
--
-- Item 5: TimescaleDB's policy jobs are created once and altered in place. Before, every
-- "gpuhealth db migrate" removed and re-added them (new job ids, the job history lost).
-- gpuhealth_apply_policies() now adds a policy only when the table has none, and otherwise
-- changes the existing job's setting with alter_job() when it differs.
--
-- Item 4: the health tables (gpu_health_scores, gpu_failure_predictions) are bounded: on
-- TimescaleDB hypertables of one day's chunks, compressed after compress_after and dropped
-- after health_retention; on plain PostgreSQL partitioned by day (with a default partition
-- for rows outside the partitions made so far), the partitions made and dropped by
-- gpuhealth_health_upkeep(), which the sink runs with its other upkeep.

INSERT INTO gpuhealth_settings (key, value) VALUES ('health_retention', '30 days')
ON CONFLICT (key) DO NOTHING;

DO $health$
DECLARE
    t text;
    v record;
    views text[] := '{}';
    defs text[] := '{}';
    d date;
BEGIN
    IF gpuhealth_storage() = 'timescaledb' THEN
        FOREACH t IN ARRAY ARRAY['gpu_health_scores', 'gpu_failure_predictions'] LOOP
            PERFORM create_hypertable(t, 'time', chunk_time_interval => interval '1 day',
                                      migrate_data => true, create_default_indexes => false);
            EXECUTE format('ALTER TABLE %I SET (timescaledb.compress, '
                           'timescaledb.compress_segmentby = ''gpu_key'', '
                           'timescaledb.compress_orderby = %L)', t,
                           CASE WHEN t = 'gpu_failure_predictions' THEN 'time DESC, horizon_hours'
                                ELSE 'time DESC' END);
        END LOOP;
        RETURN;
    END IF;
    -- plain PostgreSQL: the same tables again, partitioned by day, the rows moved over. The
    -- views that read them are made again over the new tables (same names and columns).
    FOR v IN SELECT DISTINCT c.oid::regclass::text AS name, pg_get_viewdef(c.oid) AS def
             FROM pg_depend dp
             JOIN pg_rewrite rw ON rw.oid = dp.objid
             JOIN pg_class c ON c.oid = rw.ev_class
             WHERE dp.refobjid IN ('gpu_health_scores'::regclass, 'gpu_failure_predictions'::regclass)
               AND c.relkind = 'v' AND c.oid <> dp.refobjid LOOP
        views := views || v.name;
        defs := defs || v.def;
    END LOOP;
    FOREACH t IN ARRAY ARRAY['gpu_health_scores', 'gpu_failure_predictions'] LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', t, t || '_unbounded');
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING ALL) PARTITION BY RANGE (time)',
                       t, t || '_unbounded');
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_pdefault', t);
        FOR d IN EXECUTE format('SELECT DISTINCT (time AT TIME ZONE ''UTC'')::date FROM %I',
                                t || '_unbounded') LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           t || '_p' || to_char(d, 'YYYYMMDD'), t,
                           d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
        END LOOP;
        EXECUTE format('INSERT INTO %I SELECT * FROM %I', t, t || '_unbounded');
    END LOOP;
    FOR i IN 1 .. coalesce(array_length(views, 1), 0) LOOP
        EXECUTE format('CREATE OR REPLACE VIEW %s AS %s', views[i], defs[i]);
    END LOOP;
    DROP TABLE gpu_health_scores_unbounded, gpu_failure_predictions_unbounded;
END
$health$;

GRANT SELECT, INSERT ON gpu_health_scores, gpu_failure_predictions TO gpuhealth_writer;
GRANT SELECT ON gpu_health_scores, gpu_failure_predictions TO gpuhealth_reader;

-- Plain PostgreSQL: makes the health tables' daily partitions for [now_ts - 1 day, now_ts +
-- partitions_ahead_days] and drops those wholly older than health_retention (rows in the
-- default partition older than it are deleted). now_ts is clamped to [now() - health_retention,
-- now()] (like gpuhealth_drop_expired, schema 009). A no-op on TimescaleDB, whose policies do
-- it. Returns the partitions dropped.
CREATE FUNCTION gpuhealth_health_upkeep(now_ts timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    keep interval := (SELECT value FROM gpuhealth_settings WHERE key = 'health_retention')::interval;
    ahead integer := coalesce((SELECT value::int FROM gpuhealth_settings
                               WHERE key = 'partitions_ahead_days'), 2);
    t text;
    d date;
    part text;
    r record;
    dropped integer := 0;
BEGIN
    IF gpuhealth_storage() <> 'partitioned' THEN
        RETURN 0;
    END IF;
    IF keep IS NULL OR keep <= interval '0' THEN
        RAISE EXCEPTION 'gpuhealth setting health_retention is missing or not positive (%): set it with gpuhealth db migrate', keep;
    END IF;
    -- The caller (the writer role; this runs as the owner) can only ask for less, never more:
    -- its time is clamped to [now() - health_retention, now()], so no time ahead drops rows
    -- within the retention and no time far back makes partitions outside it.
    now_ts := greatest(least(coalesce(now_ts, now()), now()), now() - keep);
    PERFORM pg_advisory_xact_lock(hashtext('gpuhealth_health_partitions'));
    FOREACH t IN ARRAY ARRAY['gpu_health_scores', 'gpu_failure_predictions'] LOOP
        FOR d IN SELECT generate_series(((now_ts - interval '1 day') AT TIME ZONE 'UTC')::date,
                                        (now_ts AT TIME ZONE 'UTC')::date + ahead,
                                        interval '1 day')::date LOOP
            part := t || '_p' || to_char(d, 'YYYYMMDD');
            IF to_regclass(part) IS NULL THEN
                -- rows of that day already in the default partition move into the new one
                EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING ALL)', part, t);
                EXECUTE format('WITH moved AS (DELETE FROM %I WHERE time >= %L AND time < %L '
                               'RETURNING *) INSERT INTO %I SELECT * FROM moved',
                               t || '_pdefault', d::timestamp AT TIME ZONE 'UTC',
                               (d + 1)::timestamp AT TIME ZONE 'UTC', part);
                EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               t, part, d::timestamp AT TIME ZONE 'UTC',
                               (d + 1)::timestamp AT TIME ZONE 'UTC');
            END IF;
        END LOOP;
        FOR r IN SELECT c.relname FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = t::regclass AND c.relname ~ ('^' || t || '_p[0-9]{8}$') LOOP
            IF (to_date(right(r.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
               <= now_ts - keep THEN
                EXECUTE format('DROP TABLE %I', r.relname);
                dropped := dropped + 1;
            END IF;
        END LOOP;
        EXECUTE format('DELETE FROM %I WHERE time < %L', t || '_pdefault', now_ts - keep);
    END LOOP;
    RETURN dropped;
END
$$;
REVOKE ALL ON FUNCTION gpuhealth_health_upkeep(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gpuhealth_health_upkeep(timestamptz) TO gpuhealth_writer;

-- One TimescaleDB policy on rel: added when rel has none (proc 'policy_compression' or
-- 'policy_retention'), else its setting key changed in place by alter_job() when it differs
-- from val. Returns what it did: 'added', 'altered' or 'kept', with the job id.
CREATE FUNCTION gpuhealth_policy(rel regclass, proc text, key text, val interval)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    j record;
BEGIN
    SELECT job_id, config INTO j FROM timescaledb_information.jobs
     WHERE proc_name = proc AND format('%I.%I', hypertable_schema, hypertable_name)::regclass = rel
     ORDER BY job_id LIMIT 1;
    IF NOT FOUND THEN
        IF proc = 'policy_compression' THEN
            PERFORM add_compression_policy(rel, val);
        ELSE
            PERFORM add_retention_policy(rel, val);
        END IF;
        SELECT job_id INTO j FROM timescaledb_information.jobs
         WHERE proc_name = proc AND format('%I.%I', hypertable_schema, hypertable_name)::regclass = rel
         ORDER BY job_id LIMIT 1;
        RETURN 'added job ' || j.job_id;
    END IF;
    IF (j.config ->> key)::interval IS DISTINCT FROM val THEN
        PERFORM alter_job(j.job_id, config => jsonb_set(j.config, ARRAY[key], to_jsonb(val::text)));
        RETURN 'altered job ' || j.job_id;
    END IF;
    RETURN 'kept job ' || j.job_id;
END
$$;

-- Applies the settings to TimescaleDB's policies (a no-op on plain PostgreSQL), each created
-- once and altered in place (gpuhealth_policy).
CREATE OR REPLACE FUNCTION gpuhealth_apply_policies() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    keep interval := (SELECT value FROM gpuhealth_settings WHERE key = 'retention')::interval;
    comp interval := (SELECT value FROM gpuhealth_settings WHERE key = 'compress_after')::interval;
    keep_rollup interval := (SELECT value FROM gpuhealth_settings WHERE key = 'rollup_retention')::interval;
    keep_health interval := (SELECT value FROM gpuhealth_settings WHERE key = 'health_retention')::interval;
    done text[] := '{}';
    t text;
BEGIN
    IF gpuhealth_storage() <> 'timescaledb' THEN
        RETURN 'partitioned: retention ' || keep || ', health retention ' || keep_health
               || ', kept by the sink';
    END IF;
    done := done || ('gpu_metrics compression ' || gpuhealth_policy('gpu_metrics', 'policy_compression', 'compress_after', comp));
    done := done || ('retention ' || gpuhealth_policy('gpu_metrics', 'policy_retention', 'drop_after', keep));
    done := done || ('gpu_metrics_1min retention ' || gpuhealth_policy('gpu_metrics_1min', 'policy_retention', 'drop_after', keep_rollup));
    FOREACH t IN ARRAY ARRAY['gpu_health_scores', 'gpu_failure_predictions'] LOOP
        done := done || (t || ' compression ' || gpuhealth_policy(t, 'policy_compression', 'compress_after', comp));
        done := done || ('retention ' || gpuhealth_policy(t, 'policy_retention', 'drop_after', keep_health));
    END LOOP;
    RETURN 'timescaledb: compress after ' || comp || ', retention ' || keep || ', health retention '
           || keep_health || ' (' || array_to_string(done, ', ') || ')';
END
$$;
