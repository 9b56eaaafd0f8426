#!/usr/bin/env bash
# The console as a user drives it, in a real terminal (tmux on a private socket):
#   8 GPU rows with moving sparklines, a non-zero and rising row count, the consumer lag;
#   Enter/Esc, sort and filter; in the detail the history keys (2: from the private PostgreSQL,
#   or "needs a database" over the fake source); a resize to 80x24 with no garbage; q exits within 2 s with
#   status 0 and leaves no process behind (F10, SIGTERM, SIGINT too; SIGHUP and a killed tmux
#   session with status 129).
#
# Usage: test_console_tmux.sh BINARY [--fake]
#   default  the real embedded pipeline (simulator, in-process broker, private PostgreSQL under
#            a scratch XDG_STATE_HOME): label integration
#   --fake   the console over its fake source (GPUHEALTH_UI_FAKE=1): no services, seconds
set -u
bin=$(realpath "$1")
mode=${2:-real}
command -v tmux >/dev/null || { echo "FAIL: tmux is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed" >&2; exit 1; }

scratch=$(mktemp -d /tmp/gh-console.XXXXXX)
sock="gh-console-$$"
fails=0 passes=0
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
T() { tmux -L "$sock" "$@"; }
cleanup() {
  for k in ${socks:-}; do
    tmux -L "$k" kill-server 2>/dev/null
    rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$k" # the socket file stays behind
  done
  # anything of ours still running (the console, its pipeline, a private PostgreSQL)
  for p in ${consoles:-} ${descendants:-}; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$scratch"
}
trap cleanup EXIT

if [ "$mode" = --fake ]; then
  envs="GPUHEALTH_UI_FAKE=1"
  args="--gpus 8 --refresh 0.5"
  first_wait=10
else
  envs="GPUHEALTH_UI_FAKE="
  args="--gpus 8 --interval 1 --batch-timeout 0.5 --refresh 0.5"
  first_wait=60
fi
# HOME and XDG_STATE_HOME in the scratch dir: the private PostgreSQL and the console's log
# live there; LANG: a UTF-8 locale for the sparklines
cat >"$scratch/run.sh" <<EOF
cd "$scratch"
trap : HUP # outlives a killed session to record the console's exit status
env HOME="$scratch" XDG_STATE_HOME="$scratch/state" LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color \
  GPUHEALTH_UI_STATS="$scratch/ui-stats.txt" $envs "$bin" tui $args 2>"$scratch/stderr.txt"
echo \$? >"$scratch/exit"
sleep 3 # the pane stays a moment: the test reads whether the terminal was restored
EOF
runs=0 socks=""
start_console() { # a fresh tmux server (its own socket) running the console; sets console_pid
  T kill-server 2>/dev/null
  runs=$((runs + 1)); sock="gh-console-$$-$runs"; socks="$socks $sock"
  rm -f "$scratch/exit"
  T new-session -d -x 100 -y 30 "bash $scratch/run.sh" || { echo "FAIL: tmux did not start" >&2; exit 1; }
  local pane_pid; pane_pid=$(T display-message -p '#{pane_pid}')
  console_pid=""
  for _ in $(seq 50); do
    console_pid=$(ps -o pid= --ppid "$pane_pid" | tr -d ' ' | head -1)
    [ -n "$console_pid" ] && break
    sleep 0.1
  done
  [ -n "$console_pid" ] || { bad "the console did not start"; cat "$scratch/stderr.txt" >&2; exit 1; }
  consoles="${consoles:-} $console_pid" # every one, for the cleanup: a failed stop leaves it running
}
start_console

cap() { T capture-pane -p; }
# counts the GPU rows of a capture: "  3 MODEL  68C  304/400W  71% ..."
gpu_rows() { grep -cE '^ *[0-9]+ .* +[0-9-]+C? +[0-9]+(/[0-9]+)?W' <<<"$1"; }
spark_part() { grep -E '^ *[0-9]+ .*W' <<<"$1" | grep -oE '[▁▂▃▄▅▆▇█ ]{4,}$'; }
rows_of() { # the gpu_metrics row count as a number (1.23k -> 1230)
  python3 -c '
import re,sys
m=re.search(r"gpu_metrics rows ~?([0-9.]+)([kMG]?)", sys.stdin.read())
print(int(float(m.group(1))*{"":1,"k":1e3,"M":1e6,"G":1e9}[m.group(2)]) if m else -1)' <<<"$1"
}

