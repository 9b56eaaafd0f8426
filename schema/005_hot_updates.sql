-- gpuhealth schema, migration 005: room on every page for the new versions of the rows the
-- sink updates all the time, so that PostgreSQL updates them on the same page without a new
-- entry in each index (a HOT update: no indexed column changes). gpu_metrics_1min: the row of
-- a GPU and minute is merged by every batch that brings a sample of that minute (six times a
-- minute at a 10 s interval); gpus: last_seen is moved by every batch that sees the GPU. In a
-- fleet of 100,000s of GPUs each batch touches a different row per sample, and without the room
-- every merge wrote two index entries per table. Applies to pages written from now on.
DO $hot$
BEGIN
    ALTER TABLE gpu_metrics_1min SET (fillfactor = 50);
    ALTER TABLE gpus SET (fillfactor = 70);
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    -- a TimescaleDB version that does not take storage parameters on a hypertable: the
    -- tables keep working, only without the room
    RAISE NOTICE 'gpuhealth 005: fillfactor not set (%): updates stay non-HOT', SQLERRM;
END
$hot$;
