-- A small fleet with known values for the console's viewer tests (issue #25):
--   cluster c1 / datacenter dc1: rack r1 holds host node-a (GPUs 0, 1), rack r2 holds node-b
--   (GPUs 0, 1): 4 GPUs. Health: node-a/0 pass, node-a/1 fail, node-b/0 warn, node-b/1 pass.
--   Open alerts: node-a/1 dbe_volatile (fail, 10 min ago), node-b/0 thermal (warn, 2 min ago);
--   a cleared one that must not show. node-a/0's temperature: raw samples every 10 s for the
--   last 2 h, 40..60 C, with the extremes 31.25 C (25 min ago) and 87.5 C (20 min ago); 1-minute
--   rollups for 8 days, 40..60 C, with the extremes 12.75 C (3 days ago) and 99.5 C (3 days ago).
--   node-b/1: a sample a minute for 2 h (41..43 C), XID 31 since 90 min ago.
SELECT gpuhealth_ensure_partitions(now() - interval '7 days', now() + interval '1 day');

INSERT INTO gpus (gpu_key, uuid, gpu_index, hostname, model, cluster, datacenter, rack,
                  first_seen, last_seen)
VALUES ('GPU-a0', 'GPU-a0', 0, 'node-a', 'NVIDIA A100-SXM4-80GB', 'c1', 'dc1', 'r1', now() - interval '8 days', now()),
       ('GPU-a1', 'GPU-a1', 1, 'node-a', 'NVIDIA A100-SXM4-80GB', 'c1', 'dc1', 'r1', now() - interval '8 days', now()),
       ('GPU-b0', 'GPU-b0', 0, 'node-b', 'NVIDIA H100-SXM5-80GB', 'c1', 'dc1', 'r2', now() - interval '8 days', now()),
       ('GPU-b1', 'GPU-b1', 1, 'node-b', 'NVIDIA H100-SXM5-80GB', 'c1', 'dc1', 'r2', now() - interval '8 days', now());

-- node-a/0: raw samples over the last 2 h (the newest 5 s ago)
INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp, power_usage,
                         power_limit, gpu_util, slowdown_temp, shutdown_temp, fb_used, fb_free)
SELECT now() - interval '5 seconds' - make_interval(secs => 10 * i), 'GPU-a0', 'GPU-a0', 'node-a', 0,
       CASE WHEN i = 150 THEN 31.25 WHEN i = 120 THEN 87.5 ELSE 50 + 10 * sin(i / 7.0) END,
       300, 400, 70, 90, 95, 1000, 80000
FROM generate_series(0, 719) AS i;
-- the other GPUs: one newest sample each (node-a/1 hot: the hottest GPU of the fleet, 83 C)
INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp, power_usage,
                         power_limit, gpu_util, slowdown_temp, shutdown_temp, ecc_dbe_volatile, xid)
VALUES (now() - interval '5 seconds', 'GPU-a1', 'GPU-a1', 'node-a', 1, 83, 350, 400, 90, 90, 95, 2, 48),
       (now() - interval '5 seconds', 'GPU-b0', 'GPU-b0', 'node-b', 0, 76, 500, 700, 50, 90, 95, 0, 0),
       (now() - interval '5 seconds', 'GPU-b1', 'GPU-b1', 'node-b', 1, 44, 200, 700, 10, 90, 95, 0, 0);
-- an XID on node-a/0's timeline 30 min ago (a marker on the history's time axis)
INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp, xid)
VALUES (now() - interval '30 minutes 3 seconds', 'GPU-a0', 'GPU-a0', 'node-a', 0, 50, 79);

-- node-b/1: a sample a minute over the last 2 h (41..43 C), its XID 31 there since 90 min ago (an
-- XID raised before the 1 h window: no mark in it), then cleared by the newest sample (xid 0)
INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp, xid)
SELECT now() - interval '5 seconds' - make_interval(mins => i), 'GPU-b1', 'GPU-b1', 'node-b', 1,
       41 + i % 3, CASE WHEN i <= 90 THEN 31 ELSE 0 END
