#!/usr/bin/env bash
# gpuhealth api against the real PostgreSQL: a migrated database seeded with api_seed.sql, read
# through a login role in gpuhealth_reader; every endpoint, bad parameters, an unknown GPU, a
# database that is down, a role that may read nothing, input that is not UTF-8 or out of
# range, every JSON answer checked against docs/openapi.yaml (api_checks.py), and one client
# holding 300 slow connections (api_slowclient.py). Needs GPUHEALTH_TEST_PG only (no Kafka).
set -u
BIN=${1:?usage: test_api.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../lib/ports.sh
source "$ROOT/tests/lib/ports.sh"
TMP=$(mktemp -d /tmp/gh-api.XXXXXX)
PIDS=()
die() { echo "FATAL: $*" >&2; exit 1; }
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

[ -n "${GPUHEALTH_TEST_PG:-}" ] || die "GPUHEALTH_TEST_PG is not set: run scripts/test.sh (or source scripts/services.sh; pg_start)"
psql -X -q "$GPUHEALTH_TEST_PG" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at '$GPUHEALTH_TEST_PG' is unreachable"
/usr/bin/python3 -c 'import jsonschema, yaml' 2>/dev/null || die "python3-jsonschema and python3-yaml are needed (scripts/install-deps.sh --test)"

db="gh_api_$$"
psql -X -q "$GPUHEALTH_TEST_PG" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null || die "cannot create database $db"
owner="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$db}"
"$BIN" db migrate --db "$owner" >"$TMP/migrate.log" 2>&1 || die "migrate failed: $(cat "$TMP/migrate.log")"
psql -X -q -v ON_ERROR_STOP=1 "$owner" -f "$ROOT/tests/integration/api_seed.sql" >"$TMP/seed.log" 2>&1 || die "seeding failed: $(cat "$TMP/seed.log")"
# the API's own login: only the reader role's rights
psql -X -q -v ON_ERROR_STOP=1 "$owner" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gh_reader_it') THEN CREATE ROLE gh_reader_it LOGIN IN ROLE gpuhealth_reader; END IF; END \$\$" >/dev/null || die "cannot create the reader login role"
reader="${owner/user=postgres/user=gh_reader_it}"
psql -X -q "$reader" -c "INSERT INTO alerts (gpu_key, kind, severity, message, raised_at) VALUES ('x', 'x', 'info', 'x', now())" >/dev/null 2>&1 && die "the reader role can write: the test would not show the API is read-only"

# a login that reaches the database but may read nothing: server-side query failures
psql -X -q -v ON_ERROR_STOP=1 "$owner" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gh_nopriv_it') THEN CREATE ROLE gh_nopriv_it LOGIN; END IF; END \$\$" >/dev/null || die "cannot create the unprivileged login role"
nopriv="${owner/user=postgres/user=gh_nopriv_it}"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
DEAD=$(port)
# The APIs listen on a port the kernel picks (127.0.0.1:0) and say which (bound_port): a port
# picked here and freed before the API binds it can be taken meanwhile by the tests running
# beside this one.
# a service manager's notify socket: records every datagram the API sends
/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(60)
with open(sys.argv[2], "w") as out:
    while True:
        try: m = s.recv(4096).decode()
        except socket.timeout: break
        out.write(m.replace("\n", "|") + "\n"); out.flush()
        if "STOPPING=1" in m: break
' "$TMP/notify" "$TMP/notify.txt" &
NPID=$!
for i in $(seq 1 50); do [ -S "$TMP/notify" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$TMP/notify" WATCHDOG_USEC=400000 \
  "$BIN" api --db "$reader" --listen 127.0.0.1:0 --stats-interval 1 >"$TMP/api.log" 2>&1 &
PIDS+=($!)
# a database that does not answer: nothing listens on $DEAD
"$BIN" api --db "host=127.0.0.1 port=$DEAD user=nobody dbname=none connect_timeout=2" --listen 127.0.0.1:0 >"$TMP/api-down.log" 2>&1 &
PIDS+=($!)
"$BIN" api --db "$nopriv" --listen 127.0.0.1:0 >"$TMP/api-nopriv.log" 2>&1 &
PIDS+=($!)
P1=$(bound_port "$TMP/api.log") || die "gpuhealth api did not start: $(cat "$TMP/api.log")"
P2=$(bound_port "$TMP/api-down.log") || die "gpuhealth api did not start: $(cat "$TMP/api-down.log")"
P3=$(bound_port "$TMP/api-nopriv.log") || die "gpuhealth api did not start: $(cat "$TMP/api-nopriv.log")"
for i in $(seq 1 50); do
  curl -s -o /dev/null "http://127.0.0.1:$P1/healthz" && curl -s -o /dev/null "http://127.0.0.1:$P2/metrics" \
    && curl -s -o /dev/null "http://127.0.0.1:$P3/metrics" && break
  sleep 0.1
done

/usr/bin/python3 "$ROOT/tests/integration/api_checks.py" "http://127.0.0.1:$P1" "$ROOT/docs/openapi.yaml" "$owner" "http://127.0.0.1:$P2" "http://127.0.0.1:$P3"
rc=$?

# the database's text goes to the log, never to a client
if grep -q 'SQLSTATE 42501.*permission denied' "$TMP/api-nopriv.log"; then
  echo "ok: the refused query's SQLSTATE and text are in the API's log"
else
  echo "FAIL: the API's log lacks the refused query's cause:"; tail -5 "$TMP/api-nopriv.log"; rc=1
fi

# one client holding 300 slow connections (a head trickled 1 byte/s from 127.0.0.1) takes
# neither /healthz from another address (127.0.0.2) nor anything for longer than the head
# deadline (10 s)
/usr/bin/python3 "$ROOT/tests/integration/api_slowclient.py" 127.0.0.1 "$P1" 300 15 12.5 || rc=1
curl -s "http://127.0.0.1:$P1/metrics" | grep -q '^gpuhealth_api_head_timeouts_total [1-9]' \
  && echo "ok: /metrics counts the connections cut at the head deadline" \
  || { echo "FAIL: gpuhealth_api_head_timeouts_total did not count the slow connections"; rc=1; }

# a clean stop on SIGTERM, with the summary line
kill -TERM "${PIDS[0]}"
wait "${PIDS[0]}"; st=$?
if [ "$st" != 0 ] || ! grep -q 'api: stopped; requests=' "$TMP/api.log"; then
  echo "FAIL: gpuhealth api did not stop cleanly on SIGTERM (status $st)"; rc=1
else
  echo "ok: SIGTERM stops the API cleanly (status 0, summary logged)"
fi
wait "$NPID"
if grep -q '^READY=1|STATUS=serving on 127.0.0.1:' "$TMP/notify.txt" && grep -q '^WATCHDOG=1$' "$TMP/notify.txt" \
   && [ "$(tail -1 "$TMP/notify.txt")" = "STOPPING=1" ]; then
  echo "ok: READY=1 with STATUS, WATCHDOG=1 pings and STOPPING=1 reach \$NOTIFY_SOCKET"
else
  echo "FAIL: the notify socket did not get READY/WATCHDOG/STOPPING:"; cat "$TMP/notify.txt"; rc=1
fi
if [ "$rc" != 0 ]; then echo "--- api.log"; tail -20 "$TMP/api.log"; echo "--- api-down.log"; tail -5 "$TMP/api-down.log"; fi
psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1
rm -rf "$TMP"
exit $rc
