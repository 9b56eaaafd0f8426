# Shared helpers for the shell integration tests (sourced). They need the real services that
# scripts/test.sh starts: GPUHEALTH_TEST_KAFKA and GPUHEALTH_TEST_PG. A missing service is a
# failure, never a skip.
set -u
BIN=${1:?usage: test.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GEN="$ROOT/tests/integration/gen_events.py"
TMP=$(mktemp -d /tmp/gh-it.XXXXXX)
PIDS=()
passes=0 fails=0

cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$fails" = 0 ]; then rm -rf "$TMP"; else echo "logs kept in $TMP" >&2; fi
}
trap cleanup EXIT

die() { echo "FATAL: $*" >&2; echo "$passes passed, $((fails+1)) failed"; exit 1; }
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { fails=$((fails+1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
finish() { echo "$passes passed, $fails failed"; [ "$fails" = 0 ]; }

[ -n "${GPUHEALTH_TEST_KAFKA:-}" ] || die "GPUHEALTH_TEST_KAFKA is not set: run the README's test command (scripts/test.sh), which starts a real Kafka"
[ -n "${GPUHEALTH_TEST_PG:-}" ] || die "GPUHEALTH_TEST_PG is not set: run the README's test command (scripts/test.sh), which starts PostgreSQL"
KAFKA=$GPUHEALTH_TEST_KAFKA
kcat -b "$KAFKA" -L -m 5 >/dev/null 2>&1 || die "Kafka at $KAFKA does not answer a metadata request (start it with scripts/test.sh)"
psql -X -q "$GPUHEALTH_TEST_PG" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at '$GPUHEALTH_TEST_PG' is unreachable (start it with scripts/test.sh)"

UNIQ="$$-$(date +%s)"
ADMIN_PG=$GPUHEALTH_TEST_PG

# new_db NAME: creates a database, migrates it as the owner; prints its owner conninfo.
new_db() {
  psql -X -q "$ADMIN_PG" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null 2>&1 || die "cannot create database $1"
  local ci="${ADMIN_PG/dbname=gpuhealth_test/dbname=$1}"
  "$BIN" db migrate --db "$ci" >"$TMP/migrate-$1.log" 2>&1 || die "migrate $1 failed: $(cat "$TMP/migrate-$1.log")"
  echo "$ci"
}

# writer_ci OWNER_CI: a login role in gpuhealth_writer; prints its conninfo.
writer_ci() {
  local role="gh_writer_it"
  psql -X -q "$1" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN IN ROLE gpuhealth_writer; END IF; END \$\$" >/dev/null || die "cannot create the writer login role"
  echo "${1/user=postgres/user=$role}"
}

sql() { psql -X -At -v ON_ERROR_STOP=1 "$1" -c "$2"; }

# produce TOPIC FILE: keyed lines KEY|JSON
produce() { kcat -b "$KAFKA" -P -t "$1" -K'|' -l "$2" || die "kcat could not produce to $1"; }

# start_sink NAME CONNINFO TOPIC GROUP [extra args]: runs the sink in the background.
start_sink() {
  local name=$1 ci=$2 topic=$3 group=$4; shift 4
  "$BIN" sink --brokers "$KAFKA" --topic "$topic" --group "$group" --db "$ci" \
    --dlq-topic "$topic-dlq" --stats-interval 1 -X session.timeout.ms=6000 \
    -X topic.metadata.refresh.interval.ms=1000 "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}

# wait_rows CONNINFO N TIMEOUT_S: waits until gpu_metrics holds N rows.
wait_rows() {
  local n=0 i
  for i in $(seq 1 $(( $3 * 4 ))); do
    n=$(sql "$1" "SELECT count(*) FROM gpu_metrics" 2>/dev/null || echo -1)
    [ "$n" = "$2" ] && return 0
    sleep 0.25
  done
  echo "  gpu_metrics has $n rows, expected $2" >&2
  return 1
}

# exact CONNINFO N: N rows, N distinct (gpu_key, time), and the rollups count the same N.
exact() {
  local got
  got=$(sql "$1" "SELECT count(*) || ' ' || count(DISTINCT (gpu_key, time)) || ' ' || (SELECT coalesce(sum(samples),0) FROM gpu_metrics_1min) FROM gpu_metrics")
  if [ "$got" = "$2 $2 $2" ]; then return 0; fi
  echo "  rows, distinct samples, rollup samples = $got; expected $2 each" >&2
  return 1
}

stop_sink() { # stop_sink NAME: SIGTERM and wait
  local pid; eval "pid=\$PID_$1"
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
