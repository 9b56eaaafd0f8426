#!/usr/bin/env bash
# Sink benchmark (issue: sink and schema). In one run, on the same rows and table:
#  1. the sink's rows/s consuming a backlog from the real Kafka broker,
#  2. psql \copy of the same rows into the same table (the practical limit),
#  3. psycopg2 execute_batch INSERT ... ON CONFLICT in batches of 100 (the simple design),
# plus bytes per row on disk and the p99 delay from produce to committed row at a steady
# 10,000 events/s.
# Usage: bench/sink.sh [--db DSN] [ROWS]   (default 200000 rows)
#   --db DSN: run against that server (any PostgreSQL or TimescaleDB; a libpq conninfo or URI
#   of a role that may CREATE DATABASE): the bench's databases are created there with a unique
#   suffix, migrated by 'gpuhealth db migrate' (which picks the storage: TimescaleDB where it is
#   preloaded) and dropped at the end. Without it, a private PostgreSQL is started as before.
#   The Kafka broker is always a private one.
set -euo pipefail
DB_SERVER=
while [ $# -gt 0 ]; do
  case "$1" in
    --db) [ $# -ge 2 ] || { echo "sink.sh: --db needs a DSN (e.g. 'host=127.0.0.1 port=5432 user=postgres dbname=postgres')" >&2; exit 2; }
          DB_SERVER=$2; shift ;;
    --db=*) DB_SERVER=${1#--db=} ;;
    -*) echo "sink.sh: unknown option '$1' (usage: bench/sink.sh [--db DSN] [ROWS])" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
ROWS=${1:-200000}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/install-deps.sh --test >/dev/null
scripts/install-deps.sh --bench >/dev/null
scripts/build.sh "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=$root/build/gpuhealth
T=$(mktemp -d)
# private services in a fresh scratch directory, never the caller's (its cleanup removes it)
unset GH_SVC_DIR GH_KAFKA_DIR GH_PG_DIR GH_KAFKA_PID GPUHEALTH_TEST_PG GPUHEALTH_TEST_KAFKA
source scripts/services.sh
cleanup() {
  if [ -n "$DB_SERVER" ]; then # the databases this run created on the --db server
    for d in bench_sink bench_copy bench_batch bench_lat; do
      psql -X -q "$SERVER" -c "DROP DATABASE IF EXISTS $d$suffix WITH (FORCE)" >/dev/null 2>&1 || true
    done
  fi
  kafka_stop; pg_stop; rm -rf "$GH_SVC_DIR" "$T"
}
trap cleanup EXIT
if [ -n "$DB_SERVER" ]; then
  SERVER=$DB_SERVER
  psql -X -q "$SERVER" -c 'SELECT 1' >/dev/null || { echo "sink.sh: cannot connect to --db '$SERVER'" >&2; exit 1; }
  suffix=_$$
else
  pg_start 2>/dev/null
  SERVER=$GPUHEALTH_TEST_PG suffix=
fi
kafka_start 2>/dev/null
K=$GPUHEALTH_TEST_KAFKA
# dsn_for DB: the server's DSN with dbname DB (a conninfo or a URI)
dsn_for() { /usr/bin/python3 -c 'import sys; from psycopg2.extensions import make_dsn; print(make_dsn(sys.argv[1], dbname=sys.argv[2]))' "$SERVER" "$1"; }
newdb() {
  local name=$1$suffix
  psql -X -q "$SERVER" -c "CREATE DATABASE $name" >/dev/null || exit 1
  local ci; ci=$(dsn_for "$name") || exit 1
  "$BIN" db migrate --db "$ci" >"$T/migrate-$name.log" 2>&1 || { cat "$T/migrate-$name.log" >&2; exit 1; }
  psql -X -q "$ci" -c "SELECT gpuhealth_ensure_partitions(now() - interval '2 days', now() + interval '1 day')" >/dev/null
  echo "$ci"
}
count() { psql -X -At "$1" -c "SELECT count(*) FROM gpu_metrics"; }
gpus=1000; samples=$(( ROWS / gpus ))
python3 tests/integration/gen_events.py --gpus $gpus --samples $samples --step 1 --prefix GPU-bench > "$T/events.txt"
N=$(wc -l < "$T/events.txt")
kcat -b "$K" -P -t bench -K'|' -X linger.ms=50 -X batch.num.messages=100000 -l "$T/events.txt"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $N events of $(( $(wc -c < "$T/events.txt") / N )) bytes"

# 1. the sink
A=$(newdb bench_sink)
echo "server: $(psql -X -At "$A" -c "SELECT 'PostgreSQL ' || current_setting('server_version') || coalesce(', TimescaleDB ' || (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), '')" | head -1)"
# Sustained rate: from the first committed batch to the last row (the one-time group join and
# first fetch are reported apart, as start-up).
ts=$(date +%s.%N)
# In a session of its own, as a service runs in a cgroup of its own under systemd or docker
# (and as each PostgreSQL backend, psql's \copy one too, is a session of its own): with the
# kernel's autogroup scheduling CPU is shared fairly between sessions (see bench/e2e.sh).
# (setsid execs in place here: $! is the sink's pid.)
setsid "$BIN" sink --brokers "$K" --topic bench --group bench --db "$A" --batch-size 20000 --batch-timeout 1 \
  --stats-interval 0 --log-level warn >"$T/sink.log" 2>&1 &
