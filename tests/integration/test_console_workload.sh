#!/usr/bin/env bash
# The console's workload and processes (issue #24), in a real terminal (tmux, private socket),
# over the real embedded pipeline (in-process broker, a private PostgreSQL in a scratch
# XDG_STATE_HOME; needs no test service):
#   1. a dcgm-exporter exposition with Kubernetes' pod mapping (the L4 sample of tests/data/dcgm
#      with the labels dcgm-exporter adds), found through --file-sd: the fleet table's WORKLOAD
#      column shows the pod, the GPU detail its namespace, pod and container; a GPU 2 whose
#      labels are UTF-8 (shown as such, in display columns) and carry an escape sequence (shown
#      as '?', never sent to the terminal);
#   2. --nvml over the stand-in libnvidia-ml (tests/nvml_stub) reporting two processes (PIDs of
#      a sleep and a python this test starts): the GPU detail lists them with user and command.
# Usage: test_console_workload.sh BINARY   (NVML_STUB_LIB: the stand-in library)
set -u
bin=$(realpath "$1")
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed" >&2; exit 1; }
scratch=$(mktemp -d /tmp/gh-cwl.XXXXXX)
fails=0 passes=0 socks="" pids=""
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
cleanup() {
  for k in $socks; do tmux -L "$k" kill-server 2>/dev/null; done
  for p in $pids; do kill "$p" 2>/dev/null; done
  sleep 0.5
  # anything still running from the scratch dir (a console, its private PostgreSQL)
  for p in $(ps -eo pid=,args= | grep -F "$scratch" | grep -v grep | awk '{print $1}'); do kill -9 "$p" 2>/dev/null; done
  rm -rf "$scratch"
}
trap cleanup EXIT
# shellcheck source=../lib/ports.sh
source "$(dirname "$0")/../lib/ports.sh"

# the exporter: GPU 0 held by training/llm-7b-worker-3 (container trainer), GPU 1 by none, GPU 2
# by équipe/日本-worker-0 whose container name has an ESC byte (a label value may hold any byte
# but \, " and newline unescaped)
src=tests/data/dcgm/k8s-ai-conformance-kops-L4-metrics.prom
mkdir -p "$scratch/www"
{ grep -v '^DCGM_FI_' "$src"
  grep '^DCGM_FI_' "$src" | sed 's/} /,container="trainer",namespace="training",pod="llm-7b-worker-3"} /'
  grep '^DCGM_FI_' "$src" | sed 's/gpu="0",UUID="GPU-c2f76b33/gpu="1",UUID="GPU-d3f76b33/; s/nvidia0/nvidia1/; s/} /,container="",namespace="",pod=""} /'
  grep '^DCGM_FI_' "$src" | sed $'s/gpu="0",UUID="GPU-c2f76b33/gpu="2",UUID="GPU-e4f76b33/; s/nvidia0/nvidia2/; s/} /,container="c\x1b[31mx",namespace="\xc3\xa9quipe",pod="\xe6\x97\xa5\xe6\x9c\xac-worker-0"} /'
} >"$scratch/www/metrics"
# on a port the kernel picks, which it says (unbuffered: -u) on its first line (bound_port)
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$scratch/www" >"$scratch/www.log" 2>&1 &
pids="$pids $!"
eport=$(bound_port "$scratch/www.log" 'port [0-9]* (') || bad "http.server did not start: $(cat "$scratch/www.log")"
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$eport/metrics" >/dev/null 2>&1 && break; sleep 0.1; done
printf '[{"targets": ["127.0.0.1:%s"], "labels": {"team": "ml"}}]\n' "$eport" >"$scratch/sd.json"

run=0 sock=""
T() { tmux -L "$sock" "$@"; }
start_console() { # start_console ARGS...: a console in a fresh tmux server, 120x32
  run=$((run + 1)); sock="gh-cwl-$$-$run"; socks="$socks $sock"
  mkdir -p "$scratch/home$run"
  cat >"$scratch/run$run.sh" <<EOF
cd "$scratch"
env HOME="$scratch/home$run" XDG_STATE_HOME="$scratch/home$run/state" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
  TERM=xterm-256color GPUHEALTH_UI_FAKE= NVML_STUB_SCRIPT="$scratch/nvml.txt" "$bin" tui $* 2>"$scratch/stderr$run.txt"
echo \$? >"$scratch/exit$run"
sleep 2
EOF
  T new-session -d -x 120 -y 32 "bash $scratch/run$run.sh" || { echo "FAIL: tmux did not start" >&2; exit 1; }
}
cap() { T capture-pane -p; }
wait_screen() { # wait_screen SECONDS REGEX: until the screen matches
  local deadline=$((SECONDS + $1)); screen=""
  while [ $SECONDS -lt "$deadline" ]; do
    screen=$(cap); grep -qE "$2" <<<"$screen" && return 0; sleep 0.5
  done
  return 1
}
stop_console() { # q: exit status 0, and no sanitizer report in its output or its log
  T send-keys q
  for _ in $(seq 50); do [ -f "$scratch/exit$run" ] && break; sleep 0.1; done
  if [ "$(cat "$scratch/exit$run" 2>/dev/null)" = 0 ]; then ok "q: exit status 0"
  else bad "q: exit status '$(cat "$scratch/exit$run" 2>/dev/null)'"; cat "$scratch/stderr$run.txt" >&2; fi
  if grep -rlE 'Sanitizer|runtime error' "$scratch/stderr$run.txt" "$scratch/home$run" >/dev/null 2>&1; then
    bad "a sanitizer report:"; grep -rhE -A20 'Sanitizer|runtime error' "$scratch/stderr$run.txt" "$scratch/home$run" | head -60 >&2
  fi
  T kill-server 2>/dev/null
}

