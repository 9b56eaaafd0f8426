-- Test data for the API and the Grafana dashboards: three GPUs on two hosts (one a MIG
-- instance), two hours of 10 s samples of GPU-aaaa with rollups, scores, predictions, alerts.
-- Times are relative to now() so "reporting" and "open" views see them.
SELECT gpuhealth_ensure_partitions(now() - interval '1 day', now() + interval '1 day');
INSERT INTO gpus (gpu_key, uuid, mig_instance, mig_profile, gpu_index, hostname, model, pci_bus_id,
                  device, driver_version, cluster, datacenter, rack, first_seen, last_seen) VALUES
 ('GPU-aaaa0000-0000-0000-0000-000000000000', 'GPU-aaaa0000-0000-0000-0000-000000000000', NULL, NULL,
  0, 'node-a', 'NVIDIA A100-SXM4-80GB', '00000000:07:00.0', 'nvidia0', '550.54.15', 'c1', 'dc1', 'r1',
  now() - interval '2 hours', now()),
 ('GPU-bbbb0000-0000-0000-0000-000000000000', 'GPU-bbbb0000-0000-0000-0000-000000000000', NULL, NULL,
  1, 'node-a', 'NVIDIA A100-SXM4-80GB', '00000000:0F:00.0', 'nvidia1', '550.54.15', 'c1', 'dc1', 'r1',
  now() - interval '2 hours', now()),
 ('GPU-cccc0000-0000-0000-0000-000000000000/1', 'GPU-cccc0000-0000-0000-0000-000000000000', 1, '1g.10gb',
  0, 'node-b', 'NVIDIA H100 80GB HBM3', '00000000:07:00.0', 'nvidia0', '550.54.15', 'c1', 'dc1', 'r2',
  now() - interval '2 hours', now() - interval '1 hour');

-- 720 samples of GPU-aaaa, one every 10 s, ending at the latest whole 10 s; gpu_temp climbs
-- 0.01 C a sample from 50 so every value is distinct and checkable.
INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp, memory_temp, power_usage,
                         power_limit, gpu_util, mem_copy_util, fb_used, fb_free, sm_clock, mem_clock,
                         xid, ecc_sbe_volatile, ecc_dbe_volatile, pcie_replay, total_energy)
SELECT to_timestamp(floor(extract(epoch FROM now()) / 10) * 10) - (719 - i) * interval '10 s',
       'GPU-aaaa0000-0000-0000-0000-000000000000', 'GPU-aaaa0000-0000-0000-0000-000000000000',
       'node-a', 0, 50 + i * 0.01, 60 + i * 0.01, 200 + (i % 50), 400, (i % 100), (i % 37),
       40000, 41000, 1410, 1593, 0, i / 100, 0, 0, i * 2000
FROM generate_series(0, 719) AS i;
-- the other full GPU: its newest sample only
INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp, power_usage, gpu_util)
VALUES (now() - interval '5 s', 'GPU-bbbb0000-0000-0000-0000-000000000000',
        'GPU-bbbb0000-0000-0000-0000-000000000000', 'node-a', 1, 41.5, 90.25, 12);

-- the sink's 1-minute rollups of those samples
INSERT INTO gpu_metrics_1min (gpu_key, minute, samples, gpu_temp_min, gpu_temp_max, gpu_temp_sum,
       gpu_temp_n, memory_temp_min, memory_temp_max, memory_temp_sum, memory_temp_n,
       power_usage_min, power_usage_max, power_usage_sum, power_usage_n, gpu_util_min, gpu_util_max,
       gpu_util_sum, gpu_util_n, mem_copy_util_min, mem_copy_util_max, mem_copy_util_sum,
       mem_copy_util_n, fb_used_min, fb_used_max, fb_used_sum, fb_used_n, sm_clock_min,
       sm_clock_max, sm_clock_sum, sm_clock_n, total_energy_min, total_energy_max,
       ecc_sbe_volatile_min, ecc_sbe_volatile_max, ecc_dbe_volatile_min, ecc_dbe_volatile_max,
       pcie_replay_min, pcie_replay_max)