sp=$!
read -r t0 n0 t1 < <(/usr/bin/python3 bench/commit_watch.py "$A" "$N" 600) || { cat "$T/sink.log"; exit 1; }
# CPU of the sink and of its PostgreSQL backends, read before they end (the backends only when
# the server runs on this machine: then the postmaster, their parent, is read for \copy too)
bpids=$(psql -X -At "$A" -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE application_name LIKE 'gpuhealth-sink%'")
ticks() { # ticks PID...: utime+stime (+ cutime+cstime with CHILDREN=1), 0 for a PID not here
  local t=0 p f
  for p in "$@"; do
    f=($(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null)) || continue
    [ ${#f[@]} -gt 14 ] || continue
    t=$((t + f[11] + f[12] + ${CHILDREN:-0} * (f[13] + f[14])))
  done
  echo $t
}
hz=$(getconf CLK_TCK)
sink_cpu=$(ticks $sp)
pm= pg_sink_cpu=
for p in $bpids; do
  if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = postgres ]; then
    pm=$(sed 's/^.*) //' "/proc/$p/stat" | cut -d' ' -f2)
    pg_sink_cpu=$(ticks $bpids)
  fi
  break
done
kill -TERM $sp; wait $sp || true
[ "$(count "$A")" -eq "$N" ] || { echo "gpu_metrics holds $(count "$A") rows, expected $N" >&2; exit 1; }
sink_rps=$(python3 -c "print(round(($N-$n0)/($t1-$t0)))")
sink_all=$(python3 -c "print(round($N/($t1-$ts)))")
startup=$(python3 -c "print('%.1f' % ($t0-$ts))")

# 2. psql \copy of the same rows into the same table
cols=$(psql -X -At "$A" -c "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'gpu_metrics'::regclass AND attnum > 0 AND NOT attisdropped")
psql -X -q "$A" -c "\\copy (SELECT $cols FROM gpu_metrics) TO '$T/rows.copy'"
B=$(newdb bench_copy)
[ -n "$pm" ] && pm0=$(( $(CHILDREN=1 ticks $pm) - $(ticks $pm) ))
t0=$(date +%s.%N)
# (psql's own CPU: its rusage, read by the python that runs it)
psql_cpu=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime)' psql -X -q "$B" -c "\\copy gpu_metrics ($cols) FROM '$T/rows.copy'")
t1=$(date +%s.%N)
# the backend has ended: its CPU is in the postmaster's reaped children's (with whatever else
# ended meanwhile, e.g. an autovacuum worker: an upper bound)
[ -n "$pm" ] && pg_copy_cpu=$(( $(CHILDREN=1 ticks $pm) - $(ticks $pm) - pm0 ))
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

# CPU per row, on every core: the ratio the rows/s give on a machine whose cores are all busy
cpu_line=$(python3 - "$N" "$hz" "$sink_cpu" "${pg_sink_cpu:-}" "$psql_cpu" "${pg_copy_cpu:-}" <<'PY'
import sys
n, hz = int(sys.argv[1]), float(sys.argv[2])
sink, pgs, psql, pgc = sys.argv[3:7]
us = lambda ticks: 1e6 * float(ticks) / hz / n
s = us(sink); c = 1e6 * float(psql) / n
if pgs and pgc:
    t1, t2 = s + us(pgs), c + us(pgc)
    print(f"sink {t1:.1f} (sink {s:.1f} + PostgreSQL {us(pgs):.1f}), psql \\copy {t2:.1f} "
          f"(psql {c:.1f} + PostgreSQL {us(pgc):.1f}) -> sink = {t2 / t1:.2f}x psql \\copy per CPU second")
else:
    print(f"sink process {s:.1f}, psql {c:.1f} (PostgreSQL's not read: the server is not on this machine)")
PY
)
cat <<REPORT
sink from Kafka:            $sink_rps rows/s sustained ($sink_all rows/s counting the ${startup} s start-up: connect, group join, first batch)
psql \\copy (same rows):     $copy_rps rows/s   -> sink = $(python3 -c "print('%.2f' % ($sink_rps/$copy_rps))")x psql \\copy
CPU per row (us):           $cpu_line
psycopg2 execute_batch/100: $batch_rps rows/s   -> sink = $(python3 -c "print('%.1f' % ($sink_rps/$batch_rps))")x execute_batch
bytes per row on disk:      $bpr (table + indexes)
produce -> committed row at 10,000 events/s for 20 s: p50 ${p50} ms, p99 ${p99} ms, max ${pmax} ms ($seen/$ticks ticks)
REPORT
rm -rf "$T"
