#!/usr/bin/env bash
# gpuhealth on a real TimescaleDB (issue #21). Runs against the server in
# GPUHEALTH_TEST_TIMESCALEDB: a keyword=value conninfo of a superuser, with the timescaledb
# extension (2.18.1 or newer) in shared_preload_libraries, e.g.
#   host=127.0.0.1 port=5432 user=postgres dbname=gpuhealth_test
# and a real Kafka broker in GPUHEALTH_TEST_KAFKA. scripts/test.sh --timescaledb DSN starts
# Kafka and the second server (below) and runs this; without a DSN it is not run.
#
# Checks: migrate from empty and from version 7 (hypertables, the storage chosen and why,
# policy jobs created once and altered in place), ingest through the broker, compress the
# chunks, redeliver a batch into them and add late rows (each row exactly once, rollups exact,
# the sink goes on ingesting), retention dropping old chunks, the health tables' policies,
# every API endpoint and every Grafana panel's SQL (the integration tests run on this
# server), and a server where TimescaleDB is installed but not preloaded
# (GPUHEALTH_TEST_TIMESCALEDB_NOPRELOAD, same conninfo form): migrate chooses native
# partitions and says why, --storage timescaledb fails naming shared_preload_libraries.
set -u
BIN=${1:?usage: test_timescaledb.sh PATH_TO_GPUHEALTH}
[ -n "${GPUHEALTH_TEST_TIMESCALEDB:-}" ] || { echo "FATAL: GPUHEALTH_TEST_TIMESCALEDB is not set: run scripts/test.sh --timescaledb DSN" >&2; exit 1; }
export GPUHEALTH_TEST_PG=$GPUHEALTH_TEST_TIMESCALEDB
case "$GPUHEALTH_TEST_PG" in
  *dbname=gpuhealth_test*user=postgres*|*user=postgres*dbname=gpuhealth_test*) ;;
  *) echo "FATAL: GPUHEALTH_TEST_TIMESCALEDB must be a keyword=value conninfo with user=postgres and dbname=gpuhealth_test (the form scripts/services.sh exports)" >&2; exit 1 ;;
esac
source "$(dirname "$0")/../integration/lib.sh"

ver=$(sql "$ADMIN_PG" "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")
[ -n "$ver" ] || die "TimescaleDB is not installed on the server at '$ADMIN_PG'"
sql "$ADMIN_PG" "SHOW shared_preload_libraries" | grep -q timescaledb || die "the server at '$ADMIN_PG' does not preload timescaledb: add shared_preload_libraries = 'timescaledb' and restart it"
echo "TimescaleDB $ver on $(sql "$ADMIN_PG" "SHOW server_version")"

dbci() { echo "${ADMIN_PG/dbname=gpuhealth_test/dbname=$1}"; }
mkdb() { psql -X -q "$ADMIN_PG" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null || die "cannot create database $1"; dbci "$1"; }
jobs_of() { # jobs_of CI: "table:proc:job_id:setting" of gpuhealth's policies
  sql "$1" "SELECT string_agg(hypertable_name || ':' || proc_name || ':' || job_id || ':' || coalesce(config->>'drop_after', config->>'compress_after'), ' ' ORDER BY hypertable_name, proc_name) FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
}
is_hyper() { test "$(sql "$1" "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = '$2'")" = 1; }

echo "== migrate from empty: TimescaleDB chosen and said why; hypertables; policies once"
db=$(mkdb gh_ts_mig_$$)
"$BIN" db migrate --db "$db" >"$TMP/m1.log" 2>&1
check "migrate from empty succeeds" test $? = 0
check "it says TimescaleDB was chosen and why" grep -q "storage: timescaledb, because TimescaleDB $ver is installed and preloaded" "$TMP/m1.log"
for t in gpu_metrics gpu_metrics_1min gpu_health_scores gpu_failure_predictions; do
  check "$t is a hypertable" is_hyper "$db" $t
done
check "gpu_metrics and the health tables are compressible" test "$(sql "$db" "SELECT count(*) FROM timescaledb_information.hypertables WHERE compression_enabled AND hypertable_name IN ('gpu_metrics', 'gpu_health_scores', 'gpu_failure_predictions')")" = 3
j1=$(jobs_of "$db")
echo "  jobs: $j1"
check "7 policy jobs (compression and retention of gpu_metrics and the health tables, retention of the rollups)" test "$(echo "$j1" | grep -o ':policy_' | wc -l)" = 7
check "the health tables keep 30 days" test "$(echo "$j1" | grep -o 'gpu_health_scores:policy_retention:[0-9]*:30 days' | wc -l)" = 1
"$BIN" db migrate --db "$db" >"$TMP/m2.log" 2>&1
check "a second migrate keeps every job (same ids, same settings)" test "$(jobs_of "$db")" = "$j1"
"$BIN" db migrate --db "$db" --retention 14d >"$TMP/m3.log" 2>&1
j3=$(jobs_of "$db")
check "--retention 14d alters the retention job in place (same id)" test "$(echo "$j3" | grep -o 'gpu_metrics:policy_retention:[0-9]*' )" = "$(echo "$j1" | grep -o 'gpu_metrics:policy_retention:[0-9]*')"
check "... to 14 days" bash -c "echo '$j3' | grep -q 'gpu_metrics:policy_retention:[0-9]*:336:00:00'"
"$BIN" db migrate --db "$db" >"$TMP/m4.log" 2>&1
check "a later migrate without --retention keeps the stored 14 days (as --help says)" test "$(jobs_of "$db")" = "$j3"

