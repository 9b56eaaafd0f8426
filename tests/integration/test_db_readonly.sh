#!/usr/bin/env bash
# The sink and the scorer on a multi-host --db (host=A,B port=PA,PB
# target_session_attrs=read-write) when the server they write to turns read-only under them:
# A, a server of this test's own, is fenced mid-stream (ALTER SYSTEM SET
# default_transaction_read_only = on, reloaded: what its open sessions see at once, as after a
# demotion), so their next statement fails with SQLSTATE 25006 read_only_sql_transaction. They
# must take that as "connect again" (libpq then skips A and lands on B, the suite's server), not
# as bad data (no dead letter) and not as a statement to retry on the same connection forever
# (a stall): every event ends up once on A or B. Also: --db naming only a read-only server is
# reported as read-only, not as a schema to migrate. About 15 s.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/services.sh" # GH_SVC_DIR of scripts/test.sh: a directory the server's user can reach
PD=$(mktemp -d "$GH_SVC_DIR/readonly.XXXXXX")
chmod 755 "$PD"
trap 'pg_server_stop "$PD/a" immediate 2>/dev/null; rm -rf "$PD"; cleanup' EXIT

name=gh_ro_$$
ci_b=$(new_db "$name") # B: the suite's server
pb=$(echo "$ci_b" | sed -n 's/.*port=\([0-9]*\).*/\1/p')
pa=$(pg_server_init "$PD/a") || die "cannot start a second PostgreSQL in $PD/a"
ci_a=$(pg_server_ci "$PD/a" "$name")
psql -X -q "$(pg_server_ci "$PD/a")" -c "CREATE DATABASE $name" >/dev/null || die "cannot create $name on A"
"$BIN" db migrate --db "$ci_a" >"$TMP/migrate-a.log" 2>&1 || die "migrate on A failed: $(cat "$TMP/migrate-a.log")"
multi="host=127.0.0.1,127.0.0.1 port=$pa,$pb user=postgres dbname=$name target_session_attrs=read-write connect_timeout=5"
echo "  A: 127.0.0.1:$pa (this test's), B: 127.0.0.1:$pb (the suite's); --db '$multi'"

t=gh-ro-$UNIQ
now=$(date +%s)
start_sink ro "$multi" "$t" "g-$t" --batch-timeout 0.3
"$BIN" scorer --brokers "$KAFKA" --topic "$t" --scorer-group "gs-$t" --db "$multi" --alerts-topic '' \
  --batch-timeout 0.3 --stats-interval 1 --health-row-interval 0 -X session.timeout.ms=6000 \
  -X topic.metadata.refresh.interval.ms=1000 >"$TMP/ros.log" 2>&1 &
PIDS+=($!); PID_ros=$!

count() { sql "$1" "SELECT (SELECT count(*) FROM gpu_metrics) || ' ' || (SELECT count(*) FROM gpu_health_scores)" 2>/dev/null; }
wait_counts() { # wait_counts CONNINFO "ROWS SCORES" TIMEOUT_S
  local i got=
  for i in $(seq 1 $(( $3 * 4 ))); do got=$(count "$1"); [ "$got" = "$2" ] && return 0; sleep 0.25; done
  echo "  rows, scores: '$got', expected '$2'" >&2
  return 1
}

python3 "$GEN" --gpus 4 --samples 10 --start $(( now - 300 )) --step 1 >"$TMP/e1.txt"
produce "$t" "$TMP/e1.txt"
check "before the fence: 40 rows and 40 scores on A, the first host" wait_counts "$ci_a" "40 40" 60
check "before the fence: nothing on B" test "$(count "$ci_b")" = "0 0"

sql "$(pg_server_ci "$PD/a")" "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
sql "$(pg_server_ci "$PD/a")" "SELECT pg_reload_conf()" >/dev/null
sleep 1
check "A is read-only now" test "$(sql "$ci_a" "SHOW transaction_read_only")" = on
echo "  injected: A fenced read-only (default_transaction_read_only = on, reloaded) under the open sessions"
python3 "$GEN" --gpus 4 --samples 10 --start $(( now - 200 )) --step 1 >"$TMP/e2.txt"
produce "$t" "$TMP/e2.txt"
check "after the fence: the next 40 rows and 40 scores on B (they connected again, skipping read-only A)" \
  wait_counts "$ci_b" "40 40" 30
check "after the fence: A kept its 40 and 40" test "$(count "$ci_a")" = "40 40"
check "no (GPU, time) twice across A and B" test "$( (sql "$ci_a" "SELECT gpu_key, time FROM gpu_metrics"; sql "$ci_b" "SELECT gpu_key, time FROM gpu_metrics") | sort | uniq -d | wc -l)" = 0
stop_sink ro
kill -TERM "$PID_ros"; wait "$PID_ros" 2>/dev/null
echo "  sink: $(grep -o 'sink: stopped after .*' "$TMP/ro.log")"
echo "  scorer: $(grep -o 'scorer: stopped; .*' "$TMP/ros.log" | cut -c1-160)"
check "no dead letter in the sink" grep -qE 'stopped after .* dead_letters=0 ' "$TMP/ro.log"
check "no bad event in the scorer" grep -qE 'scorer: stopped; .*bad_events=0 ' "$TMP/ros.log"

echo "== --db naming only a read-only server"
"$BIN" sink --brokers "$KAFKA" --topic "$t" --group "g2-$t" --db "$ci_a" --stats-interval 1 \
  --duration 4 >"$TMP/ro2.log" 2>&1
check "the sink says the server is read-only and how to name the primary" \
  grep -q 'is read-only (a standby, or default_transaction_read_only on).*target_session_attrs=read-write' "$TMP/ro2.log"
check "and does not call it a schema to migrate ('database not ready')" bash -c "! grep -q 'database not ready' '$TMP/ro2.log'"
finish
