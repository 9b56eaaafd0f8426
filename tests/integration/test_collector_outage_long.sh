#!/usr/bin/env bash
# A broker outage longer than librdkafka's default message timeout (300 s) while the collector
# scrapes: nothing is lost, nothing is duplicated. ctest label integration-long (about 7
# minutes); scripts/test.sh runs it in the normal build only.
#
#   A: default settings (no spool): events wait in librdkafka's queue and the memory queue.
#   B: tiny memory bounds and a spool directory, and it is stopped (SIGTERM) and started again
#      in the middle of the outage: its events go through librdkafka, memory, the disk spool,
#      the stop-time spool segment and the replay on the next start.
#
# Ground truth, independent of Kafka: every successful scrape is logged at debug level with its
# time ("scraped URL at TIME"), and the GPU UUIDs of the mock come from a separate
# --output - run. The topic must hold exactly one event per (UUID, scrape time): the full cross
# product, no more, no less.
source "$(dirname "$0")/lib.sh"
source "$ROOT/scripts/services.sh"
[ -n "${GH_KAFKA_DIR:-}" ] || die "GH_KAFKA_DIR is not set: run under scripts/test.sh (or source scripts/services.sh; kafka_start) so the test can stop and restart the broker"
OUTAGE_S=${GH_OUTAGE_S:-320}

"$BIN" mock-dcgm --listen 127.0.0.1:0 --gpus 4 --seed 21 --speed 10 --poll-interval 1 >"$TMP/mock.log" 2>&1 &
PIDS+=($!)
PORT=$(bound_port "$TMP/mock.log" 'GPUs on ') || die "mock-dcgm did not start: $(cat "$TMP/mock.log")"
for i in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
T="http://127.0.0.1:$PORT/metrics"
"$BIN" collector --target "$T" --output - --once 2>/dev/null | python3 -c 'import json,sys; [print(json.loads(l)["gpu"]["uuid"]) for l in sys.stdin]' | sort >"$TMP/uuids"
check "the mock has 4 GPUs" test "$(wc -l <"$TMP/uuids")" = 4

tA=gh-outA-$UNIQ tB=gh-outB-$UNIQ
common=(--target "$T" --brokers "$KAFKA" --interval 1 --stats-interval 5 --log-level debug
        -X reconnect.backoff.max.ms=2000)
start_coll() { # start_coll NAME TOPIC [args]
  local name=$1 topic=$2; shift 2
  "$BIN" collector "${common[@]}" --topic "$topic" "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
  PIDS+=($!)
  eval "PID_$name=$!"
}
stop_coll() { local pid; eval "pid=\$PID_$1"; kill -TERM "$pid"; wait "$pid"; }
B_ARGS=(--buffer-events 40 -X queue.buffering.max.messages=40 --spool-dir "$TMP/spoolB" --spool-max 64)

start_coll A "$tA"
start_coll B1 "$tB" "${B_ARGS[@]}"
sleep 10
check "A delivers before the outage" grep -qE 'collector: targets=.* delivered=[1-9]' "$TMP/A.log"

echo "  broker stopped for ${OUTAGE_S} s"
kafka_stop
half=$(( OUTAGE_S / 2 ))
sleep "$half"
stop_coll B1; rcB1=$?
check "B stops cleanly during the outage (exit 0)" test "$rcB1" = 0
check "B spooled its undelivered events at stop" grep -q 'stopped with [1-9][0-9]* events undelivered' "$TMP/B1.log"
start_coll B2 "$tB" "${B_ARGS[@]}"
sleep $(( OUTAGE_S - half ))
kafka_restart_same || die "the broker did not come back"
echo "  broker back"

# wait until both have delivered everything they produced
drained() { # drained NAME: the last stats line has nothing in memory or the spool, and at most
  # the last scrape's few events in librdkafka
  grep 'collector: targets=' "$TMP/$1.log" | tail -1 | grep -qE 'buffered=[0-9]/0/0'
}
for i in $(seq 1 120); do drained A && drained B2 && break; sleep 1; done
check "A drained its buffer after the outage" drained A
check "B drained memory and spool after the outage" drained B2
sleep 3
stop_coll A; rcA=$?
stop_coll B2; rcB2=$?
check "A stops cleanly" test "$rcA" = 0
check "B stops cleanly" test "$rcB2" = 0
for n in A B1 B2; do echo "  $n: $(grep -o 'stopped; .*' "$TMP/$n.log" | sed 's/ kafka_error=.*//')"; done
check "A lost nothing (dropped=0 failed=0)" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/A.log"
check "B lost nothing (dropped=0 failed=0)" grep -qE 'stopped; .* failed=0 dropped=0 ' "$TMP/B2.log"
check "B's memory bound sent events to the spool" grep -qE 'stopped; .* spooled=[1-9]' "$TMP/B1.log"
check "B's second run replayed the spool" grep -q 'in the spool .* from an earlier run' "$TMP/B2.log"

verify() { # verify TOPIC MAX_GAP_S LOGS...: topic = UUIDs x scrape times, each exactly once
  local topic=$1 maxgap=$2; shift 2
  timeout 120 kcat -b "$KAFKA" -C -t "$topic" -o beginning -e -q -f '%k\t%s\n' >"$TMP/$topic.tsv" 2>/dev/null
  cat "$@" | grep -o "scraped $T at [^:]*:[^:]*:[^:]*Z" | awk '{print $4}' | sort >"$TMP/$topic.times"
  python3 - "$TMP/$topic.tsv" "$TMP/$topic.times" "$TMP/uuids" "$OUTAGE_S" "$maxgap" <<'PY'
import json, sys, collections, datetime
tsv, times_f, uuids_f, outage = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
maxgap = float(sys.argv[5])
uuids = [l.strip() for l in open(uuids_f) if l.strip()]
times = [l.strip() for l in open(times_f) if l.strip()]
want = {(u, t) for u in uuids for t in times}
seen = collections.Counter()
for line in open(tsv):
    key, val = line.rstrip("\n").split("\t", 1)
    ev = json.loads(val)
    assert key == ev["gpu"]["uuid"]
    seen[(key, ev["time"])] += 1
dups = {k: n for k, n in seen.items() if n > 1}
missing = want - set(seen)
extra = set(seen) - want
ts = sorted(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in set(times))
gap = max(b - a for a, b in zip(ts, ts[1:]))
print(f"  {tsv.split('/')[-1]}: {len(times)} scrapes x {len(uuids)} GPUs = {len(want)} expected; "
      f"{sum(seen.values())} messages, {len(dups)} duplicated, {len(missing)} missing, "
      f"{len(extra)} unexpected; scrapes span {ts[-1] - ts[0]:.0f} s, largest gap {gap:.1f} s")
assert len(times) == len(set(times)), "a scrape time logged twice"
assert ts[-1] - ts[0] > outage, "the scrapes do not span the outage"
assert gap < maxgap, "a hole in the scrape schedule (the collector stopped scraping)"
assert not dups and not missing and not extra
PY
}
check "A: every (GPU, scrape time) exactly once across the outage" verify "$tA" 5 "$TMP/A.log"
check "B: every (GPU, scrape time) exactly once across the outage and its restart" verify "$tB" 30 "$TMP/B1.log" "$TMP/B2.log"
finish
