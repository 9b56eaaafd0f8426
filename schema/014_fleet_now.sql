-- gpuhealth schema, migration 014 (issue #25: the console's fleet overview at fleet scale).
--
-- The overview (cluster -> datacenter -> rack -> host) read each GPU's newest health row,
-- sample and prediction on every refresh: 3 index probes per GPU, 2.3 s for 200,704 GPUs.
-- Now the writer keeps the newest state of each GPU (fleet_gpu_now) and of each host
-- (fleet_host_now: its counts, hottest GPU, highest failure probability and health strip)
-- when it writes health rows (gpuhealth_fleet_now_merge, in the scorer's transaction), and a
-- refresh of the overview aggregates the hosts under the path shown (25,088 hosts for 200,704
-- GPUs at the top; one rack's hosts below), or with a filter the GPUs' one row each.
--
-- Both are plain tables with either storage (TimescaleDB or daily partitions): one row per
-- GPU and per host, updated in place, so nothing here depends on gpuhealth_storage(). The
-- indexes that the console's other queries need are plain too: alerts is a plain table, and
-- the history reads gpu_metrics, gpu_metrics_1min and gpu_health_scores by their primary keys
-- (gpu_key, time).

CREATE TABLE fleet_gpu_now (
    gpu_key    text PRIMARY KEY,
    cluster    text NOT NULL, -- '-' when unknown (also datacenter, rack, hostname)
    datacenter text NOT NULL,
    rack       text NOT NULL,
    hostname   text NOT NULL,
    gpu_index  integer NOT NULL, -- -1 unknown
    model      text,
    status     text CHECK (status IN ('pass', 'warn', 'fail')), -- NULL: never scored
    gpu_temp   double precision, -- the newest sample's, when the GPU was last merged
    p_fail     double precision, -- the newest prediction's probability
    merged_at  timestamptz NOT NULL
);
CREATE INDEX fleet_gpu_now_place_idx ON fleet_gpu_now (cluster, datacenter, rack, hostname, gpu_index);
ALTER TABLE fleet_gpu_now SET (fillfactor = 70);

CREATE TABLE fleet_host_now (
    cluster       text NOT NULL,
    datacenter    text NOT NULL,
    rack          text NOT NULL,
    hostname      text NOT NULL,
    gpus          integer NOT NULL,
    pass          integer NOT NULL,
    warn          integer NOT NULL,
    fail          integer NOT NULL,
    hottest_c     double precision,
    hottest_index integer,
    p_fail_max    double precision,
    strip         text NOT NULL, -- one letter per GPU by index: P, W, F, ? (never scored)
    PRIMARY KEY (cluster, datacenter, rack, hostname)
);
CREATE INDEX fleet_host_now_host_idx ON fleet_host_now (hostname);

-- Merges the newest state of the GPUs keys into fleet_gpu_now, and their hosts' (those they
-- are on now and were on before) into fleet_host_now. Cost: a few index probes per key and
-- one aggregate per host touched. Returns the GPUs merged.
CREATE FUNCTION gpuhealth_fleet_now_merge(keys text[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    hosts text[];
    n integer;
BEGIN
    SELECT coalesce(array_agg(DISTINCT hostname), '{}') INTO hosts
    FROM fleet_gpu_now WHERE gpu_key = ANY (keys);
    INSERT INTO fleet_gpu_now AS f (gpu_key, cluster, datacenter, rack, hostname, gpu_index,
                                    model, status, gpu_temp, p_fail, merged_at)
    SELECT g.gpu_key, coalesce(g.cluster, '-'), coalesce(g.datacenter, '-'), coalesce(g.rack, '-'),
           coalesce(g.hostname, '-'), coalesce(g.gpu_index, -1), g.model, h.status, m.gpu_temp,
           p.probability, now()
    FROM gpus g
    LEFT JOIN LATERAL (SELECT status FROM gpu_health_scores x WHERE x.gpu_key = g.gpu_key
                       ORDER BY time DESC LIMIT 1) h ON true
    LEFT JOIN LATERAL (SELECT gpu_temp FROM gpu_metrics x WHERE x.gpu_key = g.gpu_key
                       ORDER BY time DESC LIMIT 1) m ON true
    LEFT JOIN LATERAL (SELECT probability FROM gpu_failure_predictions x
                       WHERE x.gpu_key = g.gpu_key ORDER BY time DESC LIMIT 1) p ON true
    WHERE g.gpu_key = ANY (keys)
    ON CONFLICT (gpu_key) DO UPDATE SET
        cluster = EXCLUDED.cluster, datacenter = EXCLUDED.datacenter, rack = EXCLUDED.rack,
        hostname = EXCLUDED.hostname, gpu_index = EXCLUDED.gpu_index, model = EXCLUDED.model,
        status = coalesce(EXCLUDED.status, f.status),
        gpu_temp = coalesce(EXCLUDED.gpu_temp, f.gpu_temp),
        p_fail = coalesce(EXCLUDED.p_fail, f.p_fail), merged_at = EXCLUDED.merged_at;
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

-- the GPUs there are now
SELECT gpuhealth_fleet_now_merge(array(SELECT gpu_key FROM gpus));

-- the alerts screen: the open alerts, newest first (per severity class); the history: one
-- GPU's alerts in a window
CREATE INDEX alerts_open_idx ON alerts (severity, raised_at DESC) WHERE cleared_at IS NULL;
CREATE INDEX alerts_gpu_raised_idx ON alerts (gpu_key, raised_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON fleet_gpu_now, fleet_host_now TO gpuhealth_writer;
GRANT SELECT ON fleet_gpu_now, fleet_host_now TO gpuhealth_reader;
GRANT EXECUTE ON FUNCTION gpuhealth_fleet_now_merge(text[]) TO gpuhealth_writer;
