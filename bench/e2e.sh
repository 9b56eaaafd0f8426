#!/usr/bin/env bash
# End-to-end fleet capacity (issue 9): simulated exporters of 1,024 GPUs each (mock-dcgm,
# values updated every 10 s) -> one collector (10 s interval) -> the real Kafka broker -> one
# sink -> the real PostgreSQL, all on this machine (scripts/services.sh). The fleet is stepped
# up (exporters are added and the collector re-reads its --targets-file on SIGHUP); each step
# warms up for one interval and a half, then is measured for STEP_S seconds.
#
# Per step it reports: rows committed per second (one row = one GPU sample), the delay from
# scrape to committed row (p50/p99), the sink's consumer lag over the window and whether it is
# flat, and the CPU of each process. The largest step with flat lag is the capacity.
#
# Delay method: the benchmark's PostgreSQL runs with track_commit_timestamp = on, so every
# row's inserting transaction has its exact COMMIT time, pg_xact_commit_timestamp(xmin).
# delay = that time - time, where time is the collector's scrape time in the event. The
# percentiles are over every row whose transaction committed during the window (rows scraped
# up to 10 minutes before it; a delay longer than that is far from flat). An earlier version
# added a column `committed_at DEFAULT clock_timestamp()` instead: a volatile default makes
# PostgreSQL's COPY insert row by row instead of in multi-row batches, which cost PostgreSQL
# ~15 % more CPU per row (measured: 29.4 -> 34.7 us) and measured the benchmark, not the sink.
# Flat lag: over the window, the sink's lag (its "lag=" stats, every 2 s) grows by less than
# one interval's worth of samples (a least-squares slope x window < GPUs), the committed rate
# is at least 95 % of GPUs / 10 s, and the collector dropped nothing.
# CPU: utime+stime from /proc/PID/stat over the window (PostgreSQL: the postmaster, its live
# children, and the reaped children's cutime+cstime), as % of one core.
#
# Usage: bench/e2e.sh [--db DSN] [--quick|--full] [--steps "N N ..."] [--step-s S] [--final-s S]
#   --db DSN: run against that server (PostgreSQL or TimescaleDB, with track_commit_timestamp
#             = on for the delay figures): database bench_e2e_PID is created there, migrated
#             (TimescaleDB where it is preloaded, its compression policy active) and dropped
#             at the end; pg% is read only when the server runs on this machine. Without it a
#             private PostgreSQL is started as before.
#   --quick (default): 64, 128, 196 exporters (65,536 / 131,072 / 200,704 GPUs: the last is
#                      the 200,000-GPU target), 45 s each: about 4 minutes
#   --full:            32, 64, 128, 196 exporters (up to 200,704 GPUs, 20,070 samples/s),
#                      120 s each, the last 300 s: about 14 minutes
#   --steps: exporter counts; --step-s / --final-s: measured seconds per step / last step.
#   --durable: the same steps twice in one run, first with the fast settings below (fsync,
#              full_page_writes and synchronous_commit off), then on a fresh PostgreSQL with
#              fsync = on, full_page_writes = on, synchronous_commit = on (PostgreSQL's
#              defaults, what a user has); prints both tables and the largest flat fleet of each.
# Prints a table and writes it, with the machine, to $E2E_OUT (default build/bench-e2e.txt).
# E2E_SINK_ARGS: extra sink options to try (e.g. "--batch-size 20000"; default: none, the
# sink's defaults); E2E_COLLECTOR_ARGS: the same for the collector (e.g. "-X
# compression.codec=none"); E2E_KEEP=DIR: copy the collector's, sink's and exporters' logs
# there before the scratch directory goes; E2E_PG_CONF: PostgreSQL settings instead of the ones below.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
steps="64 128 196" step_s=45 final_s= DB_SERVER=
args=("$@") durable=0
while [ $# -gt 0 ]; do
  case "$1" in
    --durable) durable=1 ;;
    --quick) steps="64 128 196" step_s=45 ;;
    --full) steps="32 64 128 196" step_s=120 final_s=300 ;;
    --steps) steps=$2; shift ;;
    --step-s) step_s=$2; shift ;;
    --final-s) final_s=$2; shift ;;
    --db) DB_SERVER=$2; shift ;;
    *) echo "e2e.sh: unknown option '$1' (--db, --quick, --full, --durable, --steps, --step-s, --final-s)" >&2; exit 2 ;;
  esac
  shift
