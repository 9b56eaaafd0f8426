#!/usr/bin/env bash
# The console's terminal goes away (issue 19, item 5): the console over the real embedded
# pipeline (simulator, in-process broker, its private PostgreSQL under a scratch
# XDG_STATE_HOME) in a real terminal (tmux on a private socket), then
#   kill-session  tmux kills the pane: the terminal hangs up (EOF/EIO, SIGHUP)
#   hup           kill -HUP of the console, its terminal still there
#   kill9         kill -9 of the console: its private PostgreSQL must not stay behind
# For the first two: within 3 s no console and no private postgres process is left, the exit
# status is 129 (128 + SIGHUP), the console did not spin on a core while it stopped, and
# nothing it had accepted is lost: the private database, opened again afterwards, holds every
# row the console's last log line says the sink wrote, and the sink wrote every event the
# collector delivered. For kill9: within 3 s no private postgres process is left.
# No Kafka or shared PostgreSQL needed: the console embeds its own.
#
# Usage: test_console_hangup.sh BINARY [CASE...]   (default: kill-session hup kill9)
set -u
bin=$(realpath "$1")
shift
cases=${*:-kill-session hup kill9}
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
die() { echo "FATAL: $*" >&2; echo "$passes passed, $((fails + 1)) failed"; exit 1; }
command -v tmux >/dev/null || die "tmux is not installed (scripts/install-deps.sh --test)"
command -v psql >/dev/null || die "psql is not installed (scripts/install-deps.sh --test)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$pgbin/postgres" ] || die "no PostgreSQL server under /usr/lib/postgresql (scripts/install-deps.sh --test): the console's private database needs it"

scratch=$(mktemp -d /tmp/gh-hangup.XXXXXX)
socks="" kill_later=""
cleanup() {
  for k in $socks; do
    tmux -L "$k" kill-server 2>/dev/null
    rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$k"
  done
  for p in $kill_later; do kill -9 "$p" 2>/dev/null; done
  if [ "$fails" = 0 ] && [ -z "${GH_KEEP:-}" ]; then rm -rf "$scratch"; else echo "logs kept in $scratch" >&2; fi
}
trap cleanup EXIT

descendants() { # every process below $1
  local k
  for k in $(ps -o pid= --ppid "$1" | tr -d ' '); do echo "$k"; descendants "$k"; done
}
cpu_ticks() { # utime + stime of a process, in clock ticks (empty when it is gone)
  awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat" 2>/dev/null
}
alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && echo "$p"; done; }

# reopen_count PGDATA: the private database alone, started on its data directory as its
# owner (the data directory passed as fd 3, as the console does); prints count(*) of
# gpu_metrics, stops it again
reopen_count() {
  local pgdata=$1 owner run=() pid n=-1 i
  owner=$(stat -c %U "$pgdata")
  # setpriv execs (runuser would fork, and a signal to it would not reach the server)
  [ "$(id -u)" = 0 ] && [ "$owner" != root ] && run=(setpriv "--reuid=$owner" "--regid=$owner" --init-groups)
  (exec 3<"$pgdata"; exec "${run[@]}" "$pgbin/postgres" -D /proc/self/fd/3 -c listen_addresses= \
    -c unix_socket_directories=/proc/self/fd/3 -c unix_socket_permissions=0700) \
    >>"$pgdata.reopen.log" 2>&1 &
  pid=$!
  kill_later="$kill_later $pid"
  for i in $(seq 100); do
    n=$(psql -X -At "host=$pgdata user=gpuhealth dbname=gpuhealth" \
      -c 'SELECT count(*) FROM gpu_metrics' 2>/dev/null) && break
    n=-1
    sleep 0.2
  done
  kill -INT "$pid" 2>/dev/null
  for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  echo "$n"
}

