#!/usr/bin/env bash
# Console benchmark (issue #6): the console's own cost with 64 simulated GPUs at a 1 s refresh.
#   - draw CPU: the UI thread's CPU time (CLOCK_THREAD_CPUTIME_ID) spent copying the data and
#     drawing, as a share of one core; the pipeline's threads are not counted
#     (target: at most 1 %)
#   - resident memory of the gpuhealth process (VmRSS now, VmHWM peak); the private
#     PostgreSQL is a separate process and not counted (target: at most 32 MB)
# The console runs in tmux (a private socket) for DURATION seconds, then quits with q.
# Usage: bench/console.sh [--fake] [DURATION]     (default 60 s; --fake: GPUHEALTH_UI_FAKE=1)
#        bench/console.sh --fleet-db [DURATION]   (issue #25: a read-only viewer of a fleet
#                                                   database of 200,704 GPUs; see fleet_db below)
#        BIN=path/to/gpuhealth bench/console.sh    (default build/gpuhealth)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --fleet-db ]; then
  shift
  exec "$root/bench/console_fleet.sh" "$@"
fi
fake=""
if [ "${1:-}" = --fake ]; then fake=1; shift; fi
DURATION=${1:-60}
BIN=${BIN:-$root/build/gpuhealth}
[ -x "$BIN" ] || { echo "bench/console.sh: $BIN is not built (cmake --build build)" >&2; exit 1; }
command -v tmux >/dev/null || { echo "bench/console.sh: needs tmux (scripts/install-deps.sh --test)" >&2; exit 1; }

T=$(mktemp -d /tmp/gh-console-bench.XXXXXX)
sock="gh-console-bench-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock"; rm -rf "$T"' EXIT
if [ -n "$fake" ]; then
  envs="GPUHEALTH_UI_FAKE=1 GPUHEALTH_UI_FAKE_PER_HOST=8"; args="--gpus 64 --refresh 1"
else
  envs="GPUHEALTH_UI_FAKE="; args="--gpus 64 --interval 1 --refresh 1"
fi
cat >"$T/run.sh" <<EOF
cd "$T"
env HOME="$T" XDG_STATE_HOME="$T/state" LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color \
  GPUHEALTH_UI_STATS="$T/stats.txt" $envs "$BIN" tui $args 2>"$T/stderr.txt"
echo \$? >"$T/exit"
EOF
tmux -L "$sock" new-session -d -x 160 -y 50 "bash $T/run.sh"
pane=$(tmux -L "$sock" display-message -p '#{pane_pid}')
pid=""
for _ in $(seq 50); do pid=$(ps -o pid= --ppid "$pane" | tr -d ' ' | head -1); [ -n "$pid" ] && break; sleep 0.1; done
[ -n "$pid" ] || { echo "the console did not start: $(cat "$T/stderr.txt")" >&2; exit 1; }
ticks=$(getconf CLK_TCK)
cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat")
sleep "$DURATION"
cpu1=$(awk '{print $14+$15}' "/proc/$pid/stat")
rss=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")
threads=$(awk '/^Threads:/{print $2}' "/proc/$pid/status")
tmux -L "$sock" capture-pane -p >"$T/screen.txt"
tmux -L "$sock" send-keys q
for _ in $(seq 100); do [ -f "$T/exit" ] && break; sleep 0.1; done
[ -f "$T/stats.txt" ] || { echo "no stats from the console: $(cat "$T/stderr.txt")" >&2; exit 1; }
src="embedded pipeline"; [ -n "$fake" ] && src="fake (GPUHEALTH_UI_FAKE=1)"
get() { awk -v k="$1" '$1==k{print $2}' "$T/stats.txt"; }
rows=$(grep -cE '^ *[0-9]+ .*W' "$T/screen.txt" || true)
echo "console benchmark: ${DURATION}s, $(get gpus) GPUs, refresh $(get refresh_s)s, source: $src, $(nproc) cores"
echo "  frames drawn:            $(get frames) ($rows GPU rows on a 160x50 screen at the end)"
awk -v d="$(get draw_cpu_s)" -v p="$(get draw_cpu_pct)" -v u="$(get ui_thread_cpu_s)" -v w="$(get wall_s)" 'BEGIN{
  printf "  draw CPU (UI thread):    %.3f s = %.3f %% of one core   target <= 1 %%: %s\n", d, p, (p <= 1.0 ? "MET" : "MISSED");
  printf "  UI thread, all of it:    %.3f s = %.3f %% of one core (input waits included)\n", u, 100*u/w }'
awk -v c0="$cpu0" -v c1="$cpu1" -v t="$ticks" -v d="$DURATION" -v n="$threads" 'BEGIN{
  printf "  whole process (%d threads, pipeline included): %.2f %% of one core\n", n, 100*(c1-c0)/t/d }'
awk -v r="$rss" -v h="$hwm" 'BEGIN{
  printf "  resident memory:         VmRSS %.1f MB, VmHWM %.1f MB   target <= 32 MB: %s\n", r/1024, h/1024, (h/1024 <= 32 ? "MET" : "MISSED") }'
echo "  exit status after q:     $(cat "$T/exit" 2>/dev/null || echo none)"
