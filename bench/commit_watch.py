#!/usr/bin/python3
"""Watches the sink's progress through one connection (a new psql every poll cost a backend
start each time, on the same cores as the sink it measures). Polls the rollups' sample count
(committed in the same transaction as the rows, and exact) every 50 ms until it reaches N.
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
    cur.execute("SELECT coalesce(sum(samples), 0) FROM gpu_metrics_1min")
    c = cur.fetchone()[0]
    now = time.time()
    if c and t0 is None:
        t0, n0 = now, c
    if c >= n:
        print("%.6f %d %.6f" % (t0, n0, now))
        sys.exit(0)
    time.sleep(0.05)
sys.exit("timed out: %s of %d rows committed" % (c, n))