echo "== 1. a k8s-labelled exporter found through --file-sd"
start_console --file-sd "$scratch/sd.json" --interval 1 --refresh 0.5
if wait_screen 60 '^ +1 .*W.*$' && wait_screen 10 '^ +0 .*training/llm-7b-worker-3'; then
  ok "the fleet table shows GPU 0's workload"
else bad "no workload in the fleet table:"; echo "$screen" >&2; cat "$scratch/stderr$run.txt" >&2; fi
if grep -qE '^GPU .*HEALTH +WORKLOAD' <<<"$screen"; then ok "a WORKLOAD column"; else bad "no WORKLOAD column title"; echo "$screen" >&2; fi
if grep -E '^ +1 ' <<<"$screen" | grep -qv 'llm-7b'; then ok "GPU 1: no workload"; else bad "GPU 1's row"; echo "$screen" >&2; fi
T send-keys Enter; sleep 1
d=$(cap)
if grep -q '^Workload namespace training  pod llm-7b-worker-3  container trainer' <<<"$d"; then
  ok "the detail of GPU 0: namespace, pod, container"
else bad "the detail of GPU 0 has no workload line:"; echo "$d" >&2; fi
T send-keys Escape Down Enter; sleep 1
d=$(cap)
if grep -q '^GPU 1 ' <<<"$d" && grep -q '^Workload none' <<<"$d"; then ok "the detail of GPU 1: none"
else bad "the detail of GPU 1:"; echo "$d" >&2; fi
T send-keys Escape; sleep 0.5
# GPU 2: its UTF-8 workload as UTF-8 (the console showed '?' for each byte), its ESC as '?'
if wait_screen 10 '^ +2 ' && grep -E '^ +2 ' <<<"$screen" | grep -q $'\xc3\xa9quipe/\xe6\x97\xa5\xe6\x9c\xac-worker-0'; then
  ok "the fleet table shows GPU 2's UTF-8 workload"
else bad "GPU 2's UTF-8 workload in the fleet table:"; echo "$screen" >&2; fi
T send-keys Down Enter; sleep 1
d=$(cap)
if grep -q '^GPU 2 ' <<<"$d" &&
   grep -q $'^Workload namespace \xc3\xa9quipe  pod \xe6\x97\xa5\xe6\x9c\xac-worker-0  container c?\\[31mx' <<<"$d"; then
  ok "the detail of GPU 2: UTF-8 kept, the escape byte as '?'"
else bad "the detail of GPU 2:"; echo "$d" | cat -v >&2; fi
T send-keys Escape; sleep 0.5
T resize-window -x 80 -y 24; sleep 1
m=$(cap)
if [ "$(grep -cE '^ +[01] ' <<<"$m")" = 2 ] && ! grep -q 'WORKLOAD' <<<"$m" &&
   [ "$(python3 -c 'import sys; print(max(len(l) for l in sys.stdin.read().split("\n")))' <<<"$m")" -le 80 ]; then
  ok "80 columns: the workload column hidden, both rows kept"
else bad "80 columns:"; echo "$m" >&2; fi
stop_console

echo "== 2. --nvml over the stand-in library: the processes in the GPU detail"
stub=${NVML_STUB_LIB:-}
if [ -z "$stub" ] || [ ! -f "$stub" ]; then
  bad "NVML_STUB_LIB='$stub' is not the built stand-in library (run through ctest)"
else
  sleep 300 & pids="$pids $!"; sleep_pid=$!
  tail -f /dev/null & pids="$pids $!"; tail_pid=$!
  cat >"$scratch/nvml.txt" <<EOF
driver 550.54.15
count 1
g0.uuid GPU-11111111-2222-3333-4444-555555555555
g0.name NVIDIA H100 80GB HBM3
g0.pci 00000000:19:00.0
g0.minor 0
g0.temp 45
g0.power_mw 312456
g0.procs $sleep_pid:512,$tail_pid:1024
g0.gprocs $sleep_pid:512
EOF
  start_console --nvml --nvml-library "$stub" --interval 1 --refresh 0.5
  if wait_screen 60 '^ +0 .*W'; then ok "the local GPU's row"; else bad "no GPU row:"; echo "$screen" >&2; cat "$scratch/stderr$run.txt" >&2; fi
  T send-keys Enter
  if wait_screen 15 "^ +$tail_pid  compute"; then
    me=$(id -un)
    if grep -q '^Processes (2) ' <<<"$screen" &&
       grep -qE "^ +$sleep_pid  comp\\+gfx +512M  $me +sleep 300" <<<"$screen" &&
       grep -qE "^ +$tail_pid  compute +1\\.0G  $me +tail -f /dev/null" <<<"$screen"; then
      ok "the detail lists both processes: PID, type, GPU memory, user, command"
    else bad "the processes in the detail:"; echo "$screen" >&2; fi
  else bad "no processes in the detail:"; echo "$screen" >&2; fi
  stop_console
fi

echo "$passes passed, $fails failed"
[ $fails = 0 ]
