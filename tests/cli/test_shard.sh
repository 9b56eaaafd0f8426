#!/usr/bin/env bash
# gpuhealth collector --shard I/N (issue #23): three collectors over one target list scrape every
# target exactly once (the union is the list, no overlap), each keeps the targets Prometheus'
# hashmod would give it (MD5 of the URL, last 8 bytes big-endian, mod N: computed here with
# Python's hashlib); a changed list (SIGHUP on --targets-file, a rewritten --file-sd file)
# is split again without a restart, shown in the stats line and /metrics
# (gpuhealth_collector_shard_info); a bad spec is exit 2 with the accepted syntax.
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
# the servers here listen on ports the kernel picks, which they say (bound_port): a port picked
# here and freed before a server binds it can be taken meanwhile by a test running beside this one
# shellcheck source=../lib/ports.sh
source "$(dirname "$0")/../lib/ports.sh"
wait_for() { local end=$((SECONDS + $1)); shift; while [ $SECONDS -lt $end ]; do "$@" 2>/dev/null && return 0; sleep 0.2; done; return 1; }

# ---- bad specs: exit 2, the input named, the accepted syntax given
for s in 3/3 1/0 x 1 -1/3 1/3/4 ""; do
  "$bin" collector --shard "$s" --target http://127.0.0.1:1/metrics --output - >"$tmp/o" 2>"$tmp/e"
  rc=$?
  check "--shard '$s': exit 2 (got $rc)" test $rc = 2
  check "--shard '$s': names the input and the syntax ($(cat "$tmp/e"))" grep -qF -- "--shard '$s': " "$tmp/e"
  check "--shard '$s': gives the syntax" grep -qF "give I/N with 0 <= I < N" "$tmp/e"
done
SHARD=2/2 "$bin" collector --target http://127.0.0.1:1/metrics --output - 2>"$tmp/e"
check "SHARD=2/2: exit 2 naming SHARD" test $? = 2 -a -n "$(grep -F "SHARD '2/2': the shard index I must be below the count N" "$tmp/e")"
printf 'shard = 0/0\n' >"$tmp/c.conf"
"$bin" collector --config "$tmp/c.conf" --target http://127.0.0.1:1/metrics --output - 2>"$tmp/e"
check "config shard = 0/0: exit 2" test $? = 2 -a -n "$(grep -F "shard (config file) '0/0'" "$tmp/e")"

# ---- one exporter behind 12 URLs (the query string makes each a target of its own)
"$bin" mock-dcgm --listen 127.0.0.1:0 --gpus 2 --seed 5 >"$tmp/mock.log" 2>&1 &
pids+=($!)
port=$(bound_port "$tmp/mock.log" 'GPUs on ') || bad "mock-dcgm did not start: $(cat "$tmp/mock.log")"
wait_for 10 curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" || bad "mock-dcgm did not start"
for i in $(seq 1 12); do echo "http://127.0.0.1:$port/metrics?t=$i"; done >"$tmp/list"
# expected[i] = the URLs of shard i of n, by Prometheus' hashmod rule
expect() { python3 - "$1" "$2" "$3" <<'PY'
import hashlib, sys
n, i = int(sys.argv[2]), int(sys.argv[3])
for u in open(sys.argv[1]).read().split():
    if int.from_bytes(hashlib.md5(u.encode()).digest()[8:], "big") % n == i:
        print(u)
PY
}
scraped() { grep -o 'collector: scraped [^ ]*' "$1" | cut -d' ' -f3 | sort -u; }

: >"$tmp/all"
for i in 0 1 2; do
  "$bin" collector --targets-file "$tmp/list" --shard "$i/3" --once --output - --log-level debug \
    >"$tmp/ev$i" 2>"$tmp/log$i"
  check "shard $i/3 --once: exit 0" test $? = 0
  scraped "$tmp/log$i" >"$tmp/got$i"
  expect "$tmp/list" 3 $i | sort >"$tmp/want$i"
  check "shard $i/3 scraped exactly its hashmod part ($(wc -l <"$tmp/got$i") of 12; diff: $(diff "$tmp/want$i" "$tmp/got$i" | tr '\n' ' '))" \
    cmp -s "$tmp/want$i" "$tmp/got$i"
  check "shard $i/3 logs what it keeps" grep -q "collector: shard $i/3 keeps $(wc -l <"$tmp/want$i") of 12 targets" "$tmp/log$i"
  check "shard $i/3: one event per GPU per kept target" test "$(grep -c '^{' "$tmp/ev$i")" = $(( 2 * $(wc -l <"$tmp/want$i") ))
  cat "$tmp/got$i" >>"$tmp/all"
done
check "three shards: every target once, no overlap, no gap" \
  test "$(sort "$tmp/all" | uniq -c | awk '$1 != 1' | wc -l)-$(sort -u "$tmp/all" | wc -l)" = "0-12"
