#!/usr/bin/env bash
# gpuhealth collector discovery (issue #24) against real inputs: a file_sd file rewritten under a
# running collector (JSON and YAML), a real HTTP server (python http.server) for http_sd, a real
# DNS server (dnsmasq) for dns_sd; target labels and dcgm-exporter's pod labels in the events
# (--output -); a target leaving and arriving; bad input (malformed file_sd, garbage and hanging
# endpoints, SRV records pointing nowhere) with errors naming the source and the last good list
# kept; 10,000 file_sd targets reloaded without moving a staying target's schedule (the reload's speed:
# bench/discovery.sh).
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
for t in python3 curl dnsmasq; do
  if ! command -v "$t" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$t" ]; then
    echo "FAIL: $t is missing; run 'sudo scripts/install-deps.sh --test'" >&2
    echo "0 passed, 1 failed"; exit 1
  fi
done
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
# a port nothing listens on (dnsmasq, which cannot say a port the kernel picked, and a DNS
# server that is away); the other servers listen on ports the kernel picks, which they say
# (bound_port): a port picked here and freed before a server binds it can be taken meanwhile by
# a test running beside this one
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# shellcheck source=../lib/ports.sh
source "$(dirname "$0")/../lib/ports.sh"
wait_http() { for _ in $(seq 1 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; bad "$1 did not answer"; return 1; }

nserv=0
start_mock() { # start_mock GPUS SEED: sets $port
  nserv=$((nserv + 1))
  "$bin" mock-dcgm --listen 127.0.0.1:0 --gpus "$1" --seed "$2" >"$tmp/mock-$nserv.log" 2>&1 &
  pids+=($!)
  port=$(bound_port "$tmp/mock-$nserv.log" 'GPUs on ') || { bad "mock-dcgm did not start: $(cat "$tmp/mock-$nserv.log")"; return 1; }
  wait_http "http://127.0.0.1:$port/healthz"
}
start_static() { # start_static DIR: a python http.server over DIR; sets $port
  nserv=$((nserv + 1))
  # unbuffered (-u): its first line says the port
  python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" >"$tmp/http-$nserv.log" 2>&1 &
  pids+=($!)
  port=$(bound_port "$tmp/http-$nserv.log" 'port [0-9]* (') || { bad "http.server on $1 did not start: $(cat "$tmp/http-$nserv.log")"; return; }
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return; sleep 0.1; done
  bad "http.server on $1 did not start"
}
# jq-less JSON checks over the events (one per line)
pyq() { python3 -c "import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
$2" "$1"; }
wait_for() { # wait_for SECONDS CMD...: until CMD succeeds
  local end=$((SECONDS + $1)); shift
  while [ $SECONDS -lt $end ]; do "$@" 2>/dev/null && return 0; sleep 0.2; done
  return 1
}

start_mock 2 11; m1=$port
start_mock 3 12; m2=$port

# ---- workload attribution from the real k8s sample (empty pod labels: null) and with a pod
mkdir -p "$tmp/k8s" "$tmp/k8s-pod"
sample=tests/data/dcgm/dcgm-exporter-README-k8s-sample.prom
cp "$sample" "$tmp/k8s/metrics"
sed -e '0,/container="",namespace="",pod=""/s//container="trainer",namespace="training",pod="llm-7b-worker-3"/' \
    "$sample" >"$tmp/k8s-pod/metrics"
sed -i -e 's/container="",namespace="",pod=""/container="trainer",namespace="training",pod="llm-7b-worker-3"/' "$tmp/k8s-pod/metrics"
start_static "$tmp/k8s"; k1=$port
start_static "$tmp/k8s-pod"; k2=$port
"$bin" collector --target "http://127.0.0.1:$k1/metrics" --output - --once >"$tmp/k1.json" 2>"$tmp/k1.err"
check "k8s sample: one event with workload null: $(cat "$tmp/k1.err")" \
  pyq "$tmp/k1.json" 'assert len(ev)==1 and "workload" in ev[0] and ev[0]["workload"] is None, ev'
"$bin" collector --target "http://127.0.0.1:$k2/metrics" --output - --once >"$tmp/k2.json" 2>"$tmp/k2.err"
check "k8s sample with a pod: workload object" \
  pyq "$tmp/k2.json" 'assert ev[0]["workload"]=={"namespace":"training","pod":"llm-7b-worker-3","container":"trainer"}, ev[0].get("workload")'

# ---- file_sd JSON under a running collector: labels, a target leaving and one arriving
sd=$tmp/sd.json
cat >"$sd" <<EOF
[{"targets": ["127.0.0.1:$m1"], "labels": {"cluster": "c-a", "rack": "r-1", "src": "m1", "__meta_x": "hidden"}}]
EOF
"$bin" collector --file-sd "$sd" --output - --interval 0.5 --cluster base-cluster \
  >"$tmp/run.json" 2>"$tmp/run.err" &
cpid=$!; pids+=($cpid)
check "file_sd: events of m1 with its labels" wait_for 10 pyq "$tmp/run.json" '
e=[x for x in ev if (x.get("labels") or {}).get("src")=="m1"]
assert e, "none"
assert e[0]["cluster"]=="c-a" and e[0]["rack"]=="r-1" and e[0]["datacenter"] is None, e[0]
assert e[0]["labels"]=={"src":"m1"}, e[0]["labels"]
assert "workload" in e[0] and e[0]["workload"] is None'
# m1 leaves, m2 arrives (same size of file on purpose: the change is still seen)
cat >"$sd" <<EOF
[{"targets": ["127.0.0.1:$m2"], "labels": {"cluster": "c-b", "src": "m2", "team": "vision"}}]
EOF
check "file_sd rewritten: m2 starts within a refresh" wait_for 5 pyq "$tmp/run.json" '
e=[x for x in ev if (x.get("labels") or {}).get("src")=="m2"]
assert e and e[0]["cluster"]=="c-b" and e[0]["labels"]=={"src":"m2","team":"vision"}'
sleep 1.5
n1=$(grep -c '"src":"m1"' "$tmp/run.json"); sleep 2; n1b=$(grep -c '"src":"m1"' "$tmp/run.json")
check "file_sd rewritten: m1 is no longer scraped ($n1 -> $n1b)" test "$n1" = "$n1b"
check "file_sd: the change is logged" grep -q "discovery: file_sd '$sd': 1 targets" "$tmp/run.err"
# malformed: the error names the file, the last good list (m2) goes on
echo '[{"targets": ["127.0.0.1:1"' >"$sd"
check "malformed file_sd: error names the file" wait_for 5 grep -q "file_sd '$sd': not valid JSON.*keeping its last good list (1 targets)" "$tmp/run.err"
n2=$(grep -c '"src":"m2"' "$tmp/run.json"); sleep 2; n2b=$(grep -c '"src":"m2"' "$tmp/run.json")
check "malformed file_sd: m2 still scraped ($n2 -> $n2b)" test "$n2b" -gt "$n2"
echo '[{"labels": {"a": "b"}}]' >"$sd"
check "file_sd without targets: error says what to write" wait_for 5 grep -q "group 1 has no \"targets\" list" "$tmp/run.err"
# SIGHUP re-reads too (back to m1)
echo "[{\"targets\": [\"127.0.0.1:$m1\"], \"labels\": {\"src\": \"hup\"}}]" >"$sd"
kill -HUP $cpid
check "file_sd after a fix / SIGHUP: m1 again with new labels" wait_for 5 grep -q '"src":"hup"' "$tmp/run.json"
# SIGHUP with the file unchanged: the same list again (the merged list must stay valid)
kill -HUP $cpid; sleep 1; kill -HUP $cpid; sleep 0.5
n=$(grep -c '"src":"hup"' "$tmp/run.json"); sleep 1.5; nb=$(grep -c '"src":"hup"' "$tmp/run.json")
check "SIGHUP with an unchanged file: still running and scraping ($n -> $nb)" test "$nb" -gt "$n"
check "SIGHUP with an unchanged file: no sanitizer report" bash -c "! grep -q Sanitizer '$tmp/run.err'"
kill $cpid; wait $cpid 2>/dev/null

# ---- file_sd YAML, and malformed YAML
cat >"$tmp/sd.yml" <<EOF
- targets: ["127.0.0.1:$m2"]
  labels:
    datacenter: dc-7
    zone: b
    __metrics_path__: /metrics
EOF
"$bin" collector --file-sd "$tmp/sd.yml" --output - --once >"$tmp/y.json" 2>"$tmp/y.err"
check "file_sd YAML: 3 events with datacenter and labels: $(cat "$tmp/y.err")" pyq "$tmp/y.json" '
assert len(ev)==3 and all(x["datacenter"]=="dc-7" and x["labels"]=={"zone":"b"} for x in ev), ev[:1]'
# the same from the environment and from a configuration file
SCRAPE_FILE_SD="$tmp/sd.yml" "$bin" collector --output - --once >"$tmp/ye.json" 2>"$tmp/ye.err"
check "SCRAPE_FILE_SD: 3 events: $(cat "$tmp/ye.err")" pyq "$tmp/ye.json" 'assert len(ev)==3 and ev[0]["labels"]=={"zone":"b"}'
printf 'file-sd = %s\n' "$tmp/sd.yml" >"$tmp/c.conf"
"$bin" collector --config "$tmp/c.conf" --output - --once >"$tmp/yc.json" 2>"$tmp/yc.err"
check "file-sd in --config: 3 events: $(cat "$tmp/yc.err")" pyq "$tmp/yc.json" 'assert len(ev)==3 and ev[0]["datacenter"]=="dc-7"'
printf -- '- targets: [127.0.0.1:1\n  labels: {a: b\n' >"$tmp/bad.yaml"
out=$("$bin" collector --file-sd "$tmp/bad.yaml" --output - --once 2>&1); rc=$?
check "malformed YAML: exit 2 naming the file ($rc): $out" test "$rc" = 2
check "malformed YAML: the error names the file and line" grep -q "file_sd '$tmp/bad.yaml': not valid YAML: line" <<<"$out"
# more labels than an event may carry (the sink and the scorer would dead-letter every event
# of the group): refused where the file can be named, not sent
python3 -c 'import json,sys; json.dump([{"targets":["127.0.0.1:1"],"labels":{"l%d"%i:"v" for i in range(65)}}], open(sys.argv[1],"w"))' "$tmp/many.json"
out=$("$bin" collector --file-sd "$tmp/many.json" --output - --once 2>&1); rc=$?
check "65 labels: exit 2 ($rc)" test "$rc" = 2
check "65 labels: the error names the file, the bound and the fix: $out" grep -q "file_sd '$tmp/many.json': group 1 has 65 labels .* at most 64 (remove some)" <<<"$out"
python3 -c 'import json,sys; json.dump([{"targets":["127.0.0.1:1"],"labels":{"team":"x"*513}}], open(sys.argv[1],"w"))' "$tmp/long.json"
out=$("$bin" collector --file-sd "$tmp/long.json" --output - --once 2>&1); rc=$?
check "a 513-character label value: exit 2 naming the file and label ($rc): $out" grep -q "file_sd '$tmp/long.json': group 1: label \"team\" has a name or value longer than 512" <<<"$out"
echo '[{"targets": ["127.0.0.1:1"], "labels": {"": "x"}}]' >"$tmp/noname.json"
out=$("$bin" collector --file-sd "$tmp/noname.json" --output - --once 2>&1); rc=$?
check "an empty label name: exit 2, refused naming the file ($rc): $out" grep -q "file_sd '$tmp/noname.json': group 1: label name \"\" is empty" <<<"$out"
# an empty YAML file is no groups (as in Prometheus), not an error; a running collector waits
: >"$tmp/empty.yml"
printf -- '- targets: ["127.0.0.1:%s"]\n  labels:\n' "$m2" >"$tmp/nolabels.yml"
out=$("$bin" collector --file-sd "$tmp/empty.yml" --file-sd "$tmp/nolabels.yml" --output - --once 2>&1 >"$tmp/ey.json"); rc=$?
check "empty YAML file: no groups, no error ($rc): $out" grep -q "file_sd '$tmp/empty.yml': 0 targets" <<<"$out"
check "... and \"labels:\" with nothing after it is no labels: 3 events" pyq "$tmp/ey.json" 'assert len(ev)==3 and ev[0].get("labels") is None, ev[:1]'

# ---- http_sd: a real HTTP server, garbage, a hanging endpoint, the last good list kept
mkdir -p "$tmp/www"
echo "[{\"targets\": [\"127.0.0.1:$m1\"], \"labels\": {\"src\": \"http\"}}]" >"$tmp/www/sd.json"
echo 'this is not json' >"$tmp/www/garbage.json"
cp "$tmp/www/sd.json" "$tmp/www/sd.txt" # the right list, served as text/plain
start_static "$tmp/www"; hs=$port
python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16); c=[]
print("listening on http://127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True: c.append(s.accept()[0])' >"$tmp/hang.log" 2>&1 &
pids+=($!)
hang=$(bound_port "$tmp/hang.log") || bad "the hanging endpoint did not start: $(cat "$tmp/hang.log")"
t0=$SECONDS
"$bin" collector --http-sd "http://127.0.0.1:$hs/sd.json" --http-sd "http://127.0.0.1:$hs/garbage.json" \
  --http-sd "http://127.0.0.1:$hang/sd" --sd-refresh 1 --output - --once >"$tmp/h.json" 2>"$tmp/h.err"
rc=$?
check "http_sd: events from the good endpoint ($rc): $(cat "$tmp/h.err")" pyq "$tmp/h.json" '
assert len(ev)==2 and all(x["labels"]=={"src":"http"} for x in ev)'
check "http_sd garbage: error names the endpoint" grep -q "http_sd 'http://127.0.0.1:$hs/garbage.json': not valid JSON" "$tmp/h.err"
out=$("$bin" collector --http-sd "http://127.0.0.1:$hs/sd.txt" --output - --once 2>&1); rc=$?
check "http_sd served as text/plain: refused as Prometheus does, naming the endpoint and the fix ($rc): $out" \
  grep -q "http_sd 'http://127.0.0.1:$hs/sd.txt': Content-Type 'text/plain.*' is not application/json" <<<"$out"
check "http_sd hanging: error names the endpoint" grep -qE "http_sd 'http://127.0.0.1:$hang/sd': .*(timed out|Timeout)" "$tmp/h.err"
check "http_sd hanging: bounded by the timeout ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 5
# a stop is not held up by a hanging endpoint (timeout 10 s with the default --sd-refresh)
"$bin" collector --http-sd "http://127.0.0.1:$hang/sd" --output - >/dev/null 2>"$tmp/hs.err" &
cpid=$!; pids+=($cpid)
sleep 1; t0=$(date +%s%N); kill -TERM $cpid; wait $cpid; rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "http_sd hanging: SIGTERM stops the collector at once ($ms ms, rc $rc)" test "$ms" -lt 3000 -a "$rc" = 0
# running: the endpoint turns bad, the last good list goes on; then it changes
"$bin" collector --http-sd "http://127.0.0.1:$hs/sd.json" --sd-refresh 0.5 --interval 0.5 --output - \
  >"$tmp/hr.json" 2>"$tmp/hr.err" &
cpid=$!; pids+=($cpid)
check "http_sd running: events" wait_for 10 grep -q '"src":"http"' "$tmp/hr.json"
echo '{"not": "a list"}' >"$tmp/www/sd.json"
check "http_sd turns bad: error, list kept" wait_for 5 grep -q "http_sd 'http://127.0.0.1:$hs/sd.json': not a list of target groups.*keeping its last good list (1 targets)" "$tmp/hr.err"
n=$(grep -c '"src":"http"' "$tmp/hr.json"); sleep 1.5; nb=$(grep -c '"src":"http"' "$tmp/hr.json")
check "http_sd bad: the last good target still scraped ($n -> $nb)" test "$nb" -gt "$n"
echo "[{\"targets\": [\"127.0.0.1:$m2\"], \"labels\": {\"src\": \"http2\"}}]" >"$tmp/www/sd.json"
check "http_sd changes: the new target within a refresh" wait_for 5 grep -q '"src":"http2"' "$tmp/hr.json"
kill $cpid; wait $cpid 2>/dev/null

# ---- dns_sd against a real DNS server (dnsmasq on loopback, unprivileged port)
dp=$(free_port)
start_dns() { # start_dns SRV-RECORDS...: dnsmasq on 127.0.0.1:$dp; sets $dnspid
  "$dnsmasq" -k -C /dev/null --no-resolv --no-hosts --port="$dp" --listen-address=127.0.0.1 \
    --bind-interfaces --pid-file="$tmp/dnsmasq.pid" --user="$(id -un)" --local-ttl=1 \
    --host-record=node1.gpu.test,127.0.0.1 --host-record=node2.gpu.test,127.0.0.1 \
    --srv-host="_gone._tcp.gpu.test,nowhere.gpu.test,9400" \
    "$@" --log-facility="$tmp/dnsmasq.log" 2>>"$tmp/dnsmasq.err" &
  dnspid=$!; pids+=($dnspid)
  sleep 0.5
}
start_dns --srv-host="_dcgm._tcp.gpu.test,node1.gpu.test,$m1" --srv-host="_dcgm._tcp.gpu.test,node2.gpu.test,$m2"
"$bin" collector --dns-sd _dcgm._tcp.gpu.test --dns-server "127.0.0.1:$dp" --output - --once \
  >"$tmp/d.json" 2>"$tmp/d.err"
rc=$?
check "dns_sd SRV: 2 + 3 events ($rc): $(cat "$tmp/d.err" "$tmp/dnsmasq.err")" pyq "$tmp/d.json" 'assert len(ev)==5, len(ev)'
"$bin" collector --dns-sd node1.gpu.test --dns-sd-port "$m1" --dns-server "127.0.0.1:$dp" --output - --once \
  >"$tmp/a.json" 2>"$tmp/a.err"
check "dns_sd A + --dns-sd-port: 2 events: $(cat "$tmp/a.err")" pyq "$tmp/a.json" 'assert len(ev)==2, len(ev)'
out=$("$bin" collector --dns-sd _gone._tcp.gpu.test --dns-server "127.0.0.1:$dp" --output - --once 2>&1); rc=$?
check "dns_sd SRV pointing nowhere: fails ($rc)" test "$rc" != 0
check "dns_sd SRV pointing nowhere: error names the name and the target: $out" \
  grep -q "dns_sd '_gone._tcp.gpu.test': 1 SRV records point to a name with no address (first nowhere.gpu.test:9400: " <<<"$out"
out=$("$bin" collector --dns-sd _none._tcp.gpu.test --dns-server "127.0.0.1:$dp" --output - --once 2>&1)
check "dns_sd no such name: error names it and the server that answered: $out" grep -qE "dns_sd '_none._tcp.gpu.test': (no such name|the DNS server 127.0.0.1:$dp refused)" <<<"$out"
check "... which does not read like a dead server" bash -c '! grep -q "no answer from" <<<"$1"' _ "$out"
dead=$(free_port)
out=$(timeout 30 "$bin" collector --dns-sd _dcgm._tcp.gpu.test --dns-server "127.0.0.1:$dead" --output - --once 2>&1)
check "dns_sd, no DNS server there: says the server did not answer, not that the name is missing: $out" \
  grep -q "dns_sd '_dcgm._tcp.gpu.test': no answer from the DNS server 127.0.0.1:$dead" <<<"$out"
# refreshed by TTL under a running collector: the server goes away (last list kept), comes
# back with only m2 (m1 leaves)
uuids() { python3 -c 'import json,sys; print(" ".join(sorted({json.loads(l)["gpu"]["uuid"] for l in open(sys.argv[1]) if l.startswith("{")})))' "$1"; }
m1u=$(uuids "$tmp/a.json")
"$bin" collector --dns-sd _dcgm._tcp.gpu.test --dns-server "127.0.0.1:$dp" --interval 0.5 --output - \
  >"$tmp/dr.json" 2>"$tmp/dr.err" &
cpid=$!; pids+=($cpid)
check "dns_sd running: 5 GPUs" wait_for 10 python3 -c 'import json,sys; assert len({json.loads(l)["gpu"]["uuid"] for l in open(sys.argv[1]) if l.startswith("{")})==5' "$tmp/dr.json"
sleep 3 # three TTLs: the SRV answers come in any order, the list is the same
check "dns_sd: an unchanged answer is not a new list ($(grep -c "dns_sd '_dcgm._tcp.gpu.test': 2 targets" "$tmp/dr.err") logs)" \
  test "$(grep -c "dns_sd '_dcgm._tcp.gpu.test': 2 targets" "$tmp/dr.err")" = 1
kill $dnspid; wait $dnspid 2>/dev/null
check "dns_sd server gone: error, last list kept" wait_for 10 grep -q "dns_sd '_dcgm._tcp.gpu.test': no answer from the DNS server 127.0.0.1:$dp.*keeping its last good list (2 targets)" "$tmp/dr.err"
start_dns --srv-host="_dcgm._tcp.gpu.test,node2.gpu.test,$m2"
check "dns_sd back with m2 only: the list follows within the TTL" wait_for 12 grep -q "discovery: dns_sd '_dcgm._tcp.gpu.test': 1 targets" "$tmp/dr.err"
sleep 1.5; n=$(wc -l <"$tmp/dr.json"); sleep 2
kill $cpid; wait $cpid 2>/dev/null
tail -n +"$((n + 1))" "$tmp/dr.json" >"$tmp/dr-after.json"
now=$(uuids "$tmp/dr-after.json")
check "dns_sd: m1's GPUs no longer scraped ($now vs $m1u)" python3 -c 'import sys; a=set(sys.argv[1].split()); b=set(sys.argv[2].split()); sys.exit(0 if len(a)==3 and not a&b else 1)' "$now" "$m1u"
expect_usage=$("$bin" collector --dns-sd x --dns-server nonsense --output - 2>&1); rc=$?
check "--dns-server nonsense: exit 2 ($rc)" test "$rc" = 2
check "--dns-server nonsense: says what to write" grep -q "write IPv4:PORT" <<<"$expect_usage"

# ---- 10,000 file_sd targets: the reload is applied, a staying target keeps its schedule
big=$tmp/big.json
mk_big() { # mk_big SUFFIX: m1 plus 9,999 targets that refuse connections (127.0.0.1:9 ...)
  python3 - "$big" "$m1" "$1" <<'EOF'
import json, sys
path, m1, suf = sys.argv[1], sys.argv[2], sys.argv[3]
groups = [{"targets": ["127.0.0.1:%s" % m1], "labels": {"src": "stay"}}]
groups.append({"targets": ["127.0.0.1:9"], "labels": {"__metrics_path__": "/m%s" % suf}})
groups += [{"targets": ["127.0.0.1:9"], "labels": {"__metrics_path__": "/x%d" % i, "n": str(i)}}
           for i in range(9998)]
json.dump(groups, open(path + ".tmp", "w"))
EOF
  mv "$big.tmp" "$big"
}
mk_big a
"$bin" collector --file-sd "$big" --output - --interval 2 --scrape-timeout 1 \
  >"$tmp/big.out" 2>"$tmp/big.err" &
cpid=$!; pids+=($cpid)
check "10k: started with 10,000 targets" wait_for 20 grep -q "discovery: file_sd '$big': 10000 targets" "$tmp/big.err"
check "10k: the staying target scraped" wait_for 10 grep -q '"src":"stay"' "$tmp/big.out"
sleep 4.5
mk_big b   # one target replaced, 9,999 stay
check "10k: the reload is logged" wait_for 5 grep -q "discovery: 10000 targets (were 10000; read and applied in" "$tmp/big.err"
secs=$(grep -o "read and applied in [0-9.]* s" "$tmp/big.err" | tail -1 | awk '{print $5}')
# the time is reported, not asserted: the 1 s target is bench/discovery.sh's (a timed check here
# failed under ASan+UBSan on a loaded machine, 1.2 s, where the code was not at fault)
echo "10,000-target reload: $secs s (the speed target is measured by bench/discovery.sh)"
sleep 5
kill $cpid; wait $cpid 2>/dev/null
check "10k: the staying target's scrapes stay 2 s apart across the reload" pyq "$tmp/big.out" '
import datetime
ts=sorted({x["time"] for x in ev if (x.get("labels") or {}).get("src")=="stay"})
t=[datetime.datetime.strptime(s,"%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for s in ts]
gaps=[b-a for a,b in zip(t,t[1:])]
assert len(gaps)>=4 and all(1.5<g<2.5 for g in gaps), gaps'

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
