-- gpuhealth schema, migration 017 (issue #25: a new GPU shows in the fleet overview when the sink
-- writes it, not only after the scorer's next merge; concurrent merges of one host).
--
-- fleet_gpu_now and fleet_host_now were merged by the scorer alone: a GPU the sink had written
-- stayed out of the overview and the fleet table until the scorer merged it (up to a minute),
-- and with no scorer running, for good. The sink now merges, in its batch's transaction, the
-- GPUs of the batch's gpus merge that fleet_gpu_now does not have yet or has at another place
-- (gpuhealth_fleet_now_sink: an index probe per GPU of gpuhealth_ident; the scorer still keeps
-- the health, temperature and probability current).
--
-- Two writers merging GPUs of one host at once (the sink and the scorer; or two scorers of one
-- group, whose partitions split a host's GPUs) each deleted and re-inserted the host's row from
-- what its own snapshot saw: the second insert failed on the primary key, or the row missed the
-- other's GPUs. gpuhealth_fleet_now_merge now takes transaction-scoped advisory locks before it
-- reads: the hosts it touches hashed to 32 locks (two-key form, class 7482017), taken in one
-- order: merges of one host run one after the other, merges of many hosts cannot deadlock on
-- these locks, and a merge of the whole fleet holds 32 of them, not one per host.

CREATE OR REPLACE FUNCTION gpuhealth_fleet_now_merge(keys text[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    hosts text[];
    b integer;
    n integer;
BEGIN
    IF coalesce(cardinality(keys), 0) = 0 THEN
        RETURN 0;
    END IF;
    -- the hosts the GPUs are on before and after, by one of 32 locks each (a merge of the
    -- whole fleet takes 32 locks, not one per host: 25,088 hosts ran the server out of lock
    -- memory, max_locks_per_transaction), locked in one order, held to the commit
    FOR b IN
        SELECT DISTINCT abs(hashtextextended(x, 0) % 32) FROM (
            SELECT hostname FROM fleet_gpu_now WHERE gpu_key = ANY (keys)
            UNION ALL
            SELECT coalesce(hostname, '-') FROM gpus WHERE gpu_key = ANY (keys)) AS u(x)
        ORDER BY 1
    LOOP
        PERFORM pg_advisory_xact_lock(7482017, b);
    END LOOP;
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
    SELECT array_agg(DISTINCT x) INTO hosts
    FROM (SELECT unnest(hosts) UNION ALL
          SELECT hostname FROM fleet_gpu_now WHERE gpu_key = ANY (keys)) AS u(x);
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

-- The sink's part, after gpuhealth_merge_gpus() in the batch's transaction: the GPUs of the
-- batch's gpus merge (gpuhealth_ident) that fleet_gpu_now lacks or has at another place, model
-- or index. Returns the GPUs merged (0 in the steady state: one index probe per GPU sent).
CREATE FUNCTION gpuhealth_fleet_now_sink() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN gpuhealth_fleet_now_merge(array(
        SELECT g.gpu_key
        FROM (SELECT DISTINCT gpu_key FROM gpuhealth_ident) AS i
        JOIN gpus g ON g.gpu_key = i.gpu_key
        LEFT JOIN fleet_gpu_now f ON f.gpu_key = i.gpu_key
        WHERE f.gpu_key IS NULL
           OR (f.cluster, f.datacenter, f.rack, f.hostname, f.gpu_index, f.model)
              IS DISTINCT FROM
              (coalesce(g.cluster, '-'), coalesce(g.datacenter, '-'), coalesce(g.rack, '-'),
               coalesce(g.hostname, '-'), coalesce(g.gpu_index, -1), g.model)));
END
$$;

REVOKE ALL ON FUNCTION gpuhealth_fleet_now_sink() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gpuhealth_fleet_now_sink() TO gpuhealth_writer;
