#!/usr/bin/env bash
# gpuhealth --daemon: the console's pipeline without a screen.
#  1. Embedded defaults (simulator, mock Kafka cluster, private PostgreSQL under a scratch
#     XDG_STATE_HOME): --duration 15 with 8 GPUs scraped every second leaves 8 rows per scrape
#     in gpu_metrics (checked over the server's socket by a server this test starts itself),
#     exit status 0, and the private server it started is gone afterwards.
#  2. A second run reuses the cluster (no initdb) and adds rows.
#  3. No PostgreSQL server binaries: it runs without a database and says why; a private server
#     that cannot start fails the run (exit 1) but not the collector.
#  4. --db (the test PostgreSQL) and --brokers (the real Kafka): every event in the fleet
#     database, and another host's GPUs read back from it into the daemon's fleet.
#  5. SIGTERM stops it cleanly (exit 0).
#  6. The private server killed under it: the rest goes on, exit 1; the next run recovers.
#  7. --targets-file with real exporters (mock-dcgm processes), re-read on SIGHUP.
#  8. --file-sd (issue #24): the exporters found through a Prometheus file_sd file, their target
#     labels as enrichment, their events in the fleet database (--db), a rewritten file picked
#     up without a signal.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

GPUS=8
DUR=15
export XDG_STATE_HOME="$TMP/state"
DATA="$XDG_STATE_HOME/gpuhealth/pg"

# last_field LOG NAME: NAME=value from the daemon's final summary line
last_field() { grep 'daemon: stopped;' "$1" | tail -1 | grep -oE " $2=[^ ]+" | cut -d= -f2; }

# ---- 1. embedded defaults
# a server log an older version left readable by others (made private by this run)
mkdir -m 700 -p "$XDG_STATE_HOME/gpuhealth"
: >"$XDG_STATE_HOME/gpuhealth/postgresql.log"
chmod 644 "$XDG_STATE_HOME/gpuhealth/postgresql.log"
"$BIN" --daemon --duration $DUR --gpus $GPUS --interval 1 --stats-interval 5 >"$TMP/d1.log" 2>&1 &
D=$!
PIDS+=($D)
# the private server's pid while it runs
PGPID=""
# (initdb's standalone backend writes a negative pid there first: wait for the server's)
for _ in $(seq 1 150); do
  if grep -q 'database: private PostgreSQL' "$TMP/d1.log" && [ -s "$DATA/postmaster.pid" ]; then
    PGPID=$(head -1 "$DATA/postmaster.pid")
    break
  fi
  sleep 0.2
done
[[ "$PGPID" =~ ^[1-9][0-9]*$ ]] || PGPID=
check "the private PostgreSQL server started (postmaster.pid in $DATA)" [ -n "$PGPID" ]
wait $D
rc=$?
check "--daemon --duration $DUR exits 0 (got $rc)" [ $rc = 0 ]
check "the private server (pid ${PGPID:-?}) is gone after the daemon stopped" \
  bash -c "[ -n '$PGPID' ] && ! kill -0 '$PGPID' 2>/dev/null"
check "no postmaster.pid left in the data directory" [ ! -e "$DATA/postmaster.pid" ]
check "initdb ran on the first run" grep -q 'first run: initdb' "$TMP/d1.log"
check "the private data directory is 0700 (got $(stat -c %a "$DATA"))" [ "$(stat -c %a "$DATA")" = 700 ]
check "the private server's log is 0600 (got $(stat -c %a "$XDG_STATE_HOME/gpuhealth/postgresql.log"))" \
  [ "$(stat -c %a "$XDG_STATE_HOME/gpuhealth/postgresql.log")" = 600 ]
check "the log has a stats line per interval (5 s)" bash -c "[ \$(grep -c ' stats: ' '$TMP/d1.log') -ge $((DUR / 5 - 1)) ]"
SCRAPES=$(last_field "$TMP/d1.log" scrapes_ok)
FAILED=$(last_field "$TMP/d1.log" scrapes_failed)
DROPPED=$(last_field "$TMP/d1.log" dropped)
# One scrape per second from the start to --duration: DUR, one less if the last one was still
# due at the stop, one more if the first came at once and the stop just after the last.
check "scrapes in $DUR s at 1 s: ${SCRAPES:-?} within [$((DUR - 1)), $((DUR + 1))]" \
  bash -c "[ -n '$SCRAPES' ] && [ '$SCRAPES' -ge $((DUR - 1)) ] && [ '$SCRAPES' -le $((DUR + 1)) ]"
check "no failed scrapes, no dropped events" [ "$FAILED/$DROPPED" = "0/0" ]

