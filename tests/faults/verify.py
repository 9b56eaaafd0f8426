#!/usr/bin/env python3
"""Compares gpu_metrics with the ground truth of the fault suite.

Ground truth (never Kafka, never the database): every successful scrape is logged by the
collector at debug level as "collector: scraped URL at TIME: ..." right after its events were
handed to the producer; the GPUs of each target are the UUIDs of one separate `--output -
--once` scrape. Expected = for each target, its UUIDs x its logged scrape times.

  verify.py --db CONNINFO --target URL=UUIDFILE [...] --log FILE [...]
            [--lost N] [--allow-unlogged-scrapes K] [--wait S]
            [--result TSV --action TEXT [--fault-end EPOCH --timeline FILE]]
  verify.py --watch --db CONNINFO --fault-end EPOCH --timeline FILE

--result TSV: append this scenario's result line (the format of tests/faults/reliability.py:
label, action, offered, landed, lost, duplicated, recover_s, result, when) to TSV. Time to
recover = from --fault-end (when the fault ended: the process restarted, the service back) to
the first moment the --timeline (written by --watch, which polls the database every 0.5 s
until killed) shows every expected row from before the fault's end landed and a row scraped
after it: the pipeline has caught up and flows again.

--lost N: the scenario expects exactly N events missing (what the collector counted as
dropped); otherwise none may be missing. --allow-unlogged-scrapes K: up to K scrape times may
be in the database without a log line (a collector killed by SIGKILL between handing a
scrape's events over and writing its log line); they are reported. --wait S: first wait up to
S seconds for the rows to arrive and stop changing. Prints what it expected and found; on a
mismatch names the first missing, duplicated and unexpected keys.
"""
import argparse
import collections
import datetime
import re
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--db", required=True)
ap.add_argument("--target", action="append", default=[])
ap.add_argument("--log", action="append", default=[])
ap.add_argument("--lost", type=int, default=0)
ap.add_argument("--allow-unlogged-scrapes", type=int, default=0)
ap.add_argument("--wait", type=float, default=0)
ap.add_argument("--label", default="")
ap.add_argument("--result")
ap.add_argument("--action", default="")
ap.add_argument("--fault-end", type=float)
ap.add_argument("--timeline")
ap.add_argument("--watch", action="store_true")
a = ap.parse_args()


def ms(iso):
    d = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return round(d.timestamp() * 1000)


def iso(m):
    return datetime.datetime.fromtimestamp(m / 1000, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def psql(q):
    r = subprocess.run(["psql", "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", a.db, "-c", q],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    return r.stdout


if a.watch:  # the timeline: wall time, rows scraped up to the fault's end, newest row's time
    with open(a.timeline, "a", buffering=1) as out:
        while True:
            try:
                line = psql("SELECT count(*) FILTER (WHERE time <= to_timestamp(%f)), "
                            "coalesce(extract(epoch FROM max(time)), 0) FROM gpu_metrics" % a.fault_end)
                out.write(f"{time.time():.3f}\t{line.strip()}\n")
            except RuntimeError:
                pass  # the database away: no sample
            time.sleep(0.5)

targets = {}
for t in a.target:
    url, f = t.rsplit("=", 1)
    targets[url] = [l.strip() for l in open(f) if l.strip()]
pat = re.compile(r"collector: scraped (\S+) at (\S+Z): ")
times = collections.defaultdict(list)
for f in a.log:
    for line in open(f, errors="replace"):
        m = pat.search(line)
        if m and m.group(1) in targets:
            times[m.group(1)].append(ms(m.group(2)))
want = set()
for url, uu in targets.items():
    if len(times[url]) != len(set(times[url])):
        print(f"  {a.label}: a scrape time of {url} is logged twice", file=sys.stderr)
        sys.exit(1)
    want |= {(u, t) for u in uu for t in times[url]}


def count():
    try:
        return int(psql("SELECT count(*) FROM gpu_metrics"))
    except (RuntimeError, ValueError):
        return -1


need = len(want) - a.lost
deadline, last, stable = time.time() + a.wait, -2, 0
while time.time() < deadline:
    n = count()
    stable = stable + 1 if n == last else 0
    last = n
    if n >= need and stable >= 6:  # 3 s without a change
        break
    time.sleep(0.5)

rows = collections.Counter()
for line in psql("SELECT gpu_key, (extract(epoch FROM time) * 1000)::bigint FROM gpu_metrics").splitlines():
    k, t = line.split("\t")
    rows[(k, int(t))] += 1
got = set(rows)
dups = sorted(k for k, n in rows.items() if n > 1)
missing = sorted(want - got, key=lambda k: (k[1], k[0]))
extra = sorted(got - want, key=lambda k: (k[1], k[0]))
extra_times = sorted({t for _, t in extra})
nscr = sum(len(v) for v in times.values())
print(f"  {a.label}: expected {len(want)} (GPU, time) = {nscr} logged scrapes x their GPUs; "
      f"database: {sum(rows.values())} rows, {len(got)} distinct; missing {len(missing)} "
      f"(expected missing: {a.lost}), duplicated {len(dups)}, unexpected {len(extra)} "
      f"over {len(extra_times)} unlogged scrape times")


def show(what, keys):
    if keys:
        print(f"  {a.label}: {what} (first {min(5, len(keys))} of {len(keys)}): "
              + ", ".join(f"{k} @ {iso(t)}" for k, t in keys[:5]), file=sys.stderr)


ok = True
if dups:
    show("DUPLICATED", dups)
    ok = False
if len(missing) != a.lost:
    show("MISSING", missing)
    ok = False
elif missing:
    show("missing as counted", missing)
if len(extra_times) > a.allow_unlogged_scrapes:
    show("UNEXPECTED", extra)
    ok = False
elif extra:
    show("in the database without a scrape log line (killed before the log line)", extra)
if not nscr:
    print(f"  {a.label}: no scrape was logged (is --log-level debug on?)", file=sys.stderr)
    ok = False
if a.result:
    recover = ""
    if a.fault_end and a.timeline:
        end_ms = a.fault_end * 1000
        before = sum(1 for _, t in want if t <= end_ms) - a.lost
        try:
            for line in open(a.timeline):
                w, c, mx = line.split("\t")
                if int(c) >= before and float(mx) > a.fault_end:
                    recover = f"{max(0.0, float(w) - a.fault_end):.1f}"
                    break
        except (OSError, ValueError):
            pass
    with open(a.result, "a") as out:
        out.write("\t".join([a.label, a.action.replace("\t", " "), str(len(want)), str(len(got)),
                             str(len(missing)), str(sum(n - 1 for n in rows.values() if n > 1)),
                             recover or "-", "pass" if ok else "FAIL",
                             datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")]) + "\n")
sys.exit(0 if ok else 1)
