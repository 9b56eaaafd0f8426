#!/usr/bin/env bash
# The fault suite (issue 9): the whole pipeline, mock-dcgm -> collector -> real Kafka -> sink
# -> real PostgreSQL, with one fault injected per scenario. After each scenario gpu_metrics
# must hold every (GPU, time) the collector produced exactly once, or miss exactly the events
# the collector counted as dropped where the scenario expects a bounded loss.
#
# Ground truth (tests/faults/verify.py): the collector's debug log line "scraped URL at TIME",
# written after the scrape's events were handed to the producer, times the UUIDs of a separate
# `--output - --once` scrape of the same target. Neither comes from Kafka or the database.
#
# Scenarios (GH_FAULTS selects some, space separated; default all, about 25 minutes):
#   collector  kill -9 the collector three times mid-stream (twice at a random moment, once
#              right after a scrape's log line), restart it on the same spool
#   sink       kill -9 the sink twice mid-stream (open batches), restart it
#   broker     kill -9 the Kafka JVM mid-stream, restart it on the same ports and data
#   postgres   stop PostgreSQL (fast shutdown) mid-stream for 10 s, start it again
#   outage     stop the broker for GH_OUTAGE_S (default 75 s): collector A with default bounds
#              (the producer never times a message out) loses nothing; collector C, whose
#              librdkafka message timeout is set to 30 s, loses nothing either (what librdkafka
#              times out is produced again: the outage is 2.5 times its timeout, as the old 320 s
#              outage was past librdkafka's default 300 s); at the same time collector B with
#              tiny bounds and no spool overflows its buffer, and the rows it misses must equal
#              its dropped counter exactly
#   embedded   (about 4 minutes) `--daemon` with
#              its in-process broker (librdkafka's mock cluster, which keeps 5 MiB a partition
#              and forgets the rest), GH_EMBEDDED_GPUS (default 256) GPUs at 1 s, writing into
#              this suite's PostgreSQL (--db; uncompressed batches, so the outage passes the
#              mock's limit: 256 GPUs for 150 s offer what 64 did in 600 s, 2.4 times what the
#              mock keeps), which is stopped for GH_EMBEDDED_OUTAGE_S (default 150) s, then started:
#              every (GPU, time) exactly once, and the daemon counts no loss of any kind
#   targets    next to a good exporter: one that hangs, one that returns garbage, two that
#              return 100 MB (streamed, and with a Content-Length): the collector times out /
#              rejects / aborts them by --max-body, counts each, and the good target's scrapes
#              keep their schedule and arrive exactly once
#   hangup     console terminal hangup: the console (collector, in-process broker, sink, private
#              PostgreSQL) scraping its own exporter in tmux; the tmux session is killed
#              mid-stream: within 3 s no console and no private postgres is left, exit status
#              129, and the private database, opened again, holds every (GPU, time) the
#              console's collector logged, exactly once
#   oversized  an invalid event of 1 MB mid-stream (#19): it leaves as a dead letter cut to the
#              bound, and every real (GPU, time) before and after it arrives exactly once
#   future     one sample dated 9999 mid-stream (#19): a dead letter in the sink and the scorer;
#              every real (GPU, time) exactly once, the GPU still scored, no false "fell off"
#   --- a durable and highly available database (issue 23) ---
#   standby    a real second PostgreSQL 15 (pg_basebackup -R, streaming, synchronous:
#              synchronous_standby_names = '*', synchronous_commit = on) behind a primary of this
#              scenario's own; the sink and the scorer write through
#              --db 'host=A,B port=PA,PB target_session_attrs=read-write'; the primary crashes
#              mid-stream (pg_ctl stop -m immediate) and the standby is promoted (pg_ctl
#              promote): they find the new primary by themselves, every (GPU, time) exactly once
#              on it and every sample scored there (what the old primary did not confirm, Kafka
#              redelivers: offsets are stored after COMMIT)
#   switchover the same pair, but the primary is fenced read-only mid-stream (ALTER SYSTEM SET
#              default_transaction_read_only = on, reloaded) and stays up while the standby is
#              promoted: the open sessions fail with SQLSTATE 25006, which must make the sink and
#              the scorer connect again (to the new primary), not retry on the old one forever
#   immediate  the suite's PostgreSQL restarted with pg_ctl stop -m immediate (a crash: no
#              checkpoint, WAL replayed at start) under load (512 GPUs at 1 s), sink and scorer
#              writing: every (GPU, time) exactly once, every sample scored
# Each of these appends a result line (tests/faults/reliability.py's format) with its own time
# to recover: seconds from the fault to the first row committed after it.
#
# Run: tests/faults/run.sh (builds, starts the services, runs this), or
# `ctest --test-dir build -L faults` in a shell with scripts/services.sh's services.
source "$(dirname "$0")/../integration/lib.sh"
source "$ROOT/scripts/services.sh"
[ -n "${GH_KAFKA_DIR:-}" ] || die "GH_KAFKA_DIR is not set: run tests/faults/run.sh (or source scripts/services.sh; kafka_start) so the suite can kill and restart the broker"
[ -n "${GH_PG_DIR:-}" ] && [ -n "${GH_PG_BIN:-}" ] || die "GH_PG_DIR/GH_PG_BIN are not set: run tests/faults/run.sh (or source scripts/services.sh; pg_start) so the suite can restart PostgreSQL"
trap '[ -n "${KC_STARTED:-}" ] && kafka_cluster_stop; cleanup' EXIT # the cluster's JVMs too
VERIFY="$ROOT/tests/faults/verify.py"
BAD="$ROOT/tests/faults/bad_exporter.py"
SCEN=${GH_FAULTS:-collector sink broker postgres outage targets hangup oversized future embedded standby switchover immediate kc-leader kc-rolling kc-controller kc-sigstop kc-two-down kc-shards kc-sinks}
OUTAGE_S=${GH_OUTAGE_S:-75}
EMB_OUTAGE_S=${GH_EMBEDDED_OUTAGE_S:-150}
EMB_GPUS=${GH_EMBEDDED_GPUS:-256}

