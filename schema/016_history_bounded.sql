-- gpuhealth schema, migration 016: the last two tables that grew for ever are bounded too
-- (issue #21 item 4 named the health tables; dead_letters and alerts are their siblings).
--
-- gpuhealth_drop_expired(now_ts), which the sink's maintenance calls on either storage, now
-- also deletes
--   * dead letters that failed before the raw-metrics retention ('retention': a dead letter
--     is a raw event that could not be stored, kept as long as the raw rows it stands for);
--   * cleared alerts raised and cleared before 'health_retention' (the health tables' own
--     window). An open alert is never deleted, however old.
-- The caller's time is clamped as before (least(now_ts, now()); '-infinity' deletes
-- nothing), so the writer role can only delete less. The old function is kept under the
-- name gpuhealth_drop_expired_metrics and called first: its checks of the settings come
-- first, and nothing of it is written twice.

ALTER FUNCTION gpuhealth_drop_expired(timestamptz) RENAME TO gpuhealth_drop_expired_metrics;
REVOKE ALL ON FUNCTION gpuhealth_drop_expired_metrics(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION gpuhealth_drop_expired_metrics(timestamptz) FROM gpuhealth_writer;

CREATE FUNCTION gpuhealth_drop_expired(now_ts timestamptz DEFAULT now())
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    dropped integer;
    at_ts timestamptz := least(coalesce(now_ts, now()), now());
    keep_raw interval;
    keep_health interval;
BEGIN
    dropped := gpuhealth_drop_expired_metrics(now_ts);
    SELECT keep INTO keep_raw FROM gpuhealth_upkeep_window();
    DELETE FROM dead_letters WHERE failed_at < at_ts - keep_raw;
    BEGIN
        keep_health := (SELECT value FROM gpuhealth_settings WHERE key = 'health_retention')::interval;
    EXCEPTION WHEN OTHERS THEN
        keep_health := NULL;
    END;
    IF keep_health IS NULL OR keep_health <= interval '0' THEN
        RAISE EXCEPTION 'gpuhealth_settings health_retention is not a positive interval'
            USING HINT = 'UPDATE gpuhealth_settings SET value = ''30 days'' WHERE key = ''health_retention'' (as the schema owner)';
    END IF;
    DELETE FROM alerts
        WHERE cleared_at IS NOT NULL AND raised_at < at_ts - keep_health
          AND cleared_at < at_ts - keep_health;
    RETURN dropped;
END
$$;

REVOKE ALL ON FUNCTION gpuhealth_drop_expired(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gpuhealth_drop_expired(timestamptz) TO gpuhealth_writer;
