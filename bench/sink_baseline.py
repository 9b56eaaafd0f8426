#!/usr/bin/python3
"""The obvious simple design, measured beside the sink: psycopg2 execute_batch of
INSERT ... ON CONFLICT DO NOTHING in batches of 100, from the same events (KEY|JSON lines).
Prints rows/s of the insert phase (JSON parsing excluded)."""
import json, sys, time
import psycopg2
from psycopg2.extras import execute_batch

conninfo, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []
with open(path) as f:
    for line in f:
        if len(rows) >= limit:
            break
        e = json.loads(line.split("|", 1)[1])
        g, m = e["gpu"], e["metrics"]
        rows.append((e["time"], g["uuid"], g["uuid"], e["hostname"], g["index"], m.get("gpu_temp"),
                     m.get("power_usage"), m.get("gpu_util"), m.get("sm_clock"), m.get("memory_temp"),
                     m.get("total_energy"), m.get("xid"), m.get("ecc_dbe_volatile"),
                     m.get("clocks_event_reasons"), json.dumps(e.get("extra"))))
conn = psycopg2.connect(conninfo)
cur = conn.cursor()
t0 = time.time()
execute_batch(cur, """INSERT INTO gpu_metrics (time, gpu_key, uuid, hostname, gpu_index, gpu_temp,
    power_usage, gpu_util, sm_clock, memory_temp, total_energy, xid, ecc_dbe_volatile,
    clocks_event_reasons, extra) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)
    ON CONFLICT DO NOTHING""", rows, page_size=100)
conn.commit()
dt = time.time() - t0
print("%d %.3f" % (len(rows), dt))
