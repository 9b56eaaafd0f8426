#!/usr/bin/env bash
# The embedded broker of --daemon (librdkafka's in-process mock cluster) loses nothing while its
# database is away (issue 19, item 3). The mock cluster keeps at most 5 MiB per partition and
# silently forgets its oldest batches past that, committed by the sink or not; the pipeline's
# gate must hold events back in the collector's memory queue instead.
#
# --daemon scrapes a mock-dcgm of GATE_GPUS GPUs every 0.5 s into the in-process broker, its
# sink writing into a PostgreSQL this test starts for itself (so stopping it disturbs no other
# test). Uncompressed batches (-X compression.codec=none) fill the 8 partitions' 5 MiB in about
# 30 s. PostgreSQL is stopped for GATE_OUTAGE_S (default 70) s, then started again. Then every
# (GPU, time) the collector logged as scraped must be in gpu_metrics exactly once
# (tests/faults/verify.py), the gate must have held events at least once, and the daemon must
# count no loss of any kind. With the old code the mock's log forgets about half of the outage.
# It needs no shared service (it starts its own PostgreSQL; the broker is in-process), so it does
# not source lib.sh, which requires them; the helpers below are lib.sh's (bound_port:
# tests/lib/ports.sh).
set -u
BIN=${1:?usage: test_daemon_gate_long.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
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
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
finish() { echo "$passes passed, $fails failed"; [ "$fails" = 0 ]; }
chmod 755 "$TMP" # the server runs as postgres when we are root
GH_SVC_DIR="$TMP/svc"
mkdir -p "$GH_SVC_DIR"
source "$ROOT/scripts/services.sh"
# shellcheck source=../lib/ports.sh
source "$ROOT/tests/lib/ports.sh"
VERIFY="$ROOT/tests/faults/verify.py"
GPUS=${GATE_GPUS:-512}
OUTAGE=${GATE_OUTAGE_S:-70}
export XDG_STATE_HOME="$TMP/state"

# A PostgreSQL of this test's own (pg_start exports its conninfo over this shell's variables).
# With TimescaleDB installed, migration 001 creates the extension, which needs it preloaded
# (otherwise that backend exits FATAL and the migration fails): preload it when present.
if [ -e "$(pg_bindir)/../lib/timescaledb.so" ]; then
  export GH_PG_EXTRA_CONF="shared_preload_libraries = 'timescaledb'"
fi
pg_start || die "cannot start this test's own PostgreSQL"
trap 'pg_stop; cleanup' EXIT
DB=$GPUHEALTH_TEST_PG
"$BIN" db migrate --db "$DB" >"$TMP/migrate.log" 2>&1 || die "migrate failed: $(cat "$TMP/migrate.log")"
pgctl() { pg_as "$GH_PG_BIN/pg_ctl" "$@"; }

# the kernel picks the port (bound_port reads it from the info line that says it)
"$BIN" mock-dcgm --listen 127.0.0.1:0 --gpus "$GPUS" --seed 19 --poll-interval 0.5 \
  --log-level info >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
port=$(bound_port "$TMP/mock.log" 'GPUs on ') || die "mock-dcgm did not start: $(tail -5 "$TMP/mock.log")"
URL="http://127.0.0.1:$port/metrics"
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
"$BIN" collector --target "$URL" --output - --once 2>/dev/null \
  | python3 -c 'import json,sys; [print(json.loads(l)["gpu"]["uuid"]) for l in sys.stdin]' \
  | sort >"$TMP/uuids"
[ "$(wc -l <"$TMP/uuids")" = "$GPUS" ] || die "mock-dcgm: expected $GPUS GPUs in one scrape"

"$BIN" --daemon --target "$URL" --db "$DB" --interval 0.5 --stats-interval 2 --log-level debug \
  -X compression.codec=none >"$TMP/daemon.log" 2>&1 &
D=$!
PIDS+=($D)
rows() { psql -X -At "$DB" -c 'SELECT count(*) FROM gpu_metrics' 2>/dev/null || echo 0; }
for _ in $(seq 1 60); do [ "$(rows)" -gt 0 ] && break; sleep 0.5; done
[ "$(rows)" -gt 0 ] || die "no rows reached gpu_metrics: $(tail -5 "$TMP/daemon.log")"
sleep 3
echo "PostgreSQL stopped for $OUTAGE s with $(rows) rows in"
pgctl -D "$GH_PG_DIR/data" -m fast -w stop >/dev/null || die "cannot stop PostgreSQL"
sleep "$OUTAGE"
pgctl -D "$GH_PG_DIR/data" -l "$GH_PG_DIR/postgresql.log" -w -t 60 start >/dev/null || die "PostgreSQL did not come back"
echo "PostgreSQL back"
# until the held events are through and the sink has caught up: the gate open again, little
# buffered in the collector, the lag small
stat_field() { grep ' stats: ' "$TMP/daemon.log" | tail -1 | grep -oE " $1=[^ ]+" | cut -d= -f2; }
for _ in $(seq 1 240); do
  h=$(stat_field held); b=$(stat_field buffered); l=$(stat_field lag)
  [ "${h:-1}" = 0 ] && [ "${b:-99999}" -lt 3000 ] && [[ "${l:-x}" =~ ^[0-9]+$ ]] && [ "$l" -lt 3000 ] && break
  sleep 1
done
echo "last stats line: $(grep ' stats: ' "$TMP/daemon.log" | tail -1)"
sleep 4
kill -TERM "$D"
wait "$D"
rc=$?
final=$(grep 'daemon: stopped;' "$TMP/daemon.log" | tail -1)
echo "final: $final"
check "--daemon exits 0 after the outage (got $rc)" [ "$rc" = 0 ]
holds=$(echo "$final" | grep -oE ' holds=[0-9]+' | cut -d= -f2)
check "the gate held events back at least once (holds=${holds:-none})" [ "${holds:-0}" -gt 0 ]
check "no loss counted: dropped=0 refused=0 failed=0 broker_lost=0" \
  bash -c "echo '$final' | grep -qE ' dropped=0 refused=0 failed=0 .* broker_lost=0 '"
XDG_STATE_HOME="$TMP/state" "$BIN" status --db "$DB" --json >"$TMP/status.json" 2>"$TMP/status.err"
check "status --json shows the daemon's losses (none) and the gate's holds" \
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["pipeline"]; sys.exit(0 if p["lost"]["total"] == 0 and p["broker_gate"]["holds"] > 0 and not p["running"] else 1)' "$TMP/status.json"
check "every scraped (GPU, time) in gpu_metrics exactly once across the outage" \
  python3 "$VERIFY" --label gate --db "$DB" --target "$URL=$TMP/uuids" --log "$TMP/daemon.log" --wait 60
finish