# 1. eight GPU rows, within the first wait
deadline=$((SECONDS + first_wait)); screen=""
while [ $SECONDS -lt $deadline ]; do
  screen=$(cap)
  [ "$(gpu_rows "$screen")" -ge 8 ] && [ "$(rows_of "$screen")" -gt 0 ] && break
  sleep 0.5
done
n=$(gpu_rows "$screen")
if [ "$n" = 8 ]; then ok "8 GPU rows"; else bad "expected 8 GPU rows, saw $n:"; echo "$screen" >&2; fi

# 2. sparklines move; 3. the row count is non-zero and rises; 4. the lag is shown
s1=$(spark_part "$screen"); r1=$(rows_of "$screen")
moved=no rose=no
for _ in $(seq 20); do
  sleep 0.5
  screen2=$(cap)
  [ "$(spark_part "$screen2")" != "$s1" ] && moved=yes
  [ "$(rows_of "$screen2")" -gt "$r1" ] && rose=yes
  [ $moved = yes ] && [ $rose = yes ] && break
done
if grep -qE '[▁▂▃▄▅▆▇█]' <<<"$s1" && [ $moved = yes ]; then ok "sparklines move"; else bad "sparklines did not move: '$s1'"; fi
if [ "$r1" -gt 0 ] && [ $rose = yes ]; then ok "row count $r1 -> $(rows_of "$screen2")"; else bad "row count not rising: $r1 -> $(rows_of "$screen2")"; echo "$screen2" >&2; fi
if grep -qE 'lag [0-9]+ \[' <<<"$screen2"; then ok "lag shown"; else bad "no consumer lag on screen"; echo "$screen2" >&2; fi

# 5. Enter opens the detail, Esc goes back
T send-keys Down Down Enter; sleep 0.6
d=$(cap)
if grep -q '| GPU detail |' <<<"$d" && grep -q '^GPU 2 ' <<<"$d" && grep -q 'Last XID' <<<"$d" &&
   grep -q 'Throttle' <<<"$d" && grep -q 'recommended:' <<<"$d"; then ok "Enter: detail of GPU 2"
else bad "Enter did not open the detail of GPU 2:"; echo "$d" >&2; fi
# the history keys (issue #25): with the private PostgreSQL they read it (1 h of raw
# gpu_metrics: the chart's value axis labelled min/max); over the fake source, without a
# database, the key bar says so and the live ring stays
T send-keys 2
if [ "$mode" = --fake ]; then
  sleep 0.6; d=$(cap)
  if grep -q 'needs a database' <<<"$d"; then ok "2 without a database: the key bar says so"; else bad "2 without a database:"; echo "$d" >&2; fi
else
  hist=no
  for _ in $(seq 40); do
    d=$(cap)
    grep -qE 'min -?[0-9]+ max -?[0-9]+' <<<"$d" && grep -q 'history 1 h' <<<"$d" && { hist=yes; break; }
    sleep 0.25
  done
  if [ $hist = yes ] && ! grep -q 'needs a database' <<<"$d"; then ok "2: 1 h of history from the private PostgreSQL"; else bad "2: no history from the private PostgreSQL:"; echo "$d" >&2; fi
fi
T send-keys 1; sleep 0.3
T send-keys Escape; sleep 0.6
m=$(cap)
if grep -q '| fleet |' <<<"$m" && [ "$(gpu_rows "$m")" = 8 ]; then ok "Esc: back to the fleet"; else bad "Esc did not go back:"; echo "$m" >&2; fi

# 6. sort: index -> model -> temp (descending)
T send-keys s s; sleep 0.6
m=$(cap)
temps=$(grep -E '^ *[0-9]+ .*W' <<<"$m" | grep -oE ' [0-9]+C ' | tr -dc '0-9\n')
if grep -q 'temp' <<<"$(tail -1 <<<"$m")" && [ "$(wc -l <<<"$temps")" = 8 ] &&
   [ "$temps" = "$(sort -rn <<<"$temps")" ]; then ok "sort by temperature, descending"