echo "== migrate from version 7 (rows in every table kept)"
db7=$(mkdb gh_ts_v7_$$)
"$BIN" db migrate --db "$db7" --schema-version 7 >"$TMP/v7.log" 2>&1 || bad "migrate to 7: $(cat "$TMP/v7.log")"
ids() { sql "$1" "SELECT string_agg(job_id::text, ',' ORDER BY job_id) FROM timescaledb_information.jobs WHERE hypertable_name IN ('gpu_metrics', 'gpu_metrics_1min')"; }
ids7=$(ids "$db7")
sql "$db7" "INSERT INTO gpu_health_scores (time, gpu_key, score, status) SELECT now() - i * interval '1 hour', 'GPU-v7', 90, 'pass' FROM generate_series(1, 50) i; INSERT INTO gpu_failure_predictions (time, gpu_key, horizon_hours, probability, model_version) SELECT now() - i * interval '1 hour', 'GPU-v7', 24, 0.01, 'm' FROM generate_series(1, 50) i" >/dev/null
"$BIN" db migrate --db "$db7" >"$TMP/v7up.log" 2>&1
check "7 -> latest succeeds" grep -q "from version 7 to" "$TMP/v7up.log"
check "gpu_health_scores became a hypertable" is_hyper "$db7" gpu_health_scores
check "gpu_failure_predictions became a hypertable" is_hyper "$db7" gpu_failure_predictions
check "their 100 rows were kept" test "$(sql "$db7" "SELECT (SELECT count(*) FROM gpu_health_scores) + (SELECT count(*) FROM gpu_failure_predictions)")" = 100
check "the jobs of version 7 were kept (same ids: $ids7)" test "$(ids "$db7")" = "$ids7"

echo "== ingest through the broker, compress, redeliver into the compressed chunks, late rows"
owner=$(mkdb gh_ts_ing_$$)
"$BIN" db migrate --db "$owner" >"$TMP/mi.log" 2>&1 || die "migrate: $(cat "$TMP/mi.log")"
writer=$(writer_ci "$owner")
t=gh-ts-$UNIQ
old=$(( $(date +%s) - 3 * 86400 ))
python3 "$GEN" --gpus 10 --samples 30 --start $old --prefix GPU-ts > "$TMP/first.txt"
produce "$t" "$TMP/first.txt"
start_sink s1 "$writer" "$t" "g-$t" --batch-timeout 0.5
check "300 rows through the broker" wait_rows "$writer" 300 60
stop_sink s1
check "rows and rollups exact (300)" exact "$owner" 300
nchunks=$(sql "$owner" "SELECT count(compress_chunk(c)) FROM show_chunks('gpu_metrics', older_than => now() - interval '1 day') c")
check "the chunks of those rows were compressed ($nchunks)" test "$nchunks" -ge 1
check "... and hold all 300 rows" test "$(sql "$owner" "SELECT count(*) FROM gpu_metrics WHERE time < now() - interval '1 day'")" = 300
# the same batch again (a redelivery) and, in the same compressed range, 50 late rows that are new
python3 "$GEN" --gpus 10 --samples 5 --start $(( old + 5 )) --step 60 --prefix GPU-ts > "$TMP/late.txt"
produce "$t" "$TMP/first.txt"
produce "$t" "$TMP/late.txt"
echo "  injected: 300 redelivered rows and 50 late rows, all in compressed chunks"
start_sink s2 "$writer" "$t" "g-$t" --batch-timeout 0.5
check "each row once: 350" wait_rows "$writer" 350 60
# the sink goes on: fresh rows after the redelivery land too
python3 "$GEN" --gpus 10 --samples 3 --prefix GPU-ts > "$TMP/fresh.txt"
produce "$t" "$TMP/fresh.txt"
check "fresh rows after the redelivery land: 380" wait_rows "$writer" 380 60
stop_sink s2
check "rows, samples and rollups exact (380)" exact "$owner" 380
check "the redelivery counted 300 duplicates" grep -qE 'duplicates=300 ' "$TMP/s2.log"
check "no staged-path error in the sink's log" bash -c "! grep -q 'system column\|transparent decompression' '$TMP/s2.log'"
check "no dead letters" bash -c "! grep -qE 'dead_letters=[1-9]' '$TMP/s2.log'"

