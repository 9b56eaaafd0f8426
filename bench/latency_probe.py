#!/usr/bin/python3
"""Produces events at a steady rate with time = now, and polls the database for when each
(GPU, time) becomes visible (committed). Prints p50/p99/max delay in ms from produce to
committed row. Usage: latency_probe.py CONNINFO KCAT_BROKERS TOPIC RATE SECONDS"""
import json, subprocess, sys, threading, time
import psycopg2

conninfo, brokers, topic, rate, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
gpus = 1000
sent = {}  # time text -> produce wall time (per tick; all GPUs of a tick share the time)
kc = subprocess.Popen(["kcat", "-b", brokers, "-P", "-t", topic, "-K|", "-X", "linger.ms=5"],
                      stdin=subprocess.PIPE, text=True, bufsize=1 << 20)

def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(t))) + ".%03dZ" % int((t % 1) * 1000)

def producer():
    tick = 0.05
    per = max(1, int(rate * tick))
    n = 0
    start = time.time()
    while time.time() - start < secs:
        t = time.time()
        ts = iso(t)
        sent[ts] = t
        lines = []
        for k in range(per):
            g = (n + k) % gpus
            uuid = "GPU-lat-%04d" % g
            ev = {"schema_version": 1, "time": ts, "hostname": "lat", "gpu": {"index": g % 8, "uuid": uuid},
                  "metrics": {"gpu_temp": 60, "power_usage": 300.5, "gpu_util": 90}}
            lines.append("%s|%s\n" % (uuid, json.dumps(ev)))
        n += per
        kc.stdin.write("".join(lines))
        kc.stdin.flush()
        nxt = start + (n / rate)
        time.sleep(max(0, nxt - time.time()))
    kc.stdin.close()

th = threading.Thread(target=producer)
th.start()
conn = psycopg2.connect(conninfo)
conn.autocommit = True
cur = conn.cursor()
seen = {}
per = max(1, int(rate * 0.05))
deadline = time.time() + secs + 60
while time.time() < deadline:
    pending = [sent[ts] for ts in list(sent) if ts not in seen]
    if pending:
        lo = min(pending) - 0.001
        cur.execute("SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), count(*) "
                    "FROM gpu_metrics WHERE time >= to_timestamp(%s) AND hostname = 'lat' GROUP BY 1", (lo,))
        now = time.time()
        for ts, c in cur.fetchall():
            if ts not in seen and ts in sent and c >= per:  # every row of the tick committed
                seen[ts] = now
    if not th.is_alive() and len(seen) >= len(sent):
        break
    time.sleep(0.02)
th.join()
kc.wait()
d = sorted((seen[ts] - sent[ts]) * 1000 for ts in seen)
if not d:
    print("no rows seen"); sys.exit(1)
def pct(p): return d[min(len(d) - 1, int(p * len(d)))]
print("%d %d %.0f %.0f %.0f" % (len(sent), len(seen), pct(0.5), pct(0.99), d[-1]))
