#!/usr/bin/env python3
"""A client that trickles its request to an HTTP server and holds many connections.

Usage: slow_request.py HOST:PORT PATH LIMIT DEADLINE_S CLIENTS TRY
From each of CLIENTS addresses 127.0.0.2, 127.0.0.3, ... (not the checker's 127.0.0.1) opens TRY
connections and sends one byte of a request head on each: the server must keep LIMIT of them
per client (its per-client limit) and close the rest. It then trickles one byte per second on
each kept one. Meanwhile PATH fetched from 127.0.0.1 must answer within 1 s, every second.
After DEADLINE_S (+2 s of slack) every trickled connection must have been closed by the
server. Prints one line per finding; exits 1 on any failure. Bounded: about DEADLINE_S + 5 s.
"""
import socket
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
path = sys.argv[2]
limit = int(sys.argv[3])
deadline = float(sys.argv[4])
nclients = int(sys.argv[5])
tries = int(sys.argv[6])
fails = 0


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg, flush=True)


def slow_conn(client):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((f"127.0.0.{2 + client}", 0))
    s.settimeout(2)
    s.connect((host, port))
    return s


def is_closed(s):
    """True when the server closed s (end of stream or reset), False while it is open."""
    s.setblocking(False)
    try:
        s.recv(4096)
        return True  # the end of the stream (or an answer to half a request: an error)
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def fetch():
    t0 = time.monotonic()
    try:
        c = socket.create_connection((host, port), timeout=1, source_address=("127.0.0.1", 0))
        c.settimeout(1)
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        buf = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            buf += d
        c.close()
    except OSError as e:
        return None, time.monotonic() - t0, str(e)
    return buf, time.monotonic() - t0, ""


head = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a" * 200
conns = []
t_open = time.monotonic()
for c in range(nclients):
    mine = []
    for i in range(tries):
        try:
            s = slow_conn(c)
            s.sendall(head[:1].encode())
            mine.append(s)
        except OSError:
            pass  # refused at once
    time.sleep(0.5)
    kept = []
    for s in mine:
        if is_closed(s):
            s.close()
        else:
            kept.append(s)
    if len(kept) == limit:
        print(f"ok: 127.0.0.{2 + c} kept {limit} of {tries} connections (the per-client limit)", flush=True)
    else:
        fail(f"127.0.0.{2 + c} opened {tries} connections and {len(kept)} stayed open: "
             f"the per-client limit should keep {limit}")
    conns += kept

pos = 1
slowest = 0.0
gone = {}  # connection index -> seconds after the opening when the server closed it
end = t_open + deadline + 2
while time.monotonic() < end:
    body, took, err = fetch()
    slowest = max(slowest, took)
    if body is None or b" 200 " not in body.split(b"\r\n", 1)[0]:
        fail(f"GET {path} from another client while {len(conns)} connections trickle: {err or body[:80]!r}")
    elif took > 1.0:
        fail(f"GET {path} from another client took {took:.2f} s (over 1 s)")
    for i, s in enumerate(conns):
        if i in gone:
            continue
        if is_closed(s):
            gone[i] = time.monotonic() - t_open
            continue
        try:
            s.sendall(head[pos % len(head)].encode())
        except OSError:
            gone[i] = time.monotonic() - t_open
    pos += 1
    time.sleep(max(0.0, 1.0 - took))
if not fails:
    print(f"ok: {path} answered from another client in {slowest:.2f} s at most", flush=True)

still = [s for i, s in enumerate(conns) if i not in gone and not is_closed(s)]
if still:
    fail(f"{len(still)} of {len(conns)} trickled connections still open {time.monotonic() - t_open:.1f} s "
         f"after they opened (deadline {deadline} s)")
else:
    first = min(gone.values()) if gone else deadline + 2
    print(f"ok: all {len(conns)} trickled connections closed within {deadline} + 2 s "
          f"(the first seen closed at {first:.1f} s)", flush=True)
    if first < deadline - 1:
        fail(f"a trickled connection was closed after {first:.1f} s, before the {deadline} s deadline")
for s in conns:
    s.close()
sys.exit(1 if fails else 0)
