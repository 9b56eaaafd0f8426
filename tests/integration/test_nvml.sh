#!/usr/bin/env bash
# collector --nvml to the real Kafka and on to PostgreSQL through the sink: the local GPUs of
# the stand-in libnvidia-ml.so.1 (tests/nvml_stub, $NVML_STUB_LIB from ctest) arrive keyed by
# UUID (UUID/GPU_I_ID for MIG devices), and the rows keep NVML's absent fields NULL.
source "$(dirname "$0")/lib.sh"
stub=${NVML_STUB_LIB:-}
[ -n "$stub" ] && [ -f "$stub" ] || die "NVML_STUB_LIB='$stub' is not the built stand-in library (run through ctest)"

export NVML_STUB_SCRIPT="$TMP/script"
cat >"$NVML_STUB_SCRIPT" <<'EOF'
driver 550.54.15
count 2
g0.uuid GPU-11111111-2222-3333-4444-555555555555
g0.name NVIDIA H100 80GB HBM3
g0.pci 00000000:19:00.0
g0.minor 0
g0.temp 45
g0.power_mw 312456
g0.util_gpu 97
g0.util_mem 41
g0.xid 48
g1.uuid GPU-bbbbbbbb-2222-3333-4444-555555555555
g1.name NVIDIA A100-SXM4-80GB
g1.pci 00000000:4C:00.0
g1.minor 1
g1.temp 33
g1.retired_sbe 2
g1.mig 1
g1.mig0.gi 1
g1.mig0.slices 1
g1.mig0.mem_mb 9856
g1.mig0.fb_free_mib 9000
g1.mig0.fb_used_mib 856
EOF

topic="gh-nvml-$UNIQ"
"$BIN" collector --nvml --nvml-library "$stub" --once --brokers "$KAFKA" --topic "$topic" \
  --spool-dir "$TMP/spool" >"$TMP/collector.log" 2>&1
check "collector --nvml --once to Kafka exits 0 ($(tail -2 "$TMP/collector.log"))" test $? = 0
timeout 60 kcat -b "$KAFKA" -C -t "$topic" -o beginning -e -q -f '%k\n' 2>/dev/null | sort >"$TMP/keys"
printf '%s\n' GPU-11111111-2222-3333-4444-555555555555 GPU-bbbbbbbb-2222-3333-4444-555555555555 \
  GPU-bbbbbbbb-2222-3333-4444-555555555555/1 >"$TMP/want"
check "three events keyed by UUID and UUID/GPU_I_ID: $(tr '\n' ' ' <"$TMP/keys")" cmp -s "$TMP/keys" "$TMP/want"

owner=$(new_db gh_nvml_$$)
writer=$(writer_ci "$owner")
start_sink nvml "$writer" "$topic" "g-$topic" --batch-timeout 0.5
check "three rows" wait_rows "$writer" 3 60
check "GPU 0 values, absent fields NULL" test \
  "$(sql "$writer" "SELECT gpu_temp || ' ' || power_usage || ' ' || gpu_util || ' ' || xid || ' ' || (sm_clock IS NULL) || ' ' || (retired_pages_sbe IS NULL) FROM gpu_metrics WHERE gpu_key = 'GPU-11111111-2222-3333-4444-555555555555'")" \
  = "45 312.456 97 48 true true"
check "GPU 1 retired pages, no utilization" test \
  "$(sql "$writer" "SELECT retired_pages_sbe || ' ' || (gpu_util IS NULL) FROM gpu_metrics WHERE gpu_key = 'GPU-bbbbbbbb-2222-3333-4444-555555555555'")" \
  = "2 true"
check "the MIG device's row" test \
  "$(sql "$writer" "SELECT mig_instance || ' ' || (gpu_temp IS NULL) FROM gpu_metrics WHERE gpu_key = 'GPU-bbbbbbbb-2222-3333-4444-555555555555/1'")" \
  = "1 true"
stop_sink nvml
finish
