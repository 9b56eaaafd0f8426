#!/usr/bin/env python3
"""One client holds many slow connections; another must still get /healthz within 1 s.

  api_slowclient.py HOST PORT [CONNECTIONS] [SECONDS] [MAX_LIFE]

From 127.0.0.1 it opens CONNECTIONS (300) sockets to HOST:PORT and trickles a request head
into each, one byte per second per socket, reopening any the server closes (at most once a
second each); meanwhile, from 127.0.0.2, it asks GET /healthz twice a second with a 1 s
deadline for the whole answer. Bounded: it runs SECONDS (15) and then closes everything.
Exit 0 when every /healthz answered 200 within 1 s and, with MAX_LIFE > 0, the server closed
every slow connection within MAX_LIFE seconds (a deadline for the head, however slowly it
trickles in); 1 otherwise. Loopback only.
"""
import errno
import socket
import sys
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])
N = int(sys.argv[3]) if len(sys.argv) > 3 else 300
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 15.0
MAX_LIFE = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
assert HOST.startswith("127.") and N <= 1000 and SECONDS <= 120, "loopback, bounded only"
HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000 + b"\r\n\r\n"


def slow_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(False)
    s.bind(("127.0.0.1", 0))
    err = s.connect_ex((HOST, PORT))
    if err not in (0, errno.EINPROGRESS):
        s.close()
        return None
    return s


def healthz():
    """Seconds to a full 200 answer, or None."""
    t0 = time.monotonic()
    try:
        c = socket.create_connection((HOST, PORT), timeout=1.0, source_address=("127.0.0.2", 0))
        c.settimeout(max(0.01, 1.0 - (time.monotonic() - t0)))
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            left = 1.0 - (time.monotonic() - t0)
            if left <= 0:
                return None
            c.settimeout(left)
            b = c.recv(4096)
            if not b:
                break
            data += b
        c.close()
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return time.monotonic() - t0


slow = [None] * N
pos = [0] * N
reopened = [0] * N
opened_at = [0.0] * N
for i in range(N):
    slow[i] = slow_socket()
    opened_at[i] = time.monotonic()
time.sleep(0.5)
start = time.monotonic()
next_trickle = start
polls = ok = 0
worst = 0.0
closed_by_server = 0
longest_cut = 0.0
while time.monotonic() - start < SECONDS:
    now = time.monotonic()
    if now >= next_trickle:
        next_trickle = now + 1.0
        for i in range(N):
            s = slow[i]
            if s is not None:
                try:
                    if s.recv(1) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass  # open, nothing to read
                except OSError:
                    closed_by_server += 1
                    longest_cut = max(longest_cut, now - opened_at[i])
                    s.close()
                    slow[i] = s = None
            if s is not None:
                try:
                    s.send(HEAD[pos[i]:pos[i] + 1])
                    pos[i] = (pos[i] + 1) % len(HEAD)
                    continue
                except BlockingIOError:
                    continue  # still connecting, or the server does not read: it holds it
                except OSError:
                    closed_by_server += 1
                    longest_cut = max(longest_cut, now - opened_at[i])
                    s.close()
                    slow[i] = None
            if now - opened_at[i] >= 1.0:  # reopen what the server closed, once a second
                slow[i] = slow_socket()
                opened_at[i] = now
                pos[i] = 0
                reopened[i] += 1
    t = healthz()
    polls += 1
    if t is not None:
        ok += 1
        worst = max(worst, t)
    time.sleep(0.5)
held = sum(1 for s in slow if s is not None)
end = time.monotonic()
oldest = max((end - opened_at[i] for i in range(N) if slow[i] is not None), default=0.0)
for s in slow:
    if s is not None:
        s.close()
print(f"slow client: {N} connections from 127.0.0.1 trickling a head 1 byte/s for {SECONDS:.0f} s "
      f"({closed_by_server} closed by the server, {held} open at the end); /healthz from 127.0.0.2: "
      f"{ok}/{polls} answered 200 within 1 s (slowest {worst:.3f} s); the longest a slow "
      f"connection lived: {max(longest_cut, oldest):.1f} s")
good = polls and ok == polls
if MAX_LIFE > 0 and max(longest_cut, oldest) > MAX_LIFE:
    print(f"a slow connection lived {max(longest_cut, oldest):.1f} s: more than {MAX_LIFE} s")
    good = False
sys.exit(0 if good else 1)