else bad "not sorted by temperature: $(echo $temps)"; echo "$m" >&2; fi
T send-keys I; sleep 0.6
m=$(cap)
temps=$(grep -E '^ *[0-9]+ .*W' <<<"$m" | grep -oE ' [0-9]+C ' | tr -dc '0-9\n')
if [ "$temps" = "$(sort -n <<<"$temps")" ]; then ok "I inverts the sort"; else bad "I did not invert: $(echo $temps)"; fi

# 7. filter: / gpu3 Enter -> one row, GPU 3; Esc clears
T send-keys / g p u 3 Enter; sleep 0.6
m=$(cap)
if [ "$(gpu_rows "$m")" = 1 ] && grep -qE '^ +3 ' <<<"$m"; then ok "filter gpu3: one row"; else bad "filter gpu3:"; echo "$m" >&2; fi
T send-keys Escape; sleep 0.6
m=$(cap)
if [ "$(gpu_rows "$m")" = 8 ]; then ok "Esc clears the filter"; else bad "filter not cleared"; echo "$m" >&2; fi

# back to the fleet's own order (a stable picture for the resize below)
T send-keys '<' '<'; sleep 0.6
m=$(cap)
idx=$(grep -E '^ *[0-9]+ .*W' <<<"$m" | awk '{print $1}' | tr '\n' ' ')
if grep -q 'index' <<<"$(tail -1 <<<"$m")" && [ "$idx" = "0 1 2 3 4 5 6 7 " ]; then ok "< <: back to index order"
else bad "not in index order: $idx"; fi

# 8. resize to 80x24: no garbage
T resize-window -x 80 -y 24; sleep 1
m=$(cap)
check=$(python3 - "$m" <<'EOF'
import sys, unicodedata
lines = sys.argv[1].split("\n")
err = []
if len(lines) != 24: err.append("%d lines" % len(lines))
for i, l in enumerate(lines):
    if len(l) > 80: err.append("line %d is %d cells" % (i, len(l)))
if not lines[0].startswith(" gpuhealth "): err.append("title not on line 0")
heads = [i for i, l in enumerate(lines) if l.startswith("GPU MODEL") or l.startswith("GPU  ")]
if len(heads) != 1: err.append("table header %d times" % len(heads))
if sum(l.startswith(" gpuhealth ") for l in lines) != 1: err.append("title repeated")
if not lines[-1].startswith("F1Help"): err.append("no key bar on the last line")
print("; ".join(err))
EOF
)
if [ -z "$check" ] && [ "$(gpu_rows "$m")" = 8 ]; then ok "80x24: clean, 8 rows"; else bad "80x24: $check"; echo "$m" >&2; fi
# what the resize left must have the shape of a full redraw (Ctrl-L): digits and glyphs
# aside, the same text in the same cells
# (a health that changed between the two captures is not garbage: one word stands for it)
shape() { sed -E 's/[0-9]+/9/g; s/[▁▂▃▄▅▆▇█_.:=+*#-]/~/g; s/(pass|warn|fail)( (keep|drain|reset|reboot|rma))?( stale)?/H/g; s/ +/ /g' <<<"$1" | sed -n '1p;6,23p'; }
T send-keys C-l; sleep 0.4
m2=$(cap)
if [ "$(shape "$m")" = "$(shape "$m2")" ]; then ok "80x24: same as a full redraw"
else bad "80x24 differs from a full redraw:"; diff <(shape "$m") <(shape "$m2") >&2; fi
# the help at 80x24: too long for 22 lines, it says so and scrolls to its last line (it was
# cut there); host= is on it; any other key goes back
T send-keys h; sleep 0.5; m=$(cap)
if grep -q 'Keys (htop.*\[Down: more\]' <<<"$m" && grep -q 'host=NAME' <<<"$m"; then ok "h at 80x24: the help, host=NAME on it, more below"; else bad "h at 80x24: no help with host=NAME and a more mark:"; echo "$m" >&2; fi
T send-keys NPage NPage; sleep 0.5; m=$(cap)
if grep -q 'Health column' <<<"$m" && grep -q 'rma); the detail lists' <<<"$m" && grep -q '\[Up: back\]' <<<"$m"; then ok "PgDn in the help: its last lines"; else bad "PgDn in the help: the last lines are not shown:"; echo "$m" >&2; fi
T send-keys x; sleep 0.5; m=$(cap)
if [ "$(gpu_rows "$m")" = 8 ]; then ok "a key in the help: back to the table"; else bad "a key in the help did not go back:"; echo "$m" >&2; fi