FROM generate_series(1, 120) AS i;

-- node-a/0: 1-minute rollups over 8 days (older than the raw samples)
INSERT INTO gpu_metrics_1min (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum,
                              gpu_temp_n, power_usage_min, power_usage_max, power_usage_sum,
                              power_usage_n, gpu_util_min, gpu_util_max, gpu_util_sum, gpu_util_n)
SELECT 'GPU-a0', date_trunc('minute', now()) - make_interval(mins => m), 6,
       CASE WHEN m = 4320 THEN 12.75 ELSE 45 END, CASE WHEN m = 4321 THEN 99.5 ELSE 55 END, 300, 6,
       290, 310, 1800, 6, 60, 80, 420, 6
FROM generate_series(1, 8 * 1440) AS m;

INSERT INTO gpu_health_scores (time, gpu_key, score, status, thermal, memory, power, interconnect, xid, reasons)
VALUES (now() - interval '5 seconds', 'GPU-a0', 100, 'pass', 100, 100, 100, 100, 100, '[]'),
       (now() - interval '5 seconds', 'GPU-a1', 20, 'fail', 100, 0, 100, 100, 100,
        '[{"code": "dbe_volatile", "text": "double-bit ECC errors", "severity": "fail", "component": "memory", "remedy": "reset"}]'),
       (now() - interval '5 seconds', 'GPU-b0', 70, 'warn', 60, 100, 100, 100, 100,
        '[{"code": "thermal", "text": "hot", "severity": "warn", "component": "thermal", "remedy": "keep"}]'),
       (now() - interval '5 seconds', 'GPU-b1', 100, 'pass', 100, 100, 100, 100, 100, '[]'),
       (now() - interval '40 minutes', 'GPU-a0', 60, 'warn', 60, 100, 100, 100, 100, '[]');
INSERT INTO gpu_failure_predictions (time, gpu_key, horizon_hours, probability, model_version, recommendation)
VALUES (now() - interval '5 seconds', 'GPU-a0', 24, 0.01, 'gh-logit-1', 'keep'),
       (now() - interval '5 seconds', 'GPU-a1', 24, 0.93, 'gh-logit-1', 'reset'),
       (now() - interval '5 seconds', 'GPU-b0', 24, 0.27, 'gh-logit-1', 'keep'),
       (now() - interval '5 seconds', 'GPU-b1', 24, 0.02, 'gh-logit-1', 'keep');
INSERT INTO alerts (gpu_key, hostname, kind, severity, message, raised_at, cleared_at, namespace, pod)
VALUES ('GPU-a1', 'node-a', 'dbe_volatile', 'fail', 'double-bit ECC errors', now() - interval '10 minutes', NULL, 'ml', 'tr0'),
       ('GPU-b0', 'node-b', 'thermal', 'warn', 'GPU temperature near slowdown', now() - interval '2 minutes', NULL, NULL, NULL),
       ('GPU-b1', 'node-b', 'pcie_replay', 'warn', 'PCIe replays (cleared)', now() - interval '50 minutes', now() - interval '45 minutes', NULL, NULL),
       ('GPU-a0', 'node-a', 'thermal', 'warn', 'hot an hour ago', now() - interval '61 minutes', now() - interval '50 minutes', NULL, NULL),
       -- raised with the XID (one chart column): the XID's X is drawn, not this A
       ('GPU-a0', 'node-a', 'xid', 'warn', 'XID 79', now() - interval '30 minutes', now() - interval '29 minutes', NULL, NULL);

-- the newest state of every GPU and host for the overview (schema 14), as the scorer keeps it
-- when it writes health rows
SELECT gpuhealth_fleet_now_merge(array(SELECT gpu_key FROM gpus));
