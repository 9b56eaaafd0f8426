#!/usr/bin/env bash
# The fleet overview's kept state (fleet_gpu_now, fleet_host_now: schema 14, 17) against the real
# Kafka and PostgreSQL (issue #25):
#   - the sink alone (no scorer running) puts the GPUs it writes into it, unscored, with their
#     newest sample: the console's overview and fleet table showed a GPU only after the
#     scorer's next merge (up to a minute), and never without a scorer;
#   - a GPU that moves to another host moves in it with the sink's batch;
#   - two writers merging GPUs of one host at once (the sink and the scorer, or two scorers of a
#     group): the second waits for the first and the host's row counts both GPUs (it failed
#     on fleet_host_now's primary key, or kept a row that missed the other's GPU).
source "$(dirname "$0")/lib.sh"

sql_is() { [ "$(sql "$1" "$2" 2>/dev/null)" = "$3" ]; }
wait_for() { # wait_for TIMEOUT_S COMMAND...: until COMMAND succeeds
  local n=$1 i; shift
  for i in $(seq 1 $(( n * 4 ))); do "$@" && return 0; sleep 0.25; done
  "$@"
}

owner=$(new_db gh_fnow_$$)
writer=$(writer_ci "$owner")
t=gh-fnow-$UNIQ
now=$(date +%s)

echo "== the sink alone: 3 new GPUs on node-fn"
python3 "$GEN" --gpus 3 --samples 4 --step 5 --start $(( now - 60 )) --host node-fn --prefix GPU-fn >"$TMP/a.txt"
produce "$t" "$TMP/a.txt"
start_sink s1 "$writer" "$t" "g-$t" --batch-timeout 0.3
check "12 rows" wait_rows "$owner" 12 60
check "fleet_gpu_now has the 3 GPUs, unscored, with their newest sample's temperature (53)" \
  wait_for 10 sql_is "$owner" "SELECT string_agg(gpu_key || ' ' || hostname || ' ' || gpu_index || ' ' || coalesce(status, 'none') || ' ' || gpu_temp, ',' ORDER BY gpu_key) FROM fleet_gpu_now" \
  "GPU-fn-0000 node-fn 0 none 53,GPU-fn-0001 node-fn 1 none 53,GPU-fn-0002 node-fn 2 none 53"
check "fleet_host_now: node-fn with 3 GPUs, none scored (strip ???)" \
  sql_is "$owner" "SELECT hostname || ' ' || gpus || ' ' || pass + warn + fail || ' ' || strip FROM fleet_host_now" "node-fn 3 0 ???"
sql "$owner" "SELECT gpu_key, hostname, status, gpu_temp FROM fleet_gpu_now ORDER BY 1" | sed 's/^/  fleet_gpu_now: /'

echo "== GPU-fn-0000 moves to node-fn2"
python3 "$GEN" --gpus 1 --samples 2 --step 5 --start $(( now - 30 )) --host node-fn2 --prefix GPU-fn >"$TMP/b.txt"
produce "$t" "$TMP/b.txt"
check "14 rows" wait_rows "$owner" 14 60
check "the overview's hosts follow: node-fn 2 GPUs, node-fn2 1" \
  wait_for 10 sql_is "$owner" "SELECT string_agg(hostname || ' ' || gpus, ',' ORDER BY hostname) FROM fleet_host_now" "node-fn 2,node-fn2 1"
check "no transaction failed" bash -c "! grep -qE 'retrying a batch|db_errors=[1-9]' '$TMP/s1.log'"
stop_sink s1

echo "== two writers merge GPUs of one host at once"
# the first holds its transaction open for 3 s after its merge; the second merges another GPU
# of node-fn meanwhile, both as the writer role
psql -X -At -v ON_ERROR_STOP=1 "$writer" -c "BEGIN" -c "SELECT gpuhealth_fleet_now_merge(ARRAY['GPU-fn-0001'])" \
  -c "SELECT pg_sleep(3)" -c "COMMIT" >"$TMP/m1.out" 2>&1 &
m1=$!
sleep 1
t0=$(date +%s.%N)
psql -X -At -v ON_ERROR_STOP=1 "$writer" -c "SELECT gpuhealth_fleet_now_merge(ARRAY['GPU-fn-0002'])" >"$TMP/m2.out" 2>&1
rc2=$?
t1=$(date +%s.%N)
wait "$m1"
rc1=$?
check "both merges succeed (the second failed on fleet_host_now_pkey)" bash -c "[ $rc1 = 0 ] && [ $rc2 = 0 ]"
[ $rc1 = 0 ] && [ $rc2 = 0 ] || { sed 's/^/  first: /' "$TMP/m1.out"; sed 's/^/  second: /' "$TMP/m2.out"; }
check "the second waited for the first's commit ($(python3 -c "print(round($t1 - $t0, 1))") s)" \
  python3 -c "import sys; sys.exit(0 if $t1 - $t0 >= 1.5 else 1)"
check "node-fn's row counts its 2 GPUs, one row per host" \
  sql_is "$owner" "SELECT string_agg(hostname || ' ' || gpus, ',' ORDER BY hostname) FROM fleet_host_now" "node-fn 2,node-fn2 1"
echo "== a merge of many hosts at once (the scorer's batch, a migration): bounded locks"
# one lock per host ran the server out of lock memory (max_locks_per_transaction) at a few
# thousand hosts; 20,000 hosts of one GPU each, merged in one call as the writer
sql "$owner" "INSERT INTO gpus (gpu_key, uuid, gpu_index, hostname, model, first_seen, last_seen) SELECT 'GPU-many-' || i, 'GPU-many-' || i, 0, 'many-' || i, 'NVIDIA A100-SXM4-80GB', now(), now() FROM generate_series(1, 20000) i" >/dev/null
out=$(sql "$writer" "SELECT gpuhealth_fleet_now_merge(array(SELECT gpu_key FROM gpus WHERE gpu_key LIKE 'GPU-many-%'))" 2>&1)
check "20,000 GPUs on 20,000 hosts merged in one transaction (got: ${out:0:120})" test "$out" = 20000
check "... and their 20,000 hosts are in fleet_host_now" \
  sql_is "$owner" "SELECT count(*) FROM fleet_host_now WHERE hostname LIKE 'many-%'" 20000
finish
