# Shared helpers for the shell integration tests (sourced). They need the real services that
# scripts/test.sh starts: GPUHEALTH_TEST_KAFKA and GPUHEALTH_TEST_PG. A missing service is a
# failure, never a skip.
set -u
BIN=${1:?usage: test.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GEN="$ROOT/tests/integration/gen_events.py"
# bound_port LOG [BEFORE]: the port a server started on 127.0.0.1:0 says it listens on
# shellcheck source=../lib/ports.sh
source "$ROOT/tests/lib/ports.sh"
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
  if [ "$got" != "$2 $2 $2" ]; then
    echo "  rows, distinct samples, rollup samples = $got; expected $2 each" >&2
    return 1
  fi
  rollups_match "$1"
}

# rollups_match CONNINFO: every gpu_metrics_1min row equals the same aggregate recomputed from
# gpu_metrics (min, max, count exactly; sums to 1e-9 relative), and no (GPU, minute) is missing.
ROLLUP_CHECK_SQL="WITH w AS (SELECT gpu_key, date_trunc('minute', time) AS minute, count(*) AS samples, min(gpu_temp) AS gpu_temp_min, max(gpu_temp) AS gpu_temp_max, sum(gpu_temp) AS gpu_temp_sum, count(gpu_temp) AS gpu_temp_n, min(memory_temp) AS memory_temp_min, max(memory_temp) AS memory_temp_max, sum(memory_temp) AS memory_temp_sum, count(memory_temp) AS memory_temp_n, min(power_usage) AS power_usage_min, max(power_usage) AS power_usage_max, sum(power_usage) AS power_usage_sum, count(power_usage) AS power_usage_n, min(gpu_util) AS gpu_util_min, max(gpu_util) AS gpu_util_max, sum(gpu_util) AS gpu_util_sum, count(gpu_util) AS gpu_util_n, min(mem_copy_util) AS mem_copy_util_min, max(mem_copy_util) AS mem_copy_util_max, sum(mem_copy_util) AS mem_copy_util_sum, count(mem_copy_util) AS mem_copy_util_n, min(fb_used) AS fb_used_min, max(fb_used) AS fb_used_max, sum(fb_used) AS fb_used_sum, count(fb_used) AS fb_used_n, min(sm_clock) AS sm_clock_min, max(sm_clock) AS sm_clock_max, sum(sm_clock) AS sm_clock_sum, count(sm_clock) AS sm_clock_n, min(gr_engine_active) AS gr_engine_active_min, max(gr_engine_active) AS gr_engine_active_max, sum(gr_engine_active) AS gr_engine_active_sum, count(gr_engine_active) AS gr_engine_active_n, min(tensor_active) AS tensor_active_min, max(tensor_active) AS tensor_active_max, sum(tensor_active) AS tensor_active_sum, count(tensor_active) AS tensor_active_n, min(total_energy) AS total_energy_min, max(total_energy) AS total_energy_max, min(pcie_replay) AS pcie_replay_min, max(pcie_replay) AS pcie_replay_max, min(ecc_sbe_volatile) AS ecc_sbe_volatile_min, max(ecc_sbe_volatile) AS ecc_sbe_volatile_max, min(ecc_dbe_volatile) AS ecc_dbe_volatile_min, max(ecc_dbe_volatile) AS ecc_dbe_volatile_max, min(ecc_sbe_aggregate) AS ecc_sbe_aggregate_min, max(ecc_sbe_aggregate) AS ecc_sbe_aggregate_max, min(ecc_dbe_aggregate) AS ecc_dbe_aggregate_min, max(ecc_dbe_aggregate) AS ecc_dbe_aggregate_max, min(correctable_remapped_rows) AS correctable_remapped_rows_min, max(correctable_remapped_rows) AS correctable_remapped_rows_max, min(uncorrectable_remapped_rows) AS uncorrectable_remapped_rows_min, max(uncorrectable_remapped_rows) AS uncorrectable_remapped_rows_max, min(power_violation) AS power_violation_min, max(power_violation) AS power_violation_max, min(thermal_violation) AS thermal_violation_min, max(thermal_violation) AS thermal_violation_max, min(nvlink_crc_flit_errors) AS nvlink_crc_flit_errors_min, max(nvlink_crc_flit_errors) AS nvlink_crc_flit_errors_max, min(nvlink_crc_data_errors) AS nvlink_crc_data_errors_min, max(nvlink_crc_data_errors) AS nvlink_crc_data_errors_max FROM gpu_metrics GROUP BY 1, 2) SELECT count(*) FROM w FULL JOIN gpu_metrics_1min r USING (gpu_key, minute) WHERE r.samples IS DISTINCT FROM w.samples OR r.gpu_temp_min IS DISTINCT FROM w.gpu_temp_min OR r.gpu_temp_max IS DISTINCT FROM w.gpu_temp_max OR r.gpu_temp_n IS DISTINCT FROM w.gpu_temp_n OR (r.gpu_temp_sum IS NULL) <> (w.gpu_temp_sum IS NULL) OR abs(r.gpu_temp_sum - w.gpu_temp_sum) > 1e-9 * greatest(1, abs(w.gpu_temp_sum)) OR r.memory_temp_min IS DISTINCT FROM w.memory_temp_min OR r.memory_temp_max IS DISTINCT FROM w.memory_temp_max OR r.memory_temp_n IS DISTINCT FROM w.memory_temp_n OR (r.memory_temp_sum IS NULL) <> (w.memory_temp_sum IS NULL) OR abs(r.memory_temp_sum - w.memory_temp_sum) > 1e-9 * greatest(1, abs(w.memory_temp_sum)) OR r.power_usage_min IS DISTINCT FROM w.power_usage_min OR r.power_usage_max IS DISTINCT FROM w.power_usage_max OR r.power_usage_n IS DISTINCT FROM w.power_usage_n OR (r.power_usage_sum IS NULL) <> (w.power_usage_sum IS NULL) OR abs(r.power_usage_sum - w.power_usage_sum) > 1e-9 * greatest(1, abs(w.power_usage_sum)) OR r.gpu_util_min IS DISTINCT FROM w.gpu_util_min OR r.gpu_util_max IS DISTINCT FROM w.gpu_util_max OR r.gpu_util_n IS DISTINCT FROM w.gpu_util_n OR (r.gpu_util_sum IS NULL) <> (w.gpu_util_sum IS NULL) OR abs(r.gpu_util_sum - w.gpu_util_sum) > 1e-9 * greatest(1, abs(w.gpu_util_sum)) OR r.mem_copy_util_min IS DISTINCT FROM w.mem_copy_util_min OR r.mem_copy_util_max IS DISTINCT FROM w.mem_copy_util_max OR r.mem_copy_util_n IS DISTINCT FROM w.mem_copy_util_n OR (r.mem_copy_util_sum IS NULL) <> (w.mem_copy_util_sum IS NULL) OR abs(r.mem_copy_util_sum - w.mem_copy_util_sum) > 1e-9 * greatest(1, abs(w.mem_copy_util_sum)) OR r.fb_used_min IS DISTINCT FROM w.fb_used_min OR r.fb_used_max IS DISTINCT FROM w.fb_used_max OR r.fb_used_n IS DISTINCT FROM w.fb_used_n OR (r.fb_used_sum IS NULL) <> (w.fb_used_sum IS NULL) OR abs(r.fb_used_sum - w.fb_used_sum) > 1e-9 * greatest(1, abs(w.fb_used_sum)) OR r.sm_clock_min IS DISTINCT FROM w.sm_clock_min OR r.sm_clock_max IS DISTINCT FROM w.sm_clock_max OR r.sm_clock_n IS DISTINCT FROM w.sm_clock_n OR (r.sm_clock_sum IS NULL) <> (w.sm_clock_sum IS NULL) OR abs(r.sm_clock_sum - w.sm_clock_sum) > 1e-9 * greatest(1, abs(w.sm_clock_sum)) OR r.gr_engine_active_min IS DISTINCT FROM w.gr_engine_active_min OR r.gr_engine_active_max IS DISTINCT FROM w.gr_engine_active_max OR r.gr_engine_active_n IS DISTINCT FROM w.gr_engine_active_n OR (r.gr_engine_active_sum IS NULL) <> (w.gr_engine_active_sum IS NULL) OR abs(r.gr_engine_active_sum - w.gr_engine_active_sum) > 1e-9 * greatest(1, abs(w.gr_engine_active_sum)) OR r.tensor_active_min IS DISTINCT FROM w.tensor_active_min OR r.tensor_active_max IS DISTINCT FROM w.tensor_active_max OR r.tensor_active_n IS DISTINCT FROM w.tensor_active_n OR (r.tensor_active_sum IS NULL) <> (w.tensor_active_sum IS NULL) OR abs(r.tensor_active_sum - w.tensor_active_sum) > 1e-9 * greatest(1, abs(w.tensor_active_sum)) OR r.total_energy_min IS DISTINCT FROM w.total_energy_min OR r.total_energy_max IS DISTINCT FROM w.total_energy_max OR r.pcie_replay_min IS DISTINCT FROM w.pcie_replay_min OR r.pcie_replay_max IS DISTINCT FROM w.pcie_replay_max OR r.ecc_sbe_volatile_min IS DISTINCT FROM w.ecc_sbe_volatile_min OR r.ecc_sbe_volatile_max IS DISTINCT FROM w.ecc_sbe_volatile_max OR r.ecc_dbe_volatile_min IS DISTINCT FROM w.ecc_dbe_volatile_min OR r.ecc_dbe_volatile_max IS DISTINCT FROM w.ecc_dbe_volatile_max OR r.ecc_sbe_aggregate_min IS DISTINCT FROM w.ecc_sbe_aggregate_min OR r.ecc_sbe_aggregate_max IS DISTINCT FROM w.ecc_sbe_aggregate_max OR r.ecc_dbe_aggregate_min IS DISTINCT FROM w.ecc_dbe_aggregate_min OR r.ecc_dbe_aggregate_max IS DISTINCT FROM w.ecc_dbe_aggregate_max OR r.correctable_remapped_rows_min IS DISTINCT FROM w.correctable_remapped_rows_min OR r.correctable_remapped_rows_max IS DISTINCT FROM w.correctable_remapped_rows_max OR r.uncorrectable_remapped_rows_min IS DISTINCT FROM w.uncorrectable_remapped_rows_min OR r.uncorrectable_remapped_rows_max IS DISTINCT FROM w.uncorrectable_remapped_rows_max OR r.power_violation_min IS DISTINCT FROM w.power_violation_min OR r.power_violation_max IS DISTINCT FROM w.power_violation_max OR r.thermal_violation_min IS DISTINCT FROM w.thermal_violation_min OR r.thermal_violation_max IS DISTINCT FROM w.thermal_violation_max OR r.nvlink_crc_flit_errors_min IS DISTINCT FROM w.nvlink_crc_flit_errors_min OR r.nvlink_crc_flit_errors_max IS DISTINCT FROM w.nvlink_crc_flit_errors_max OR r.nvlink_crc_data_errors_min IS DISTINCT FROM w.nvlink_crc_data_errors_min OR r.nvlink_crc_data_errors_max IS DISTINCT FROM w.nvlink_crc_data_errors_max"
rollups_match() {
  local bad
  bad=$(sql "$1" "$ROLLUP_CHECK_SQL")
  if [ "$bad" = 0 ]; then return 0; fi
  echo "  $bad (GPU, minute) rollups differ from the rows they summarise" >&2
  return 1
}

# rollups_below_mark CONNINFO: the promise of the rollup mark (schema/006) at this moment: every
# row before the mark is counted in gpu_metrics_1min exactly (as in rollups_match) and nothing at
# or after it is. Holds while sinks run, between their transactions.
rollups_below_mark() {
  local bad
  bad=$(sql "$1" "${ROLLUP_CHECK_SQL/FROM gpu_metrics GROUP BY 1, 2)/FROM gpu_metrics WHERE time < (SELECT through FROM gpuhealth_rollup_mark) GROUP BY 1, 2)}")
  if [ "$bad" = 0 ]; then return 0; fi
  echo "  $bad (GPU, minute) rollups differ from the rows before the mark $(sql "$1" "SELECT through FROM gpuhealth_rollup_mark")" >&2
  return 1
}

stop_sink() { # stop_sink NAME: SIGTERM and wait
  local pid; eval "pid=\$PID_$1"
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