done
final_s=${final_s:-$step_s}
[ "$durable" = 1 ] && [ -n "$DB_SERVER" ] && { echo "e2e.sh: --durable starts its own servers with each setting; it cannot be combined with --db (run --db against a server configured as you want it)" >&2; exit 2; }
OUT=${E2E_OUT:-$root/build/bench-e2e.txt}
# ---- --durable: this script twice, fast then durable settings, each with services of its own
if [ "$durable" = 1 ]; then
  rest=()
  for a in "${args[@]}"; do [ "$a" = --durable ] || rest+=("$a"); done
  for mode in fast durable; do
    echo "== PostgreSQL settings: $mode"
    E2E_SETTINGS=$mode E2E_OUT="$OUT.$mode" bash "$0" "${rest[@]}" || exit $?
  done
  {
    echo
    echo "== the same run, both settings"
    for mode in fast durable; do echo "-- $mode"; grep -v '^largest' "$OUT.$mode"; done
    for mode in fast durable; do
      printf 'largest fleet with flat lag, %-7s (%s): %s GPUs\n' "$mode" \
        "$(sed -n 's/^postgresql: //p' "$OUT.$mode")" "$(sed -n 's/^largest fleet with flat lag: \([0-9]*\).*/\1/p' "$OUT.$mode")"
    done
    echo "(target: 200,000 GPUs at 10 s = 20,000 samples/s)"
  } | tee "$OUT"
  rm -f "$OUT.fast" "$OUT.durable"
  exit 0
fi
case "${E2E_SETTINGS:-fast}" in
  fast) durable_conf= ;;
  # later lines of postgresql.conf win over scripts/services.sh's fsync/fpw/synchronous_commit off
  durable) durable_conf="fsync = on
full_page_writes = on
synchronous_commit = on" ;;
  *) echo "e2e.sh: E2E_SETTINGS is '$E2E_SETTINGS' (fast or durable)" >&2; exit 2 ;;
