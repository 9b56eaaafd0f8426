#!/usr/bin/env bash
# API benchmark (issue #20 item 5): GET /api/v1/gpus paged, with GPUS GPUs in the database
# (default 200,000: 25,000 hosts x 8, each with a health score). In one run:
#  baseline: /healthz latency with the API idle (a probe every 20 ms for 10 s), and the size
#            the old unpaged answer would have (one limit=5000 page's bytes per GPU x GPUS);
#  load:     CLIENTS (default 32) clients each paging through the whole fleet at the default
#            limit (500) as fast as answers come, bounded by SECONDS (default 240), while
#            /healthz is probed every 20 ms; pages/s, /healthz p50/p99, the API's peak RSS.
# Targets: /healthz p99 < 100 ms and peak RSS < 100 MB under that load.
# Usage: bench/api.sh [GPUS] [CLIENTS] [SECONDS]
set -euo pipefail
GPUS=${1:-200000}
CLIENTS=${2:-32}
SECONDS_MAX=${3:-240}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test >/dev/null
scripts/build.sh "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=$root/build/gpuhealth
unset GH_SVC_DIR # services of its own, removed at the end: never a caller's
source scripts/services.sh
T=$(mktemp -d)
API_PID=
trap '[ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null; wait 2>/dev/null; pg_stop; rm -rf "$GH_SVC_DIR" "$T"' EXIT
GH_PG_EXTRA_CONF="shared_buffers = 256MB
${GH_PG_EXTRA_CONF:-}" pg_start 2>/dev/null
psql -X -q "$GPUHEALTH_TEST_PG" -c "CREATE DATABASE bench_api" >/dev/null
DB="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=bench_api}"
"$BIN" db migrate --db "$DB" >"$T/migrate.log" 2>&1 || { echo "migrate failed:" >&2; cat "$T/migrate.log" >&2; exit 1; }
hosts=$(( (GPUS + 7) / 8 ))
t0=$(date +%s.%N)
psql -X -q -v ON_ERROR_STOP=1 "$DB" <<SQL
INSERT INTO gpus (gpu_key, uuid, gpu_index, hostname, model, pci_bus_id, device, driver_version,
                  cluster, datacenter, rack, first_seen, last_seen)
SELECT format('GPU-%s-%s', md5(h::text), g), format('GPU-%s-%s', md5(h::text), g), g,
       format('node-%s', lpad(h::text, 6, '0')), 'NVIDIA H100 80GB HBM3',
       format('00000000:%s:00.0', to_hex(16 + g)), 'nvidia' || g, '550.54.15',
       'c' || (h % 4), 'dc' || (h % 2), 'r' || (h % 500), now() - interval '1 day', now()
FROM generate_series(0, $hosts - 1) AS h, generate_series(0, 7) AS g
WHERE h * 8 + g < $GPUS;
INSERT INTO gpu_health_scores (time, gpu_key, score, status, thermal, memory, power, interconnect, xid)
SELECT now() - interval '1 min', gpu_key, 90, CASE WHEN gpu_index = 3 THEN 'warn' ELSE 'pass' END,
       100, 90, 100, 100, 100 FROM gpus;
ANALYZE gpus; ANALYZE gpu_health_scores;
SQL
seed_s=$(python3 -c "print('%.0f' % ($(date +%s.%N) - $t0))")
n=$(psql -X -At "$DB" -c "SELECT count(*) FROM gpus")
# the plan of a deep page: an index scan of gpus_page_idx, no sort of the fleet
plan=$(psql -X -At "$DB" -c "EXPLAIN SELECT g.gpu_key FROM gpus g WHERE (COALESCE(g.hostname, ''), COALESCE(g.gpu_index, -1), g.gpu_key) > ('node-100000', 3, 'x') ORDER BY COALESCE(g.hostname, ''), COALESCE(g.gpu_index, -1), g.gpu_key LIMIT 501")
echo "$plan" | grep -q "Index.*gpus_page_idx" && ! echo "$plan" | grep -q "Sort" \
  || { echo "a deep page is not an index range scan of gpus_page_idx:"; echo "$plan"; exit 1; }

PORT=$(free_port)
# 32 paging clients and the /healthz probe all come from 127.0.0.1: stand-ins for 33 client
# addresses, so the per-address limit (default 32) is raised for them
"$BIN" api --db "$DB" --listen "127.0.0.1:$PORT" --max-client-connections 64 >"$T/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$API_PID/status"; }
rss0=$(rss VmRSS)
read -r base < <(/usr/bin/python3 bench/api_load.py "http://127.0.0.1:$PORT" 0 10 500 "$n" idle)
big=$(curl -s "http://127.0.0.1:$PORT/api/v1/gpus?limit=5000" | wc -c)
unpaged_mb=$(python3 -c "print('%.1f' % ($big / 5000 * $n / 1e6))")
page_kb=$(curl -s "http://127.0.0.1:$PORT/api/v1/gpus" | wc -c | awk '{printf "%.0f", $1 / 1000}')
load0=$(cut -d' ' -f1-3 /proc/loadavg)
read -r load < <(/usr/bin/python3 bench/api_load.py "http://127.0.0.1:$PORT" "$CLIENTS" "$SECONDS_MAX" 500 "$n")
hwm=$(rss VmHWM)
get() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
cat <<REPORT
machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load average before the load: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)
database: $n GPUs on $hosts hosts with a health score each (seeded in ${seed_s} s); gpus_page_idx serves every page
baseline: /healthz idle p50 $(get healthz_p50_ms "$base") ms, p99 $(get healthz_p99_ms "$base") ms ($(get healthz_n "$base") probes); the unpaged answer would be ~${unpaged_mb} MB; a default page (500 GPUs) is ${page_kb} kB
load: $CLIENTS clients paging at limit 500 for $(get elapsed_s "$load") s: $(get pages "$load") pages, $(get pages_per_s "$load") pages/s ($(get gpus_per_s "$load") GPUs/s, $(get mb_per_s "$load") MB/s), $(get complete_passes "$load") of $CLIENTS whole passes of the fleet, $(get errors "$load") errors
/healthz under load: p50 $(get healthz_p50_ms "$load") ms, p99 $(get healthz_p99_ms "$load") ms, max $(get healthz_max_ms "$load") ms ($(get healthz_n "$load") probes)   [target: p99 < 100 ms]
API RSS: $(( rss0 / 1024 )) MB idle, peak $(( hwm / 1024 )) MB   [target: < 100 MB]
REPORT
kill -TERM "$API_PID"; wait "$API_PID" || true; API_PID=
grep -q ' 5xx=0' "$T/api.log" || { echo "the API answered 5xx:"; tail -5 "$T/api.log"; }
