#!/usr/bin/env bash
# gpuhealth collector with no services (--output -): usage errors, --once and its exit status,
# events per scrape, SIGHUP re-reading the targets file, its own /metrics, --max-body.
set -u
bin=$1
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
check() { local d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
# A Python with prometheus_client (the strict parser); never skip: say what is missing.
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import prometheus_client' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "FAIL: no python3 with prometheus_client; run 'sudo scripts/install-deps.sh --test'" >&2
  echo "0 passed, 1 failed"; exit 1
fi
# a loopback port nothing listens on; the servers here listen on ports the kernel picks, which
# they say (bound_port): a port picked here and freed before a server binds it can be taken
# meanwhile by a test running beside this one
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# shellcheck source=../lib/ports.sh
source "$(dirname "$0")/../lib/ports.sh"

nmock=0
start_mock() { # start_mock GPUS SEED: sets $port
  nmock=$((nmock + 1))
  "$bin" mock-dcgm --listen 127.0.0.1:0 --gpus "$1" --seed "$2" >"$tmp/mock-$nmock.log" 2>&1 &
  pids+=($!)
  port=$(bound_port "$tmp/mock-$nmock.log" 'GPUs on ') || { bad "mock-dcgm did not start: $(cat "$tmp/mock-$nmock.log")"; return; }
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return; sleep 0.1; done
  bad "mock-dcgm did not start"
}

expect() { # expect STATUS PATTERN -- args...
  local want=$1 pat=$2; shift 3
  local out rc
  out=$("$bin" "$@" 2>&1 </dev/null); rc=$?
  if [ "$rc" != "$want" ]; then bad "gpuhealth $* exited $rc, expected $want: $out"; return; fi
  if [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then bad "gpuhealth $*: output lacks /$pat/: $out"; return; fi
  ok
}

start_mock 3 5; m1=$port; U1="http://127.0.0.1:$m1/metrics"
start_mock 2 6; m2=$port; U2="http://127.0.0.1:$m2/metrics"
dead="http://127.0.0.1:$(free_port)/metrics"

# usage errors name the input and the fix
expect 2 'no scrape targets: give --target' -- collector --output -
expect 2 "ftp://x/m'.*not an http:// or https:// URL" -- collector --target ftp://x/m --output -
SCRAPE_TARGETS="$U1,,http://a b/m" expect 2 "SCRAPE_TARGETS: 'http://a b/m'.*blank" -- collector --output -
expect 2 'no Kafka brokers: give --brokers' -- collector --target "$U1"
expect 2 "already listed" -- collector --target "$U1" --target "$U1" --output -
printf 'http://ok:1/metrics\n# comment\n\nnode-7:9400/metrics\n' >"$tmp/bad.txt"
expect 2 "$tmp/bad.txt:4: 'node-7:9400/metrics': not an http" -- collector --targets-file "$tmp/bad.txt" --output -
expect 1 "targets file '$tmp/none.txt'" -- collector --targets-file "$tmp/none.txt" --output -
expect 2 "metrics-listen 'nonsense' is not HOST:PORT" -- collector --target "$U1" --output - --metrics-listen nonsense

# --once: 0 when every target answers, 1 naming each failed target
out=$("$bin" collector --target "$U1" --target "$U2" --output - --once 2>"$tmp/once.err"); rc=$?
check "--once over two good targets exits 0 ($rc): $(cat "$tmp/once.err")" test "$rc" = 0
check "--once prints 3 + 2 events" test "$(grep -c '"schema_version":1' <<<"$out")" = 5
expect 1 "target $dead failed: .*onnect" -- collector --target "$U1" --target "$dead" --output - --once
expect 1 "target $U1 failed: body larger than --max-body 1024" -- collector --target "$U1" --max-body 1024 --output - --once
expect 1 "target http://127.0.0.1:$m1/nope failed: HTTP status 404" -- collector --target "http://127.0.0.1:$m1/nope" --output - --once

# running: one time per scrape for all the events of that scrape; SIGHUP adds a target
printf '# fleet\n%s\n' "$U1" >"$tmp/targets.txt"
"$bin" collector --targets-file "$tmp/targets.txt" --interval 0.5 --stats-interval 0.5 --output - \
  --metrics-listen 127.0.0.1:0 --log-level debug >"$tmp/run.jsonl" 2>"$tmp/run.log" &
cpid=$!; pids+=($cpid)
mport=$(bound_port "$tmp/run.log" 'own metrics on ') || bad "the collector did not start: $(cat "$tmp/run.log")"
sleep 2
printf 'http://bad host/\n' >"$tmp/targets.txt"; kill -HUP $cpid; sleep 0.5
check "a bad targets file on SIGHUP keeps the old set and says why" grep -q "targets.txt:1: .*keeping the 1 targets in use" "$tmp/run.log"
rm "$tmp/targets.txt"; kill -HUP $cpid; sleep 0.5
check "a targets file gone on SIGHUP: the old set kept, the file named" grep -q "targets.txt': No such file.*keeping the 1 targets in use" "$tmp/run.log"
mkfifo "$tmp/targets.txt"; kill -HUP $cpid; sleep 0.5
check "a FIFO on SIGHUP is refused at once (no wait for a writer)" grep -q "targets.txt': not a regular file (a FIFO or pipe).*keeping the 1 targets in use" "$tmp/run.log"
rm "$tmp/targets.txt"
printf '%s\n%s  # added\n' "$U1" "$U2" >"$tmp/targets.txt"; kill -HUP $cpid
sleep 2.5
curl -fs "http://127.0.0.1:$mport/metrics" >"$tmp/self.prom"; crc=$?
check "own /metrics answers" test "$crc" = 0
kill -TERM $cpid; wait $cpid; rc=$?
check "SIGTERM: exit 0" test "$rc" = 0
check "SIGHUP applied the new file" grep -q "SIGHUP: 2 targets (were 1)" "$tmp/run.log"
python3 - "$tmp/run.jsonl" "$tmp/run.log" "$U1" "$U2" <<'PY' && ok || bad "events per scrape do not match the scrapes logged"
import json, sys, re, collections
events = [json.loads(l) for l in open(sys.argv[1])]
log = open(sys.argv[2]).read()
scrapes = re.findall(r"scraped (\S+) at (\S+): \d+ samples, (\d+) events", log)
assert scrapes, "no scrape logged"
by_time = collections.Counter(e["time"] for e in events)
# every logged scrape's time carries exactly its events, and no event has another time
want = collections.Counter()
for url, t, n in scrapes:
    want[t.rstrip(":")] += int(n)
assert by_time == want, (by_time, want)
n2 = sum(1 for url, _, _ in scrapes if url == sys.argv[4])
assert n2 >= 2, f"the target added by SIGHUP was scraped {n2} times"
assert all(int(n) == (3 if u == sys.argv[3] else 2) for u, _, n in scrapes)
PY
"$py" - "$tmp/self.prom" "$U1" <<'PY' && ok || bad "own /metrics: $(head -c 600 "$tmp/self.prom")"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
s = {(x.name, tuple(sorted(x.labels.items()))): x.value for f in fams.values() for x in f.samples}
u = sys.argv[2]
assert s[("gpuhealth_collector_scrapes_total", (("result", "ok"), ("target", u)))] >= 3
assert s[("gpuhealth_collector_target_up", (("target", u),))] == 1
assert 0 <= s[("gpuhealth_collector_target_staleness_seconds", (("target", u),))] < 5
assert s[("gpuhealth_collector_targets", ())] == 2
assert s[("gpuhealth_collector_events_total", ())] > 0
assert s[("gpuhealth_collector_samples_total", ())] > 0
assert ("gpuhealth_collector_bad_lines_total", ()) in s
PY

# several scrape threads: every GPU of every target once; a target keeps its thread (and its
# record) across a new set; the records are listed in the order of the set
mu=()
for g in 1 2 3 4 5; do start_mock "$g" $((20 + g)); mu+=("http://127.0.0.1:$port/metrics"); done
"$bin" collector "${mu[@]/#/--target=}" --scrape-threads 3 --output - --once >"$tmp/mt-once.jsonl" 2>"$tmp/mt.err"; rc=$?
check "--once on 3 threads over 5 targets exits 0 ($rc): $(cat "$tmp/mt.err")" test "$rc" = 0
check "3 scrape threads logged" grep -q "5 targets every .*3 scrape threads" "$tmp/mt.err"
python3 - "$tmp/mt-once.jsonl" <<'PY' && ok || bad "--once on 3 threads: not each GPU of the 5 targets once"
import json, sys, collections
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = collections.Counter((e["hostname"], e["gpu"]["uuid"]) for e in ev)
assert len(ev) == 15 and all(n == 1 for n in keys.values()), (len(ev), keys)
PY
printf '%s\n' "${mu[0]}" "${mu[1]}" "${mu[2]}" "${mu[3]}" >"$tmp/mt.txt"
"$bin" collector --targets-file "$tmp/mt.txt" --scrape-threads 3 --interval 0.5 --stats-interval 0 \
  --output - --metrics-listen 127.0.0.1:0 --log-level debug >"$tmp/mt.jsonl" 2>"$tmp/mt.log" &
cpid=$!; pids+=($cpid)
mport=$(bound_port "$tmp/mt.log" 'own metrics on ') || bad "the collector did not start: $(cat "$tmp/mt.log")"
sleep 2.5
curl -fs "http://127.0.0.1:$mport/metrics" >"$tmp/mt1.prom"
printf '%s\n' "${mu[4]}" "${mu[3]}" "${mu[1]}" "${mu[0]}" >"$tmp/mt.txt"; kill -HUP $cpid # 2 out, 4 in
sleep 2.5
curl -fs "http://127.0.0.1:$mport/metrics" >"$tmp/mt2.prom"
kill -TERM $cpid; wait $cpid; rc=$?
check "3 threads: SIGTERM exits 0" test "$rc" = 0
"$py" - "$tmp/mt1.prom" "$tmp/mt2.prom" "${mu[@]}" <<'PY' && ok || bad "3 threads: records kept and in order? $(grep -E 'scrapes_total|threads' "$tmp/mt2.prom" | head -20)"
import sys
from prometheus_client.parser import text_string_to_metric_families
def load(p):
    order, ok = [], {}
    for f in text_string_to_metric_families(open(p).read()):
        for x in f.samples:
            if x.name == "gpuhealth_collector_scrapes_total" and x.labels["result"] == "ok":
                order.append(x.labels["target"]); ok[x.labels["target"]] = x.value
            if x.name == "gpuhealth_collector_scrape_threads":
                assert x.value == 3, x.value
    return order, ok
u = sys.argv[3:]
o1, ok1 = load(sys.argv[1])
o2, ok2 = load(sys.argv[2])
assert o1 == u[0:4], o1
assert o2 == [u[4], u[3], u[1], u[0]], o2
for k in (u[0], u[1], u[3]):  # kept: the count went on from where it was
    assert ok2[k] > ok1[k] >= 3, (k, ok1[k], ok2[k])
assert ok2[u[4]] >= 1
PY
python3 - "$tmp/mt.jsonl" "$tmp/mt.log" "${mu[@]}" <<'PY' && ok || bad "3 threads: events per scrape do not match the scrapes logged"
import json, sys, re, collections
events = [json.loads(l) for l in open(sys.argv[1])]
scrapes = re.findall(r"scraped (\S+) at (\S+): \d+ samples, (\d+) events", open(sys.argv[2]).read())
assert len(scrapes) >= 20, len(scrapes)
# interleaved threads: still every logged scrape's time carries exactly its events
want = collections.Counter()
for url, t, n in scrapes:
    want[t.rstrip(":")] += int(n)
assert collections.Counter(e["time"] for e in events) == want
assert {u for u, _, _ in scrapes} == set(sys.argv[3:]), "not every target was scraped"
PY

echo "$passes passed, $fails failed"
[ $fails = 0 ]
