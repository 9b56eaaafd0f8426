#!/usr/bin/env bash
# Sink benchmark (issue: sink and schema). In one run, on the same rows and table:
#  1. the sink's rows/s consuming a backlog from the real Kafka broker,
#  2. psql \copy of the same rows into the same table (the practical limit),
#  3. psycopg2 execute_batch INSERT ... ON CONFLICT in batches of 100 (the simple design),
# plus bytes per row on disk and the p99 delay from produce to committed row at a steady
# 10,000 events/s. Usage: bench/sink.sh [ROWS]   (default 200000)
set -euo pipefail
ROWS=${1:-200000}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test >/dev/null
scripts/install-deps.sh --bench >/dev/null
scripts/build.sh "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=$root/build/gpuhealth
source scripts/services.sh
trap 'kafka_stop; pg_stop; rm -rf "$GH_SVC_DIR"' EXIT
pg_start 2>/dev/null; kafka_start 2>/dev/null
K=$GPUHEALTH_TEST_KAFKA
newdb() {
  psql -X -q "$GPUHEALTH_TEST_PG" -c "CREATE DATABASE $1" >/dev/null
  local ci="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$1}"
  "$BIN" db migrate --db "$ci" >/dev/null 2>&1
  psql -X -q "$ci" -c "SELECT gpuhealth_ensure_partitions(now() - interval '2 days', now() + interval '1 day')" >/dev/null
  echo "$ci"
}
count() { psql -X -At "$1" -c "SELECT count(*) FROM gpu_metrics"; }
T=$(mktemp -d)
gpus=1000; samples=$(( ROWS / gpus ))
python3 tests/integration/gen_events.py --gpus $gpus --samples $samples --step 1 --prefix GPU-bench > "$T/events.txt"
N=$(wc -l < "$T/events.txt")
kcat -b "$K" -P -t bench -K'|' -X linger.ms=50 -X batch.num.messages=100000 -l "$T/events.txt"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $N events of $(( $(wc -c < "$T/events.txt") / N )) bytes"

# 1. the sink
A=$(newdb bench_sink)
# Sustained rate: from the first committed batch to the last row (the one-time group join and
# first fetch are reported apart, as start-up).
ts=$(date +%s.%N)
"$BIN" sink --brokers "$K" --topic bench --group bench --db "$A" --batch-size 20000 --batch-timeout 1 \
  --stats-interval 0 --log-level warn >"$T/sink.log" 2>&1 &
sp=$!
read -r t0 n0 t1 < <(/usr/bin/python3 bench/commit_watch.py "$A" "$N" 600) || { cat "$T/sink.log"; exit 1; }
kill -TERM $sp; wait $sp || true
[ "$(count "$A")" -eq "$N" ] || { echo "gpu_metrics holds $(count "$A") rows, expected $N" >&2; exit 1; }
sink_rps=$(python3 -c "print(round(($N-$n0)/($t1-$t0)))")
sink_all=$(python3 -c "print(round($N/($t1-$ts)))")
startup=$(python3 -c "print('%.1f' % ($t0-$ts))")

# 2. psql \copy of the same rows into the same table
cols=$(psql -X -At "$A" -c "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'gpu_metrics'::regclass AND attnum > 0 AND NOT attisdropped")
psql -X -q "$A" -c "\\copy (SELECT $cols FROM gpu_metrics) TO '$T/rows.copy'"
B=$(newdb bench_copy)
t0=$(date +%s.%N)
psql -X -q "$B" -c "\\copy gpu_metrics ($cols) FROM '$T/rows.copy'"
t1=$(date +%s.%N)
copy_rps=$(python3 -c "print(round($N/($t1-$t0)))")

# 3. psycopg2 execute_batch with ON CONFLICT, batches of 100 (a subset: it is slow)
C=$(newdb bench_batch)
sub=$(( N < 50000 ? N : 50000 ))
read -r nb secs < <(/usr/bin/python3 bench/sink_baseline.py "$C" "$T/events.txt" $sub)
batch_rps=$(python3 -c "print(round($nb/$secs))")

# bytes per row on disk (table + indexes, all partitions)
bpr=$(psql -X -At "$A" -c "SELECT round(sum(pg_total_relation_size(inhrelid))::numeric / (SELECT count(*) FROM gpu_metrics)) FROM pg_inherits WHERE inhparent = 'gpu_metrics'::regclass")

# 4. delay from produce to committed row at 10,000 events/s
D=$(newdb bench_lat)
# The topic exists and the sink has joined and fetched before the probe starts, so the figure is
# the steady state and not the one-time topic creation and group join: one warm-up event
# (hostname "warmup", which the probe does not count) must be committed first.
echo "GPU-warmup|{\"schema_version\":1,\"time\":\"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\",\"hostname\":\"warmup\",\"gpu\":{\"index\":0,\"uuid\":\"GPU-warmup\"},\"metrics\":{\"gpu_temp\":60}}" \
  | kcat -b "$K" -P -t lat -K'|'
"$BIN" sink --brokers "$K" --topic lat --group lat --db "$D" --batch-timeout 0.2 --stats-interval 0 \
  --log-level warn -X fetch.wait.max.ms=10 >"$T/lat.log" 2>&1 &
lp=$!
for _ in $(seq 1 600); do [ "$(count "$D")" -ge 1 ] && break; sleep 0.1; kill -0 $lp || { cat "$T/lat.log"; exit 1; }; done
[ "$(count "$D")" -ge 1 ] || { echo "the warm-up event never arrived" >&2; cat "$T/lat.log"; exit 1; }
read -r ticks seen p50 p99 pmax < <(/usr/bin/python3 bench/latency_probe.py "$D" "$K" lat 10000 20)
kill -TERM $lp; wait $lp || true

cat <<REPORT
sink from Kafka:            $sink_rps rows/s sustained ($sink_all rows/s counting the ${startup} s start-up: connect, group join, first batch)
psql \\copy (same rows):     $copy_rps rows/s   -> sink = $(python3 -c "print('%.2f' % ($sink_rps/$copy_rps))")x psql \\copy
psycopg2 execute_batch/100: $batch_rps rows/s   -> sink = $(python3 -c "print('%.1f' % ($sink_rps/$batch_rps))")x execute_batch
bytes per row on disk:      $bpr (table + indexes)
produce -> committed row at 10,000 events/s for 20 s: p50 ${p50} ms, p99 ${p99} ms, max ${pmax} ms ($seen/$ticks ticks)
REPORT
rm -rf "$T"