SHARD=1/3 "$bin" collector --targets-file "$tmp/list" --once --output - --log-level debug >/dev/null 2>"$tmp/logenv"
check "SHARD=1/3 in the environment: the same part as --shard 1/3" cmp -s <(scraped "$tmp/logenv") "$tmp/got1"

# ---- a running collector: SIGHUP re-splits a changed --targets-file without a restart
head -6 "$tmp/list" >"$tmp/live"
"$bin" collector --targets-file "$tmp/live" --shard 1/3 --interval 0.5 --output - --log-level debug \
  --stats-interval 0.5 --metrics-listen 127.0.0.1:0 >/dev/null 2>"$tmp/live.log" &
cpid=$!; pids+=($cpid)
mport=$(bound_port "$tmp/live.log" 'own metrics on ') || bad "the collector did not start: $(cat "$tmp/live.log")"
met() { curl -fs "http://127.0.0.1:$mport/metrics" | grep -E "^$1(\{| )" | awk '{print $NF}'; }
wait_for 10 curl -fs -o /dev/null "http://127.0.0.1:$mport/metrics" || bad "collector /metrics did not answer"
n6=$(expect "$tmp/live" 3 1 | wc -l)
check "/metrics: gpuhealth_collector_shard_info{shard=\"1\",of=\"3\"} 1" \
  bash -c "curl -fs http://127.0.0.1:$mport/metrics | grep -qx 'gpuhealth_collector_shard_info{shard=\"1\",of=\"3\"} 1'"
check "/metrics: targets $n6 of 6 listed" test "$(met gpuhealth_collector_targets)-$(met gpuhealth_collector_targets_listed)" = "$n6-6"
wait_for 5 grep -q "collector: targets=$n6 shard=1/3 listed=6 " "$tmp/live.log"
check "stats line: targets=$n6 shard=1/3 listed=6" grep -q "collector: targets=$n6 shard=1/3 listed=6 " "$tmp/live.log"
cp "$tmp/list" "$tmp/live"
kill -HUP $cpid
n12=$(expect "$tmp/list" 3 1 | wc -l)
split_is() { test "$(met gpuhealth_collector_targets)-$(met gpuhealth_collector_targets_listed)" = "$1"; }
check "SIGHUP: re-split to $n12 of 12 without a restart" wait_for 10 split_is "$n12-12"
sleep 1.5
: >"$tmp/after"; n=$(wc -l <"$tmp/live.log")
sleep 1.5
tail -n +"$n" "$tmp/live.log" >"$tmp/after"
check "after SIGHUP it scrapes exactly shard 1/3 of the new list" cmp -s <(scraped "$tmp/after") <(expect "$tmp/list" 3 1 | sort)
check "the collector was not restarted" kill -0 $cpid
kill -TERM $cpid; wait $cpid 2>/dev/null

# ---- discovery: a rewritten file_sd file is split again when it is re-read
python3 - "$tmp/list" 4 >"$tmp/sd.json" <<'PY'
import json, sys
from urllib.parse import urlsplit
us = open(sys.argv[1]).read().split()[: int(sys.argv[2])]
# file_sd: one group per URL, its query string as __metrics_path__'s tail
print(json.dumps([{"targets": [urlsplit(u).netloc], "labels": {"__metrics_path__": urlsplit(u).path + "?" + urlsplit(u).query}} for u in us]))
PY
"$bin" collector --file-sd "$tmp/sd.json" --shard 2/3 --interval 0.5 --output - --log-level debug \
  --metrics-listen 127.0.0.1:0 >/dev/null 2>"$tmp/sd.log" &
spid=$!; pids+=($spid)
fport=$(bound_port "$tmp/sd.log" 'own metrics on ') || bad "the collector (file_sd) did not start: $(cat "$tmp/sd.log")"
wait_for 10 curl -fs -o /dev/null "http://127.0.0.1:$fport/metrics" || bad "collector (file_sd) /metrics did not answer"
sdl() { grep -o 'collector: shard 2/3 keeps [0-9]* of [0-9]* targets' "$tmp/sd.log" | tail -1; }
wait_for 5 test -n "$(sdl)"
echo "  file_sd, 4 listed: $(sdl)"
python3 - "$tmp/list" 12 >"$tmp/sd.new" <<'PY'
import json, sys
from urllib.parse import urlsplit
us = open(sys.argv[1]).read().split()[: int(sys.argv[2])]
print(json.dumps([{"targets": [urlsplit(u).netloc], "labels": {"__metrics_path__": urlsplit(u).path + "?" + urlsplit(u).query}} for u in us]))
PY
mv "$tmp/sd.new" "$tmp/sd.json"
check "file_sd rewritten: re-split to $(expect "$tmp/list" 3 2 | wc -l) of 12 without a restart ($(sdl))" \
  wait_for 10 bash -c "grep -q 'collector: shard 2/3 keeps $(expect "$tmp/list" 3 2 | wc -l) of 12 targets' '$tmp/sd.log'"
kill -TERM $spid; wait $spid 2>/dev/null

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
