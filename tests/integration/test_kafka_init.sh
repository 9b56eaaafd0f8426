#!/usr/bin/env bash
# gpuhealth kafka init (issue #23) against the real Kafka broker of scripts/test.sh (one
# broker): creates the missing topics with the partitions, replication factor and
# min.insync.replicas asked for; run again it finds them as asked (exit 0) and creates nothing;
# asked for other settings it says what it found and exits 1, leaving the topic alone; a
# replication factor the cluster cannot give fails naming the fix. (Replication factor 3 and
# min.insync.replicas=2 on a 3-broker cluster: the fault suite, tests/faults.)
source "$(dirname "$0")/lib.sh"
t=gh-ki-$UNIQ
init() { "$BIN" kafka init --brokers "$KAFKA" --topic "$t" --dlq-topic "$t-dlq" --alerts-topic "$t-alerts" "$@" >"$TMP/out" 2>"$TMP/err"; }
describe() { # describe TOPIC: "partitions rf" from the broker's metadata
  kcat -b "$KAFKA" -L -t "$1" -J 2>/dev/null | python3 -c 'import json,sys; t=json.load(sys.stdin)["topics"][0]; print(len(t["partitions"]), len(t["partitions"][0]["replicas"]))'
}

init --partitions 3 --replication-factor 1 --min-insync 1
check "first run: exit 0 (got $?: $(cat "$TMP/err"))" test $? = 0
for x in "$t" "$t-dlq" "$t-alerts"; do
  check "first run: $x created, said so" grep -qx "kafka init: topic $x created: 3 partitions, replication factor 1, min.insync.replicas=1" "$TMP/out"
  check "$x has 3 partitions, 1 replica on the broker" test "$(describe "$x")" = "3 1"
done
init --partitions 3 --replication-factor 1 --min-insync 1
check "second run: exit 0" test $? = 0
check "second run: nothing created, each found as asked" \
  test "$(grep -c 'exists: 3 partitions, replication factor 1, min.insync.replicas=1 (as asked)$' "$TMP/out")-$(grep -c created "$TMP/out")" = "3-0"
# the defaults (4 partitions, replication factor 3, min.insync.replicas=2) over what exists
init --topic "$t" --dlq-topic "$t-dlq" --alerts-topic ''
check "other settings asked: exit 1" test $? = 1
check "other settings asked: says what it found" grep -qx "kafka init: topic $t exists: 3 partitions, replication factor 1, min.insync.replicas=1" "$TMP/out"
check "other settings asked: names each difference and the tool" \
  grep -qE "topic $t exists with other settings, left as it is: partitions 3 \(asked 4\); replication factor 1 \(asked 3: .*kafka-reassign-partitions.sh\); min.insync.replicas=1 \(asked 2: kafka-configs.sh --alter .*--add-config min.insync.replicas=2\)" "$TMP/err"
check "other settings asked: the topic is left as it was" test "$(describe "$t")" = "3 1"
init --topic "$t-new" --dlq-topic '' --alerts-topic ''
check "replication factor 3 on one broker: exit 1" test $? = 1
check "replication factor 3 on one broker: the reason and the fix" grep -q "cannot create topic '$t-new': .*fewer brokers than --replication-factor: give a smaller one" "$TMP/err"
"$BIN" kafka init --brokers "$KAFKA" --replication-factor 1 --min-insync 2 >/dev/null 2>"$TMP/err"
check "--min-insync above --replication-factor: exit 2 naming both" test $? = 2 -a -n "$(grep -F -- '--min-insync 2 is more than --replication-factor 1' "$TMP/err")"
"$BIN" kafka nope >/dev/null 2>"$TMP/err"
check "kafka without init: exit 2" test $? = 2 -a -n "$(grep -F "'gpuhealth kafka init'" "$TMP/err")"
finish