# 9. q: exit within 2 s with status 0, the terminal restored, nothing left running
descendants() { # every process below $1
  local kids; kids=$(ps -o pid= --ppid "$1" | tr -d ' ')
  for k in $kids; do echo "$k"; descendants "$k"; done
}
stop_check() { # stop_check HOW: q, F10 (keys), TERM, INT, HUP (signals to the console),
  # kill-session (the terminal goes away: SIGHUP, EOF/EIO); a hangup exits 129, the rest 0
  local how=$1 descendants scratch_procs t0 t1 el st left left_scratch want=0
  case $how in HUP|kill-session) want=129 ;; esac
  descendants=$(descendants "$console_pid")
  scratch_procs=$(ps -eo pid=,args= | grep -F "$scratch" | grep -vE "grep|bash $scratch/run.sh|tmux" | awk '{print $1}')
  descendants="$descendants $scratch_procs"
  t0=$(date +%s.%N)
  case $how in
    q|F10) T send-keys "$how" ;;
    kill-session) T kill-session ;;
    *) kill -"$how" "$console_pid" ;;
  esac
  for _ in $(seq 40); do [ -f "$scratch/exit" ] && break; sleep 0.05; done
  t1=$(date +%s.%N)
  el=$(python3 -c "print(round($t1-$t0,2))")
  if [ -f "$scratch/exit" ] && python3 -c "import sys; sys.exit(0 if $el <= 2.0 else 1)"; then ok "$how: exited in ${el}s"; else bad "$how: did not exit within 2 s"; fi
  sleep 0.2
  st=$(cat "$scratch/exit" 2>/dev/null)
  if [ "$st" = "$want" ]; then ok "$how: exit status $want"; else bad "$how: exit status '$st', expected $want"; cat "$scratch/stderr.txt" >&2; fi
  if [ "$how" = kill-session ]; then :
  elif [ "$(T display-message -p '#{alternate_on}' 2>/dev/null)" = 0 ]; then ok "$how: terminal restored (alternate screen left)"; else bad "$how: the terminal is still in the console's screen"; fi
  sleep 0.3
  left=""
  for p in $console_pid $descendants; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
  left_scratch=$(ps -eo pid=,args= | grep -F "$scratch" | grep -vE "grep|tmux|bash $scratch/run.sh" | awk '{print $1}')
  if [ -z "$left" ] && [ -z "$left_scratch" ]; then ok "$how: no process left"; else bad "$how: left running:$left $left_scratch"; ps -o pid,args -p "${left// /,}" >&2; fi
}
stop_check q
[ -s "$scratch/ui-stats.txt" ] && echo "console stats: $(tr '\n' ' ' <"$scratch/ui-stats.txt")"

# F10, SIGTERM and SIGINT stop it the same way; SIGHUP and a killed session (the terminal hung
# up) too, with exit status 129
for how in F10 TERM INT HUP kill-session; do
  start_console
  deadline=$((SECONDS + first_wait))
  while [ $SECONDS -lt $deadline ] && [ "$(gpu_rows "$(cap)")" -lt 8 ]; do sleep 0.3; done
  stop_check $how
done

