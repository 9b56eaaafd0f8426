#!/usr/bin/env bash
# The processes on local GPUs (issue #24) through the stand-in libnvidia-ml.so.1
# (tests/nvml_stub, $NVML_STUB_LIB from ctest): `status --nvml` lists, per GPU, what
# nvmlDeviceGet{Compute,Graphics}RunningProcesses_v3 report (PIDs of a sleep and a tail this
# test starts, and three PIDs of no process), with user and command from /proc, absent for the
# PIDs without a process; a process in both lists is compute+graphics; more processes than the
# first buffer holds (NVML_ERROR_INSUFFICIENT_SIZE) are all listed; a GPU whose driver reports
# none has an empty list, one that does not report them null; the v1 functions when the _v3
# ones are not there; the table lists them under each GPU.
set -u
bin=$1
fails=0 passes=0
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
stub=${NVML_STUB_LIB:-}
if [ -z "$stub" ] || [ ! -f "$stub" ]; then
  echo "FAIL: NVML_STUB_LIB='$stub' is not the built stand-in library (run through ctest)" >&2
  echo "0 passed, 1 failed"; exit 1
fi

sleep 300 & pids+=($!); sleep_pid=$!
tail -f /dev/null & pids+=($!); py_pid=$!
# three PIDs of no process (the highest ones not in use)
gone=()
for p in $(seq $(( $(cat /proc/sys/kernel/pid_max) - 1 )) -1 1000); do
  [ -e "/proc/$p" ] || gone+=("$p")
  [ ${#gone[@]} = 3 ] && break
done
me=$(id -un)

export NVML_STUB_SCRIPT="$tmp/script"
write_script() { # write_script EXTRA_LINE
  cat >"$NVML_STUB_SCRIPT" <<EOF
driver 550.54.15
count 3
g0.uuid GPU-11111111-2222-3333-4444-555555555555
g0.name NVIDIA H100 80GB HBM3
g0.pci 00000000:19:00.0
g0.minor 0
g0.temp 45
g0.procs $sleep_pid:512,$py_pid:1024,${gone[0]}:64,${gone[1]}:-,${gone[2]}:8
g0.gprocs $sleep_pid:512
g1.uuid GPU-22222222-2222-3333-4444-555555555555
g1.name NVIDIA H100 80GB HBM3
g1.pci 00000000:1A:00.0
g1.minor 1
g1.temp 40
g1.procs 
g1.gprocs 
g2.uuid GPU-33333333-2222-3333-4444-555555555555
g2.name NVIDIA H100 80GB HBM3
g2.pci 00000000:1B:00.0
g2.minor 2
g2.temp 41
$1
EOF
}
write_script ""

"$bin" status --nvml --nvml-library "$stub" --json >"$tmp/s.json" 2>"$tmp/s.err"; rc=$?
check "status --nvml --json exits 0 (got $rc; $(head -c 300 "$tmp/s.err"))" [ $rc = 0 ]
python3 - "$tmp/s.json" "$sleep_pid" "$py_pid" "$me" "${gone[@]}" >"$tmp/py.out" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
sleep_pid, py_pid, me = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
gone = [int(x) for x in sys.argv[5:8]]
e = []
def need(c, m):
    if not c: e.append(m)
need(d["source"] == "nvml", "source %r" % d["source"])
g = {x["uuid"]: x for h in d["hosts"] for x in h["gpus"]}
p0 = g["GPU-11111111-2222-3333-4444-555555555555"]["processes"]
need(isinstance(p0, list) and [p["pid"] for p in p0] == [sleep_pid, py_pid] + gone, "GPU 0 pids %r" % p0)
if isinstance(p0, list) and len(p0) == 5:
    s, p = p0[0], p0[1]
    need(s["type"] == "compute+graphics" and s["used_memory_mib"] == 512, "the sleep %r" % s)
    need(s["user"] == me and s["command"] == "sleep 300", "the sleep's user and command %r" % s)
    need(p["type"] == "compute" and p["used_memory_mib"] == 1024 and p["user"] == me, "the tail %r" % p)
    need(p["command"] == "tail -f /dev/null", "the tail's command %r" % p["command"])
    for q in p0[2:]:
        need(q["user"] is None and q["command"] is None, "no process: no user, no command %r" % q)
    need(p0[3]["used_memory_mib"] is None and p0[2]["used_memory_mib"] == 64, "memory not available: null %r" % p0[2:4])
need(g["GPU-22222222-2222-3333-4444-555555555555"]["processes"] == [], "GPU 1: reported, none")
need(g["GPU-33333333-2222-3333-4444-555555555555"]["processes"] is None, "GPU 2: not reported (null)")
print("\n".join(e) or "json ok")
PY
check "the processes in the document: $(tail -3 "$tmp/py.out" | tr '\n' ' ')" grep -q 'json ok' "$tmp/py.out"
check "five processes in a buffer of four: NVML_ERROR_INSUFFICIENT_SIZE answered, then grown ($(cat "$NVML_STUB_SCRIPT.procs" 2>/dev/null))" \
  grep -qE 'insufficient [1-9]' "$NVML_STUB_SCRIPT.procs"

"$bin" status --nvml --nvml-library "$stub" >"$tmp/s.txt" 2>&1; rc=$?
check "the table exits 0 (got $rc)" [ $rc = 0 ]
check "... lists the sleep under GPU 0 with its type, memory, user and command" \
  grep -qE "^ +$sleep_pid compute\+graphics +512MiB $me +sleep 300$" "$tmp/s.txt"
check "... and a PID of no process with '-' for user and command" \
  grep -qE "^ +${gone[0]} compute +64MiB - +-$" "$tmp/s.txt"
check "... 'no processes' under GPU 1" grep -q '^     no processes$' "$tmp/s.txt"

# an older driver: only the v1 functions answer
write_script "g0.procs_v1 1"
"$bin" status --nvml --nvml-library "$stub" --json >"$tmp/v1.json" 2>"$tmp/v1.err"; rc=$?
got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
g = [x for h in d["hosts"] for x in h["gpus"] if x["uuid"].startswith("GPU-1111")][0]
print(" ".join("%d:%s:%s" % (p["pid"], p["type"], p["used_memory_mib"]) for p in g["processes"] or []))' "$tmp/v1.json" 2>&1)
check "the v1 functions when the _v3 ones are not found: $got" \
  [ "$got" = "$sleep_pid:compute+graphics:512.0 $py_pid:compute:1024.0 ${gone[0]}:compute:64.0 ${gone[1]}:compute:None ${gone[2]}:compute:8.0" ]

"$bin" status --nvml --target http://127.0.0.1:1/metrics >/dev/null 2>"$tmp/u.err"; rc=$?
check "--nvml with --target: exit 2 (got $rc) naming both" \
  bash -c "[ $rc = 2 ] && grep -q -- '--nvml.*--target' '$tmp/u.err'"

echo "$passes passed, $fails failed"
[ $fails = 0 ]
