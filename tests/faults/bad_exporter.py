#!/usr/bin/env python3
"""A misbehaving /metrics target for the fault suite.

  bad_exporter.py PORT hang     accepts, reads the request, never answers
  bad_exporter.py PORT garbage  200 OK with bytes that are not Prometheus text
  bad_exporter.py PORT huge     200 OK, 100 MB of metric-like lines, streamed without a
                                Content-Length (the collector must abort it by --max-body)
  bad_exporter.py PORT huge-cl  the same 100 MB announced by Content-Length

PORT 0: a port the kernel picks. Once it listens it prints "listening on
http://127.0.0.1:PORT" on stdout (the test's bound_port reads it). Each request is counted on
stderr ("served N"), so the test can see it was asked.
"""
import http.server
import os
import socketserver
import sys
import time

PORT, MODE = int(sys.argv[1]), sys.argv[2]
SIZE = 100 * 1000 * 1000
LINE = b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-huge-0000",pci_bus_id="00000000:00:00.0"} 42\n'


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served = 0

    def log_message(self, *a):
        pass

    def do_GET(self):
        H.served += 1
        print(f"served {H.served} {MODE}", file=sys.stderr, flush=True)
        if MODE == "hang":
            time.sleep(3600)
            return
        if MODE == "garbage":
            body = os.urandom(2048) + b"\n{not: prometheus}\n<html>502</html>\n" * 20
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        chunk = LINE * (1 << 20 // len(LINE) + 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        if MODE == "huge-cl":
            self.send_header("Content-Length", str(SIZE))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        try:
            while sent < SIZE:
                n = min(len(chunk), SIZE - sent)
                self.wfile.write(chunk[:n])
                sent += n
        except (BrokenPipeError, ConnectionResetError):
            print(f"client aborted after {sent} bytes", file=sys.stderr, flush=True)
        self.close_connection = True


class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = S(("127.0.0.1", PORT), H)
print("listening on http://127.0.0.1:%d" % srv.server_address[1], flush=True)
srv.serve_forever()
