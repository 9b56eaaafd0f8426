#!/usr/bin/python3
"""Watches the sink's progress through one connection (a new psql every poll cost a backend
start each time, on the same cores as the sink it measures). Polls the committed rows every 50 ms
until they reach N: the rollups' sample count (exact) plus the rows of the minutes not closed yet
(at or after the rollup mark, schema/006), read in one snapshot.
Prints: seconds since the epoch of the first non-zero poll, the count then, and of reaching N.
Usage: commit_watch.py CONNINFO N TIMEOUT_S"""
import sys, time
import psycopg2

conninfo, n, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conn = psycopg2.connect(conninfo)
conn.autocommit = True
cur = conn.cursor()
t0 = n0 = None
end = time.time() + timeout
while time.time() < end:
    cur.execute("SELECT (SELECT coalesce(sum(samples), 0) FROM gpu_metrics_1min) + "
                "(SELECT count(*) FROM gpu_metrics WHERE time >= "
                "(SELECT through FROM gpuhealth_rollup_mark))")
    c = cur.fetchone()[0]
    now = time.time()
    if c and t0 is None:
        t0, n0 = now, c
    if c >= n:
        print("%.6f %d %.6f" % (t0, n0, now))
        sys.exit(0)
    time.sleep(0.05)
sys.exit("timed out: %s of %d rows committed" % (c, n))