# Read the rows ourselves: start the server again on the data directory, the way gpuhealth
# does (as the postgres user when root, through a directory descriptor, since $TMP is 0700).
PGBIN=$(pg_config --bindir)
runas=()
[ "$(id -u)" = 0 ] && runas=(setpriv --reuid postgres --regid postgres --clear-groups)
(cd / && exec 7<"$DATA" && exec "${runas[@]}" "$PGBIN/postgres" -D /proc/self/fd/7 \
  -c listen_addresses= -c unix_socket_directories=/proc/self/fd/7 >"$TMP/pgcheck.log" 2>&1) &
CHK=$!
PIDS+=($CHK)
CI="host=$DATA user=gpuhealth dbname=gpuhealth"
for _ in $(seq 1 50); do pg_isready -q -h "$DATA" && break; sleep 0.2; done
ROWS=$(sql "$CI" "SELECT count(*) FROM gpu_metrics" 2>&1)
WANT=$((GPUS * ${SCRAPES:-0}))
check "gpu_metrics holds $GPUS GPUs x $SCRAPES scrapes = $WANT rows (got $ROWS)" [ "$ROWS" = "$WANT" ]
check "every row is a distinct (GPU, time) and the rollups count them all" exact "$CI" "$WANT"
GPUS_DB=$(sql "$CI" "SELECT count(*) FROM gpus")
check "the gpus table lists the $GPUS simulated GPUs (got $GPUS_DB)" [ "$GPUS_DB" = "$GPUS" ]
SCORES=$(sql "$CI" "SELECT count(*) FROM gpu_health_scores")
SCORED_GPUS=$(sql "$CI" "SELECT count(DISTINCT gpu_key) FROM gpu_health_scores")
# (a row per GPU when something changes, else once a minute: --health-row-interval)
check "the scorer wrote health scores of all $GPUS GPUs ($SCORED_GPUS), at most one per sample ($SCORES of $WANT)" [ "$SCORED_GPUS" = "$GPUS" ] && [ "$SCORES" -le "$WANT" ]
kill -INT $CHK
wait $CHK

# ---- 2. a second run reuses the cluster
"$BIN" --daemon --duration 5 --gpus $GPUS --interval 1 >"$TMP/d2.log" 2>&1
rc=$?
check "second run exits 0 (got $rc)" [ $rc = 0 ]
check "second run does not initdb again" bash -c "! grep -q 'initdb' '$TMP/d2.log'"
R2=$(last_field "$TMP/d2.log" db_rows)
S2=$(last_field "$TMP/d2.log" scrapes_ok)
check "second run: db_rows ${R2:-?} = $WANT + $GPUS x ${S2:-?}" [ "${R2:-x}" = "$((WANT + GPUS * ${S2:-0}))" ]

# ---- 3. no server binaries
GPUHEALTH_PG_BINDIR=/nonexistent XDG_STATE_HOME="$TMP/state3" \
  "$BIN" --daemon --duration 3 --gpus 2 --interval 1 >"$TMP/d3.log" 2>&1
rc=$?
check "without PostgreSQL binaries it still runs and exits 0 (got $rc)" [ $rc = 0 ]
check "... and says why there is no database" grep -q 'PostgreSQL server binaries not found (install postgresql' "$TMP/d3.log"
check "... and the collector delivered its events" bash -c "[ \"\$(grep 'daemon: stopped;' '$TMP/d3.log' | grep -oE ' delivered=[0-9]+' | cut -d= -f2)\" -ge 4 ]"
check "... and created no state directory" [ ! -e "$TMP/state3/gpuhealth/pg" ]

# ---- 3b. a private server that cannot start: the rest runs, the stop says why, exit 1
mkdir -p "$TMP/state3b" && touch "$TMP/state3b/gpuhealth"
XDG_STATE_HOME="$TMP/state3b" "$BIN" --daemon --duration 3 --gpus 2 --interval 1 >"$TMP/d3b.log" 2>&1
rc=$?
check "a database that cannot start: exit 1 (got $rc)" [ $rc = 1 ]
check "... naming the path and the reason" grep -q 'database failed: cannot create .*state3b/gpuhealth/pg: Not a directory' "$TMP/d3b.log"
check "... and the way out" grep -q "set XDG_STATE_HOME to a writable directory, or give --db" "$TMP/d3b.log"
check "... while the collector went on" bash -c "[ \"\$(grep 'daemon: stopped;' '$TMP/d3b.log' | grep -oE ' delivered=[0-9]+' | cut -d= -f2)\" -ge 2 ]"

