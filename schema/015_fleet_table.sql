-- gpuhealth schema, migration 015 (issue #25: the console's fleet table at fleet scale).
--
-- The read-only viewer's fleet table (the console's main GPU list) loaded up to 65,536 GPUs'
-- newest sample, health row and prediction into memory every 2 s (1.4 s a read and 1.1 GB at
-- 200,704 GPUs). Now it pages, sorts and filters in SQL over fleet_gpu_now (schema 14): a
-- refresh reads the keys of the rows on screen (and a screen above and below) in the order
-- asked, by an index that serves that order, then those GPUs' rows only.
--
-- fleet_gpu_now gets what the table sorts and filters by besides the temperature: power,
-- utilization, memory used, the health score (health_rank: worst first, as the console
-- sorts: status, then a lower score), the recommended action and the workload. The merge
-- (gpuhealth_fleet_now_merge, in the scorer's transaction) fills them from the rows it already
-- reads (the newest sample, health row and prediction) and the newest gpu_workloads row.
--
-- A filter cannot be served by a btree index (it matches parts of words): a refresh with one
-- scans fleet_gpu_now once (its precomputed search text), for the count and the page together.
--
-- Sort orders are by byte (COLLATE "C"), as the console's own table sorts (strcmp). Ties go
-- by host, index and key, ascending, whatever the direction: a descending order is read by
-- the same index backwards, the few GPUs of equal value sorted by an incremental sort.
-- Plain tables and plain indexes: the same with either storage (TimescaleDB or partitions).

ALTER TABLE fleet_gpu_now
    ADD COLUMN power_usage  double precision,
    ADD COLUMN gpu_util     double precision,
    ADD COLUMN fb_used      double precision,
    ADD COLUMN score        integer,
    ADD COLUMN action       text, -- the prediction's recommendation (keep when scored without one)
    ADD COLUMN wl_namespace text, -- the newest gpu_workloads row (schema 13)
    ADD COLUMN wl_pod       text,
    ADD COLUMN wl_container text,
    ADD COLUMN health_rank  integer GENERATED ALWAYS AS (
        CASE status WHEN 'fail' THEN 2 WHEN 'warn' THEN 1 WHEN 'pass' THEN 0 END * 1000
        + (100 - coalesce(score, 100))) STORED, -- NULL: never scored
    -- what the filter (/) searches, lower case: the words of the console's view_filter_match
    -- (host, model, key, "gpuN", health status, action, workload)
    ADD COLUMN search       text GENERATED ALWAYS AS (lower(
        hostname || ' ' || coalesce(model, '') || ' ' || gpu_key || ' gpu' || gpu_index::text
        || ' ' || coalesce(status, '') || ' ' || coalesce(action, '') || ' '
        || coalesce(wl_namespace, '') || ' ' || coalesce(wl_pod, '') || ' '
        || coalesce(wl_container, ''))) STORED;

-- the fleet's own order (host, index, key), grouped by host, and the host headings' counts
CREATE INDEX fleet_gpu_now_host_idx ON fleet_gpu_now
    (hostname COLLATE "C", gpu_index, gpu_key COLLATE "C");
-- one per sort key (ascending, unknown first; read backwards for descending); the model has
-- few values (ties of half the fleet): both directions with their ties in the index
CREATE INDEX fleet_gpu_now_model_idx ON fleet_gpu_now
    (model COLLATE "C" NULLS FIRST, hostname COLLATE "C", gpu_index, gpu_key COLLATE "C");
CREATE INDEX fleet_gpu_now_model_desc_idx ON fleet_gpu_now
    (model COLLATE "C" DESC NULLS LAST, hostname COLLATE "C", gpu_index, gpu_key COLLATE "C");
CREATE INDEX fleet_gpu_now_temp_idx ON fleet_gpu_now (gpu_temp NULLS FIRST);
CREATE INDEX fleet_gpu_now_power_idx ON fleet_gpu_now (power_usage NULLS FIRST);
CREATE INDEX fleet_gpu_now_util_idx ON fleet_gpu_now (gpu_util NULLS FIRST);
CREATE INDEX fleet_gpu_now_mem_idx ON fleet_gpu_now (fb_used NULLS FIRST);
CREATE INDEX fleet_gpu_now_health_idx ON fleet_gpu_now (health_rank NULLS FIRST);

-- The merge of schema 14 with the new columns; the hosts' part is unchanged.
CREATE OR REPLACE FUNCTION gpuhealth_fleet_now_merge(keys text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    hosts text[];
    n integer;
BEGIN
    SELECT coalesce(array_agg(DISTINCT hostname), '{}') INTO hosts
    FROM fleet_gpu_now WHERE gpu_key = ANY (keys);
    INSERT INTO fleet_gpu_now AS f (gpu_key, cluster, datacenter, rack, hostname, gpu_index,
                                    model, status, gpu_temp, p_fail, merged_at, power_usage,
                                    gpu_util, fb_used, score, action, wl_namespace, wl_pod,
                                    wl_container)
    SELECT g.gpu_key, coalesce(g.cluster, '-'), coalesce(g.datacenter, '-'), coalesce(g.rack, '-'),
           coalesce(g.hostname, '-'), coalesce(g.gpu_index, -1), g.model, h.status, m.gpu_temp,
           p.probability, now(), m.power_usage, m.gpu_util, m.fb_used, h.score,
           CASE WHEN h.status IS NOT NULL THEN coalesce(p.recommendation, 'keep') END,
           w.namespace, w.pod, w.container
    FROM gpus g
    LEFT JOIN LATERAL (SELECT status, score FROM gpu_health_scores x WHERE x.gpu_key = g.gpu_key
                       ORDER BY time DESC LIMIT 1) h ON true
    LEFT JOIN LATERAL (SELECT gpu_temp, power_usage, gpu_util, fb_used FROM gpu_metrics x
                       WHERE x.gpu_key = g.gpu_key ORDER BY time DESC LIMIT 1) m ON true
    LEFT JOIN LATERAL (SELECT probability, recommendation FROM gpu_failure_predictions x
                       WHERE x.gpu_key = g.gpu_key ORDER BY time DESC LIMIT 1) p ON true
    LEFT JOIN LATERAL (SELECT namespace, pod, container FROM gpu_workloads x
                       WHERE x.gpu_key = g.gpu_key ORDER BY first_seen DESC LIMIT 1) w ON true
    WHERE g.gpu_key = ANY (keys)
    ON CONFLICT (gpu_key) DO UPDATE SET
        cluster = EXCLUDED.cluster, datacenter = EXCLUDED.datacenter, rack = EXCLUDED.rack,
        hostname = EXCLUDED.hostname, gpu_index = EXCLUDED.gpu_index, model = EXCLUDED.model,
        status = coalesce(EXCLUDED.status, f.status),
        gpu_temp = coalesce(EXCLUDED.gpu_temp, f.gpu_temp),
        p_fail = coalesce(EXCLUDED.p_fail, f.p_fail), merged_at = EXCLUDED.merged_at,
        power_usage = coalesce(EXCLUDED.power_usage, f.power_usage),
        gpu_util = coalesce(EXCLUDED.gpu_util, f.gpu_util),
        fb_used = coalesce(EXCLUDED.fb_used, f.fb_used),
        score = coalesce(EXCLUDED.score, f.score),
        action = coalesce(EXCLUDED.action, f.action),
        wl_namespace = EXCLUDED.wl_namespace, wl_pod = EXCLUDED.wl_pod,
        wl_container = EXCLUDED.wl_container;
    GET DIAGNOSTICS n = ROW_COUNT;
    SELECT array_agg(DISTINCT h) INTO hosts
    FROM (SELECT unnest(hosts) UNION ALL
          SELECT hostname FROM fleet_gpu_now WHERE gpu_key = ANY (keys)) AS u(h);
    DELETE FROM fleet_host_now WHERE hostname = ANY (hosts);
    INSERT INTO fleet_host_now (cluster, datacenter, rack, hostname, gpus, pass, warn, fail,
                                hottest_c, hottest_index, p_fail_max, strip)
    SELECT cluster, datacenter, rack, hostname, count(*), count(*) FILTER (WHERE status = 'pass'),
           count(*) FILTER (WHERE status = 'warn'), count(*) FILTER (WHERE status = 'fail'),
           max(gpu_temp), (array_agg(gpu_index ORDER BY gpu_temp DESC NULLS LAST))[1],
           max(p_fail),
           string_agg(CASE status WHEN 'pass' THEN 'P' WHEN 'warn' THEN 'W' WHEN 'fail' THEN 'F'
                      ELSE '?' END, '' ORDER BY gpu_index, gpu_key)
    FROM fleet_gpu_now WHERE hostname = ANY (hosts)
    GROUP BY cluster, datacenter, rack, hostname;
    RETURN n;
END
$$;

-- the GPUs there are now, with the new columns
SELECT gpuhealth_fleet_now_merge(array(SELECT gpu_key FROM gpus));
ANALYZE fleet_gpu_now;
