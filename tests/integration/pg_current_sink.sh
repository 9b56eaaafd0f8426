#!/usr/bin/env bash
# The schema and the sink's write path on one more PostgreSQL major, in about 30 s: migrate from
# empty and from version 7 with rows in it, the statistics targets of 007 (whose catalog column
# changed in PostgreSQL 17), ingest through the real broker as the writer role with every event
# delivered twice, a kill -9 after the commit and before the offsets reach Kafka (the whole topic
# is redelivered; the database recomputes the minutes the killed sink left open), then late rows
# into closed minutes beside another redelivery; every row once, every rollup exact.
# scripts/test.sh runs it (label pg-current, with test_schema_guard, test_api, test_scorer,
# test_grafana_sql, test_docker_initdb and test_postgres) against the current major it fetches
# (scripts/services.sh: pg_current_fetch); it passes on PostgreSQL 15 too. test_sink.sh is the
# full sink suite on PostgreSQL 15.
source "$(dirname "$0")/lib.sh"
echo "  server: PostgreSQL $(sql "$ADMIN_PG" 'SHOW server_version') ($ADMIN_PG)"
latest=$(ls "$ROOT"/schema/[0-9][0-9][0-9]_*.sql | sed -n '$s|.*/0*\([0-9]*\)_.*|\1|p')

echo "== migrate from empty, and again (a no-op)"
owner=$(new_db gh_cur_$$)
check "every version 1..$latest recorded" test "$(sql "$owner" "SELECT string_agg(version::text, ',' ORDER BY version) FROM gpuhealth_migrations")" = "$(seq -s, 1 "$latest")"
check "re-run is a no-op" bash -c "'$BIN' db migrate --db '$owner' 2>&1 | grep -q 'up to date at version $latest'"
check "storage: native partitions" test "$(sql "$owner" "SELECT gpuhealth_storage()")" = partitioned
# 007: PostgreSQL 17 made attstattarget NULL for the default target (-1 before)
sql "$owner" "SELECT gpuhealth_ensure_partitions(now() + interval '2 days', now() + interval '2 days')" >/dev/null
stat_targets() {
  sql "$owner" "SELECT string_agg(attname || ':' || coalesce(attstattarget, -1), ' ' ORDER BY attname) FROM pg_attribute WHERE attrelid = '$1'::regclass AND attname IN ('gpu_key', 'time', 'gpu_temp', 'extra')"
}
newest=$(sql "$owner" "SELECT 'gpu_metrics_p' || to_char((now() + interval '2 days') AT TIME ZONE 'UTC', 'YYYYMMDD')")
check "statistics of gpu_key and time only (007): $(stat_targets gpu_metrics)" test "$(stat_targets gpu_metrics)" = "extra:0 gpu_key:-1 gpu_temp:0 time:-1"
check "... on a partition created after the migration too: $(stat_targets "$newest")" test "$(stat_targets "$newest")" = "extra:0 gpu_key:-1 gpu_temp:0 time:-1"