# ---- 4. real Kafka and a fleet database
DB="gh_daemon_$$"
FCI=$(new_db "$DB")
TOPIC="gh-daemon-$UNIQ"
# another host's GPUs, already in Kafka before the daemon starts: 3 GPUs x 2 samples
python3 "$GEN" --gpus 3 --samples 2 --start $(( $(date +%s) - 60 )) --host other-node >"$TMP/other.txt"
produce "$TOPIC" "$TMP/other.txt"
"$BIN" --daemon --duration 15 --gpus 4 --interval 1 --hostname daemon-node \
  --brokers "$KAFKA" --topic "$TOPIC" --dlq-topic "$TOPIC-dlq" --alerts-topic "$TOPIC-alerts" \
  --group "g-$UNIQ" --scorer-group "s-$UNIQ" --db "$FCI" --stats-interval 2 \
  -X session.timeout.ms=6000 -X topic.metadata.refresh.interval.ms=1000 >"$TMP/d4.log" 2>&1
rc=$?
check "--brokers/--db run exits 0 (got $rc)" [ $rc = 0 ]
check "no private server with --db" bash -c "! grep -q 'private PostgreSQL' '$TMP/d4.log'"
S4=$(last_field "$TMP/d4.log" scrapes_ok)
W4=$((4 * ${S4:-0} + 6))
R4=$(sql "$FCI" "SELECT count(*) FROM gpu_metrics")
check "fleet database: 4 GPUs x ${S4:-?} scrapes + 6 rows of other-node = $W4 (got $R4)" [ "$R4" = "$W4" ]
check "the daemon's fleet read every host's GPUs back (gpus=7 hosts=2)" \
  bash -c "grep 'daemon: stopped;' '$TMP/d4.log' | grep -q ' gpus=7 hosts=2 '"

# ---- 5. SIGTERM
XDG_STATE_HOME="$TMP/state" "$BIN" --daemon --gpus 2 --interval 1 >"$TMP/d5.log" 2>&1 &
D=$!
PIDS+=($D)
for _ in $(seq 1 100); do grep -q 'sink: assigned' "$TMP/d5.log" && break; sleep 0.2; done
P5=$(head -1 "$DATA/postmaster.pid" 2>/dev/null)
kill -TERM $D
wait $D
rc=$?
check "SIGTERM: exit 0 (got $rc)" [ $rc = 0 ]
check "SIGTERM: the private server (pid ${P5:-?}) stopped too" \
  bash -c "[ -n '$P5' ] && ! kill -0 '$P5' 2>/dev/null"
check "SIGTERM: the sink committed before the stop" grep -q 'daemon: stopped;.* sink_rows=[1-9]' "$TMP/d5.log"

# ---- 6. the private server dies under the daemon: the rest goes on, the stop is prompt and
#         says why (exit 1); the next run recovers the cluster (stale postmaster.pid)
XDG_STATE_HOME="$TMP/state" "$BIN" --daemon --duration 8 --gpus 2 --interval 1 >"$TMP/d6.log" 2>&1 &
D=$!
PIDS+=($D)
for _ in $(seq 1 100); do grep -q 'database: private PostgreSQL' "$TMP/d6.log" && break; sleep 0.2; done
P6=$(head -1 "$DATA/postmaster.pid" 2>/dev/null)
[[ "$P6" =~ ^[1-9][0-9]*$ ]] && kill -KILL "$P6"
T0=$(date +%s)
wait $D
rc=$?
T1=$(date +%s)
check "server killed: the daemon ran on to --duration and exited 1 (got $rc)" [ $rc = 1 ]
check "... naming the cause" grep -q 'database failed: the private PostgreSQL server exited (signal 9)' "$TMP/d6.log"
check "... without waiting for a database that is gone (stopped $((T1 - T0)) s after the kill, --duration 8)" [ $((T1 - T0)) -le 11 ]
check "... and the collector went on scraping" bash -c "[ \"\$(grep 'daemon: stopped;' '$TMP/d6.log' | grep -oE ' scrapes_ok=[0-9]+' | cut -d= -f2)\" -ge 6 ]"
B6=$(last_field "$TMP/d6.log" db_rows)
# '-': the server was killed before the reader's first count (nothing counted yet)
[[ "$B6" =~ ^[0-9]+$ ]] || B6=0
XDG_STATE_HOME="$TMP/state" "$BIN" --daemon --duration 6 --gpus 2 --interval 1 >"$TMP/d7.log" 2>&1
rc=$?
check "next run after the crash: exit 0 (got $rc)" [ $rc = 0 ]
R7=$(last_field "$TMP/d7.log" db_rows)
check "... and it writes again (db_rows ${B6:-?} -> ${R7:-?})" bash -c "[ '${R7:-0}' -gt '${B6:-0}' ] 2>/dev/null"