esac
scripts/install-deps.sh --test >/dev/null
scripts/build.sh "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
BIN=$root/build/gpuhealth
# private services in a fresh scratch directory, never the caller's (its cleanup removes it)
unset GH_SVC_DIR GH_KAFKA_DIR GH_PG_DIR GH_KAFKA_PID GPUHEALTH_TEST_PG GPUHEALTH_TEST_KAFKA
source scripts/services.sh
T=$(mktemp -d /tmp/gh-e2e.XXXXXX)
pids=() mocks=()
cleanup() {
  if [ -n "${E2E_KEEP:-}" ]; then mkdir -p "$E2E_KEEP" && cp "$T"/*.log "$E2E_KEEP"/ 2>/dev/null || true; fi
  for p in "${pids[@]}" "${mocks[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${pids[@]}" "${mocks[@]}" 2>/dev/null || true # not the broker: kafka_stop ends it
  [ -n "$DB_SERVER" ] && psql -X -q "$SERVER" -c "DROP DATABASE IF EXISTS bench_e2e_$$ WITH (FORCE)" >/dev/null 2>&1
  kafka_stop; pg_stop; rm -rf "$GH_SVC_DIR" "$T"
}
trap cleanup EXIT
# PostgreSQL sized for a database that grows by GBs during the run (the test default of
# 128 MB of shared buffers is a toy: past it every insert into the indexes of 100,000s of GPUs
# evicts and rewrites a page); a server for a fleet would have at least this much
if [ -n "$DB_SERVER" ]; then
  SERVER=$DB_SERVER
  [ "$(psql -X -At "$SERVER" -c 'SHOW track_commit_timestamp')" = on ] ||
    { echo "e2e.sh: --db server needs track_commit_timestamp = on (the delay figures)" >&2; exit 1; }
  kafka_start 2>/dev/null
  K=$GPUHEALTH_TEST_KAFKA
  psql -X -q "$SERVER" -c "CREATE DATABASE bench_e2e_$$" >/dev/null
  DB=$(/usr/bin/python3 -c 'import sys; from psycopg2.extensions import make_dsn; print(make_dsn(sys.argv[1], dbname=sys.argv[2]))' "$SERVER" "bench_e2e_$$")
  PM_PID=$(psql -X -At "$DB" -c "SELECT CASE WHEN pg_read_file('postmaster.pid', 0, 20) IS NOT NULL THEN split_part(pg_read_file('postmaster.pid', 0, 20), E'\n', 1) END" 2>/dev/null || echo 0)
else
SERVER=
GH_PG_EXTRA_CONF="${E2E_PG_CONF-"shared_buffers = 2GB
max_wal_size = 4GB"}
track_commit_timestamp = on
$durable_conf" pg_start 2>/dev/null
kafka_start 2>/dev/null
K=$GPUHEALTH_TEST_KAFKA
psql -X -q "$GPUHEALTH_TEST_PG" -c "CREATE DATABASE bench_e2e" >/dev/null
DB="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=bench_e2e}"
PM_PID=$(head -1 "$GH_PG_DIR/data/postmaster.pid")
fi
[ "$(cat "/proc/${PM_PID:-0}/comm" 2>/dev/null)" = postgres ] || PM_PID=0 # not on this machine: pg% reads 0
if false; then :
fi
"$BIN" db migrate --db "$DB" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 "$DB" -c "SELECT gpuhealth_ensure_partitions(now() - interval '1 day', now() + interval '1 day')" >/dev/null
# the topic first, with the broker's 4 partitions, so the sink's group has them at once
echo "x|{}" | kcat -b "$K" -P -t e2e -K'|' 2>/dev/null || true

add_mocks() { # add_mocks N: start exporters until there are N
  local p
  while [ ${#mocks[@]} -lt "$1" ]; do
    p=$(free_port)
    "$BIN" mock-dcgm --listen "127.0.0.1:$p" --gpus 1024 --seed $(( ${#mocks[@]} + 1 )) \
      --hostname "node$(( ${#mocks[@]} + 1 ))" --poll-interval 10 --stats-interval 0 \
      --log-level warn >>"$T/mocks.log" 2>&1 &
    mocks+=($!)
    echo "http://127.0.0.1:$p/metrics" >>"$T/targets" # read on start and on SIGHUP only
  done
  sleep 1
}

snap() { # snap FILE: every CPU counter read at once by one process (no fork per PID, which
  # would stretch the reading over seconds on a loaded machine)
  python3 - "$1" "$cpid" "$spid" "$(kafka_pid)" "${PM_PID:-0}" "${mocks[@]}" <<'PY'
import os, sys, time
out, coll, sink, kafka, pm, mocks = sys.argv[1], *sys.argv[2:6], sys.argv[6:]
def fields(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()  # fields from 3 (state) on
def ticks(pid, children=False):
    f = fields(pid)
    if not f:
        return 0
    t = int(f[11]) + int(f[12])  # utime, stime
    return t + (int(f[13]) + int(f[14]) if children else 0)  # cutime, cstime (reaped)
now = time.time()
pg = ticks(pm, True)
for d in os.listdir("/proc"):
    if d.isdigit():
        f = fields(d)
        if f and f[1] == pm:
            pg += ticks(d)
cpu = open("/proc/stat").readline().split()[1:]
busy = sum(int(cpu[i]) for i in (0, 1, 2, 5, 6, 7))
with open(out, "w") as o:
    print(now, ticks(coll), ticks(sink), ticks(kafka), pg, sum(ticks(m) for m in mocks), busy, file=o)
PY
}

: >"$T/targets"
first=${steps%% *}
add_mocks "$first"
# The collector and the sink each in a session of its own, as each service runs in a cgroup of
# its own under systemd or docker: with the kernel's autogroup scheduling (this machine's
# default) CPU is shared fairly between sessions, and every PostgreSQL backend is a session of
# its own (the postmaster's children call setsid), while the collector, the sink and the 196
# exporters were one session: under full load they shared one share, and the collector fell
# behind (200,704 GPUs: 897 scrape intervals skipped in 5 minutes, 17,554 rows/s; in sessions
# of their own: 190, 19,651 rows/s). (setsid execs in place here: $! is the service's pid.)
setsid "$BIN" collector --targets-file "$T/targets" --interval 10 --brokers "$K" --topic e2e \
  --stats-interval 2 ${E2E_COLLECTOR_ARGS:-} >"$T/collector.log" 2>&1 &
cpid=$!; pids+=($cpid)
setsid "$BIN" sink --brokers "$K" --topic e2e --group e2e --db "$DB" --stats-interval 2 ${E2E_SINK_ARGS:-} \
  >"$T/sink.log" 2>&1 &
spid=$!; pids+=($spid)
sleep 0.5
for p in "$cpid" "$spid"; do # the pid is the service's, or the CPU columns would read nothing
  tr '\0' ' ' <"/proc/$p/cmdline" | grep -q 'gpuhealth' || { echo "e2e.sh: pid $p is not a gpuhealth service" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)
{
  echo "machine: $(nproc) cores ($(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')), $(free -g | awk '/Mem:/{print $2}') GiB;" \
       "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "postgresql: $(psql -X -At -F' ' "$DB" -c "SELECT string_agg(name || '=' || setting, ', ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'full_page_writes', 'synchronous_commit')")"
  echo "pipeline: N x mock-dcgm (1,024 GPUs each) -> collector (10 s) -> Kafka $(grep -m1 -o 'Kafka version: [^ ]*' "$GH_KAFKA_DIR/broker.log" | cut -d' ' -f3) -> sink -> PostgreSQL $(psql -X -At "$DB" -c 'SHOW server_version' | cut -d' ' -f1)"
  printf '%-8s %-9s %10s %10s %9s %9s %10s %10s %5s %7s %6s %6s %6s %6s %7s\n' \
    exporters GPUs "want/s" "rows/s" "p50 s" "p99 s" "lag start" "lag end" flat "coll%" "sink%" "kafka%" "pg%" "mock%" "other%"
} | tee "$OUT"
last=$(echo "$steps" | wc -w) i=0 best=0
for n in $steps; do
  i=$((i + 1))
  secs=$step_s; [ "$i" = "$last" ] && secs=$final_s
  add_mocks "$n"
  kill -HUP "$cpid"
  sleep 15 # one interval and a half: every new target scraped at least once, batches flowing
  kill -0 "$cpid" && kill -0 "$spid" || { echo "collector or sink died" >&2; tail "$T/collector.log" "$T/sink.log" >&2; exit 1; }
  off=$(wc -c <"$T/sink.log")
  dropped0=$(grep -o ' dropped=[0-9]*' "$T/collector.log" | tail -1 | cut -d= -f2)
  w0=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
  snap "$T/s0"
  sleep "$secs"
  snap "$T/s1"
  w1=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
  dropped1=$(grep -o ' dropped=[0-9]*' "$T/collector.log" | tail -1 | cut -d= -f2)
  tail -c +"$((off + 1))" "$T/sink.log" | grep -o '^[^ ]* .* lag=[0-9]*' | awk '{print $1, $NF}' | sed 's/lag=//' >"$T/lag"
  psql -X -At -F' ' "$DB" -c "SELECT count(*),
      coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM c - time)), 0),
      coalesce(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM c - time)), 0)
    FROM (SELECT time, pg_xact_commit_timestamp(xmin) AS c FROM gpu_metrics
          WHERE time >= timestamptz '$w0' - interval '10 minutes' AND time < '$w1') r
    WHERE c >= '$w0' AND c < '$w1'" >"$T/q"
  line=$(python3 - "$n" "$hz" "$T/s0" "$T/s1" "$T/q" "$T/lag" "${dropped0:-0}" "${dropped1:-0}" <<'PY'
import sys, datetime
n, hz = int(sys.argv[1]), float(sys.argv[2])
s0 = [float(x) for x in open(sys.argv[3]).read().split()]
s1 = [float(x) for x in open(sys.argv[4]).read().split()]
rows, p50, p99 = open(sys.argv[5]).read().split()
wall = s1[0] - s0[0]
gpus = n * 1024
want = gpus / 10
rate = int(rows) / wall
cpu = [100 * (b - a) / hz / wall for a, b in zip(s0[1:6], s1[1:6])]
busy = 100 * (s1[6] - s0[6]) / hz / wall
other = max(0.0, busy - sum(cpu))
lag = []
for l in open(sys.argv[6]):
    t, v = l.split()
    d = datetime.datetime.strptime(t[:23], "%Y-%m-%dT%H:%M:%S.%f")
    lag.append((d.timestamp(), float(v)))
slope = 0.0
if len(lag) >= 3:
    mx = sum(t for t, _ in lag) / len(lag); my = sum(v for _, v in lag) / len(lag)
    den = sum((t - mx) ** 2 for t, _ in lag)
    slope = sum((t - mx) * (v - my) for t, v in lag) / den if den else 0.0
grew = slope * wall
flat = len(lag) >= 3 and grew < gpus and rate >= 0.95 * want and sys.argv[7] == sys.argv[8]
l0 = int(lag[0][1]) if lag else -1
l1 = int(lag[-1][1]) if lag else -1
print(f"{n:<8d} {gpus:<9d} {want:10.0f} {rate:10.0f} {float(p50):9.2f} {float(p99):9.2f} {l0:10d} {l1:10d} "
      f"{'yes' if flat else 'no':>5} {cpu[0]:7.1f} {cpu[1]:6.1f} {cpu[2]:6.1f} {cpu[3]:6.1f} {cpu[4]:6.1f} {other:7.1f}")
PY
)
  echo "$line" | tee -a "$OUT"
  [ "$(echo "$line" | awk '{print $9}')" = yes ] && best=$((n * 1024))
done
{
  echo "window per step: ${step_s} s (last ${final_s} s), after 15 s warm-up; CPU in % of one core; other% = the rest of the machine (not this pipeline)"
  echo "collector: $(grep -o 'targets=.*' "$T/collector.log" | tail -1 | sed 's/ kafka_error=.*//')"
  echo "sink: $(grep -o 'rows_written=.*' "$T/sink.log" | tail -1)"
  # a failed scrape is a lost sample of each of its GPUs: say why they failed
  { grep -o 'failed: .* (retrying' "$T/collector.log" || true; } | sed 's/^failed: //; s/ (retrying$//; s/[0-9][0-9]* milliseconds/N milliseconds/; s/[0-9][0-9]* out of [0-9-][0-9]* bytes/N out of M bytes/; s/[0-9][0-9]* bytes received/N bytes received/' |
    sort | uniq -c | sort -rn | head -5 | sed 's/^ */first failures of a run of a target: /' || true
  echo "largest fleet with flat lag: $best GPUs (target: 200,000 GPUs at 10 s = 20,000 samples/s)"
} | tee -a "$OUT"