echo "== migrate from version 7 with rows in every kind of table"
v7=gh_cur7_$$
psql -X -q "$ADMIN_PG" -c "DROP DATABASE IF EXISTS $v7" -c "CREATE DATABASE $v7" >/dev/null 2>&1 || die "cannot create database $v7"
v7="${ADMIN_PG/dbname=gpuhealth_test/dbname=$v7}"
"$BIN" db migrate --db "$v7" --schema-version 7 >"$TMP/v7.log" 2>&1 || die "migrate to 7 failed: $(cat "$TMP/v7.log")"
sql "$v7" "SELECT gpuhealth_ensure_partitions(now() - interval '1 hour', now())" >/dev/null || die "no partition at version 7"
sql "$v7" "INSERT INTO gpu_metrics (time, gpu_key, uuid, gpu_temp) SELECT now() - i * interval '1 minute', 'GPU-v7', 'GPU-v7', 50 FROM generate_series(1, 30) i; INSERT INTO gpu_metrics_1min (gpu_key, minute, samples) SELECT 'GPU-v7', date_trunc('minute', now()) - i * interval '1 minute', 1 FROM generate_series(1, 30) i; INSERT INTO gpu_health_scores (time, gpu_key, score, status) SELECT now() - i * interval '1 hour', 'GPU-v7', 90, 'pass' FROM generate_series(1, 20) i; INSERT INTO gpu_failure_predictions (time, gpu_key, horizon_hours, probability, model_version) SELECT now() - i * interval '1 hour', 'GPU-v7', 24, 0.01, 'm' FROM generate_series(1, 20) i" >/dev/null || die "cannot fill the version-7 database"
"$BIN" db migrate --db "$v7" >"$TMP/v7up.log" 2>&1
check "7 -> $latest succeeds" grep -q "from version 7 to $latest" "$TMP/v7up.log"
check "... every row kept (raw, rollups, health scores, predictions: 30 30 20 20)" test "$(sql "$v7" "SELECT (SELECT count(*) FROM gpu_metrics) || ' ' || (SELECT count(*) FROM gpu_metrics_1min) || ' ' || (SELECT count(*) FROM gpu_health_scores) || ' ' || (SELECT count(*) FROM gpu_failure_predictions)")" = "30 30 20 20"
check "... the health tables are partitioned now (012)" test "$(sql "$v7" "SELECT string_agg(relkind::text, '' ORDER BY relname) FROM pg_class WHERE relname IN ('gpu_health_scores', 'gpu_failure_predictions')")" = pp

echo "== the sink as the writer role: each event twice, kill -9 after the commit, redelivery"
writer=$(writer_ci "$owner")
t=gh-cur-$UNIQ
start=$(( $(date +%s) - 400 ))
python3 "$GEN" --gpus 5 --samples 40 --start "$start" --prefix GPU-cur > "$TMP/a.txt"
produce "$t" "$TMP/a.txt"; produce "$t" "$TMP/a.txt"
echo "  injected: 200 events, each delivered twice"
# auto commit every 60 s: the rows are committed to PostgreSQL long before any offset is
start_sink r1 "$writer" "$t" "g-$t" --batch-timeout 0.3 -X auto.commit.interval.ms=60000
check "200 rows from 400 deliveries" wait_rows "$writer" 200 60
kill -9 "$PID_r1"; wait "$PID_r1" 2>/dev/null
start_sink r2 "$writer" "$t" "g-$t" --batch-timeout 0.3
for i in $(seq 1 160); do grep -qE 'duplicates=400 ' "$TMP/r2.log" && break; sleep 0.25; done
stop_sink r2
check "the restarted sink got all 400 again, as duplicates" grep -qE 'stopped after .* rows_written=0 .*duplicates=400 ' "$TMP/r2.log"
check "rows, samples and rollups exactly 200" exact "$owner" 200
check "the minutes the killed sink left open were computed by the database" grep -qE 'rollup_recomputes=[1-9]' "$TMP/r2.log"

echo "== late rows into closed minutes, beside a redelivery"
python3 "$GEN" --gpus 5 --samples 20 --start $(( start + 5 )) --step 20 --prefix GPU-cur > "$TMP/late.txt"
produce "$t" "$TMP/late.txt"; produce "$t" "$TMP/a.txt"
echo "  injected: 100 late events in minutes already summarised, and the 200 first ones again"
start_sink r3 "$writer" "$t" "g-$t" --batch-timeout 0.3
check "300 rows" wait_rows "$writer" 300 60
for i in $(seq 1 80); do grep -qE 'duplicates=200 ' "$TMP/r3.log" && break; sleep 0.25; done
stop_sink r3
check "the late ones written, the redelivered ones counted as duplicates" grep -qE 'stopped after .* rows_written=100 .*duplicates=200 ' "$TMP/r3.log"
check "rows, samples and rollups exactly 300" exact "$owner" 300
check "no dead letters, no batch retried" bash -c "! grep -qE 'dead_letters=[1-9]|retrying a batch' '$TMP/r1.log' '$TMP/r2.log' '$TMP/r3.log'"
echo "  counted: $(grep -o 'stopped after .*' "$TMP/r3.log")"

psql -X -q "$ADMIN_PG" -c "DROP DATABASE IF EXISTS gh_cur7_$$" >/dev/null 2>&1
finish
