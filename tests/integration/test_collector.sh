#!/usr/bin/env bash
# The collector against the real Kafka broker: what a separate consumer (kcat) reads equals what
# `--output -` prints for the same exporter snapshot, keyed by GPU UUID; and a broker that is
# unreachable until a stop loses nothing: the events are spooled and the next run delivers
# them exactly once. (A broker outage while running is tests/integration/test_collector_outage_long.sh.)
#
# Why two --once runs compare: mock-dcgm renders a snapshot when it starts and the next one
# poll_interval/speed real seconds later; at --speed 0.001 that is 10,000 s, so both runs
# scrape the very same text and their events may differ only in "time" (the scrape time). The
# check normalises "time", then compares the sorted lines byte for byte.
source "$(dirname "$0")/lib.sh"

# a loopback port nothing listens on (a broker that is away); servers listen on port 0 instead
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

start_mock() { # start_mock NAME GPUS SEED: sets PORT (the kernel picks it: bound_port)
  "$BIN" mock-dcgm --listen 127.0.0.1:0 --gpus "$2" --seed "$3" --speed 0.001 >"$TMP/mock-$1.log" 2>&1 &
  PIDS+=($!)
  PORT=$(bound_port "$TMP/mock-$1.log" 'GPUs on ') || die "mock-dcgm $1 did not start: $(cat "$TMP/mock-$1.log")"
  local i
  for i in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "mock-dcgm $1 did not start: $(cat "$TMP/mock-$1.log")"
}

# consume TOPIC: every message up to the end of each partition, as KEY<TAB>VALUE lines
consume() {
  timeout 60 kcat -b "$KAFKA" -C -t "$1" -o beginning -e -q -f '%k\t%s\n' 2>"$TMP/kcat-$1.err"
}

# strips the scrape time from event JSON lines
notime() { sed -E 's/"time":"[^"]*"/"time":"T"/'; }

start_mock a 4 11; p1=$PORT
start_mock b 3 12; p2=$PORT
T1="http://127.0.0.1:$p1/metrics"; T2="http://127.0.0.1:$p2/metrics"

echo "== the events a consumer reads equal what --output - prints for the same scrape"
"$BIN" collector --target "$T1" --target "$T2" --cluster c1 --rack r7 --output - --once \
  >"$TMP/stdout.jsonl" 2>"$TMP/once-stdout.log"
check "--output - --once exits 0" test $? = 0
check "7 events on stdout (4 + 3 GPUs)" test "$(wc -l <"$TMP/stdout.jsonl")" = 7
topic=gh-coll-$UNIQ
"$BIN" collector --target "$T1" --target "$T2" --cluster c1 --rack r7 --brokers "$KAFKA" \
  --topic "$topic" --once >"$TMP/once-kafka.out" 2>"$TMP/once-kafka.log"
check "--once to Kafka exits 0" test $? = 0
check "--once to Kafka prints nothing on stdout" test ! -s "$TMP/once-kafka.out"
check "the collector counted 7 delivered" grep -qE 'stopped; .* produced=7 delivered=7 failed=0 dropped=0' "$TMP/once-kafka.log"
consume "$topic" >"$TMP/kafka.tsv"
check "7 messages in the topic" test "$(wc -l <"$TMP/kafka.tsv")" = 7
cut -f2- "$TMP/kafka.tsv" | notime | sort >"$TMP/kafka.norm"
notime <"$TMP/stdout.jsonl" | sort >"$TMP/stdout.norm"
if [ -s "$TMP/kafka.norm" ] && cmp -s "$TMP/kafka.norm" "$TMP/stdout.norm"; then ok "consumer's events = --output - events (modulo time)"
else bad "consumer's events differ from --output -"; diff "$TMP/kafka.norm" "$TMP/stdout.norm" | head -5 >&2; fi
# every key is the event's GPU UUID; one time per scrape (per target)
python3 - "$TMP/kafka.tsv" <<'PY' && ok "keys are the GPU UUIDs; one time per target's scrape" || bad "keys or times wrong"
import json, sys, collections
by_time = collections.Counter()
n = 0
for line in open(sys.argv[1]):
    key, val = line.rstrip("\n").split("\t", 1)
    ev = json.loads(val)
    assert key == ev["gpu"]["uuid"], (key, ev["gpu"]["uuid"])
    assert ev["cluster"] == "c1" and ev["rack"] == "r7" and ev["datacenter"] is None
    by_time[ev["time"]] += 1
    n += 1
assert n == 7, n
# the 4 events of one target share one time, the 3 of the other another (or all 7 one)
assert sorted(by_time.values()) in ([3, 4], [7]), by_time
PY
# the two --once runs scraped at different times (so the comparison above did strip something)
t_out=$(grep -o '"time":"[^"]*"' "$TMP/stdout.jsonl" | sort -u | head -1)
t_kaf=$(cut -f2- "$TMP/kafka.tsv" | grep -o '"time":"[^"]*"' | sort -u | head -1)
check "the two runs have their own scrape times ($t_out vs $t_kaf)" test "$t_out" != "$t_kaf"

echo "== with no broker, events wait in the spool and the next run delivers them exactly once"
topic2=gh-coll2-$UNIQ
# A collector whose broker address has nothing listening queues its events (librdkafka holds
# 4, memory 5, the spool the rest) and spools them all when it stops; the next run, pointed
# at the real broker, replays the spool before its own events.
port_dead=$(free_port)
"$BIN" collector --target "$T1" --brokers "127.0.0.1:$port_dead" --topic "$topic2" --interval 0.5 \
  --stats-interval 1 --buffer-events 5 -X queue.buffering.max.messages=4 --duration 3 \
  --spool-dir "$TMP/spool2" >"$TMP/dead.out" 2>"$TMP/dead.log"
check "a collector with no broker stops cleanly (exit 0)" test $? = 0
spooled=$(grep -o 'stopped; .*' "$TMP/dead.log" | grep -oE 'produced=[0-9]+' | cut -d= -f2)
echo "  counted: $(grep -o 'stopped; .*' "$TMP/dead.log")"
check "it produced events (${spooled:-0}) and delivered none" grep -qE 'stopped; .* delivered=0 failed=0 dropped=0' "$TMP/dead.log"
check "every undelivered event went to the spool" grep -qE "stopped with ${spooled:-x} events undelivered" "$TMP/dead.log"
"$BIN" collector --target "$T1" --brokers "$KAFKA" --topic "$topic2" --spool-dir "$TMP/spool2" \
  --once >"$TMP/replay.out" 2>"$TMP/replay.log"
check "the next run replays the spool and exits 0" test $? = 0
total=$(( ${spooled:-0} + 4 ))
check "it delivered the $spooled spooled events and its own 4" grep -qE "stopped; .* produced=4 delivered=$total failed=0 dropped=0" "$TMP/replay.log"
check "the spool is empty afterwards" test -z "$(ls "$TMP/spool2")"
consume "$topic2" >"$TMP/k2.tsv"
check "$total messages in the topic" test "$(wc -l <"$TMP/k2.tsv")" = "$total"
check "each (GPU, time) exactly once" test "$(cut -f2- "$TMP/k2.tsv" | python3 -c 'import json,sys; print(len({(json.loads(l)["gpu"]["uuid"], json.loads(l)["time"]) for l in sys.stdin}))')" = "$total"

finish
