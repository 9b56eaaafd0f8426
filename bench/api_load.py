#!/usr/bin/env python3
"""Load client of bench/api.sh: CLIENTS threads each page through GET /api/v1/gpus (following
`next` until it is null) as fast as the API answers, while one more thread probes /healthz
every 20 ms on a fresh connection, until every client has paged through the fleet once or
SECONDS pass. Prints one line of key=value figures.

  api_load.py BASE_URL CLIENTS SECONDS LIMIT EXPECTED_GPUS
"""
import http.client
import sys
import threading
import time
import urllib.parse

base, clients, seconds, limit, expected = (sys.argv[1], int(sys.argv[2]), float(sys.argv[3]),
                                          int(sys.argv[4]), int(sys.argv[5]))
u = urllib.parse.urlsplit(base)
deadline = time.monotonic() + seconds
stop = threading.Event()
lock = threading.Lock()
pages = gpus_seen = bytes_read = errors = passes = 0
walks = []  # GPUs per completed pass


def pager():
    global pages, gpus_seen, bytes_read, errors, passes
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    path, n = f"/api/v1/gpus?limit={limit}", 0
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            c.request("GET", path)
            r = c.getresponse()
            body = r.read()
        except OSError:
            with lock:
                errors += 1
            c.close()
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            continue
        if r.status != 200:
            with lock:
                errors += 1
            time.sleep(0.01)
            continue
        # the page's count and next without parsing 500 GPUs' JSON (the client's own CPU is
        # what the API would otherwise lose to it on this machine): both are top-level keys
        # written after the array's last "}]"
        tail = body[body.rindex(b"}]") if b"}]" in body else 0:]
        cnt = int(body[body.index(b'"count":') + 8:].split(b",", 1)[0])
        i = tail.find(b'"next":"')
        with lock:
            pages += 1
            gpus_seen += cnt
            bytes_read += len(body)
        n += cnt
        if i < 0:  # "next":null: one whole pass
            with lock:
                passes += 1
                walks.append(n)
            return
        path = tail[i + 8:tail.index(b'"', i + 8)].decode()
    c.close()


lat = []


def prober():
    while not stop.is_set() and time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            ok = r.status == 200
            c.close()
        except OSError:
            ok = False
        dt = time.monotonic() - t0
        lat.append(dt if ok else float("inf"))
        time.sleep(max(0.0, 0.02 - dt))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


mode = sys.argv[6] if len(sys.argv) > 6 else "load"
if mode == "idle":  # /healthz alone, the baseline
    t = threading.Thread(target=prober)
    t.start()
    t.join()
    print(f"healthz_n={len(lat)} healthz_p50_ms={pct(lat, 50) * 1e3:.2f} healthz_p99_ms={pct(lat, 99) * 1e3:.2f}")
    sys.exit(0)
t0 = time.monotonic()
ths = [threading.Thread(target=pager) for _ in range(clients)]
pt = threading.Thread(target=prober)
pt.start()
for t in ths:
    t.start()
for t in ths:
    t.join()
elapsed = time.monotonic() - t0
stop.set()
pt.join()
complete = sum(1 for w in walks if w == expected)
print(f"elapsed_s={elapsed:.1f} pages={pages} pages_per_s={pages / elapsed:.1f} gpus_per_s={gpus_seen / elapsed:.0f} "
      f"mb_per_s={bytes_read / elapsed / 1e6:.1f} passes={passes} complete_passes={complete} errors={errors} "
      f"healthz_n={len(lat)} healthz_p50_ms={pct(lat, 50) * 1e3:.2f} healthz_p99_ms={pct(lat, 99) * 1e3:.2f} "
      f"healthz_max_ms={max(lat) * 1e3 if lat else float('nan'):.2f} bytes_per_page={bytes_read // max(pages, 1)}")
