#!/usr/bin/env bash
# Every Grafana panel's and variable's SQL (docker/grafana/dashboards/*.json) runs without error
# against the real PostgreSQL, after `gpuhealth db migrate` and the seed data of api_seed.sql,
# as a login role in gpuhealth_reader (the role Grafana's data source uses), and returns rows.
# The JSON must also be what make_dashboards.py writes. Needs GPUHEALTH_TEST_PG only.
set -u
BIN=${1:?usage: test_grafana_sql.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "FATAL: $*" >&2; exit 1; }
[ -n "${GPUHEALTH_TEST_PG:-}" ] || die "GPUHEALTH_TEST_PG is not set: run scripts/test.sh (or source scripts/services.sh; pg_start)"
psql -X -q "$GPUHEALTH_TEST_PG" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at '$GPUHEALTH_TEST_PG' is unreachable"
TMP=$(mktemp -d /tmp/gh-grafana.XXXXXX)
db="gh_grafana_$$"
cleanup() { psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1; rm -rf "$TMP"; }
trap cleanup EXIT

# the committed dashboards are the generator's output
cp -r "$ROOT/docker/grafana" "$TMP/grafana"
python3 "$TMP/grafana/make_dashboards.py" || die "make_dashboards.py failed"
for f in "$ROOT"/docker/grafana/dashboards/*.json; do
  cmp -s "$f" "$TMP/grafana/dashboards/$(basename "$f")" || die "$(basename "$f") differs from what docker/grafana/make_dashboards.py writes: run it and commit the result"
done
[ "$(ls "$ROOT"/docker/grafana/dashboards/*.json | wc -l)" = 5 ] || die "expected the 5 dashboards fleet, gpu, health, pipeline, prometheus-health"
# the SQL dashboards; prometheus-health.json (PromQL) is run by test_prometheus_health.sh
sql_dashboards=("$ROOT"/docker/grafana/dashboards/{fleet,gpu,health,pipeline}.json)

psql -X -q "$GPUHEALTH_TEST_PG" -c "CREATE DATABASE $db" >/dev/null || die "cannot create database $db"
owner="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$db}"
"$BIN" db migrate --db "$owner" >"$TMP/migrate.log" 2>&1 || die "migrate failed: $(cat "$TMP/migrate.log")"
psql -X -q -v ON_ERROR_STOP=1 "$owner" -f "$ROOT/tests/integration/api_seed.sql" >"$TMP/seed.log" 2>&1 || die "seeding failed: $(cat "$TMP/seed.log")"
# issue #24: GPU B held by pod p-2 of namespace ns-b now (api_seed.sql: GPU A by none now), so
# the fleet dashboard's namespace variable has a value and its filter two cases
psql -X -q -v ON_ERROR_STOP=1 "$owner" -c "INSERT INTO gpu_workloads (gpu_key, namespace, pod, container, first_seen, last_seen) VALUES ('GPU-bbbb0000-0000-0000-0000-000000000000', 'ns-b', 'p-2', 'c', now() - interval '1 hour', now())" >/dev/null || die "cannot seed gpu_workloads"
psql -X -q -v ON_ERROR_STOP=1 "$owner" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gh_grafana_it') THEN CREATE ROLE gh_grafana_it LOGIN IN ROLE gpuhealth_reader; END IF; END \$\$" >/dev/null || die "cannot create the reader login role"
reader="${owner/user=postgres/user=gh_grafana_it}"

python3 "$ROOT/tests/integration/grafana_sql.py" "$reader" "${sql_dashboards[@]}"
