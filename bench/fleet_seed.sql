-- A fleet database for bench/console.sh --fleet-db (issue #25, "at fleet scale"), all in SQL:
-- psql -v gpus=N -f bench/fleet_seed.sql on a migrated, empty database.
--   layout: 8 GPUs per host, 16 hosts per rack, 98 racks per datacenter, 4 datacenters per
--   cluster (200,704 GPUs: 25,088 hosts, 1,568 racks, 16 datacenters, 4 clusters)
--   gpu_metrics: two samples per GPU (35 s and 5 s ago), temperature 30..89 C
--   gpu_health_scores: two per GPU (the newest decides): 1 % fail, 4 % warn, the rest pass
--   gpu_failure_predictions: one per GPU
--   alerts: one open per failing GPU (fail), one per fifth warning GPU (warn), and a cleared
--   history of 10 per 1,000 GPUs (must not show)
\set ON_ERROR_STOP 1
SELECT gpuhealth_ensure_partitions(now() - interval '1 day', now() + interval '1 day');

CREATE TEMP TABLE seed AS
SELECT i, 'GPU-' || lpad(i::text, 8, '0') AS k, 'node-' || lpad((i / 8)::text, 6, '0') AS h,
       i % 8 AS x, (i / 8) / 16 AS rack, (i / 8) / 16 / 98 AS dc,
       (i / 8) / 16 / 98 / 4 AS cl,
       -- a stable pseudo-random number per GPU in [0, 1)
       ((i::bigint * 2654435761) % 4294967296) / 4294967296.0 AS u
FROM generate_series(0, :gpus - 1) AS i;

INSERT INTO gpus (gpu_key, uuid, gpu_index, hostname, model, cluster, datacenter, rack,
                  first_seen, last_seen)
SELECT k, k, x, h, CASE WHEN cl % 2 = 0 THEN 'NVIDIA H100-SXM5-80GB' ELSE 'NVIDIA A100-SXM4-80GB' END,
       'c' || cl, 'dc' || dc, 'r' || rack, now() - interval '30 days', now() - interval '5 seconds'
FROM seed;

INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp, power_usage,
                         power_limit, gpu_util, slowdown_temp, shutdown_temp, fb_used, fb_free, xid)
SELECT now() - make_interval(secs => s), k, k, h, x, 30 + floor(u * 60) - s / 35, 300 + u * 200,
       700, floor(u * 100), 90, 95, 40000, 40000, 0
FROM seed, (VALUES (5), (35)) AS t(s);

INSERT INTO gpu_health_scores (time, gpu_key, score, status, thermal, memory, power, interconnect, xid, reasons)
SELECT now() - make_interval(secs => s), k,
       CASE st WHEN 'fail' THEN 20 WHEN 'warn' THEN 70 ELSE 100 END, st, 100, 100, 100, 100, 100, '[]'
FROM (SELECT k, CASE WHEN u < 0.01 THEN 'fail' WHEN u < 0.05 THEN 'warn' ELSE 'pass' END AS st
      FROM seed) g, (VALUES (5), (35)) AS t(s);

INSERT INTO gpu_failure_predictions (time, gpu_key, horizon_hours, probability, model_version, recommendation)
SELECT now() - interval '5 seconds', k, 24, CASE WHEN u < 0.01 THEN 0.5 + u * 40 ELSE u / 10 END,
       'gh-logit-1', 'keep'
FROM seed;

INSERT INTO alerts (gpu_key, hostname, kind, severity, message, raised_at, cleared_at)
SELECT k, h, CASE WHEN u < 0.01 THEN 'dbe_volatile' ELSE 'thermal' END,
       CASE WHEN u < 0.01 THEN 'fail' ELSE 'warn' END, 'seeded alert',
       now() - make_interval(secs => (i % 3600) + 10), NULL
FROM seed WHERE u < 0.01 OR (u < 0.05 AND i % 5 = 0);
INSERT INTO alerts (gpu_key, hostname, kind, severity, message, raised_at, cleared_at)
SELECT k, h, 'pcie_replay', 'warn', 'cleared alert', now() - interval '2 days',
       now() - interval '1 day'
FROM seed WHERE i % 100 = 0;

ANALYZE;
