#!/usr/bin/env bash
# --nvml through the stand-in libnvidia-ml.so.1 (tests/nvml_stub, $NVML_STUB_LIB from ctest):
# collector --nvml --once --output - shows every GPU with the scripted values and without the
# unsupported fields; mock-dcgm --nvml serves dcgm-exporter text that prometheus_client parses;
# a missing library or driver is exit 1 with one clear message; --nvml with targets is usage.
set -u
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
data="$root/tests/data/dcgm"
checker="$root/tests/cli/check_exposition.py"
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
check() { local d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
stub=${NVML_STUB_LIB:-}
if [ -z "$stub" ] || [ ! -f "$stub" ]; then
  echo "FAIL: NVML_STUB_LIB='$stub' is not the built stand-in library (run through ctest)" >&2
  echo "0 passed, 1 failed"; exit 1
fi
py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import prometheus_client' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "FAIL: no python3 with prometheus_client; run 'sudo scripts/install-deps.sh --test'" >&2
  echo "0 passed, 1 failed"; exit 1
fi

# Three GPUs: an H100 with every field, a V100 with unsupported fields and a failing call, an
# A100 in MIG mode with two MIG devices; an XID 79 on GPU 0.
export NVML_STUB_SCRIPT="$tmp/script"
cat >"$NVML_STUB_SCRIPT" <<'EOF'
driver 550.54.15
count 3
g0.uuid GPU-11111111-2222-3333-4444-555555555555
g0.name NVIDIA H100 80GB HBM3
g0.pci 00000000:19:00.0
g0.minor 0
g0.sm_clock 1980
g0.mem_clock 2619
g0.temp 45
g0.memory_temp 52
g0.power_mw 312456
g0.energy_mj 123456789012
g0.pcie_replay 3
g0.util_gpu 97
g0.util_mem 41
g0.enc 0
g0.dec 0
g0.fb_free_mib 1000
g0.fb_used_mib 79000
g0.fb_reserved_mib 559
g0.ecc_sbe_vol 2
g0.ecc_dbe_vol 0
g0.ecc_sbe_agg 17
g0.ecc_dbe_agg 1
g0.remap_corr 4
g0.remap_unc 1
g0.remap_pending 0
g0.remap_failure 0
g0.clocks_event 4
g0.power_violation_ns 5000000
g0.thermal_violation_ns 0
g0.slowdown 87
g0.shutdown 92
g0.max_op 85
g0.power_limit_mw 700000
g0.enforced_limit_mw 700000
g0.xid 79
g1.uuid GPU-aaaaaaaa-2222-3333-4444-555555555555
g1.name Tesla V100-SXM2-16GB
g1.pci 00000000:3B:00.0
g1.minor 1
g1.temp 38
g1.power_mw 45000
g1.mem_v1_only 1
g1.fb_free_mib 16000
g1.fb_used_mib 100
g1.retired_sbe 2
g1.retired_dbe 1
g1.retired_pending 0
g1.util_gpu !999
g2.uuid GPU-bbbbbbbb-2222-3333-4444-555555555555
g2.name NVIDIA A100-SXM4-80GB
g2.pci 00000000:4C:00.0
g2.minor 2
g2.temp 33
g2.mig 1
g2.mig0.gi 1
g2.mig0.slices 1
g2.mig0.mem_mb 9856
g2.mig0.fb_free_mib 9000
g2.mig0.fb_used_mib 856
g2.mig2.gi 5
g2.mig2.slices 3
g2.mig2.mem_mb 40192
g2.mig2.fb_free_mib 1000
g2.mig2.fb_used_mib 38936
EOF

expect() { # expect STATUS PATTERN -- args...
  local want=$1 pat=$2; shift 3
  local out rc
  out=$("$bin" "$@" 2>&1 </dev/null); rc=$?
  if [ "$rc" != "$want" ]; then bad "gpuhealth $* exited $rc, expected $want: $out"; return; fi
  if [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then bad "gpuhealth $*: output lacks /$pat/: $out"; return; fi
  ok
}

# --- collector --nvml --once --output -: NVML_LIBRARY, then --nvml-library, then the soname
# found through LD_LIBRARY_PATH (the default path a GPU node uses)
NVML_LIBRARY="$stub" "$bin" collector --nvml --once --output - >"$tmp/ev1.json" 2>"$tmp/ev1.err"
check "collector --nvml --once exits 0: $(cat "$tmp/ev1.err")" test $? = 0
"$bin" collector --nvml --nvml-library "$stub" --once --output - --cluster c1 >"$tmp/ev2.json" 2>"$tmp/ev2.err"
check "collector --nvml-library exits 0: $(cat "$tmp/ev2.err")" test $? = 0
mkdir -p "$tmp/lib" && cp "$stub" "$tmp/lib/libnvidia-ml.so.1"
LD_LIBRARY_PATH="$tmp/lib" "$bin" collector --nvml --once --output - >"$tmp/ev3.json" 2>"$tmp/ev3.err"
check "collector --nvml through LD_LIBRARY_PATH exits 0: $(cat "$tmp/ev3.err")" test $? = 0
check "the log names the library and the GPUs" grep -q 'nvml: .*libnvidia-ml.so.1, driver 550.54.15: 3 GPUs' "$tmp/ev1.err"
check "the failing call is said once" test "$(grep -c 'nvmlDeviceGetUtilizationRates failed' "$tmp/ev1.err")" = 1
for f in ev1 ev2 ev3; do
  "$py" - "$tmp/$f.json" <<'PY' && ok || bad "events of $f"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert len(ev) == 5, f"{len(ev)} events, want 3 GPUs + 2 MIG devices"
assert len({e["time"] for e in ev}) == 1
by = {(e["gpu"]["index"], e["gpu"]["mig_instance"]): e for e in ev}
g0 = by[(0, None)]
assert g0["gpu"] == {"index": 0, "uuid": "GPU-11111111-2222-3333-4444-555555555555",
                     "model": "NVIDIA H100 80GB HBM3", "pci_bus_id": "00000000:19:00.0",
                     "device": "nvidia0", "driver_version": "550.54.15",
                     "mig_profile": None, "mig_instance": None}, g0["gpu"]
want = {"sm_clock": 1980, "mem_clock": 2619, "gpu_temp": 45, "memory_temp": 52,
        "power_usage": 312.456, "total_energy": 123456789012, "pcie_replay": 3,
        "gpu_util": 97, "mem_copy_util": 41, "enc_util": 0, "dec_util": 0, "xid": 79,
        "fb_free": 1000, "fb_used": 79000, "fb_reserved": 559,
        "ecc_sbe_volatile": 2, "ecc_dbe_volatile": 0, "ecc_sbe_aggregate": 17,
        "ecc_dbe_aggregate": 1, "correctable_remapped_rows": 4,
        "uncorrectable_remapped_rows": 1, "row_remap_pending": 0, "row_remap_failure": 0,
        "clocks_event_reasons": 4, "power_violation": 5000000, "thermal_violation": 0,
        "slowdown_temp": 87, "shutdown_temp": 92, "power_limit": 700.0}
assert g0["metrics"] == want, {k: (g0["metrics"].get(k), v) for k, v in want.items() if g0["metrics"].get(k) != v} or sorted(set(g0["metrics"]) - set(want))
assert g0["extra"] == {"DCGM_FI_DEV_GPU_MAX_OP_TEMP": 85, "DCGM_FI_DEV_ENFORCED_POWER_LIMIT": 700.0}, g0["extra"]
g1 = by[(1, None)]
assert g1["gpu"]["model"] == "Tesla V100-SXM2-16GB"
# unsupported and failing fields are absent, not zero or null
assert g1["metrics"] == {"gpu_temp": 38, "power_usage": 45.0, "fb_free": 16000, "fb_used": 100,
                         "retired_pages_sbe": 2, "retired_pages_dbe": 1,
                         "retired_pages_pending": 0}, g1["metrics"]
assert by[(2, None)]["metrics"] == {"gpu_temp": 33}
m1, m5 = by[(2, 1)], by[(2, 5)]
assert m1["gpu"]["mig_profile"] == "1g.10gb" and m5["gpu"]["mig_profile"] == "3g.40gb"
assert m1["gpu"]["uuid"] == m5["gpu"]["uuid"] == "GPU-bbbbbbbb-2222-3333-4444-555555555555"
assert m1["metrics"] == {"fb_free": 9000, "fb_used": 856}
assert m5["metrics"] == {"fb_free": 1000, "fb_used": 38936}
PY
done
check "--cluster enriches the NVML events" grep -q '"cluster":"c1"' "$tmp/ev2.json"

# --- a missing library or driver: exit 1, one message saying what was tried and what to do
expect 1 "--nvml: cannot load the NVIDIA management library: tried $tmp/none.so \(.*\)\. Install the NVIDIA driver.*NVML_LIBRARY" -- collector --nvml --nvml-library "$tmp/none.so" --once --output -
if ! ldconfig -p 2>/dev/null | grep -q 'libnvidia-ml.so.1 '; then
  expect 1 "tried libnvidia-ml.so.1 through the library search path" -- collector --nvml --once --output -
  expect 1 "tried libnvidia-ml.so.1 through the library search path" -- mock-dcgm --nvml --listen 127.0.0.1:0
fi
expect 1 "libm.so.6 is not an NVIDIA management library this program can use: it has no nvmlInit_v2" -- collector --nvml --nvml-library libm.so.6 --once --output -
cp "$NVML_STUB_SCRIPT" "$tmp/good"
echo "init !9" >>"$NVML_STUB_SCRIPT"
expect 1 "did not start: Driver Not Loaded. Is the NVIDIA kernel driver loaded" -- collector --nvml --nvml-library "$stub" --once --output -
expect 1 "did not start: Driver Not Loaded" -- mock-dcgm --nvml --nvml-library "$stub" --listen 127.0.0.1:0
cp "$tmp/good" "$NVML_STUB_SCRIPT"
lines=$("$bin" collector --nvml --nvml-library "$tmp/none.so" --once --output - 2>&1 | wc -l)
check "the missing library is one line, not $lines" test "$lines" = 1

# --- usage
expect 2 "--nvml reads this machine's GPUs; --target and --targets-file scrape exporters" -- collector --nvml --target http://127.0.0.1:1/metrics --output -
expect 2 "--inject injects faults into simulated GPUs; it cannot be used with --nvml" -- mock-dcgm --nvml --inject gpu=0,fault=dbe,at=1s
expect 0 "--nvml" -- collector --help
expect 0 "--nvml-library PATH" -- mock-dcgm --help

# --- mock-dcgm --nvml: dcgm-exporter text of the real GPUs, strict parse
"$bin" mock-dcgm --nvml --nvml-library "$stub" --listen 127.0.0.1:0 --hostname node-9 --poll-interval 0.2 2>"$tmp/mock.log" &
pid=$!; pids+=("$pid")
addr=
for _ in $(seq 100); do
  addr=$(grep -oE 'http://[0-9.]+:[0-9]+' "$tmp/mock.log" | head -1 | sed 's|http://||')
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$addr" ]; then
  bad "mock-dcgm --nvml did not start: $(cat "$tmp/mock.log")"
else
  check "mock-dcgm --nvml says what it serves" grep -q "serving this machine's GPUs (NVML)" "$tmp/mock.log"
  curl -fsS "http://$addr/metrics" -o "$tmp/m1.txt"; check "GET /metrics" test $? = 0
  "$py" "$checker" check --live --data "$data" "$tmp/m1.txt" && ok || bad "strict check of mock-dcgm --nvml"
  get() { "$py" "$checker" get "$tmp/m1.txt" "$1" "$2"; }
  check "GPU 1 temperature" test "$(get DCGM_FI_DEV_GPU_TEMP 1)" = 38
  check "GPU 0 power" test "$(get DCGM_FI_DEV_POWER_USAGE 0)" = 312.456
  check "GPU 0 XID" test "$(get DCGM_FI_DEV_XID_ERRORS 0)" = 79
  check "GPU 1 utilization absent" test "$(get DCGM_FI_DEV_GPU_UTIL 1)" = absent
  check "GPU 2 SM clock absent" test "$(get DCGM_FI_DEV_SM_CLOCK 2)" = absent
  check "per-GPU modelName" grep -q 'DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-aaaaaaaa-2222-3333-4444-555555555555",pci_bus_id="00000000:3B:00.0",device="nvidia1",modelName="Tesla V100-SXM2-16GB",hostname="node-9",DCGM_FI_DRIVER_VERSION="550.54.15"} 38' "$tmp/m1.txt"
  check "MIG labels" grep -q 'DCGM_FI_DEV_FB_USED{gpu="2",UUID="GPU-bbbbbbbb-2222-3333-4444-555555555555",pci_bus_id="00000000:4C:00.0",device="nvidia2",modelName="NVIDIA A100-SXM4-80GB",GPU_I_PROFILE="3g.40gb",GPU_I_ID="5",hostname="node-9",DCGM_FI_DRIVER_VERSION="550.54.15"} 38936' "$tmp/m1.txt"
  # the values are read again every poll interval
  sed -i 's/^g1.temp 38$/g1.temp 61/' "$NVML_STUB_SCRIPT"
  seen=
  for _ in $(seq 50); do
    curl -fsS "http://$addr/metrics" -o "$tmp/m2.txt"
    [ "$("$py" "$checker" get "$tmp/m2.txt" DCGM_FI_DEV_GPU_TEMP 1)" = 61 ] && { seen=1; break; }
    sleep 0.1
  done
  check "a new reading is served" test -n "$seen"
  kill -TERM "$pid"; wait "$pid"; rc=$?
  check "mock-dcgm --nvml stops with 0 on SIGTERM ($rc)" test "$rc" = 0
fi

# The console's pipeline (--daemon here): with no source chosen it reads NVML, and without the
# library it says so and simulates; --nvml without the library is the part's error (exit 1).
# No database: GPUHEALTH_PG_BINDIR names a directory without server binaries.
mkdir -p "$tmp/nopg" "$tmp/state"
dmn() { XDG_STATE_HOME="$tmp/state" GPUHEALTH_PG_BINDIR="$tmp/nopg" timeout 60 "$bin" --daemon --interval 0.5 --duration 3 --stats-interval 1 "$@"; }
cp "$tmp/good" "$NVML_STUB_SCRIPT"
NVML_LIBRARY="$stub" dmn >"$tmp/d1.out" 2>"$tmp/d1.log"; rc=$?
check "daemon on NVML runs (rc $rc)" test "$rc" = 0
check "daemon: the GPUs come from NVML" grep -q "this node's GPUs (NVML)" "$tmp/d1.log"
check "daemon: the fleet holds the stand-in's 3 GPUs and 2 MIG devices" grep -qE 'stats: gpus=5 ' "$tmp/d1.log"
NVML_LIBRARY="$tmp/none/libnvidia-ml.so.1" dmn >"$tmp/d2.out" 2>"$tmp/d2.log"; rc=$?
check "daemon without NVML runs (rc $rc)" test "$rc" = 0
check "daemon without NVML says why and simulates" grep -q 'no NVML: 8 simulated' "$tmp/d2.log"
check "... naming the library it tried" grep -q "$tmp/none/libnvidia-ml.so.1" "$tmp/d2.log"
NVML_LIBRARY="$tmp/none/libnvidia-ml.so.1" dmn --nvml >"$tmp/d3.out" 2>"$tmp/d3.log"; rc=$?
check "daemon --nvml without NVML exits 1 (rc $rc)" test "$rc" = 1
check "... with the library in the message" grep -q "$tmp/none/libnvidia-ml.so.1" "$tmp/d3.log"

echo "$passes passed, $fails failed"
[ $fails = 0 ]