run_case() {
  local how=$1 d="$scratch/$1" sock="gh-hangup-$$-$1"
  mkdir -p "$d"
  socks="$socks $sock"
  # the wrapper survives the hangup (trap) to record the console's exit status; the console
  # gets the hangup itself: EOF/EIO on its terminal, and SIGHUP where tmux or the kernel sends it
  cat >"$d/run.sh" <<EOF
cd "$d"
trap : HUP
env HOME="$d" XDG_STATE_HOME="$d/state" LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color \
  GPUHEALTH_UI_FAKE= "$bin" tui --gpus 8 --interval 1 --batch-timeout 0.5 --refresh 0.5 \
  2>"$d/stderr.txt"
echo \$? >"$d/exit"
EOF
  echo "== $how"
  tmux -L "$sock" new-session -d -x 100 -y 30 "bash $d/run.sh" || die "$how: tmux did not start"
  local pane con="" i
  pane=$(tmux -L "$sock" display-message -p '#{pane_pid}')
  kill_later="$kill_later $pane"
  for i in $(seq 50); do
    con=$(ps -o pid= --ppid "$pane" | tr -d ' ' | head -1)
    [ -n "$con" ] && break
    sleep 0.1
  done
  [ -n "$con" ] || { bad "$how: the console did not start"; cat "$d/stderr.txt" >&2; return; }
  kill_later="$kill_later $con"
  # running: rows in its private database (initdb and the first batches; slow under ASan)
  local pgdata="$d/state/gpuhealth/pg" ci rows=0
  ci="host=$pgdata user=gpuhealth dbname=gpuhealth"
  for i in $(seq 240); do
    rows=$(psql -X -At "$ci" -c 'SELECT count(*) FROM gpu_metrics' 2>/dev/null) || rows=0
    [ "${rows:-0}" -gt 0 ] && break
    kill -0 "$con" 2>/dev/null || break
    sleep 0.5
  done
  [ "${rows:-0}" -gt 0 ] || { bad "$how: no rows in the private database after 120 s"; tail -5 "$d/state/gpuhealth/console.log" >&2; return; }
  sleep 2 # a few more scrapes in flight
  local post procs master
  master=$(head -1 "$pgdata/postmaster.pid" 2>/dev/null)
  [ -n "$master" ] && kill -0 "$master" 2>/dev/null || { bad "$how: no private postgres running"; return; }
  procs=$(printf '%s\n' "$con" $(descendants "$con") "$master" $(descendants "$master") | sort -un)
  kill_later="$kill_later $procs"
  echo "  running: console $con, private postgres $master, $rows rows; injecting: $how"

  local t0 t1 c0 c1 last left
  c0=$(cpu_ticks "$con")
  t0=$EPOCHREALTIME
  case "$how" in
    kill-session) tmux -L "$sock" kill-session ;;
    hup) kill -HUP "$con" ;;
    kill9) kill -9 "$con" ;;
  esac
  last=$c0
  while :; do
    c1=$(cpu_ticks "$con")
    [ -n "$c1" ] && last=$c1
    t1=$EPOCHREALTIME
    left=$(alive $procs)
    [ -z "$left" ] && break
    [ $(( ${t1/./} - ${t0/./} )) -lt 3000000 ] || break
    sleep 0.05
  done
  local el
  el=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  if [ -z "$left" ]; then
    ok "$how: no console and no private postgres left after ${el} s"
  else
    bad "$how: still running 3 s later: $(echo $left)"
    ps -o pid,pcpu,args -p "$(echo $left | tr ' ' ',')" >&2
  fi
  [ "$how" = kill9 ] && return

  # the console's CPU while it stopped: the old one spun at a core until killed
  local pct
  pct=$(python3 -c "print(round(100.0 * ($last - $c0) / $(getconf CLK_TCK) / max($t1 - $t0, 0.5)))")
  if [ "$pct" -lt 50 ]; then ok "$how: the console used ${pct}% of a core while it stopped"
  else bad "$how: the console used ${pct}% of a core while it stopped (spinning?)"; fi

  for i in $(seq 30); do [ -s "$d/exit" ] && break; sleep 0.1; done
  local st
  st=$(cat "$d/exit" 2>/dev/null)
  if [ "$st" = 129 ]; then ok "$how: exit status 129 (128 + SIGHUP)"
  else bad "$how: exit status '${st:-none}', expected 129"; fi
  if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$d/stderr.txt"; then
    bad "$how: sanitizer report"; head -30 "$d/stderr.txt" >&2
  fi
  local log="$d/state/gpuhealth/console.log"
  grep -q 'console: the terminal hung up' "$log" && ok "$how: the log says the terminal hung up" \
    || bad "$how: no 'terminal hung up' line in $log"
  grep -q 'database: private PostgreSQL stopped' "$log" \
    && ok "$how: the private PostgreSQL was stopped in order (not killed)" \
    || bad "$how: no 'private PostgreSQL stopped' line in $log"

  # nothing lost: what the sink said it wrote is in the database opened again; and the sink
  # wrote every event the collector delivered (the in-process broker dies with the console)
  local line ev dl dr sr n
  line=$(grep -o 'console: stopped; .*' "$log" | tail -1)
  echo "  $line"
  ev=$(grep -o ' events=[0-9]*' <<<"$line" | cut -d= -f2)
  dl=$(grep -o ' delivered=[0-9]*' <<<"$line" | cut -d= -f2)
  dr=$(grep -o ' dropped=[0-9]*' <<<"$line" | cut -d= -f2)
  sr=$(grep -o ' sink_rows=[0-9]*' <<<"$line" | cut -d= -f2)
  [ -n "$sr" ] || { bad "$how: no 'console: stopped;' line in $log"; return; }
  n=$(reopen_count "$pgdata")
  echo "  reopened: gpu_metrics holds $n rows; the sink wrote $sr, the collector delivered $dl of $ev events"
  [ "$n" -ge "$sr" ] && [ "$sr" -gt 0 ] && ok "$how: the reopened database holds the $sr rows the sink wrote ($n)" \
    || bad "$how: the reopened database holds $n rows, the sink said it wrote $sr"
  [ "$dr" = 0 ] && [ "$dl" = "$ev" ] && ok "$how: the collector delivered all $ev events, dropped none" \
    || bad "$how: the collector delivered $dl of $ev events, dropped $dr"
  [ "$sr" = "$dl" ] && ok "$how: the sink wrote every delivered event ($sr)" \
    || bad "$how: the sink wrote $sr rows of $dl delivered events"
}

for c in $cases; do
  case "$c" in
    kill-session | hup | kill9) run_case "$c" ;;
    *) die "unknown case '$c' (kill-session hup kill9)" ;;
  esac
done
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
