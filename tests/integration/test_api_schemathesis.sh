#!/usr/bin/env bash
# Property-based test of gpuhealth api against its own contract: schemathesis (from PyPI)
# generates requests from docs/openapi.yaml for every operation (its examples, boundary and
# invalid values, random ones, and chains of operations; bounded: ST_MAX_EXAMPLES per operation,
# a fixed seed ST_SEED) and runs them against a live API over a migrated database seeded
# with api_seed.sql, read through a gpuhealth_reader login. Any 5xx, any answer that does not
# match its documented schema, any undocumented status code or content type is a failure.
# Needs GPUHEALTH_TEST_PG only (no Kafka). schemathesis lives in a virtual environment under
# ~/.cache/gpuhealth/ (PEP 668: never the system Python) that its first run makes with
# scripts/python-venv.sh (python3-venv from scripts/install-deps.sh --test, and PyPI); later
# runs reuse it.
set -u
BIN=${1:?usage: test_api_schemathesis.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/ports.sh
source "$ROOT/tests/lib/ports.sh"
ST_VERSION=4.32.5
ST_MAX_EXAMPLES=${ST_MAX_EXAMPLES:-200}
ST_SEED=${ST_SEED:-20}
CACHE=${GPUHEALTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpuhealth}
VENV="$CACHE/schemathesis-$ST_VERSION"
TMP=$(mktemp -d /tmp/gh-api-st.XXXXXX)
PIDS=()
die() { echo "FATAL: $*" >&2; exit 1; }
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

[ -n "${GPUHEALTH_TEST_PG:-}" ] || die "GPUHEALTH_TEST_PG is not set: run scripts/test.sh (or source scripts/services.sh; pg_start)"
psql -X -q "$GPUHEALTH_TEST_PG" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at '$GPUHEALTH_TEST_PG' is unreachable"

"$ROOT/scripts/python-venv.sh" "$VENV" "schemathesis==$ST_VERSION" >"$TMP/venv.log" 2>&1 \
  || die "cannot make the schemathesis $ST_VERSION environment in $VENV: $(tail -5 "$TMP/venv.log")"
ST="$VENV/bin/schemathesis"

db="gh_api_st_$$"
psql -X -q "$GPUHEALTH_TEST_PG" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || die "cannot create database $db"
trap 'cleanup; psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1' EXIT
owner="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$db}"
"$BIN" db migrate --db "$owner" >"$TMP/migrate.log" 2>&1 || die "migrate failed: $(cat "$TMP/migrate.log")"
psql -X -q -v ON_ERROR_STOP=1 "$owner" -f "$ROOT/tests/integration/api_seed.sql" >"$TMP/seed.log" 2>&1 || die "seeding failed: $(cat "$TMP/seed.log")"
psql -X -q -v ON_ERROR_STOP=1 "$owner" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gh_reader_it') THEN CREATE ROLE gh_reader_it LOGIN IN ROLE gpuhealth_reader; END IF; END \$\$" >/dev/null || die "cannot create the reader login role"
reader="${owner/user=postgres/user=gh_reader_it}"

# the API listens on a port the kernel picks and says which (bound_port): a port picked here
# and freed before the API binds it can be taken meanwhile by a test running beside this one
"$BIN" api --db "$reader" --listen 127.0.0.1:0 >"$TMP/api.log" 2>&1 &
PIDS+=($!)
PORT=$(bound_port "$TMP/api.log") || die "gpuhealth api did not start: $(tail -5 "$TMP/api.log")"
for i in $(seq 1 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
curl -s -f -o /dev/null "http://127.0.0.1:$PORT/healthz" || die "gpuhealth api did not answer /healthz: $(tail -5 "$TMP/api.log")"

# run from the scratch directory: hypothesis writes nothing into the source tree
(cd "$TMP" && timeout 300 "$ST" run "$ROOT/docs/openapi.yaml" --url "http://127.0.0.1:$PORT" \
   --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
   --max-examples "$ST_MAX_EXAMPLES" --seed "$ST_SEED" --generation-database none \
   --request-timeout 10 --workers 2 --no-color)
rc=$?
case $rc in
  0) echo "ok: schemathesis $ST_VERSION, $ST_MAX_EXAMPLES examples per operation (seed $ST_SEED): no 5xx, every answer as documented" ;;
  124) echo "FAIL: schemathesis ran past 300 s" ;;
  *) echo "FAIL: schemathesis found answers that break docs/openapi.yaml (above; rerun with ST_SEED=$ST_SEED)"; echo "--- api.log"; tail -20 "$TMP/api.log" ;;
esac
grep -q ' 5xx=[1-9]' "$TMP/api.log" && echo "note: the API counted 5xx answers"
exit $rc
