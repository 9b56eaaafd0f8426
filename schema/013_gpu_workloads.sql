-- gpuhealth schema, migration 013 (issue #24: workload attribution; renumbered on merge).
--
-- gpu_workloads keeps the assignments of GPUs to Kubernetes workloads (dcgm-exporter's
-- namespace/pod/container labels, the event's "workload"), not a copy per sample: one row per
-- run of samples of a GPU with the same workload, from its first to its last sample. A run with
-- no workload (the GPU idle, or outside Kubernetes) is a row too, with namespace, pod and
-- container NULL, so a pod that leaves a GPU and comes back later is two rows.
--
-- The sink writes a GPU's row when its workload changes and moves last_seen at most every 30 s
-- per GPU (gpuhealth_merge_workloads, in the batch's transaction), so a redelivered batch
-- merges into the rows it wrote the first time: exactly-once by construction, not by offsets.
-- It is a plain table with either storage (TimescaleDB or daily partitions): it grows with
-- the number of assignment changes, not with the samples; rows of a GPU whose last_seen is
-- older than rollup_retention are deleted when that GPU is next merged.
--
-- alerts gain the workload that held the GPU when the fault came (from the event that raised
-- the alert).

CREATE TABLE gpu_workloads (
    gpu_key    text NOT NULL,
    namespace  text,
    pod        text,
    container  text,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (gpu_key, first_seen),
    CHECK (last_seen >= first_seen)
);
-- "which GPUs did pod X use between A and B", and the namespace filter
CREATE INDEX gpu_workloads_pod_idx ON gpu_workloads (pod, first_seen) WHERE pod IS NOT NULL;
CREATE INDEX gpu_workloads_ns_idx ON gpu_workloads (namespace, first_seen)
    WHERE namespace IS NOT NULL;

ALTER TABLE alerts ADD COLUMN namespace text, ADD COLUMN pod text, ADD COLUMN container text;

-- Merges runs into gpu_workloads. runs: a JSON array of
-- [gpu_key, namespace, pod, container, first (epoch seconds), last (epoch seconds)], namespace,
-- pod and container a string or null. A run extends the GPU's row that starts at or before it
-- when that row has the same workload (last_seen only moves forward); otherwise it is a new row.
-- Merging the same runs again changes nothing. Concurrent callers with the same GPU queue on a
-- per-GPU advisory lock taken in key order (the sink's two writers). Returns the rows written.
CREATE FUNCTION gpuhealth_merge_workloads(runs jsonb) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    keep interval := coalesce((SELECT value FROM gpuhealth_settings
                               WHERE key = 'rollup_retention')::interval, interval '90 days');
    r record;
    cur record;
    n integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('gpu_workloads:' || k, 0))
        FROM (SELECT DISTINCT e->>0 AS k FROM jsonb_array_elements(runs) AS e ORDER BY 1) AS q;
    FOR r IN SELECT e->>0 AS gpu_key, e->>1 AS ns, e->>2 AS pod, e->>3 AS container,
                    to_timestamp((e->>4)::float8) AS f, to_timestamp((e->>5)::float8) AS l
             FROM jsonb_array_elements(runs) AS e
             ORDER BY e->>0, (e->>4)::float8 LOOP
        IF r.gpu_key IS NULL OR r.f IS NULL OR r.l IS NULL OR r.l < r.f THEN
            RAISE EXCEPTION 'gpuhealth_merge_workloads: bad run %', r;
        END IF;
        SELECT * INTO cur FROM gpu_workloads
            WHERE gpu_key = r.gpu_key AND first_seen <= r.f
            ORDER BY first_seen DESC LIMIT 1;
        IF FOUND AND cur.namespace IS NOT DISTINCT FROM r.ns AND cur.pod IS NOT DISTINCT FROM r.pod
           AND cur.container IS NOT DISTINCT FROM r.container THEN
            IF r.l > cur.last_seen THEN
                UPDATE gpu_workloads SET last_seen = r.l
                    WHERE gpu_key = cur.gpu_key AND first_seen = cur.first_seen;
                n := n + 1;
            END IF;
        ELSE
            INSERT INTO gpu_workloads AS w (gpu_key, namespace, pod, container, first_seen, last_seen)
                VALUES (r.gpu_key, r.ns, r.pod, r.container, r.f, r.l)
                ON CONFLICT (gpu_key, first_seen) DO UPDATE
                    SET last_seen = greatest(w.last_seen, excluded.last_seen);
            n := n + 1;
        END IF;
    END LOOP;
    DELETE FROM gpu_workloads
        WHERE gpu_key IN (SELECT DISTINCT e->>0 FROM jsonb_array_elements(runs) AS e)
          AND last_seen < now() - keep;
    RETURN n;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON gpu_workloads TO gpuhealth_writer;
GRANT SELECT ON gpu_workloads TO gpuhealth_reader;
GRANT EXECUTE ON FUNCTION gpuhealth_merge_workloads(jsonb) TO gpuhealth_writer;