wait_http() { local i; for i in $(seq 1 100); do curl -fs -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# start_mock NAME GPUS SEED: a mock exporter; sets URL_NAME and writes $TMP/NAME.uuids. It
# listens on a port the kernel picks, which its info line says (bound_port).
start_mock() {
  local name=$1 port
  "$BIN" mock-dcgm --listen 127.0.0.1:0 --gpus "$2" --seed "$3" --poll-interval 1 \
    --log-level info >"$TMP/mock-$name.log" 2>&1 &
  PIDS+=($!)
  port=$(bound_port "$TMP/mock-$name.log" 'GPUs on ') || die "mock-dcgm $name did not start: $(tail -5 "$TMP/mock-$name.log")"
  wait_http "http://127.0.0.1:$port/healthz" || die "mock-dcgm $name did not start"
  eval "URL_$name=http://127.0.0.1:$port/metrics"
  "$BIN" collector --target "http://127.0.0.1:$port/metrics" --output - --once 2>/dev/null \
    | python3 -c 'import json,sys; [print(json.loads(l)["gpu"]["uuid"]) for l in sys.stdin]' \
    | sort >"$TMP/$name.uuids"
  [ "$(wc -l <"$TMP/$name.uuids")" = "$2" ] || die "mock $name: expected $2 GPUs in one scrape"
}

# start_coll NAME TOPIC [args]: a collector at a 1 s interval, debug log in $TMP/NAME.log
start_coll() {
  local name=$1 topic=$2; shift 2
  "$BIN" collector --brokers "$KAFKA" --topic "$topic" --interval 1 --stats-interval 2 \
    --log-level debug -X reconnect.backoff.max.ms=1000 "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  PIDS+=($!)
  eval "PID_$name=$!"
}
stop_coll() { local pid; eval "pid=\$PID_$1"; kill -TERM "$pid" 2>/dev/null; wait "$pid"; }
kill9() { local pid; eval "pid=\$PID_$1"; kill -9 "$pid"; wait "$pid" 2>/dev/null; }
counted() { grep -o 'collector: stopped; .*' "$TMP/$1.log" | sed 's/ kafka_error=.*//'; }
dropped_of() { grep -o 'collector: stopped; .*' "$TMP/$1.log" | grep -o ' dropped=[0-9]*' | cut -d= -f2; }
scrapes_of() { grep -c "collector: scraped " "$TMP/$1.log"; }
# Result lines (docs/reliability.md, written by tests/faults/reliability.py from them; the
# format is documented there): verify appends one per checked database, with ACTION (what the
# scenario did) and the time to recover measured from fault_end.
RESULTS=${GH_RELIABILITY_TSV:-$GH_SVC_DIR/reliability.tsv}
WATCH_PIDS=() FAULT_END=
timeline_of() { echo "$TMP/timeline-$(echo "$1" | md5sum | cut -c1-10)"; }
# fault_end DB...: the fault has just ended (process back, service back); polls each DB's
# progress every 0.5 s until the scenario ends, for verify's time to recover
fault_end() {
  FAULT_END=$(date +%s.%N)
  local d; for d in "$@"; do
    python3 "$VERIFY" --watch --db "$d" --fault-end "$FAULT_END" --timeline "$(timeline_of "$d")" &
    WATCH_PIDS+=($!); PIDS+=($!)
  done
}
watch_stop() { local p; for p in "${WATCH_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; WATCH_PIDS=() FAULT_END=; }
# verify LABEL DB [verify.py args]: the database against the ground truth; appends the result line
verify() {
  local l=$1 d=$2 tl=(); shift 2
  [ -n "$FAULT_END" ] && tl=(--fault-end "$FAULT_END" --timeline "$(timeline_of "$d")")
  python3 "$VERIFY" --label "$l" --db "$d" --wait 90 --result "$RESULTS" --action "${ACTION:-}" "${tl[@]}" "$@"
}
sinkline() { grep -o 'sink: stopped after .*' "$TMP/$1.log"; }
rand_between() { python3 -c "import random; print(round(random.uniform($1, $2), 2))"; }

# ------------------------------------------------------------------------------------------
scen_collector() {
  echo "== collector: kill -9 mid-stream (x3), restart on the same spool"
  local db t; db=$(new_db gh_fc_$$); t=gh-fc-$UNIQ
  start_mock c1 256 31; start_mock c2 256 32
  start_sink fcs "$db" "$t" "g-$t" --batch-timeout 0.5
  local args=(--target "$URL_c1" --target "$URL_c2" --spool-dir "$TMP/spool-fc")
  local logs=() i s
  for i in 1 2 3; do
    start_coll fc$i "$t" "${args[@]}"
    s=$(rand_between 4 7); sleep "$s"
    if [ $i -lt 3 ]; then
      echo "  injected: kill -9 of collector run $i after $s s ($(scrapes_of fc$i) scrapes logged)"
      kill9 fc$i
    else
      # the worst moment: within a millisecond of a scrape's log line, when its events have
      # been accepted (handed to the producer) but are still on their way to the broker
      local at; at=$(python3 - "$TMP/fc3.log" "$PID_fc3" <<'PY'
import os, signal, sys, time
f = open(sys.argv[1]); f.seek(0, 2)
while True:
    l = f.readline()
    if not l:
        time.sleep(0.0002)
        continue
    if "collector: scraped " in l:
        os.kill(int(sys.argv[2]), signal.SIGKILL)
        print(l.split(" at ")[1][:24])
        break
PY
)
      wait "$PID_fc3" 2>/dev/null
      echo "  injected: kill -9 of collector run 3 right after the log line of its scrape at $at ($(scrapes_of fc3) scrapes logged)"
    fi
    logs+=(--log "$TMP/fc$i.log")
  done
  start_coll fc4 "$t" "${args[@]}"
  fault_end "$db"
  ACTION="kill -9 of the collector 3 times mid-stream (once right after a scrape's log line), restarted on its spool"
  sleep 4
  stop_coll fc4; logs+=(--log "$TMP/fc4.log")
  echo "  counted (last run): $(counted fc4)"
  check "collector: the last run stopped cleanly and dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/fc4.log"
  # allowed: up to one scrape time per kill in the database without its log line (killed
  # between the hand-over and the log line): reported, never counted as ground truth
  check "collector: every logged (GPU, time) exactly once across three kill -9" \
    verify collector "$db" --target "$URL_c1=$TMP/c1.uuids" --target "$URL_c2=$TMP/c2.uuids" \
      "${logs[@]}" --allow-unlogged-scrapes 6
  stop_sink fcs; echo "  sink: $(sinkline fcs)"
}

scen_sink() {
  echo "== sink: kill -9 mid-stream (x2), restart"
  local db t; db=$(new_db gh_fs_$$); t=gh-fs-$UNIQ
  start_mock s1 64 41
  start_coll fsc "$t" --target "$URL_s1"
  start_sink fs1 "$db" "$t" "g-$t" --batch-timeout 2
  sleep "$(rand_between 5 8)"
  local n; n=$(sql "$db" "SELECT count(*) FROM gpu_metrics")
  echo "  injected: kill -9 of the sink with $n rows committed, a batch of up to 2 s open"
  kill9 fs1
  sleep 3
  start_sink fs2 "$db" "$t" "g-$t" --batch-timeout 2
  sleep "$(rand_between 8 12)"
  n=$(sql "$db" "SELECT count(*) FROM gpu_metrics")
  echo "  injected: kill -9 of the restarted sink with $n rows committed"
  kill9 fs2
  start_sink fs3 "$db" "$t" "g-$t" --batch-timeout 0.5
  fault_end "$db"
  ACTION="kill -9 of the sink twice mid-stream (open batches), restarted"
  sleep 3
  stop_coll fsc
  echo "  counted: $(counted fsc)"
  check "sink: the collector dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/fsc.log"
  check "sink: every (GPU, time) exactly once across two kill -9" \
    verify sink "$db" --target "$URL_s1=$TMP/s1.uuids" --log "$TMP/fsc.log"
  stop_sink fs3; echo "  sink (last run): $(sinkline fs3)"
}

scen_broker() {
  echo "== broker: kill -9 of the Kafka JVM mid-stream, restart on the same ports and data"
  local db t; db=$(new_db gh_fb_$$); t=gh-fb-$UNIQ
  start_mock b1 64 51
  start_coll fbc "$t" --target "$URL_b1"
  start_sink fb "$db" "$t" "g-$t" --batch-timeout 0.5
  sleep "$(rand_between 6 9)"
  local pid; pid=$(kafka_pid)
  echo "  injected: kill -9 of the broker (pid $pid), down for 10 s"
  kill -9 "$pid"
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$GH_KAFKA_DIR/broker.pid"
  sleep 10
  kafka_restart_same || die "the broker did not come back after kill -9"
  fault_end "$db"
  ACTION="kill -9 of the (single) Kafka broker mid-stream, down 10 s, restarted on its data"
  echo "  broker back"
  sleep 12
  stop_coll fbc
  echo "  counted: $(counted fbc)"
  check "broker: the collector dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/fbc.log"
  check "broker: every (GPU, time) exactly once across a broker kill -9" \
    verify broker "$db" --target "$URL_b1=$TMP/b1.uuids" --log "$TMP/fbc.log"
  stop_sink fb; echo "  sink: $(sinkline fb)"
}

pgctl() { if [ "$(id -u)" = 0 ]; then runuser -u "$GH_PG_USER" -- "$GH_PG_BIN/pg_ctl" "$@"; else "$GH_PG_BIN/pg_ctl" "$@"; fi; }

scen_postgres() {
  echo "== postgres: PostgreSQL stopped (fast shutdown) mid-stream for 10 s, then started"
  local db t; db=$(new_db gh_fp_$$); t=gh-fp-$UNIQ
  start_mock p1 64 61
  start_coll fpc "$t" --target "$URL_p1"
  start_sink fp "$db" "$t" "g-$t" --batch-timeout 0.5
  sleep "$(rand_between 5 8)"
  echo "  injected: PostgreSQL stopped with $(sql "$db" "SELECT count(*) FROM gpu_metrics") rows in"
  pgctl -D "$GH_PG_DIR/data" -m fast -w stop >/dev/null
  sleep 10
  pgctl -D "$GH_PG_DIR/data" -l "$GH_PG_DIR/postgresql.log" -w -t 60 start >/dev/null || die "PostgreSQL did not come back"
  fault_end "$db"
  ACTION="PostgreSQL stopped (fast shutdown) mid-stream for 10 s"
  echo "  PostgreSQL back"
  sleep 5
  stop_coll fpc
  echo "  counted: $(counted fpc)"
  check "postgres: the collector dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/fpc.log"
  check "postgres: every (GPU, time) exactly once across the restart" \
    verify postgres "$db" --target "$URL_p1=$TMP/p1.uuids" --log "$TMP/fpc.log"
  stop_sink fp; echo "  sink: $(sinkline fp)"
  check "postgres: the sink saw the database go away" grep -qE 'consumption paused|database back' "$TMP/fp.log"
}

scen_outage() {
  echo "== outage: broker stopped for $OUTAGE_S s (librdkafka's default message timeout is 300 s)"
  local dbA dbB dbC tA tB tC; dbA=$(new_db gh_foa_$$); dbB=$(new_db gh_fob_$$); dbC=$(new_db gh_foc_$$)
  tA=gh-foa-$UNIQ; tB=gh-fob-$UNIQ; tC=gh-foc-$UNIQ
  start_mock o1 16 71
  # B: 40 events in librdkafka + 40 in memory, no spool: 16 GPUs a second overflow it in 5 s
  start_coll foA "$tA" --target "$URL_o1"
  start_coll foB "$tB" --target "$URL_o1" --buffer-events 40 -X queue.buffering.max.messages=40
  # C: librdkafka gives up on a message after 30 s (the producer's default is never), well
  # inside the outage: what librdkafka times out must be produced again, not lost
  start_coll foC "$tC" --target "$URL_o1" -X message.timeout.ms=30000
  start_sink foa "$dbA" "$tA" "g-$tA" --batch-timeout 0.5
  start_sink fob "$dbB" "$tB" "g-$tB" --batch-timeout 0.5
  start_sink foc "$dbC" "$tC" "g-$tC" --batch-timeout 0.5
  sleep 8
  echo "  injected: broker stopped for $OUTAGE_S s; collector B bounded to 40+40 events, no spool"
  kafka_stop
  sleep "$OUTAGE_S"
  kafka_restart_same || die "the broker did not come back"
  fault_end "$dbA" "$dbB" "$dbC"
  echo "  broker back"
  drained() { grep 'collector: targets=' "$TMP/$1.log" | tail -1 | grep -qE 'buffered=[0-9]+/0/0'; }
  local i; for i in $(seq 1 120); do drained foA && drained foB && drained foC && break; sleep 1; done
  sleep 3
  stop_coll foA; stop_coll foB; stop_coll foC
  echo "  counted A: $(counted foA)"
  echo "  counted C: $(counted foC)"
  echo "  counted B: $(counted foB)"
  check "outage: A dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/foA.log"
  check "outage: C (30 s message timeout) dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/foC.log"
  check "outage: C's timed-out messages were produced again (retried > 0)" grep -qE 'stopped; .* retried=[1-9]' "$TMP/foC.log"
  ACTION="the same outage; collector C with librdkafka's message timeout set to 30 s (the producer re-produces what times out)"
  check "outage: C's every (GPU, time) exactly once across an outage 2.5 times its message timeout" \
    verify outage-C "$dbC" --target "$URL_o1=$TMP/o1.uuids" --log "$TMP/foC.log"
  local dB; dB=$(dropped_of foB)
  check "outage: B counted drops (its bound was passed)" test "${dB:-0}" -gt 0
  ACTION="broker stopped $OUTAGE_S s mid-stream; collector A with default bounds (the producer never times a message out)"
  check "outage: A's every (GPU, time) exactly once across the outage" \
    verify outage-A "$dbA" --target "$URL_o1=$TMP/o1.uuids" --log "$TMP/foA.log"
  ACTION="the same outage; collector B bounded to 40+40 events, no spool: loses exactly what it counts as dropped"
  check "outage/buffer: B misses exactly the $dB events it counted as dropped, nothing else" \
    verify outage-B "$dbB" --target "$URL_o1=$TMP/o1.uuids" --log "$TMP/foB.log" --lost "${dB:-0}"
  stop_sink foa; stop_sink fob; stop_sink foc
  echo "  sinks: A $(sinkline foa); B $(sinkline fob); C $(sinkline foc)"
}

scen_embedded() {
  echo "== embedded: --daemon's in-process broker, PostgreSQL stopped for $EMB_OUTAGE_S s"
  local db; db=$(new_db gh_fe_$$)
  start_mock e1 "$EMB_GPUS" 81
  # uncompressed batches: with lz4 ten minutes of 64 GPUs stay under the mock's 5 MiB a
  # partition (the old code lost nothing here); uncompressed they pass it, as a larger fleet
  # or a longer outage does compressed. 256 GPUs (1.3 KB an event: 336 KB/s) for 150 s offer
  # the broker the same 50 MB as 64 GPUs for 600 s, 2.4 times the 20 MiB its 4 partitions
  # keep, so the outage passes the mock's memory as before, in a quarter of the time.
  XDG_STATE_HOME="$TMP/state-fe" "$BIN" --daemon --target "$URL_e1" --db "$db" --interval 1 \
    --stats-interval 10 --log-level debug -X compression.codec=none >"$TMP/fe.log" 2>&1 &
  local d=$!
  PIDS+=($d)
  sleep 20
  echo "  injected: PostgreSQL stopped for $EMB_OUTAGE_S s with $(sql "$db" "SELECT count(*) FROM gpu_metrics") rows in"
  pgctl -D "$GH_PG_DIR/data" -m fast -w stop >/dev/null
  sleep "$EMB_OUTAGE_S"
  pgctl -D "$GH_PG_DIR/data" -l "$GH_PG_DIR/postgresql.log" -w -t 60 start >/dev/null || die "PostgreSQL did not come back"
  fault_end "$db"
  ACTION="--daemon with its in-process broker, $EMB_GPUS GPUs at 1 s uncompressed; PostgreSQL stopped $EMB_OUTAGE_S s (past the broker's 5 MiB a partition)"
  echo "  PostgreSQL back"
  # until the gate is open again and the sink has caught up
  local i l; for i in $(seq 1 300); do
    l=$(grep ' stats: ' "$TMP/fe.log" | tail -1)
    echo "$l" | grep -q ' held=0 ' && echo "$l" | grep -qE ' buffered=[0-9]{1,3} ' &&
      echo "$l" | grep -qE ' lag=[0-9]{1,3} ' && break
    sleep 1
  done
  sleep 12
  kill -TERM "$d"; wait "$d"; local rc=$?
  local fin; fin=$(grep -o 'daemon: stopped; .*' "$TMP/fe.log")
  echo "  counted: $fin"
  echo "  gate: $(grep -c 'broker: a partition of the in-process cluster holds' "$TMP/fe.log") holds logged"
  check "embedded: the daemon exits 0 (got $rc)" test "$rc" = 0
  check "embedded: no loss counted (dropped, refused, failed, forgotten by the broker)" \
    bash -c "echo '$fin' | grep -qE ' dropped=0 refused=0 failed=0 .* broker_lost=0 '"
  check "embedded: every (GPU, time) exactly once across the outage" \
    verify embedded "$db" --target "$URL_e1=$TMP/e1.uuids" --log "$TMP/fe.log"
}

scen_targets() {
  echo "== targets: one that hangs, one that returns garbage, two that return 100 MB"
  local db t; db=$(new_db gh_ft_$$); t=gh-ft-$UNIQ
  start_mock g1 8 81
  local m p
  for m in hang garbage huge huge-cl; do
    python3 "$BAD" 0 "$m" >"$TMP/bad-$m.log" 2>&1 & # port 0: the kernel picks it (bound_port)
    PIDS+=($!)
    p=$(bound_port "$TMP/bad-$m.log") || die "bad_exporter.py $m did not start: $(cat "$TMP/bad-$m.log")"
    eval "URL_${m//-/_}=http://127.0.0.1:$p/metrics"
  done
  for i in $(seq 1 50); do curl -s -m 0.2 -o /dev/null "$URL_garbage" && break; sleep 0.1; done
  start_coll ftc "$t" --target "$URL_g1" --target "$URL_hang" --target "$URL_garbage" \
    --target "$URL_huge" --target "$URL_huge_cl" --scrape-timeout 2 --metrics-listen 127.0.0.1:0
  local mport; mport=$(bound_port "$TMP/ftc.log" 'own metrics on ') || die "the collector did not start: $(tail -5 "$TMP/ftc.log")"
  start_sink ft "$db" "$t" "g-$t" --batch-timeout 0.5
  echo "  injected: --scrape-timeout 2, --max-body default (16 MiB), interval 1 s, for 20 s"
  sleep 20
  curl -fs "http://127.0.0.1:$mport/metrics" >"$TMP/ft.metrics" || bad "targets: no collector metrics"
  stop_coll ftc
  met() { awk -v k="$1{target=\"$2\"${3:-}}" '$1 == k {print $2}' "$TMP/ft.metrics"; }
  local u n
  for m in g1 hang garbage huge huge_cl; do
    eval "u=\$URL_$m"
    echo "  counted $m: ok=$(met gpuhealth_collector_scrapes_total "$u" ',result="ok"') failed=$(met gpuhealth_collector_scrapes_total "$u" ',result="failed"') too_large=$(met gpuhealth_collector_scrapes_too_large_total "$u")"
  done
  n=$(met gpuhealth_collector_scrapes_total "$URL_g1" ',result="ok"')
  check "targets: the good target kept its 1 s schedule (>= 17 scrapes in 20 s, got ${n:-0})" test "${n:-0}" -ge 17
  check "targets: the good target never failed" test "$(met gpuhealth_collector_scrapes_total "$URL_g1" ',result="failed"')" = 0
  for m in hang garbage huge huge_cl; do
    eval "u=\$URL_$m"
    n=$(met gpuhealth_collector_scrapes_total "$u" ',result="failed"')
    check "targets: $m failed and was counted (failed=${n:-0})" test "${n:-0}" -ge 2
    check "targets: $m never succeeded" test "$(met gpuhealth_collector_scrapes_total "$u" ',result="ok"')" = 0
  done
  check "targets: hang timed out" grep -qE "target $URL_hang failed: .*[Tt]ime" "$TMP/ftc.log"
  check "targets: garbage rejected as not Prometheus" grep -qE "target $URL_garbage failed: .*(no Prometheus samples|no GPU)" "$TMP/ftc.log"
  for m in huge huge_cl; do
    eval "u=\$URL_$m"
    n=$(met gpuhealth_collector_scrapes_too_large_total "$u")
    check "targets: $m aborted by --max-body, every failure counted as too large ($n)" \
      test "${n:-0}" -ge 2 -a "${n:-0}" = "$(met gpuhealth_collector_scrapes_total "$u" ',result="failed"')"
  done
  check "targets: huge was aborted mid-transfer" grep -q 'client aborted after' "$TMP/bad-huge.log"
  python3 - "$TMP/ftc.log" "$URL_g1" <<'PY' || bad "targets: the good target's scrape schedule has a hole"
import datetime, re, sys
ts = sorted(datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
            for m in re.finditer(r"scraped " + re.escape(sys.argv[2]) + r" at (\S+Z):", open(sys.argv[1]).read()))
gap = max(b - a for a, b in zip(ts, ts[1:]))
print(f"  good target: {len(ts)} scrapes, largest gap {gap:.2f} s (the hanging target takes 2 s each)")
sys.exit(0 if gap < 1.6 else 1)
PY
  ACTION="beside a good exporter: one that hangs, one returning garbage, two returning 100 MB, for 20 s"
  check "targets: the good target's every (GPU, time) exactly once, nothing from the bad ones" \
    verify targets "$db" --target "$URL_g1=$TMP/g1.uuids" --log "$TMP/ftc.log"
  stop_sink ft; echo "  sink: $(sinkline ft)"
}

# privpg_open PGDATA / privpg_close: the console's private database alone, on its data
# directory (passed as fd 3, as the console does), as its owner; conninfo in PRIV_CI
privpg_open() {
  local pgdata=$1 owner run=() i
  owner=$(stat -c %U "$pgdata")
  # setpriv execs (runuser would fork, and a signal to it would not reach the server)
  [ "$(id -u)" = 0 ] && [ "$owner" != root ] && run=(setpriv "--reuid=$owner" "--regid=$owner" --init-groups)
  (exec 3<"$pgdata"; exec "${run[@]}" "$GH_PG_BIN/postgres" -D /proc/self/fd/3 -c listen_addresses= \
    -c unix_socket_directories=/proc/self/fd/3 -c unix_socket_permissions=0700) >>"$TMP/privpg-reopen.log" 2>&1 &
  PRIV_PID=$!; PIDS+=($!)
  PRIV_CI="host=$pgdata user=gpuhealth dbname=gpuhealth"
  for i in $(seq 100); do psql -X -q "$PRIV_CI" -c 'SELECT 1' >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
privpg_close() { kill -INT "$PRIV_PID" 2>/dev/null; wait "$PRIV_PID" 2>/dev/null; }
descendants() { local k; for k in $(ps -o pid= --ppid "$1" | tr -d ' '); do echo "$k"; descendants "$k"; done; }

scen_hangup() {
  echo "== hangup: the console's terminal hangs up (tmux kill-session) mid-stream"
  command -v tmux >/dev/null || die "tmux is not installed (scripts/install-deps.sh --test)"
  start_mock h1 64 91
  local d="$TMP/hangup" sock="gh-fh-$UNIQ" pane con="" i rows=0 bin
  bin=$(realpath "$BIN") # run.sh changes directory
  mkdir -p "$d"
  # the wrapper survives the hangup (trap) to record the exit status; the console gets it
  cat >"$d/run.sh" <<RUN
cd "$d"
trap : HUP
env HOME="$d" XDG_STATE_HOME="$d/state" LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color \
  GPUHEALTH_UI_FAKE= "$bin" tui --target "$URL_h1" --interval 1 --batch-timeout 0.5 \
  --refresh 0.5 --log-level debug 2>"$d/stderr.txt"
echo \$? >"$d/exit"
RUN
  tmux -L "$sock" new-session -d -x 100 -y 30 "bash $d/run.sh" || die "hangup: tmux did not start"
  PIDS+=("$(tmux -L "$sock" display-message -p '#{pid}')")
  pane=$(tmux -L "$sock" display-message -p '#{pane_pid}')
  for i in $(seq 50); do con=$(ps -o pid= --ppid "$pane" | tr -d ' ' | head -1); [ -n "$con" ] && break; sleep 0.1; done
  [ -n "$con" ] || die "hangup: the console did not start"
  PIDS+=("$con")
  local pgdata="$d/state/gpuhealth/pg" log="$d/state/gpuhealth/console.log"
  for i in $(seq 240); do
    rows=$(psql -X -At "host=$pgdata user=gpuhealth dbname=gpuhealth" -c 'SELECT count(*) FROM gpu_metrics' 2>/dev/null) || rows=0
    [ "${rows:-0}" -gt 0 ] && break
    sleep 0.5
  done
  [ "${rows:-0}" -gt 0 ] || die "hangup: no rows in the console's private database after 120 s"
  local master procs left t0 t1
  master=$(head -1 "$pgdata/postmaster.pid")
  sleep "$(rand_between 4 8)"
  procs=$(printf '%s\n' "$con" $(descendants "$con") | sort -un)
  PIDS+=($procs)
  echo "  injected: tmux kill-session with $(grep -c 'collector: scraped ' "$log") scrapes logged (console $con, private postgres $master)"
  t0=$EPOCHREALTIME
  tmux -L "$sock" kill-session
  while :; do
    t1=$EPOCHREALTIME
    left=$(for p in $procs; do kill -0 "$p" 2>/dev/null && echo "$p"; done)
    [ -z "$left" ] && break
    [ $(( ${t1/./} - ${t0/./} )) -lt 3000000 ] || break
    sleep 0.05
  done
  tmux -L "$sock" kill-server 2>/dev/null; rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock"
  check "hangup: no console and no private postgres left within 3 s ($(( (${t1/./} - ${t0/./}) / 1000 )) ms; left: $(echo $left))" test -z "$left"
  for i in $(seq 30); do [ -s "$d/exit" ] && break; sleep 0.1; done
  check "hangup: exit status 129 (got $(cat "$d/exit" 2>/dev/null))" test "$(cat "$d/exit" 2>/dev/null)" = 129
  check "hangup: the private PostgreSQL was stopped in order" grep -q 'database: private PostgreSQL stopped' "$log"
  echo "  counted: $(grep -o 'console: stopped; .*' "$log")"
  check "hangup: the console's collector dropped nothing" grep -qE 'console: stopped; .* dropped=0 ' "$log"
  privpg_open "$pgdata" || die "hangup: the private database does not open again (log: $TMP/privpg-reopen.log)"
  ACTION="the console's terminal hung up (tmux kill-session) mid-stream; its private database reopened"
  check "hangup: the private database holds every logged (GPU, time) exactly once" \
    verify hangup "$PRIV_CI" --target "$URL_h1=$TMP/h1.uuids" --log "$log"
  privpg_close
}

# inject_event TOPIC KEY FILE: one keyed event from FILE (its whole content) into TOPIC, up to 2 MB
inject_event() {
  { printf '%s|' "$2"; cat "$3"; printf '\n'; } >"$TMP/inject.line"
  kcat -b "$KAFKA" -P -t "$1" -K'|' -X message.max.bytes=2000000 -l "$TMP/inject.line" || die "kcat could not inject into $1"
}

scen_oversized() {
  echo "== oversized: an invalid event of 1 MB (over the dead-letter producer's message.max.bytes) mid-stream"
  local db t; db=$(new_db gh_fz_$$); t=gh-fz-$UNIQ
  start_mock z1 32 91
  start_coll fzc "$t" --target "$URL_z1"
  start_sink fz "$db" "$t" "g-$t" --batch-timeout 0.5
  sleep "$(rand_between 4 6)"
  python3 -c 'import json,sys; sys.stdout.write(json.dumps({"schema_version": 1, "time": "not a time", "gpu": {"uuid": "GPU-oversized"}, "pad": "x" * 1020000}))' >"$TMP/fz.json"
  inject_event "$t" "$(head -1 "$TMP/z1.uuids")" "$TMP/fz.json"
  echo "  injected: one invalid event of $(wc -c <"$TMP/fz.json") bytes keyed by $(head -1 "$TMP/z1.uuids"), between its real samples"
  fault_end "$db"
  ACTION="an invalid event of 1 MB injected mid-stream (a dead letter, cut to 64 KiB)"
  sleep 8
  stop_coll fzc
  echo "  counted: $(counted fzc)"
  check "oversized: the collector dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/fzc.log"
  check "oversized: every (GPU, time) exactly once, the ones after the dead letter too" \
    verify oversized "$db" --target "$URL_z1=$TMP/z1.uuids" --log "$TMP/fzc.log"
  stop_sink fz; echo "  sink: $(sinkline fz)"
  check "oversized: counted as one dead letter" grep -qE 'stopped after .* dead_letters=1 ' "$TMP/fz.log"
  kcat -b "$KAFKA" -C -t "$t-dlq" -e -q -f '%h|%S\n' >"$TMP/fz-dlq.out" 2>/dev/null
  check "oversized: it left as a dead letter cut to 65536 bytes, with its size" \
    grep -qE "gpuhealth.original_size=$(wc -c <"$TMP/fz.json"),.*gpuhealth.payload_cut=true\|65536$" "$TMP/fz-dlq.out"
  check "oversized: no batch was retried" bash -c "! grep -qE 'retrying a batch|last_error=dead-letter' '$TMP/fz.log'"
}

scen_future() {
  echo "== future: one event dated 9999 mid-stream, to the sink and the scorer"
  local db t; db=$(new_db gh_ff_$$); t=gh-ff-$UNIQ
  start_mock f1 16 92
  start_coll ffc "$t" --target "$URL_f1"
  start_sink ff "$db" "$t" "g-$t" --batch-timeout 0.5
  # --health-row-interval 0: a health row per sample, so "kept scoring" shows in the rows
  "$BIN" scorer --brokers "$KAFKA" --topic "$t" --scorer-group "gs-$t" --db "$db" --alerts-topic '' \
    --interval 1 --batch-timeout 0.5 --stats-interval 1 --health-row-interval 0 \
    -X session.timeout.ms=6000 >"$TMP/ffs.log" 2>&1 &
  PIDS+=($!); PID_ffs=$!
  sleep "$(rand_between 4 6)"
  local victim; victim=$(head -1 "$TMP/f1.uuids")
  "$BIN" collector --target "$URL_f1" --output - --once 2>/dev/null | grep -F "\"$victim\"" \
    | python3 -c 'import json,sys; e=json.loads(sys.stdin.readline()); e["time"]="9999-12-31T23:59:59.000Z"; sys.stdout.write(json.dumps(e))' >"$TMP/ff.json"
  inject_event "$t" "$victim" "$TMP/ff.json"
  local at; at=$(date -u +%FT%TZ)
  echo "  injected: a sample of $victim dated 9999-12-31 at $at, between its real samples"
  fault_end "$db"
  ACTION="one sample dated 9999 injected mid-stream (a dead letter in the sink and the scorer)"
  sleep 8
  stop_coll ffc
  echo "  counted: $(counted ffc)"
  check "future: the collector dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/ffc.log"
  check "future: every (GPU, time) exactly once, none dated 9999" \
    verify future "$db" --target "$URL_f1=$TMP/f1.uuids" --log "$TMP/ffc.log"
  stop_sink ff; echo "  sink: $(sinkline ff)"
  check "future: the sink counted one dead letter" grep -qE 'stopped after .* dead_letters=1 ' "$TMP/ff.log"
  sleep 2
  kill -TERM "$PID_ffs"; wait "$PID_ffs" 2>/dev/null
  echo "  scorer: $(grep -o 'scorer: stopped; .*' "$TMP/ffs.log" | cut -c1-200)"
  check "future: the scorer refused it as a dead letter (bad_events=1)" grep -qE 'scorer: stopped; .*bad_events=1 ' "$TMP/ffs.log"
  check "future: the scorer kept scoring $victim after it" \
    test "$(sql "$db" "SELECT count(*) > 0 FROM gpu_health_scores WHERE gpu_key = '$victim' AND time > '$at'")" = t
  check "future: no score dated in the future, no GPU 'fell off the bus'" \
    test "$(sql "$db" "SELECT count(*) FROM gpu_health_scores WHERE time > now() + interval '5 minutes' OR reasons::text LIKE '%fell_off_bus%'")" = 0
}

# ------------------------------------------------------------------------------------------
# A durable and highly available database (issue 23): standby, immediate

# verify_result SCENARIO ACTION RECOVER_S LABEL DB [verify.py args]: verify (which appends the
# scenario's result line to $RESULTS, the format of tests/faults/reliability.py), with this
# scenario's own measure of the time to recover (seconds from the fault to the first row
# committed after it) in the line's recover_s field
verify_result() {
  local scen=$1 action=$2 rec=$3 l=$4 d=$5 rc=0; shift 5
  ACTION="$action" verify "$scen" "$d" "$@" || rc=1
  python3 - "$RESULTS" "$scen" "$rec" <<'PY' || rc=1
import sys
path, scen, rec = sys.argv[1:]
lines = open(path).read().splitlines()
for i in range(len(lines) - 1, -1, -1):
    f = lines[i].split("\t")
    if f[0] == scen:
        f[6] = rec or "-"
        lines[i] = "\t".join(f)
        break
else:
    sys.exit("no result line for " + scen + " in " + path)
open(path, "w").write("\n".join(lines) + "\n")
PY
  return $rc
}
# start_scorer_on NAME CONNINFO TOPIC: a scorer writing a health row per sample
start_scorer_on() {
  "$BIN" scorer --brokers "$KAFKA" --topic "$3" --scorer-group "gs-$3" --db "$2" --alerts-topic '' \
    --interval 1 --batch-timeout 0.5 --stats-interval 1 --health-row-interval 0 \
    -X session.timeout.ms=6000 >"$TMP/$1.log" 2>&1 &
  PIDS+=($!); eval "PID_$1=$!"
}
# scored_all DB: every row of gpu_metrics has its health row and no health row lacks its sample
# (the scorer writes one per sample here); waits up to 60 s for the scorer to catch up
scored_all() {
  local i n=
  for i in $(seq 1 120); do
    n=$(sql "$1" "SELECT count(*) FROM gpu_metrics m FULL JOIN gpu_health_scores h USING (gpu_key, time) WHERE m.gpu_key IS NULL OR h.gpu_key IS NULL" 2>/dev/null)
    [ "$n" = 0 ] && return 0
    sleep 0.5
  done
  echo "  $n (GPU, time) in gpu_metrics or gpu_health_scores without the other" >&2
  return 1
}
# first_row_after DB N T0: seconds from T0 (epoch, fractional) until gpu_metrics holds more
# than N rows (polled every 0.2 s, up to 120 s; prints -1 then)
first_row_after() {
  local i n
  for i in $(seq 1 600); do
    n=$(sql "$1" "SELECT count(*) FROM gpu_metrics" 2>/dev/null || echo 0)
    [ "${n:-0}" -gt "$2" ] && { python3 -c "import time; print(round(time.time() - $3, 1))"; return 0; }
    sleep 0.2
  done
  echo -1
}

# ha_failover SCENARIO: a primary of its own with a synchronous streaming standby; the sink and
# the scorer write through a multi-host --db; mid-stream, standby: the primary crashes (pg_ctl
# stop -m immediate) and the standby is promoted; switchover: the primary is fenced read-only
# (default_transaction_read_only = on, reloaded: the open sessions fail with SQLSTATE 25006) and
# stays up, and the standby is promoted. Every (GPU, time) exactly once on the new primary,
# every sample scored there.
ha_failover() {
  local sc=$1 p=f${1:0:2} d a b pa pb name=gh_f${1:0:2}_$$ t=gh-f${1:0:2}-$UNIQ ci n rec what
  d=$(mktemp -d "$GH_SVC_DIR/ha.XXXXXX"); chmod 755 "$d"; a=$d/a b=$d/b
  # a COMMIT returns once the standby has the WAL on disk: a crash of the primary then loses
  # nothing it confirmed (with asynchronous replication it may, and no client can tell)
  pa=$(pg_server_init "$a" "synchronous_commit = on") || die "$sc: cannot start the primary"
  local pm_a pm_b; pm_a=$(head -1 "$a/data/postmaster.pid")
  PIDS+=("$pm_a") # (a failed run leaves no server behind)
  sql "$(pg_server_ci "$a")" "CREATE DATABASE $name" >/dev/null || die "$sc: cannot create $name"
  "$BIN" db migrate --db "$(pg_server_ci "$a" "$name")" >"$TMP/migrate-$p.log" 2>&1 || die "$sc: migrate failed: $(cat "$TMP/migrate-$p.log")"
  pb=$(pg_standby_start "$pa" "$b") || die "$sc: pg_basebackup/start of the standby failed"
  pm_b=$(head -1 "$b/data/postmaster.pid"); PIDS+=("$pm_b")
  # synchronous from now on (set before the standby exists, every COMMIT would wait for it)
  sql "$(pg_server_ci "$a")" "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
  sql "$(pg_server_ci "$a")" "SELECT pg_reload_conf()" >/dev/null
  local i; for i in $(seq 1 100); do
    [ "$(sql "$(pg_server_ci "$a")" "SELECT string_agg(state || '/' || sync_state, ',') FROM pg_stat_replication")" = streaming/sync ] && break
    sleep 0.2
  done
  check "$sc: streaming and synchronous before the fault" \
    test "$(sql "$(pg_server_ci "$a")" "SELECT string_agg(state || '/' || sync_state, ',') FROM pg_stat_replication")" = streaming/sync
  check "$sc: the standby is in recovery (read-only)" test "$(sql "$(pg_server_ci "$b")" "SELECT pg_is_in_recovery()")" = t
  ci="host=127.0.0.1,127.0.0.1 port=$pa,$pb user=postgres dbname=$name target_session_attrs=read-write connect_timeout=5"
  echo "  primary 127.0.0.1:$pa, standby 127.0.0.1:$pb; --db '$ci'"
  start_mock ${p}m 256 101
  start_coll ${p}c "$t" --target "$(eval echo "\$URL_${p}m")"
  start_sink ${p}k "$ci" "$t" "g-$t" --batch-timeout 0.5
  start_scorer_on ${p}s "$ci" "$t"
  sleep "$(rand_between 8 11)"
  local t0; t0=$(date +%s.%N)
  if [ "$sc" = standby ]; then
    pg_server_stop "$a" immediate || die "$sc: the primary did not stop"
    what="primary crashed (pg_ctl stop -m immediate)"
  else
    sql "$(pg_server_ci "$a")" "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
    sql "$(pg_server_ci "$a")" "SELECT pg_reload_conf()" >/dev/null
    what="primary fenced read-only (default_transaction_read_only = on, reloaded; it stays up)"
    sleep 1 # every write on it fails now; what it committed is on the standby (synchronous)
  fi
  n=$(sql "$(pg_server_ci "$b" "$name")" "SELECT count(*) FROM gpu_metrics")
  pg_server_promote "$b" || die "$sc: promote failed"
  echo "  injected: $what with $n rows on the standby, standby promoted"
  rec=$(first_row_after "$(pg_server_ci "$b" "$name")" "$n" "$t0")
  echo "  first row on the new primary $rec s after the fault"
  sleep 8
  stop_coll ${p}c
  echo "  counted: $(counted ${p}c)"
  check "$sc: the collector dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/${p}c.log"
  check "$sc: every (GPU, time) exactly once on the new primary" \
    verify_result "$sc" "$what, synchronous standby promoted; sink and scorer on host=A,B target_session_attrs=read-write" \
      "$rec" "$sc" "$(pg_server_ci "$b" "$name")" --target "$(eval echo "\$URL_${p}m")=$TMP/${p}m.uuids" --log "$TMP/${p}c.log"
  check "$sc: every sample scored exactly once on the new primary" scored_all "$(pg_server_ci "$b" "$name")"
  [ "$sc" = switchover ] && check "$sc: nothing written to the fenced old primary after the fence" \
    test "$(sql "$(pg_server_ci "$a" "$name")" "SELECT count(*) FROM gpu_metrics")" -le "$n"
  stop_sink ${p}k; echo "  sink: $(sinkline ${p}k)"
  kill -TERM "$(eval echo "\$PID_${p}s")"; wait "$(eval echo "\$PID_${p}s")" 2>/dev/null
  echo "  scorer: $(grep -o 'scorer: stopped; .*' "$TMP/${p}s.log" | cut -c1-200)"
  check "$sc: no dead letter in the sink" grep -qE 'stopped after .* dead_letters=0 ' "$TMP/${p}k.log"
  check "$sc: no bad event in the scorer" grep -qE 'scorer: stopped; .*bad_events=0 ' "$TMP/${p}s.log"
  pg_server_stop "$a" immediate; pg_server_stop "$b" fast # (the old primary is discarded)
  PIDS=("${PIDS[@]/#$pm_a/}"); PIDS=("${PIDS[@]/#$pm_b/}") # gone: no kill -9 of a reused pid at exit
  rm -rf "$d"
}

scen_standby() {
  echo "== standby: the primary crashes mid-stream, its synchronous streaming standby is promoted"
  ha_failover standby
}

scen_switchover() {
  echo "== switchover: the primary is fenced read-only mid-stream (SQLSTATE 25006 in the open sessions), its synchronous standby promoted"
  ha_failover switchover
}

scen_immediate() {
  echo "== immediate: PostgreSQL restarted with pg_ctl stop -m immediate under load, sink and scorer writing"
  local db t; db=$(new_db gh_fim_$$); t=gh-fim-$UNIQ
  # A crash keeps what was committed only with synchronous_commit on (the default a user has);
  # this suite's server runs with it off for speed, where a crash may take the last ~200 ms of
  # acknowledged commits (the scorer's last batch once, its offsets already stored): the
  # scenario's claim is about the pipeline on a server that keeps its promises.
  sql "$db" "ALTER DATABASE $(sed -n 's/.*dbname=\([^ ]*\).*/\1/p' <<<"$db") SET synchronous_commit = on" >/dev/null
  start_mock im1 512 111
  start_coll fimc "$t" --target "$URL_im1"
  start_sink fim "$db" "$t" "g-$t" --batch-timeout 0.5
  start_scorer_on fims "$db" "$t"
  sleep "$(rand_between 8 11)"
  local n t0 rec
  t0=$(date +%s.%N)
  pgctl -D "$GH_PG_DIR/data" -m immediate -w stop >/dev/null
  sleep 3
  pgctl -D "$GH_PG_DIR/data" -l "$GH_PG_DIR/postgresql.log" -w -t 60 start >/dev/null || die "PostgreSQL did not come back"
  n=$(sql "$db" "SELECT count(*) FROM gpu_metrics")
  echo "  injected: PostgreSQL stopped -m immediate, down 3 s, started (crash recovery); $n rows after recovery"
  rec=$(first_row_after "$db" "$n" "$t0")
  echo "  first new row $rec s after the crash"
  sleep 8
  stop_coll fimc
  echo "  counted: $(counted fimc)"
  check "immediate: the collector dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/fimc.log"
  check "immediate: every (GPU, time) exactly once across the crash" \
    verify_result immediate "PostgreSQL stopped -m immediate under load (512 GPUs at 1 s), 3 s down, crash recovery; sink and scorer writing" \
      "$rec" immediate "$db" --target "$URL_im1=$TMP/im1.uuids" --log "$TMP/fimc.log"
  check "immediate: every sample scored exactly once" scored_all "$db"
  stop_sink fim; echo "  sink: $(sinkline fim)"
  kill -TERM "$PID_fims"; wait "$PID_fims" 2>/dev/null
  echo "  scorer: $(grep -o 'scorer: stopped; .*' "$TMP/fims.log" | cut -c1-200)"
  check "immediate: no dead letter in the sink" grep -qE 'stopped after .* dead_letters=0 ' "$TMP/fim.log"
  check "immediate: no bad event in the scorer" grep -qE 'scorer: stopped; .*bad_events=0 ' "$TMP/fims.log"
}
# ------------------------------------------------------------------------------------------ (issue 23 ends)

# The replicated cluster (issue 23): three KRaft nodes (scripts/services.sh
# kafka_cluster_start), topics made by `gpuhealth kafka init` with replication factor 3 and
# min.insync.replicas=2. Each scenario has its own topic, database, exporter(s), collector(s)
# and sink(s) on the cluster; each ends with every logged (GPU, time) in gpu_metrics exactly
# once and every sink's lag back to 0.
kc_up() {
  [ -n "${GH_KC_BROKERS:-}" ] && return 0
  kafka_cluster_start || die "the 3-node Kafka cluster did not start (logs in $GH_SVC_DIR/kcluster)"
  KC_STARTED=1
}
# kc_begin NAME: a database and a topic made by kafka init; sets KDB and KT
kc_begin() {
  KDB=$(new_db "gh_${1//-/_}_$$"); KT=gh-$1-$UNIQ
  "$BIN" kafka init --brokers "$GH_KC_BROKERS" --topic "$KT" --dlq-topic "$KT-dlq" --alerts-topic '' \
    >"$TMP/$1-init.out" 2>&1
  check "$1: kafka init made $KT with replication factor 3, min.insync.replicas=2" \
    grep -q "topic $KT created: 4 partitions, replication factor 3, min.insync.replicas=2" "$TMP/$1-init.out"
}
# kc_meta TOPIC: "partition leader isr-count end-offset" per partition
kc_meta() {
  local q=() p; for p in 0 1 2 3; do q+=(-t "$1:$p:-1"); done
  kcat -b "$GH_KC_BROKERS" -L -t "$1" -J 2>/dev/null >"$TMP/meta.json"
  kcat -b "$GH_KC_BROKERS" -Q "${q[@]}" 2>/dev/null >"$TMP/offsets.txt"
  python3 - "$TMP/meta.json" "$TMP/offsets.txt" <<'PY'
import json, re, sys
t = json.load(open(sys.argv[1]))["topics"][0]
off = {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"\[(\d+)\] offset (\d+)", open(sys.argv[2]).read())}
for p in sorted(t["partitions"], key=lambda p: p["partition"]):
    print(p["partition"], p["leader"], len(p["isrs"]), off.get(p["partition"], -1))
PY
}
kc_busiest_leader() { kc_meta "$1" | sort -k4 -n | tail -1 | awk '{print $2}'; }
# kc_wait_isr TOPIC: until every partition has its 3 replicas in sync (60 s)
kc_wait_isr() {
  local i; for i in $(seq 1 120); do
    [ "$(kc_meta "$1" | awk '$3 == 3' | wc -l)" = 4 ] && return 0; sleep 0.5
  done; return 1
}
# lag_flat SINK...: each sink's newest stats line says lag=0
lag_flat() { local x; for x in "$@"; do grep ' lag=' "$TMP/$x.log" | tail -1 | grep -q ' lag=0 ' || return 1; done; }
# kc_finish LABEL COLLECTOR-LOGS SINKS [verify args]: after the collectors stopped: the sinks'
# lag back to 0 (60 s), then the database against the ground truth
kc_finish() {
  local l=$1 sinks=$2 i; shift 2
  for i in $(seq 1 120); do lag_flat $sinks && break; sleep 0.5; done
  check "$l: every sink's lag back to 0 ($(for x in $sinks; do grep -o ' lag=[^ ]*' "$TMP/$x.log" | tail -1; done | tr '\n' ' '))" lag_flat $sinks
  check "$l: every (GPU, time) exactly once" verify "$l" "$KDB" "$@"
  local x; for x in $sinks; do stop_sink "$x"; echo "  sink $x: $(sinkline "$x")"; done
}
nodrop() { check "$2: collector $1 dropped nothing" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/$1.log"; }

# a stream on the cluster: one exporter of 64 GPUs, one collector (spool), one sink
kc_stream() {
  local KAFKA=$GH_KC_BROKERS
  start_mock "$1" 64 "$2"
  start_coll "${1}c" "$KT" --target "$(eval echo "\$URL_$1")" --spool-dir "$TMP/spool-$1"
  start_sink "${1}s" "$KDB" "$KT" "g-$KT" --batch-timeout 0.5
}
kc_stream_end() { # kc_stream_end NAME LABEL
  local KAFKA=$GH_KC_BROKERS
  stop_coll "${1}c"; echo "  counted: $(counted "${1}c")"
  nodrop "${1}c" "$2"
  kc_finish "$2" "${1}s" --target "$(eval echo "\$URL_$1")=$TMP/$1.uuids" --log "$TMP/${1}c.log"
}

scen_kc_leader() {
  echo "== kc-leader: kill -9 of the leader of the busiest partition mid-stream (3-node cluster)"
  kc_up; kc_begin kc-leader; kc_stream kl 111
  sleep "$(rand_between 6 9)"
  local n; n=$(kc_busiest_leader "$KT")
  echo "  injected: kill -9 of node $n, leader of the busiest partition ($(kc_meta "$KT" | tr '\n' ';')), down 10 s"
  kc_kill9 "$n"; sleep 10
  kc_start "$n" || die "node $n did not come back"
  fault_end "$KDB"
  ACTION="3-node cluster (RF 3, min.insync 2): kill -9 of the leader of the busiest partition mid-stream, down 10 s"
  sleep 8
  kc_stream_end kl kc-leader
}

scen_kc_rolling() {
  echo "== kc-rolling: a rolling restart of the three nodes (controlled shutdown, each back in sync before the next)"
  kc_up; kc_begin kc-rolling; kc_stream kr 112
  sleep 6
  local n
  for n in 1 2 3; do
    echo "  injected: node $n stopped (SIGTERM) and started again"
    kc_stop "$n"; kc_start "$n" || die "node $n did not come back"
    kc_wait_isr "$KT" || bad "kc-rolling: $KT not back in sync after node $n"
  done
  fault_end "$KDB"
  ACTION="3-node cluster: rolling restart of all three nodes mid-stream (each back in sync before the next)"
  sleep 6
  kc_stream_end kr kc-rolling
}

scen_kc_controller() {
  echo "== kc-controller: kill -9 of the active controller mid-stream"
  kc_up; kc_begin kc-controller; kc_stream kk 113
  sleep "$(rand_between 6 9)"
  local n m i; n=$(kc_active_controller)
  [ -n "$n" ] || die "kc-controller: no active controller found"
  echo "  injected: kill -9 of node $n, the active controller, down 10 s"
  kc_kill9 "$n"
  for i in $(seq 1 40); do m=$(kc_active_controller); [ -n "$m" ] && [ "$m" != "$n" ] && break; sleep 0.25; done
  check "kc-controller: another node became the active controller ($n -> $m)" test -n "$m" -a "$m" != "$n"
  sleep 10
  kc_start "$n" || die "node $n did not come back"
  fault_end "$KDB"
  ACTION="3-node cluster: kill -9 of the active controller (a broker too) mid-stream, down 10 s"
  sleep 8
  kc_stream_end kk kc-controller
}

scen_kc_sigstop() {
  echo "== kc-sigstop: one node hung (SIGSTOP) for ${KC_HANG_S:=60} s, then SIGCONT"
  kc_up; kc_begin kc-sigstop; kc_stream kh 114
  sleep 6
  local n; n=$(kc_busiest_leader "$KT")
  echo "  injected: SIGSTOP of node $n (leader of the busiest partition) for $KC_HANG_S s"
  kill -STOP "$(kc_pid "$n")"; sleep "$KC_HANG_S"; kill -CONT "$(kc_pid "$n")"
  fault_end "$KDB"
  ACTION="3-node cluster: SIGSTOP of the busiest partition's leader for $KC_HANG_S s (hung, not dead), then SIGCONT"
  kc_wait_isr "$KT" || bad "kc-sigstop: $KT not back in sync"
  sleep 6
  kc_stream_end kh kc-sigstop
}

scen_kc_two_down() {
  echo "== kc-two-down: two of the three nodes down (kill -9) for ${KC_DOWN_S:=60} s: below min.insync.replicas"
  kc_up; kc_begin kc-two-down; kc_stream kd 115
  sleep 6
  local c a b; c=$(kc_active_controller); a=$c; b=$(( c % 3 + 1 ))
  echo "  injected: kill -9 of nodes $a (the active controller) and $b for $KC_DOWN_S s"
  kc_kill9 "$a"; kc_kill9 "$b"
  sleep 20
  echo "  while down: $(grep 'collector: targets=' "$TMP/kdc.log" | tail -1 | grep -o 'delivered=.*')"
  sleep $(( KC_DOWN_S - 20 ))
  kc_start "$a" nowait; kc_start "$b" nowait; kc_wait_up 1 2 3 || die "nodes $a, $b did not come back"
  fault_end "$KDB"
  ACTION="3-node cluster: two of three nodes (the active controller among them) killed for $KC_DOWN_S s; the producer waits and buffers"
  kc_wait_isr "$KT" || bad "kc-two-down: $KT not back in sync"
  sleep 6
  kc_stream_end kd kc-two-down
}

scen_kc_shards() {
  echo "== kc-shards: three collectors sharded 3 ways over six exporters; one killed (-9) and restarted"
  kc_up; kc_begin kc-shards
  local KAFKA=$GH_KC_BROKERS i list=() tg=() logs=()
  for i in 1 2 3 4 5 6; do start_mock "ks$i" 16 $((120 + i)); list+=(--target "$(eval echo "\$URL_ks$i")"); tg+=(--target "$(eval echo "\$URL_ks$i")=$TMP/ks$i.uuids"); done
  for i in 0 1 2; do start_coll "ksc$i" "$KT" "${list[@]}" --shard "$i/3" --spool-dir "$TMP/spool-ks$i"; done
  start_sink kss "$KDB" "$KT" "g-$KT" --batch-timeout 0.5
  sleep "$(rand_between 6 9)"
  echo "  injected: kill -9 of collector shard 1/3 ($(scrapes_of ksc1) scrapes logged), restarted on its spool after 5 s"
  kill9 ksc1; mv "$TMP/ksc1.log" "$TMP/ksc1a.log"; sleep 5
  start_coll ksc1 "$KT" "${list[@]}" --shard 1/3 --spool-dir "$TMP/spool-ks1"
  fault_end "$KDB"
  ACTION="3 collectors sharded 3 ways (--shard I/3) over 6 exporters on the cluster; one killed -9 mid-stream, restarted after 5 s"
  sleep 8
  for i in 0 1 2; do stop_coll "ksc$i"; nodrop "ksc$i" kc-shards; done
  python3 - "$TMP" <<'PY' || bad "kc-shards: the shards' targets overlap or leave a gap"
import re, sys
d = sys.argv[1]
got = {}
for i, logs in enumerate([["ksc0.log"], ["ksc1a.log", "ksc1.log"], ["ksc2.log"]]):
    got[i] = set()
    for f in logs:
        got[i] |= set(re.findall(r"collector: scraped (\S+) at ", open(f"{d}/{f}").read()))
allu = set().union(*got.values())
over = sum(len(v) for v in got.values()) - len(allu)
print(f"  shards scraped {[len(got[i]) for i in range(3)]} targets: {len(allu)} in all, {over} in two shards")
sys.exit(0 if len(allu) == 6 and over == 0 else 1)
PY
  kc_finish kc-shards kss "${tg[@]}" --log "$TMP/ksc0.log" --log "$TMP/ksc1a.log" --log "$TMP/ksc1.log" --log "$TMP/ksc2.log" \
    --allow-unlogged-scrapes 1
}

scen_kc_sinks() {
  echo "== kc-sinks: two sinks in one group; one killed (-9), the other takes its partitions"
  kc_up; kc_begin kc-sinks
  local KAFKA=$GH_KC_BROKERS
  start_mock kg 64 116
  start_coll kgc "$KT" --target "$URL_kg" --spool-dir "$TMP/spool-kg"
  start_sink kgs1 "$KDB" "$KT" "g-$KT" --batch-timeout 2
  start_sink kgs2 "$KDB" "$KT" "g-$KT" --batch-timeout 2
  sleep "$(rand_between 8 11)"
  echo "  before: sink 1 $(grep -o 'assigned partitions .*' "$TMP/kgs1.log" | tail -1); sink 2 $(grep -o 'assigned partitions .*' "$TMP/kgs2.log" | tail -1)"
  echo "  injected: kill -9 of sink 1 with $(sql "$KDB" "SELECT count(*) FROM gpu_metrics") rows committed, a batch of up to 2 s open"
  kill9 kgs1
  fault_end "$KDB"
  ACTION="two sinks in one consumer group on the cluster; one killed -9 mid-stream (open batch); the other takes its partitions"
  local i; for i in $(seq 1 60); do grep -q 'assigned partitions 0,1,2,3 ' "$TMP/kgs2.log" && break; sleep 0.5; done
  check "kc-sinks: sink 2 took all four partitions ($(grep -o 'assigned partitions .*' "$TMP/kgs2.log" | tail -1))" \
    grep -q 'assigned partitions 0,1,2,3 ' "$TMP/kgs2.log"
  sleep 5
  stop_coll kgc; echo "  counted: $(counted kgc)"
  nodrop kgc kc-sinks
  kc_finish kc-sinks kgs2 --target "$URL_kg=$TMP/kg.uuids" --log "$TMP/kgc.log"
}

for s in $SCEN; do
  case "$s" in
    collector|sink|broker|postgres|outage|targets|hangup|oversized|future|embedded|standby|switchover|immediate|kc-leader|kc-rolling|kc-controller|kc-sigstop|kc-two-down|kc-shards|kc-sinks)
      t0=$(date +%s); ACTION=; "scen_${s//-/_}"; watch_stop; echo "  ($s: $(( $(date +%s) - t0 )) s)" ;;
    *) die "unknown scenario '$s' in GH_FAULTS (collector sink broker postgres outage targets hangup oversized future embedded standby switchover immediate kc-leader kc-rolling kc-controller kc-sigstop kc-two-down kc-shards kc-sinks)" ;;
  esac
done
[ -n "${KC_STARTED:-}" ] && kafka_cluster_stop
finish
