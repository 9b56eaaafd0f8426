#!/usr/bin/env bash
# docker/initdb/10-gpuhealth-roles.sh, the script TimescaleDB's container runs at its first
# start, against the real PostgreSQL: it creates the login roles gpuhealth_sink (in
# gpuhealth_writer) and gpuhealth_api (in gpuhealth_reader) with passwords from the environment
# (quotes included), runs twice without error, and `gpuhealth db migrate` works after it.
set -u
BIN=${1:?usage: test_docker_initdb.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
die() { echo "FATAL: $*" >&2; exit 1; }
fails=0
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
[ -n "${GPUHEALTH_TEST_PG:-}" ] || die "GPUHEALTH_TEST_PG is not set: run scripts/test.sh (or source scripts/services.sh; pg_start)"
psql -X -q "$GPUHEALTH_TEST_PG" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at '$GPUHEALTH_TEST_PG' is unreachable"
db="gh_initdb_$$"
trap 'psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
psql -X -q "$GPUHEALTH_TEST_PG" -c "CREATE DATABASE $db" >/dev/null || die "cannot create $db"
ci="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$db}"
# the container's environment: libpq finds the server through PG* like the entrypoint's socket
host=$(sed -E 's/.*host=([^ ]+).*/\1/' <<<"$GPUHEALTH_TEST_PG"); port=$(sed -E 's/.*port=([^ ]+).*/\1/' <<<"$GPUHEALTH_TEST_PG")
for run in 1 2; do
  out=$(PGHOST=$host PGPORT=$port POSTGRES_USER=postgres POSTGRES_DB=$db \
        GPUHEALTH_WRITER_PASSWORD="wr'it er" GPUHEALTH_READER_PASSWORD='re$ad' \
        bash "$ROOT/docker/initdb/10-gpuhealth-roles.sh" 2>&1) || bad "run $run of the init script failed: $out"
done
"$BIN" db migrate --db "$ci" >/dev/null 2>&1 || bad "gpuhealth db migrate fails after the init script"
got=$(psql -X -At "$ci" -c "SELECT r.rolname || ':' || r.rolcanlogin || ':' || g.rolname FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid JOIN pg_roles g ON g.oid = m.roleid WHERE r.rolname IN ('gpuhealth_sink', 'gpuhealth_api') ORDER BY 1")
[ "$got" = $'gpuhealth_api:true:gpuhealth_reader\ngpuhealth_sink:true:gpuhealth_writer' ] || bad "login roles and memberships: $got"
pw=$(psql -X -At "$ci" -c "SELECT count(*) FROM pg_authid WHERE rolname IN ('gpuhealth_sink', 'gpuhealth_api') AND rolpassword IS NOT NULL")
[ "$pw" = 2 ] || bad "the login roles have no passwords ($pw)"
# the reader can read the schema and cannot write it
psql -X -q -v ON_ERROR_STOP=1 "${ci/user=postgres/user=gpuhealth_api}" -c "SELECT count(*) FROM v_fleet_summary" >/dev/null 2>&1 || bad "gpuhealth_api cannot read v_fleet_summary"
psql -X -q -v ON_ERROR_STOP=1 "${ci/user=postgres/user=gpuhealth_api}" -c "DELETE FROM gpus" >/dev/null 2>&1 && bad "gpuhealth_api can delete from gpus"
psql -X -q -v ON_ERROR_STOP=1 "${ci/user=postgres/user=gpuhealth_sink}" -c "SELECT gpuhealth_create_stage()" >/dev/null 2>&1 || bad "gpuhealth_sink cannot use the sink's functions"
[ $fails = 0 ] && echo "ok: init script creates the login roles (twice, quoted passwords), migrate follows, rights hold"
[ $fails = 0 ]
