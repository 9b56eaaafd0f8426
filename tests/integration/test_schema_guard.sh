#!/usr/bin/env bash
# The upkeep functions the writer role may call (SECURITY DEFINER, they run as the schema
# owner) against the real PostgreSQL, logged in AS a writer: hostile arguments (a time 100
# years ahead, huge and reversed ranges, infinities, NULL) are clamped to the window the
# database computes from now() and gpuhealth_settings, so nothing within the retention is
# dropped and no partition outside [now() - retention, now() + partitions_ahead_days] is
# created; bad settings are errors naming the setting. With TimescaleDB (when the server has
# it; TimescaleDB's own policies then keep gpu_metrics and the rollups) the same calls create
# nothing and delete only pipeline_stats rows past the retention. Needs only PostgreSQL
# (GPUHEALTH_TEST_PG, which scripts/test.sh exports); a missing server is a failure.
set -u
BIN=${1:?usage: test_schema_guard.sh PATH_TO_GPUHEALTH}
passes=0 fails=0
die() { echo "FATAL: $*" >&2; echo "$passes passed, $((fails+1)) failed"; exit 1; }
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { fails=$((fails+1)); echo "FAIL: $*" >&2; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
[ -n "${GPUHEALTH_TEST_PG:-}" ] || die "GPUHEALTH_TEST_PG is not set: run the README's test command (scripts/test.sh), which starts PostgreSQL"
psql -X -q "$GPUHEALTH_TEST_PG" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at '$GPUHEALTH_TEST_PG' is unreachable (start it with scripts/test.sh)"
sql() { psql -X -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }
# sql_err CONNINFO SQL: runs SQL that must fail; prints the error.
both_name() { grep -q -- "$1" <<<"$2" && grep -q -- "$1" <<<"$3"; }
sql_err() { if psql -X -At -v ON_ERROR_STOP=1 "$1" -c "$2" 2>&1; then return 1; fi; }

db=gh_guard_$$
psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1 || die "cannot create database $db"
trap 'psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
owner="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$db}"
mig=$("$BIN" db migrate --db "$owner" 2>&1) || die "gpuhealth db migrate failed on $db: $mig"
storage=$(sql "$owner" "SELECT gpuhealth_storage()")
pt() { [ "$storage" = partitioned ]; } # plain PostgreSQL: the functions under test keep partitions
echo "  storage: $storage"
role=gh_guard_writer_it
sql "$owner" "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN IN ROLE gpuhealth_writer; END IF; END \$\$" >/dev/null || die "cannot create the writer login role"
writer="${owner/user=postgres/user=$role}"
[ "$(sql "$writer" "SELECT current_user")" = "$role" ] || die "cannot log in as $role"

# The owner lays out what the writer must not be able to destroy: the days within the
# retention (7 days) hold a row each, an expired day (10 days ago) has a partition, rollups
# and pipeline_stats rows within their retentions exist.
day() { sql "$owner" "SELECT to_char((now() + interval '$1') AT TIME ZONE 'UTC', 'YYYYMMDD')"; }
mkpart() { # mkpart OFFSET: the owner's own DDL, outside the functions under test
  local d; d=$(day "$1")
  sql "$owner" "CREATE TABLE gpu_metrics_p$d PARTITION OF gpu_metrics FOR VALUES FROM ('${d}T00:00:00Z') TO (('${d}T00:00:00Z'::timestamptz + interval '1 day'))" >/dev/null
}
if pt; then for off in '-10 days' '-6 days' '-1 day' '0 days'; do mkpart "$off"; done; fi
sql "$owner" "INSERT INTO gpu_metrics (time, gpu_key, uuid) VALUES (now() - interval '6 days', 'GPU-a', 'GPU-a'), (now() - interval '1 day', 'GPU-a', 'GPU-a'), (now(), 'GPU-a', 'GPU-a')" >/dev/null
sql "$owner" "INSERT INTO gpu_metrics_1min (gpu_key, minute, samples) VALUES ('GPU-a', date_trunc('minute', now() - interval '30 days'), 1)" >/dev/null
# expired raw rows and rollups only where these functions expire them (TimescaleDB's policy
# jobs would delete them at a moment of their own)
if pt; then
  sql "$owner" "INSERT INTO gpu_metrics (time, gpu_key, uuid) VALUES (now() - interval '10 days', 'GPU-a', 'GPU-a')" >/dev/null
  sql "$owner" "INSERT INTO gpu_metrics_1min (gpu_key, minute, samples) VALUES ('GPU-a', date_trunc('minute', now() - interval '100 days'), 1)" >/dev/null
fi
sql "$owner" "INSERT INTO pipeline_stats (time, service, instance, consumed, rows_written, dead_letters, db_errors) VALUES (now() - interval '1 hour', 'sink', 'x:1', 1, 1, 0, 0), (now() - interval '8 days', 'sink', 'x:1', 1, 1, 0, 0)" >/dev/null
# dead letters (kept for 'retention', 7 days) and alerts (the cleared ones kept for
# health_retention, 30 days; an open one for ever): one of each past its time, the rest kept
sql "$owner" "INSERT INTO dead_letters (failed_at, service, reason, source_topic, source_partition, source_offset, original_size, payload_fnv1a64, payload, payload_cut) VALUES (now() - interval '8 days', 'sink', 'old', 't', 0, 1, 1, '0', 'x', false), (now() - interval '1 hour', 'sink', 'new', 't', 0, 2, 1, '0', 'x', false)" >/dev/null
sql "$owner" "INSERT INTO alerts (gpu_key, kind, severity, message, raised_at, cleared_at) VALUES ('GPU-a', 'old-cleared', 'warn', 'm', now() - interval '40 days', now() - interval '39 days'), ('GPU-a', 'old-open', 'fail', 'm', now() - interval '40 days', NULL), ('GPU-a', 'cleared-lately', 'warn', 'm', now() - interval '40 days', now() - interval '2 days'), ('GPU-a', 'new-cleared', 'warn', 'm', now() - interval '1 day', now())" >/dev/null
hist() { sql "$owner" "SELECT (SELECT string_agg(reason, ',' ORDER BY reason) FROM dead_letters) || ' ' || (SELECT string_agg(kind, ',' ORDER BY kind) FROM alerts)"; }
keep_hist="new cleared-lately,new-cleared,old-open"
parts() { sql "$owner" "SELECT count(*) FROM pg_inherits WHERE inhparent = 'gpu_metrics'::regclass"; }
rows() { sql "$owner" "SELECT (SELECT count(*) FROM gpu_metrics) || ' ' || (SELECT count(*) FROM gpu_metrics_1min) || ' ' || (SELECT count(*) FROM pipeline_stats)"; }
echo "  before: $(parts) partitions (or chunks); rows in gpu_metrics, gpu_metrics_1min, pipeline_stats: $(rows)"
# What must remain: the 3 raw rows within the retention (and, on plain PostgreSQL, their 3
# partitions; on TimescaleDB every chunk), the rollup within rollup_retention, the recent
# pipeline_stats row.
keep_rows="3 1 1"
if pt; then dropped=1 keep_parts=3; else dropped=0 keep_parts=$(parts); fi

echo "== gpuhealth_drop_expired as the writer: a caller's time can only drop less"
out=$(sql "$writer" "SELECT gpuhealth_drop_expired(now() + interval '100 years')" 2>&1)
check "a time 100 years ahead drops only what expired (returned '$out', want $dropped)" test "$out" = "$dropped"
check "... every row within the retention is kept (raw, rollups, stats: want '$keep_rows', got '$(rows)')" test "$(rows)" = "$keep_rows"
check "... the partitions of the last 7 days are all there ($(parts), want $keep_parts)" test "$(parts)" = "$keep_parts"
check "... the dead letters past 'retention' and the alerts cleared before health_retention are deleted; open and newer ones kept ($(hist))" test "$(hist)" = "$keep_hist"
for arg in "'infinity'" NULL "now() + interval '8 days'" "'294276-12-31 23:59:59+00'"; do
  out=$(sql "$writer" "SELECT gpuhealth_drop_expired($arg)" 2>&1)
  check "gpuhealth_drop_expired($arg) drops nothing more (returned '$out'; rows $(rows); $(parts) partitions)" \
    test "$out/$(rows)/$(parts)" = "0/$keep_rows/$keep_parts"
done
out=$(sql "$writer" "SELECT gpuhealth_drop_expired(now() - interval '3 days')" 2>&1)
check "an earlier time drops less: now() - 3 days keeps the day 6 days old (returned '$out')" test "$out/$(parts)" = "0/$keep_parts"
out=$(sql "$writer" "SELECT gpuhealth_drop_expired('-infinity')" 2>&1)
check "'-infinity' drops nothing (returned '$out')" test "$out/$(rows)/$(parts)/$(hist)" = "0/$keep_rows/$keep_parts/$keep_hist"
e=$(sql_err "$writer" "SELECT gpuhealth_drop_expired_metrics(now())") || e="(no error)"
check "the writer cannot call the inner function without the clamp of the outer one ($(echo "$e" | head -1))" grep -q "permission denied" <<<"$e"
check "the sink's maintenance call works as the writer" \
  test "$(sql "$writer" "SELECT gpuhealth_ensure_partitions(now() - interval '1 day', now() + (SELECT value::int FROM gpuhealth_settings WHERE key = 'partitions_ahead_days') * interval '1 day'), gpuhealth_drop_expired()" 2>&1)" = "$(pt && echo 2 || echo 0)|0"

echo "== gpuhealth_ensure_partitions as the writer: at most the window [now() - retention, now() + partitions_ahead_days]"
window_ok() { # every partition's day lies in the window: 7 days back .. 2 days ahead
  test "$(sql "$owner" "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'gpu_metrics'::regclass AND (to_date(substr(c.relname, 14), 'YYYYMMDD') < ((now() - interval '7 days') AT TIME ZONE 'UTC')::date OR to_date(substr(c.relname, 14), 'YYYYMMDD') > ((now() + interval '2 days') AT TIME ZONE 'UTC')::date)")" = 0
}
t0=$(date +%s)
out=$(sql "$writer" "SELECT gpuhealth_ensure_partitions(now() - interval '1 year', now() + interval '1 year')" 2>&1)
if pt; then all_parts=10 made=5; else all_parts=$keep_parts made=0; fi
check "a range of 2 years creates only the window's missing days (returned '$out', want $made; $(( $(date +%s) - t0 )) s)" test "$out" = "$made"
check "... $all_parts partitions in all ($(parts))" test "$(parts)" = "$all_parts"
pt && check "... none outside the window" window_ok
for args in "now() + interval '100 years', now() + interval '101 years'" "'-infinity', 'infinity'" "NULL, NULL" \
            "now() - interval '100 years', now() - interval '99 years'" "now() + interval '3 days', now() + interval '1000 days'" \
            "now() + interval '1 day', now() - interval '1 day'"; do
  out=$(sql "$writer" "SELECT gpuhealth_ensure_partitions($args)" 2>&1)
  check "gpuhealth_ensure_partitions($args) creates nothing new (returned '$out'; $(parts) partitions)" test "$out/$(parts)" = "0/$all_parts"
done
pt && check "still none outside the window" window_ok

echo "== gpuhealth_health_upkeep as the writer (schema 012): a caller's time can only drop less"
hrows() { sql "$owner" "SELECT count(*) FROM gpu_health_scores"; }
hparts() { sql "$owner" "SELECT count(*) FROM pg_inherits WHERE inhparent = 'gpu_health_scores'::regclass"; }
sql "$writer" "SELECT gpuhealth_health_upkeep()" >/dev/null
sql "$owner" "INSERT INTO gpu_health_scores (time, gpu_key, score, status) VALUES (now() - interval '20 days', 'GPU-a', 90, 'pass'), (now() - interval '1 day', 'GPU-a', 90, 'pass'), (now(), 'GPU-a', 90, 'pass')" >/dev/null
hp0=$(hparts)
for arg in "now() + interval '100 years'" "'infinity'" "'294276-12-31 23:59:59+00'" NULL; do
  out=$(sql "$writer" "SELECT gpuhealth_health_upkeep($arg)" 2>&1)
  check "gpuhealth_health_upkeep($arg) keeps the 3 health rows within health_retention (returned '$out'; rows $(hrows))" test "$(hrows)" = 3
done
out=$(sql "$writer" "SELECT gpuhealth_health_upkeep(now() - interval '100 years')" 2>&1)
check "gpuhealth_health_upkeep(100 years back) makes no partition outside the retention (returned '$out'; $(hparts) partitions, $hp0 before)" \
  test "$(sql "$owner" "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'gpu_health_scores'::regclass AND c.relname ~ '_p[0-9]{8}\$' AND to_date(right(c.relname, 8), 'YYYYMMDD') < ((now() - interval '32 days') AT TIME ZONE 'UTC')::date")" = 0

echo "== the settings the window comes from: the writer cannot change them, bad ones are errors"
check "the writer cannot UPDATE gpuhealth_settings (retention)" \
  bash -c "psql -X -At -v ON_ERROR_STOP=1 '$writer' -c \"UPDATE gpuhealth_settings SET value = '1 second' WHERE key = 'retention'\" 2>&1 | grep -q 'permission denied'"
pt && check "the writer cannot DROP a partition itself" \
  bash -c "psql -X -At -v ON_ERROR_STOP=1 '$writer' -c 'DROP TABLE gpu_metrics_p$(day '0 days')' 2>&1 | grep -q 'must be owner'"
for bad in "retention|-100 years" "retention|0" "retention|soon" "partitions_ahead_days|100000" "partitions_ahead_days|-1"; do
  key=${bad%%|*} val=${bad#*|}
  sql "$owner" "UPDATE gpuhealth_settings SET value = '$val' WHERE key = '$key'" >/dev/null
  e1=$(sql_err "$writer" "SELECT gpuhealth_drop_expired()") || e1="(no error)"
  e2=$(sql_err "$writer" "SELECT gpuhealth_ensure_partitions(now() - interval '100 years', now() + interval '100 years')") || e2="(no error)"
  pt || e2=$e1 # with TimescaleDB gpuhealth_ensure_partitions() does nothing, settings unread
  check "$key = '$val': both functions fail naming $key ($(echo "$e1" | head -1))" both_name "$key" "$e1" "$e2"
  check "... and changed nothing (rows $(rows); $(parts) partitions)" test "$(rows)/$(parts)" = "$keep_rows/$all_parts"
  sql "$owner" "UPDATE gpuhealth_settings SET value = CASE key WHEN 'retention' THEN '7 days' ELSE '2' END WHERE key = '$key'" >/dev/null
done
sql "$owner" "DELETE FROM gpuhealth_settings WHERE key = 'retention'" >/dev/null
if pt; then
  e2=$(sql_err "$writer" "SELECT gpuhealth_ensure_partitions(now() - interval '100 years', now())") || e2="(no error)"
else
  e2=$(sql_err "$writer" "SELECT gpuhealth_drop_expired(now() + interval '100 years')") || e2="(no error)"
fi
check "a missing retention is an error, not an unbounded window ($(echo "$e2" | head -1))" both_name 'retention is missing' "$e2" "$e2"
check "... and changed nothing ($(parts) partitions)" test "$(rows)/$(parts)" = "$keep_rows/$all_parts"

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