echo "== retention drops old chunks (the 3-day-old compressed ones after --retention 2d)"
"$BIN" db migrate --db "$owner" --retention 2d >"$TMP/mr.log" 2>&1
check "migrate --retention 2d alters the job in place" grep -q "retention altered job" "$TMP/mr.log"
job=$(sql "$owner" "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' AND hypertable_name = 'gpu_metrics'")
before=$(sql "$owner" "SELECT count(*) FROM show_chunks('gpu_metrics')")
sql "$owner" "CALL run_job($job)" >/dev/null 2>&1
check "the retention job dropped the old chunks ($before chunks before, $(sql "$owner" "SELECT count(*) FROM show_chunks('gpu_metrics')") after)" test "$(sql "$owner" "SELECT count(*) FROM show_chunks('gpu_metrics', older_than => now() - interval '2 days')")" = 0
check "... with their 350 rows, and kept the 30 fresh ones" test "$(sql "$owner" "SELECT count(*) FROM gpu_metrics")" = 30
hjob=$(sql "$owner" "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention' AND hypertable_name = 'gpu_health_scores'")
sql "$owner" "INSERT INTO gpu_health_scores (time, gpu_key, score, status) VALUES (now() - interval '40 days', 'GPU-h', 50, 'warn'), (now(), 'GPU-h', 50, 'warn')" >/dev/null
sql "$owner" "CALL run_job($hjob)" >/dev/null 2>&1
check "the health retention job drops health rows older than 30 days" test "$(sql "$owner" "SELECT count(*) FROM gpu_health_scores WHERE gpu_key = 'GPU-h'")" = 1

echo "== every API endpoint and every Grafana panel's SQL on TimescaleDB"
for s in test_api.sh test_grafana_sql.sh; do
  if bash "$ROOT/tests/integration/$s" "$BIN" >"$TMP/$s.log" 2>&1; then ok "$s on TimescaleDB ($(tail -1 "$TMP/$s.log"))"; else bad "$s on TimescaleDB: $(tail -5 "$TMP/$s.log")"; fi
done

echo "== TimescaleDB installed but not preloaded"
np=${GPUHEALTH_TEST_TIMESCALEDB_NOPRELOAD:-}
if [ -z "$np" ]; then
  bad "GPUHEALTH_TEST_TIMESCALEDB_NOPRELOAD is not set: scripts/test.sh --timescaledb starts such a server"
else
  psql -X -q "$np" -c 'SELECT 1' >/dev/null 2>&1 || die "the not-preloaded server at '$np' is unreachable"
  check "that server has TimescaleDB installed" test -n "$(sql "$np" "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")"
  check "... and does not preload it" bash -c "! psql -X -At '$np' -c 'SHOW shared_preload_libraries' | grep -q timescaledb"
  for d in gh_np1_$$ gh_np2_$$; do psql -X -q "$np" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $d" -c "CREATE DATABASE $d" >/dev/null; done
  "$BIN" db migrate --db "${np/dbname=gpuhealth_test/dbname=gh_np1_$$}" >"$TMP/np1.log" 2>&1
  check "migrate succeeds (no FATAL, the session lives)" test $? = 0
  check "it chose native partitions and said why" grep -q "storage: partitioned, because TimescaleDB .* is installed but not in shared_preload_libraries" "$TMP/np1.log"
  "$BIN" db migrate --db "${np/dbname=gpuhealth_test/dbname=gh_np2_$$}" --storage timescaledb >"$TMP/np2.log" 2>&1
  check "--storage timescaledb is refused (exit 2)" test $? = 2
  check "... naming the fix, shared_preload_libraries" grep -q "shared_preload_libraries = 'timescaledb'" "$TMP/np2.log"
  check "... and nothing was created" test "$(psql -X -At "${np/dbname=gpuhealth_test/dbname=gh_np2_$$}" -c "SELECT count(*) FROM pg_tables WHERE tablename = 'gpu_metrics'")" = 0
  echo "  said: $(grep -o 'storage: .*' "$TMP/np1.log" | head -1)"
  echo "  said: $(grep -o 'error: .*' "$TMP/np2.log" | head -1)"
fi
# the console's private server on this host: initdb from the same binaries, not preloaded
home="$TMP/home"; mkdir -p "$home"; chmod 777 "$TMP" "$home"
HOME=$home timeout 120 "$BIN" --daemon --gpus 2 --interval 1 --duration 8 >"$TMP/daemon.log" 2>&1
check "the daemon's private PostgreSQL migrates and runs on this host" test $? = 0
grep -q 'server closed the connection' "$TMP/daemon.log" && bad "the private server's session died: $(tail -3 "$TMP/daemon.log")"

finish