# ---- 7. --targets-file and SIGHUP: real exporters instead of the simulator, re-read on SIGHUP
for m in 1 2; do
  "$BIN" mock-dcgm --listen 127.0.0.1:0 --gpus 2 --seed $m --hostname "mock$m" >"$TMP/m$m.log" 2>&1 &
  PIDS+=($!)
done
U=()
for m in 1 2; do
  for _ in $(seq 1 50); do grep -q 'serving' "$TMP/m$m.log" && break; sleep 0.1; done
  U[$m]=$(grep -oE 'http://[0-9.:]+/metrics' "$TMP/m$m.log" | head -1)
done
echo "${U[1]}" >"$TMP/targets"
XDG_STATE_HOME="$TMP/state" "$BIN" --daemon --targets-file "$TMP/targets" --interval 1 \
  --stats-interval 1 >"$TMP/d8.log" 2>&1 &
D=$!
PIDS+=($D)
for _ in $(seq 1 100); do grep -q ' stats: gpus=2 hosts=1 ' "$TMP/d8.log" && break; sleep 0.2; done
check "--targets-file: the first exporter's 2 GPUs (host mock1), no simulator" \
  bash -c "grep -q ' stats: gpus=2 hosts=1 ' '$TMP/d8.log' && grep -q 'simulator: off' '$TMP/d8.log'"
printf '%s\n%s\n' "${U[1]}" "${U[2]}" >"$TMP/targets"
kill -HUP $D
for _ in $(seq 1 100); do grep -q ' stats: gpus=4 hosts=2 ' "$TMP/d8.log" && break; sleep 0.2; done
check "SIGHUP re-read the targets file (2 targets)" grep -q 'SIGHUP: 2 targets (were 1)' "$TMP/d8.log"
check "... and both exporters' GPUs are scraped (gpus=4 hosts=2)" grep -q ' stats: gpus=4 hosts=2 ' "$TMP/d8.log"
kill -TERM $D
wait $D
rc=$?
check "--targets-file run: SIGTERM exit 0 (got $rc)" [ $rc = 0 ]

# ---- 8. --file-sd: discovered exporters; their events land in the fleet database
DB8="gh_daemon8_$$"
FCI8=$(new_db "$DB8")
hp1=${U[1]#http://}; hp1=${hp1%/metrics}
hp2=${U[2]#http://}; hp2=${hp2%/metrics}
printf '[{"targets": ["%s"], "labels": {"rack": "r-sd", "team": "ml"}}]\n' "$hp1" >"$TMP/sd.json"
XDG_STATE_HOME="$TMP/state" "$BIN" --daemon --file-sd "$TMP/sd.json" --db "$FCI8" --interval 1 \
  --batch-timeout 0.5 --stats-interval 1 >"$TMP/d9.log" 2>&1 &
D=$!
PIDS+=($D)
host_rows() { sql "$FCI8" "SELECT count(*) FROM gpu_metrics m JOIN gpus g ON g.gpu_key = m.gpu_key WHERE g.hostname = '$1' AND g.rack = 'r-sd'" 2>/dev/null; }
for _ in $(seq 1 150); do [ "$(host_rows mock1)" -gt 0 ] 2>/dev/null && break; sleep 0.2; done
check "--file-sd: the discovered exporter's events are in the fleet database, rack from the target's labels ($(host_rows mock1) rows of mock1)" \
  bash -c "[ '$(host_rows mock1)' -gt 0 ] 2>/dev/null"
check "... no simulator, not a read-only viewer" \
  bash -c "grep -q 'simulator: off' '$TMP/d9.log' && ! grep -q 'read-only viewer' '$TMP/d9.log'"
printf '[{"targets": ["%s", "%s"], "labels": {"rack": "r-sd"}}]\n' "$hp1" "$hp2" >"$TMP/sd.json.new"
mv "$TMP/sd.json.new" "$TMP/sd.json"
for _ in $(seq 1 150); do [ "$(host_rows mock2)" -gt 0 ] 2>/dev/null && break; sleep 0.2; done
check "the rewritten file is read again (no signal): the second exporter's events land too" \
  bash -c "[ '$(host_rows mock2)' -gt 0 ] 2>/dev/null && grep -q 'discovery: 2 targets (were 1' '$TMP/d9.log'"
kill -TERM $D
wait $D
rc=$?
check "--file-sd run: SIGTERM exit 0 (got $rc)" [ $rc = 0 ]
psql -X -q "$ADMIN_PG" -c "DROP DATABASE IF EXISTS $DB8" >/dev/null 2>&1

psql -X -q "$ADMIN_PG" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
finish
