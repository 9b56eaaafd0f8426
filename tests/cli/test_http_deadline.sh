#!/usr/bin/env bash
# The HTTP servers against clients that trickle their requests (issue #20, item 6): mock-dcgm's
# /metrics and the collector's --metrics-listen each keep a per-client connection limit (64 and
# 16) and close a connection whose request is not whole 10 s after it opened, however slowly
# its bytes keep coming (libmicrohttpd's own timeout is an idle one, which this defeats).
# While clients 127.0.0.2 (and .3) open more than their share and trickle on all they keep,
# /metrics from another (127.0.0.1) answers within 1 s; without a per-client limit they take
# every slot. Both servers are checked at once: about 14 s.
set -u
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
slow="$root/tests/cli/slow_request.py"
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

if ! python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0))' 2>/dev/null; then
  echo "FAIL: cannot bind 127.0.0.2 (the second loopback client address this test needs)" >&2
  echo "0 passed, 1 failed"; exit 1
fi

# wait_addr LOG PATTERN: the HOST:PORT the server announced
wait_addr() {
  local a=
  for _ in $(seq 100); do
    a=$(grep -oE "$2" "$1" | head -1 | sed -E 's|.*http://||; s|/.*||')
    [ -n "$a" ] && { echo "$a"; return 0; }
    sleep 0.05
  done
  return 1
}

"$bin" mock-dcgm --listen 127.0.0.1:0 --gpus 8 2>"$tmp/mock.log" & pids+=($!)
mock=$(wait_addr "$tmp/mock.log" 'http://[0-9.]+:[0-9]+') || { bad "mock-dcgm did not start: $(cat "$tmp/mock.log")"; }
"$bin" collector --target "http://$mock/metrics" --interval 1 --output - \
  --metrics-listen 127.0.0.1:0 >/dev/null 2>"$tmp/collector.log" & pids+=($!)
coll=$(wait_addr "$tmp/collector.log" 'own metrics on http://[0-9.]+:[0-9]+') \
  || bad "the collector did not start: $(cat "$tmp/collector.log")"

if [ -n "${mock:-}" ] && [ -n "${coll:-}" ]; then
  timeout 30 python3 "$slow" "$mock" /metrics 64 10 2 260 >"$tmp/mock.out" 2>&1 & a=$!
  timeout 30 python3 "$slow" "$coll" /metrics 16 10 1 70 >"$tmp/coll.out" 2>&1 & b=$!
  if wait $a; then ok; else bad "mock-dcgm: $(cat "$tmp/mock.out")"; fi
  if wait $b; then ok; else bad "collector --metrics-listen: $(cat "$tmp/coll.out")"; fi
  sed 's/^/  mock-dcgm: /' "$tmp/mock.out"; sed 's/^/  collector: /' "$tmp/coll.out"
  # both still serve after the storm
  if curl -sf -m 2 "http://$mock/metrics" | grep -q DCGM_FI_DEV_GPU_TEMP; then ok; else bad "mock-dcgm does not answer after the trickle"; fi
  if curl -sf -m 2 "http://$coll/healthz" >/dev/null; then ok; else bad "the collector does not answer after the trickle"; fi
fi
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