# 10. the mouse (on a pseudo-terminal of our own: tmux does not pass made-up mouse events):
# a click on F10Quit in the key bar quits with status 0; with --no-mouse the click does nothing
mouse() {
  python3 - "$bin" "$@" <<'EOF'
import os, pty, sys, time, select, fcntl, termios, struct
pid, fd = pty.fork()
if pid == 0:
    os.environ.update(GPUHEALTH_UI_FAKE="1", TERM="xterm-256color", LANG="C.UTF-8")
    os.dup2(os.open("/dev/null", os.O_WRONLY), 2)
    os.execv(sys.argv[1], [sys.argv[1], "tui", "--gpus", "8"] + sys.argv[2:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
out = b""
def drain(t, until=None):
    global out
    end = time.time() + t
    while time.time() < end:
        if until and until in out:
            return
        if select.select([fd], [], [], 0.1)[0]:
            try: out += os.read(fd, 65536)
            except OSError: return
drain(10, b"Quit")  # the key bar is drawn
drain(0.3)
# F1Help F2Pipeline F4Filter F5Group F6SortBy EntDetail F10Quit: F10Quit spans columns 55-61
# the click again every 2 s: on a loaded machine the first one can come before the console
# reads input (with --no-mouse no click may ever quit it)
wp = 0
for i in range(int(os.environ.get("WAIT_TENTHS", "30"))):
    if i % 20 == 0:
        os.write(fd, b"\x1b[<0;57;30M\x1b[<0;57;30m")
    drain(0.1)
    wp, st = os.waitpid(pid, os.WNOHANG)
    if wp == pid:
        break
if wp == pid:
    print("exited %d" % (st >> 8))
else:
    print("running")
    os.kill(pid, 15); os.waitpid(pid, 0)
EOF
}
r=$(WAIT_TENTHS=200 mouse)  # up to 20 s on a loaded machine (an ASan build beside a compile missed 10 s once)
if [ "$r" = "exited 0" ]; then ok "mouse: a click on F10Quit quits"; else bad "mouse: a click on F10Quit: $r"; fi
r=$(mouse --no-mouse)
if [ "$r" = running ]; then ok "--no-mouse: the click is left to the terminal"; else bad "--no-mouse: $r"; fi

# 11. NO_COLOR, --no-color, -U and a non-UTF-8 locale, from the raw output on a pty
look() { # look ENV=VALUE... -- ARGS...: "colour=0|1 blocks=0|1 exit=N"
  python3 - "$bin" "$@" <<'EOF'
import os, pty, re, sys, time, select, fcntl, termios, struct
bin, rest = sys.argv[1], sys.argv[2:]
cut = rest.index("--")
envs, args = rest[:cut], rest[cut + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.environ.pop("NO_COLOR", None)
    os.environ.update(GPUHEALTH_UI_FAKE="1", TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    for e in envs:
        k, v = e.split("=", 1)
        os.environ[k] = v
    os.dup2(os.open("/dev/null", os.O_WRONLY), 2)
    os.execv(bin, [bin, "tui", "--gpus", "8", "--refresh", "0.2"] + args)
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
out = b""
def drain(t, until=None):
    global out
    end = time.time() + t
    while time.time() < end:
        if until and until in out:
            return
        if select.select([fd], [], [], 0.1)[0]:
            try: out += os.read(fd, 65536)
            except OSError: return
drain(10, b"Quit")  # a whole frame is out
drain(1.0)
os.write(fd, b"q")
drain(1.0)
wp, st = os.waitpid(pid, 0)
colour = re.search(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|4[0-7]|38;5;[0-9]+|48;5;[0-9]+)(?:;[0-9;]*)?m", out) is not None
blocks = re.search(b"\xe2\x96[\x81-\x88]", out) is not None
print("colour=%d blocks=%d exit=%d" % (colour, blocks, st >> 8))
EOF
}
r=$(look --); [ "$r" = "colour=1 blocks=1 exit=0" ] && ok "default: colours, blocks" || bad "default: $r"
r=$(look NO_COLOR=1 --); [ "$r" = "colour=0 blocks=1 exit=0" ] && ok "NO_COLOR=1: no colours" || bad "NO_COLOR=1: $r"
r=$(look NO_COLOR= --); [ "$r" = "colour=1 blocks=1 exit=0" ] && ok "NO_COLOR empty: colours" || bad "NO_COLOR empty: $r"
r=$(look -- --no-color -U); [ "$r" = "colour=0 blocks=0 exit=0" ] && ok "--no-color -U: plain ASCII" || bad "--no-color -U: $r"
r=$(look LANG=C LC_ALL=C --); [ "$r" = "colour=1 blocks=0 exit=0" ] && ok "C locale: ASCII fallback" || bad "C locale: $r"

echo "$passes passed, $fails failed"
[ $fails = 0 ]