SELECT gpu_key, date_trunc('minute', time), count(*), min(gpu_temp), max(gpu_temp), sum(gpu_temp),
       count(gpu_temp), min(memory_temp), max(memory_temp), sum(memory_temp), count(memory_temp),
       min(power_usage), max(power_usage), sum(power_usage), count(power_usage), min(gpu_util),
       max(gpu_util), sum(gpu_util), count(gpu_util), min(mem_copy_util), max(mem_copy_util),
       sum(mem_copy_util), count(mem_copy_util), min(fb_used), max(fb_used), sum(fb_used),
       count(fb_used), min(sm_clock), max(sm_clock), sum(sm_clock), count(sm_clock),
       min(total_energy), max(total_energy), min(ecc_sbe_volatile), max(ecc_sbe_volatile),
       min(ecc_dbe_volatile), max(ecc_dbe_volatile), min(pcie_replay), max(pcie_replay)
FROM gpu_metrics GROUP BY 1, 2;
-- every row above is counted in the rollups: the mark after the newest (schema/006), as the
-- sink leaves it when it has closed every minute
UPDATE gpuhealth_rollup_mark SET through = date_trunc('minute', (SELECT max(time) FROM gpu_metrics)) + interval '1 minute';

INSERT INTO gpu_health_scores (time, gpu_key, score, status, thermal, memory, power, interconnect, xid, reasons)
SELECT now() - (10 - i) * interval '1 min', 'GPU-aaaa0000-0000-0000-0000-000000000000', 90 - i, 
       CASE WHEN i >= 9 THEN 'warn' ELSE 'pass' END, 100, 90 - i, 100, 100, 100,
       '[{"rule": "ecc_sbe_rate", "detail": "SBE rate rising"}]'::jsonb
FROM generate_series(0, 9) AS i;
INSERT INTO gpu_health_scores (time, gpu_key, score, status, thermal, memory, power, interconnect, xid)
VALUES (now() - interval '1 min', 'GPU-bbbb0000-0000-0000-0000-000000000000', 100, 'pass', 100, 100, 100, 100, 100);

INSERT INTO gpu_failure_predictions (time, gpu_key, horizon_hours, probability, model_version, reasons, recommendation) VALUES
 (now() - interval '10 min', 'GPU-aaaa0000-0000-0000-0000-000000000000', 24, 0.10, 'rules-1', '["older"]', 'keep'),
 (now() - interval '1 min', 'GPU-aaaa0000-0000-0000-0000-000000000000', 24, 0.35, 'rules-1', '["sbe_rate"]', 'drain');

INSERT INTO alerts (gpu_key, hostname, kind, severity, message, details, raised_at, cleared_at) VALUES
 ('GPU-aaaa0000-0000-0000-0000-000000000000', 'node-a', 'ecc_sbe_rate', 'warn',
  'correctable ECC errors rising', '{"rate_per_h": 12}', now() - interval '3 min', NULL),
 ('GPU-aaaa0000-0000-0000-0000-000000000000', 'node-a', 'thermal', 'fail',
  'GPU at 92 C', NULL, now() - interval '90 min', now() - interval '80 min');

-- pipeline_stats (the Grafana pipeline dashboard): two sinks reporting every 10 s for the last
-- hour; lag unknown in each one's first row; dead letters and db errors now and then.
INSERT INTO pipeline_stats (time, service, instance, consumer_group, topic, lag, consumed,
                            rows_written, dead_letters, db_errors)
SELECT now() - (359 - i) * interval '10 s', 'sink', h.instance, 'gpuhealth-sink', 'gpu-metrics-raw',
       CASE WHEN i = 0 THEN NULL ELSE (i * 7 + h.n * 13) % 120 END,
       i * 300 + i / 30 + h.n * (i / 60), i * 300, i / 30 + h.n * (i / 60), h.n * (i / 180)
FROM generate_series(0, 359) AS i, (VALUES ('sink-a:1', 0), ('sink-b:7', 1)) AS h(instance, n);

-- gpu_workloads (schema 013): GPU A held by pod p-1 of namespace ns-a, then by none
INSERT INTO gpu_workloads (gpu_key, namespace, pod, container, first_seen, last_seen) VALUES
  ('GPU-aaaa0000-0000-0000-0000-000000000000', 'ns-a', 'p-1', 'c', '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z'),
  ('GPU-aaaa0000-0000-0000-0000-000000000000', NULL, NULL, NULL, '2026-01-01T01:00:10Z', '2026-01-01T02:00:00Z');
