#!/usr/bin/env bash
# The console as a viewer of a fleet database (issue #25), against the real PostgreSQL that
# scripts/test.sh starts (GPUHEALTH_TEST_PG), seeded with a small fleet of known values
# (viewer_seed.sql: 4 GPUs on 2 hosts, 2 racks, open alerts, node-a/0's history):
#   1. a viewer must not write: --daemon and the console with --db on a machine without GPUs
#      leave the fleet at 4 GPUs and its rows as they were; the pipeline screen says it is a
#      read-only viewer; with --simulate the daemon writes (simulated GPUs appear)
#   2. the screens and keys, in tmux, at 80x24 and 200x60, with colour and UTF-8 and without
#      (no colour: NO_COLOR=1 at 80x24, a terminal without colours, TERM=xterm-mono, at
#      200x60): one console session per combination: p (mode line), o or F7/Enter/Esc/I/s//
#      (overview; Enter on a host: the fleet table filtered to it), a or F8/Enter (alerts ->
#      detail), 1-5/[/] (history: the chart's min/max labels are the seeded extremes, the XID
#      marked on the time axis)
#   3. the fleet table of a read-only viewer, paged, sorted and filtered in SQL (schema 15), on
#      100 GPUs of bench/fleet_seed.sql: host headings and counts, End/Home, the sort by
#      temperature (the hottest first, the rows in the database's order), page down (the
#      next rows), r, a filter on one host, Enter to the detail
set -u
bin=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
passes=0 fails=0
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { fails=$((fails+1)); echo "FAIL: $*" >&2; }
die() { echo "FATAL: $*" >&2; echo "$passes passed, $((fails+1)) failed"; exit 1; }
command -v tmux >/dev/null || die "tmux is not installed (scripts/install-deps.sh --test)"
[ -n "${GPUHEALTH_TEST_PG:-}" ] || die "GPUHEALTH_TEST_PG is not set: run the README's test command (scripts/test.sh), which starts PostgreSQL"
psql -X -q "$GPUHEALTH_TEST_PG" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at '$GPUHEALTH_TEST_PG' is unreachable (start it with scripts/test.sh)"

scratch=$(mktemp -d /tmp/gh-viewer.XXXXXX)
socks=""
cleanup() {
  for k in $socks; do
    tmux -L "$k" kill-server 2>/dev/null
    rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$k"
  done
  if [ "$fails" = 0 ]; then rm -rf "$scratch"; else echo "logs kept in $scratch" >&2; fi
}
trap cleanup EXIT

DB="gh_viewer_$$"
psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null 2>&1 || die "cannot create database $DB"
CI="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$DB}"
"$bin" db migrate --db "$CI" >"$scratch/migrate.log" 2>&1 || die "migrate failed: $(cat "$scratch/migrate.log")"
psql -X -q -v ON_ERROR_STOP=1 "$CI" -f "$root/tests/integration/viewer_seed.sql" >"$scratch/seed.log" 2>&1 || die "seeding failed: $(cat "$scratch/seed.log")"
sql() { psql -X -At -v ON_ERROR_STOP=1 "$CI" -c "$1"; }
fingerprint() { sql "SELECT (SELECT count(*) FROM gpus) || ' gpus, ' || (SELECT count(*) FROM gpu_metrics) || ' samples, ' || (SELECT count(*) FROM gpu_health_scores) || ' scores, ' || (SELECT count(*) FROM alerts) || ' alerts'"; }
seeded=$(fingerprint)
[ "${seeded%% *}" = 4 ] || die "the seed did not leave 4 GPUs: $seeded"
# no NVML on this machine, whatever is installed: the test is the same on a GPU node
export NVML_LIBRARY=/nonexistent/libnvidia-ml.so.1

# 1a. the daemon, read-only
"$bin" --daemon --db "$CI" --duration 3 --interval 1 --stats-interval 1 >"$scratch/daemon.log" 2>&1
rc=$?
[ $rc = 0 ] && ok "daemon viewer: exit 0" || { bad "daemon viewer: exit $rc"; tail "$scratch/daemon.log" >&2; }
after=$(fingerprint)
[ "$after" = "$seeded" ] && ok "daemon viewer: the fleet unchanged ($after)" || bad "daemon viewer wrote: $seeded -> $after"
grep -q 'read-only viewer' "$scratch/daemon.log" && ok "daemon viewer: the log says read-only viewer" || bad "daemon viewer: no 'read-only viewer' in its log"
grep -q 'gpus=4 hosts=2' "$scratch/daemon.log" && ok "daemon viewer: it read the 4 GPUs of 2 hosts" || bad "daemon viewer: did not read the fleet: $(grep stats: "$scratch/daemon.log" | tail -1)"

# 2. the console in tmux
T() { tmux -L "$sock" "$@"; }
cap() { T capture-pane -p; }
capc() { T capture-pane -p -e; } # with the escape sequences: colours
run=0
# start_console COLS ROWS COLOUR(yes|no) UTF8(yes|no) [ARGS]
start_console() {
  local cols=$1 rows=$2 colour=$3 utf=$4; shift 4
  run=$((run + 1)); sock="gh-viewer-$$-$run"; socks="$socks $sock"
  local envs="LANG=C.UTF-8 LC_ALL=C.UTF-8" term=xterm-256color
  [ "$utf" = no ] && envs="LANG=C LC_ALL=C"
  # no colour: asked (NO_COLOR) at 80x24, a terminal without colours at 200x60
  [ "$colour" = no ] && { [ "$cols" = 80 ] && envs="$envs NO_COLOR=1" || term=xterm-mono; }
  rm -f "$scratch/exit"
  cat >"$scratch/run.sh" <<RUN
cd "$scratch"
env HOME="$scratch" XDG_STATE_HOME="$scratch/state" $envs TERM=$term NVML_LIBRARY=$NVML_LIBRARY \
  GPUHEALTH_UI_FAKE= "$bin" tui --db "$CI" --refresh 0.3 $* 2>"$scratch/stderr.txt"
echo \$? >"$scratch/exit"
sleep 2
RUN
  T new-session -d -x "$cols" -y "$rows" "bash $scratch/run.sh" || die "tmux did not start"
}
# wait_for PATTERN [SECONDS]: until the screen shows it; the screen in $screen
wait_for() {
  local deadline=$((SECONDS + ${2:-15}))
  while [ $SECONDS -lt $deadline ]; do
    screen=$(cap)
    grep -qE -- "$1" <<<"$screen" && return 0
    sleep 0.2
  done
  return 1
}
stop_console() {
  T send-keys q
  for _ in $(seq 40); do [ -f "$scratch/exit" ] && break; sleep 0.1; done
  local st; st=$(cat "$scratch/exit" 2>/dev/null)
  [ "$st" = 0 ] && ok "$1: q exits 0" || { bad "$1: exit status '$st'"; cat "$scratch/stderr.txt" >&2; }
  T kill-server 2>/dev/null
}

for combo in "80 24 yes yes" "80 24 no no" "200 60 yes yes" "200 60 no no"; do
  set -- $combo
  name="${1}x${2} colour=$3 utf8=$4"
  start_console "$@"
  if wait_for 'GPUs 4 ' 20; then ok "$name: the fleet's 4 GPUs"; else bad "$name: no 4 GPUs:"; echo "$screen" >&2; fi
  # the panel: the database's scored GPUs and open alerts, not the idle pipeline's zeros
  if wait_for '^DB .*scored GPUs 4 +open alerts 2' 5; then ok "$name: the panel: 4 scored GPUs, 2 open alerts"; else bad "$name: the panel's figures:"; echo "$screen" >&2; fi
  # colour: the escape sequences of a colour pair, or none
  c=$(capc)
  if [ "$3" = yes ]; then grep -qE $'\e\\[[0-9;]*(3[0-7]|4[0-7]|38;5;[0-9]+|48;5;[0-9]+)[;m]' <<<"$c" && ok "$name: in colour" || bad "$name: no colour"
  else grep -qE $'\e\\[[0-9;]*(3[1-7]|4[1-7]|38;5;[0-9]+|48;5;[0-9]+)[;m]' <<<"$c" && bad "$name: colours (NO_COLOR or a mono terminal)" || ok "$name: no colour"; fi
  # the overview and the alerts by their letters at 80x24, by F7 and F8 at 200x60
  ko=o ka=a; [ "$1" = 200 ] && ko=F7 ka=F8
  # the pipeline screen says which mode
  T send-keys p
  if wait_for 'MODE: read-only viewer' 5; then ok "$name: p: the pipeline screen says read-only viewer"; else bad "$name: p: no mode line:"; echo "$screen" >&2; fi
  grep -qE '^simulator +off +read-only viewer' <<<"$screen" && ok "$name: the simulator is off" || bad "$name: the simulator is not off"
  T send-keys Escape
  # the overview: o, Enter down, Esc up
  T send-keys $ko
  if wait_for '^c1 +4 +2 +1 +1 .*83C node-a/1.*93\.0% +PFWP' 5; then ok "$name: $ko: cluster c1, 4 GPUs 2/1/1, hottest, p_fail, strip"; else bad "$name: o:"; echo "$screen" >&2; fi
  T send-keys Enter; wait_for '^dc1 ' 5; T send-keys Enter
  if wait_for '^r2 +2 +1 +1 +0 .*76C' 5 && grep -qE '^r1 +2 +1 +0 +1 .* PF' <<<"$screen"; then ok "$name: Enter Enter: racks r1, r2"; else bad "$name: Enter Enter:"; echo "$screen" >&2; fi
  # I inverts the order (r2 above r1), s sorts by the next key
  T send-keys I
  if wait_for 'by rack; name desc' 5 && [ "$(grep -oE '^r[12] ' <<<"$screen" | head -1)" = "r2 " ]; then ok "$name: I: name descending, r2 first"; else bad "$name: I:"; echo "$screen" >&2; fi
  T send-keys I s
  if wait_for 'by rack; gpus' 5; then ok "$name: s: sorted by GPUs"; else bad "$name: s:"; echo "$screen" >&2; fi
  # Enter on r1 (the selection follows its line through the sorts), then on its host: the
  # fleet table filtered to node-a
  T send-keys Enter
  if wait_for '^node-a +2 +1 +0 +1 ' 5; then ok "$name: Enter on r1: its host node-a"; else bad "$name: Enter on r1:"; echo "$screen" >&2; fi
  T send-keys Enter
  # node-a's GPUs are the A100s (0: 50C, 1: 83C), node-b's the H100s
  if wait_for '^ +1 A100.* 83C ' 5 && grep -qE '^ +0 A100.* 50C ' <<<"$screen" && ! grep -q 'H100' <<<"$screen"; then ok "$name: Enter on node-a: the fleet table filtered to it"; else bad "$name: Enter on a host:"; echo "$screen" >&2; fi
  T send-keys Escape; sleep 0.3; T send-keys $ko; sleep 0.3; T send-keys Escape; sleep 0.3
  T send-keys Escape
  if wait_for '^dc1 +4 ' 5; then ok "$name: Esc: up to the datacenters"; else bad "$name: Esc up:"; echo "$screen" >&2; fi
  T send-keys /; sleep 0.3; T send-keys n o d e - b Enter
  if wait_for '^dc1 +2 +1 +1 +0' 5; then ok "$name: / node-b: 2 GPUs"; else bad "$name: filter in the overview:"; echo "$screen" >&2; fi
  T send-keys Escape; sleep 0.3; T send-keys Escape; sleep 0.3; T send-keys Escape; sleep 0.3
  # the alerts: a; worst first; Enter: the GPU's detail
  T send-keys $ka
  if wait_for '^fail .*node-a +1 .*dbe_volatile' 5 && grep -A1 '^fail ' <<<"$screen" | grep -qE '^warn .*node-b +0 .*thermal' &&
     ! grep -q pcie_replay <<<"$screen"; then ok "$name: $ka: 2 open alerts, fail first"; else bad "$name: $ka:"; echo "$screen" >&2; fi
  if grep '^fail ' <<<"$screen" | grep -q 'ml/tr0'; then ok "$name: a: the alert's workload (alerts.namespace/pod)"; else bad "$name: a: no workload ml/tr0 on the fail line"; echo "$screen" >&2; fi
  T send-keys Enter
  if wait_for '^GPU 1 +node-a' 5; then ok "$name: Enter: the alert's GPU detail"; else bad "$name: Enter on an alert:"; echo "$screen" >&2; fi
  # its recent alerts from the database (at 200x60: the 80x24 detail has no room for them)
  if [ "$1" = 200 ]; then
    if wait_for 'Recent alerts' 5 && grep -A1 'Recent alerts' <<<"$screen" | grep -qE '^ +[0-9:]+ fail dbe_volatile +double-bit ECC errors'; then ok "$name: the detail's recent alerts from the database"; else bad "$name: no recent alert dbe_volatile in the detail:"; echo "$screen" >&2; fi
  fi
  T send-keys Escape; sleep 0.3; T send-keys Escape; sleep 0.5; T send-keys k k k k; sleep 0.3; T send-keys Enter
  if wait_for '^GPU 0 +node-a' 5; then ok "$name: detail of node-a/0"; else bad "$name: no detail of node-a/0"; echo "$screen" >&2; fi
  # the history keys: the chart's min/max labels are the seeded extremes
  T send-keys 2
  if wait_for 'min 31.25 max 87.5' 8 && { [ "$1" = 80 ] || grep -q 'history 1 h' <<<"$screen"; }; then ok "$name: 2: 1 h raw, min 31.25 max 87.5"; else bad "$name: 2:"; echo "$screen" >&2; fi
  grep -qE '^event .*X' <<<"$screen" && ok "$name: the XID marked on the time axis" || bad "$name: no XID mark"
  # at 80 columns the key bar cuts the history's label: with a mark (… in UTF-8, else >)
  if [ "$1" = 80 ]; then
    mark='>'; [ "$4" = yes ] && mark='…'
    tail -1 <<<"$screen" | grep -qE "history 1 h to .*$mark\$" && ok "$name: the key bar's cut label ends with '$mark'" || { bad "$name: the key bar's label is cut without a mark:"; tail -1 <<<"$screen" >&2; }
  fi
  T send-keys '['
  if wait_for 'min (3[2-9]|4[0-9])(\.[0-9]+)? max (5[0-9]|60)(\.[0-9]+)? ' 8; then ok "$name: [: the hour before (no extremes)"; else bad "$name: [:"; echo "$screen" >&2; fi
  T send-keys ']'; sleep 0.4
  if wait_for 'min 31.25 max 87.5' 8; then ok "$name: ]: forward to now again, min 31.25 max 87.5"; else bad "$name: ]:"; echo "$screen" >&2; fi
  T send-keys 3; sleep 0.4
  if wait_for 'min 31.25 max 87.5' 8 && { [ "$1" = 80 ] || grep -q 'history 6 h' <<<"$screen"; }; then ok "$name: 3: 6 h raw, min 31.25 max 87.5"; else bad "$name: 3:"; echo "$screen" >&2; fi
  T send-keys 4; sleep 0.4
  if wait_for 'min 31.25 max 87.5' 8 && { [ "$1" = 80 ] || grep -q 'history 24 h.*gpu_metrics_1min' <<<"$screen"; }; then ok "$name: 4: 24 h rollups (and the raw samples not yet rolled up), min 31.25 max 87.5"; else bad "$name: 4:"; echo "$screen" >&2; fi
  T send-keys 5
  if wait_for 'min 12.75 max 99.5' 8 && { [ "$1" = 80 ] || grep -q 'gpu_metrics_1min' <<<"$screen"; }; then ok "$name: 5: 7 d rollups, min 12.75 max 99.5"; else bad "$name: 5:"; echo "$screen" >&2; fi
  T send-keys 1
  if wait_for 'live ring' 5; then ok "$name: 1: the live ring"; else bad "$name: 1:"; echo "$screen" >&2; fi
  T send-keys Escape
  # node-b/1's XID 31 was raised 90 min ago: its last hour has no XID mark (the sample before
  # the window says the XID is not new), its 6 h do
  sleep 0.3; T send-keys j j j; sleep 0.3; T send-keys Enter
  if wait_for '^GPU 1 +node-b' 5; then T send-keys 2; else bad "$name: no detail of node-b/1"; echo "$screen" >&2; fi
  if wait_for 'min 41 max 44' 8 && ! grep -qE '^event .*X' <<<"$screen"; then ok "$name: node-b/1, 1 h: no XID mark for an XID raised before the window"; else bad "$name: node-b/1, 1 h: an XID mark (or no chart):"; echo "$screen" >&2; fi
  T send-keys 3
  if wait_for '^event .*X' 8; then ok "$name: node-b/1, 6 h: the XID marked"; else bad "$name: node-b/1, 6 h: no XID mark:"; echo "$screen" >&2; fi
  T send-keys Escape
  stop_console "$name"
done
after=$(fingerprint)
[ "$after" = "$seeded" ] && ok "console viewer: the fleet unchanged ($after)" || bad "console viewer wrote: $seeded -> $after"

# 3. the fleet table of a larger fleet, paged, sorted and filtered in SQL (schema 15): 100 GPUs
# of bench/fleet_seed.sql (8 a host, node-000000..node-000012) in a database of their own; the
# expected rows come from the database
DB2="gh_viewer_table_$$"
psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $DB2" -c "CREATE DATABASE $DB2" >/dev/null 2>&1 || die "cannot create database $DB2"
CI2="${GPUHEALTH_TEST_PG/dbname=gpuhealth_test/dbname=$DB2}"
"$bin" db migrate --db "$CI2" >"$scratch/migrate2.log" 2>&1 || die "migrate failed: $(cat "$scratch/migrate2.log")"
# node-000002 is renamed node-000001b: a host whose name holds another's (Enter on node-000001
# in the overview must not show node-000001b's GPUs)
psql -X -q -v ON_ERROR_STOP=1 -v gpus=100 "$CI2" -f "$root/bench/fleet_seed.sql" >"$scratch/seed2.log" 2>&1 &&
  psql -X -q -v ON_ERROR_STOP=1 "$CI2" -c "UPDATE gpus SET hostname = 'node-000001b' WHERE hostname = 'node-000002'" \
    -c "UPDATE gpu_metrics SET hostname = 'node-000001b' WHERE hostname = 'node-000002'" \
    -c 'SELECT gpuhealth_fleet_now_merge(array(SELECT gpu_key FROM gpus))' >/dev/null ||
  die "seeding 100 GPUs failed: $(cat "$scratch/seed2.log")"
sql2() { psql -X -At -F ' ' -v ON_ERROR_STOP=1 "$CI2" -c "$1"; }
# a passing GPU of node-000000 whose samples stopped 200 s ago (sampled every 30 s): stale
stale_key=$(sql2 "SELECT gpu_key FROM fleet_gpu_now WHERE hostname = 'node-000000' AND status = 'pass' ORDER BY gpu_index LIMIT 1")
sql2 "UPDATE gpu_metrics SET time = time - interval '200 seconds' WHERE gpu_key = '$stale_key'" >/dev/null
CI_SAVED=$CI; CI=$CI2
start_console 80 24 yes yes
name="fleet table 80x24"
# the GPU rows of the screen as "index temp", top to bottom
# (ungrouped, a host column comes first and 80 columns leave no room for the model)
row_re='^ *([a-z][^ ]* +)?[0-9]+ +([A-Z][A-Z0-9-]+ +)?[0-9]+C '
rows_shown() { grep -E "$row_re" <<<"$screen" | awk '{i = $1 ~ /^[0-9]+$/ ? 1 : 2; for (j = i + 1; j <= NF; j++) if ($j ~ /^[0-9]+C$/) { print $i, $j; break }}'; }
hosts_shown() { grep -E "$row_re" <<<"$screen" | awk '{print $1}'; }
first=$(sql2 "SELECT min(hostname) FROM fleet_gpu_now")
last=$(sql2 "SELECT max(hostname) FROM fleet_gpu_now")
bad0=$(sql2 "SELECT count(*) FILTER (WHERE status IN ('warn', 'fail')) FROM fleet_gpu_now WHERE hostname = '$first'")
if wait_for 'GPUs 100 ' 20 && wait_for "^== $first  \\(8 GPUs, $bad0 not passing\\)" 5; then ok "$name: 100 GPUs, grouped by host, $first first with its counts"; else bad "$name: start:"; echo "$screen" >&2; fi
# End and Home as the terminal (xterm-256color) sends them: tmux's own are another terminal's
T send-keys -l $'\eOF'
if wait_for "^== $last " 5 && ! grep -q "^== $first " <<<"$screen"; then ok "$name: End: the last host $last"; else bad "$name: End:"; echo "$screen" >&2; fi
T send-keys -l $'\eOH'
if wait_for "^== $first " 5; then ok "$name: Home: back to $first"; else bad "$name: Home:"; echo "$screen" >&2; fi
# ungrouped, by temperature (descending): the fleet's hottest GPU first
hot=$(sql2 "SELECT round(max(gpu_temp)) FROM fleet_gpu_now")
T send-keys g s s
if wait_for '^HOST +GPU .*TEMP' 5 && wait_for "^[a-z0-9-]+ +[0-9]+ +([A-Z][A-Z0-9-]+ +)?${hot}C " 5 && [ "$(rows_shown | head -1 | cut -d' ' -f2)" = "${hot}C" ]; then ok "$name: g s s: the hottest GPU (${hot}C) first"; else bad "$name: sort by temperature:"; echo "$screen" >&2; fi
shown=$(rows_shown)
n=$(wc -l <<<"$shown")
want=$(sql2 "SELECT gpu_index || ' ' || round(gpu_temp) || 'C' FROM fleet_gpu_now ORDER BY gpu_temp DESC NULLS LAST, hostname, gpu_index, gpu_key LIMIT $n")
[ "$n" -ge 10 ] && [ "$shown" = "$want" ] && ok "$name: the first $n rows in the database's order" || { bad "$name: the rows by temperature:"; diff <(echo "$want") <(echo "$shown") >&2; }
# ungrouped, each row names its host
want=$(sql2 "SELECT hostname FROM fleet_gpu_now ORDER BY gpu_temp DESC NULLS LAST, hostname, gpu_index, gpu_key LIMIT $n")
[ "$(hosts_shown)" = "$want" ] && ok "$name: ungrouped: the host column" || { bad "$name: ungrouped: no host column or wrong hosts:"; diff <(echo "$want") <(hosts_shown) >&2; }
# page down twice: the selection 2 pages down, the rows from the database's next ones
T send-keys NPage; sleep 0.4; T send-keys NPage; sleep 0.8
screen=$(cap)
shown=$(rows_shown)
top=$(( 2 * (24 - 7) - n + 1 ))
want=$(sql2 "SELECT gpu_index || ' ' || round(gpu_temp) || 'C' FROM fleet_gpu_now ORDER BY gpu_temp DESC NULLS LAST, hostname, gpu_index, gpu_key OFFSET $top LIMIT $n")
[ "$shown" = "$want" ] && ok "$name: PgDn PgDn: rows $top.. of the database's order" || { bad "$name: PgDn: not rows $top..:"; diff <(echo "$want") <(echo "$shown") >&2; echo "$screen" >&2; }
# r: ascending, the coolest first
cold=$(sql2 "SELECT round(min(gpu_temp)) FROM fleet_gpu_now")
T send-keys r
if wait_for "^[a-z0-9-]+ +[0-9]+ +([A-Z][A-Z0-9-]+ +)?${cold}C " 5 && [ "$(rows_shown | head -1 | cut -d' ' -f2)" = "${cold}C" ]; then ok "$name: r: the coolest (${cold}C) first"; else bad "$name: r:"; echo "$screen" >&2; fi
# a filter on one host: its 8 GPUs
host=$(sql2 "SELECT hostname FROM fleet_gpu_now ORDER BY hostname OFFSET 40 LIMIT 1")
T send-keys / "$host" Enter
sleep 0.8; screen=$(cap)
if [ "$(rows_shown | wc -l)" = 8 ] && [ "$(rows_shown | head -1 | cut -d' ' -f2)" = "$(sql2 "SELECT round(min(gpu_temp)) || 'C' FROM fleet_gpu_now WHERE hostname = '$host'")" ]; then ok "$name: / $host: its 8 GPUs, the coolest first"; else bad "$name: filter by host:"; echo "$screen" >&2; fi
# the key bar shows the filter at 80 columns (keys that do not fit give way)
tail -1 <<<"$screen" | grep -q "/$host/ 8/100" && ok "$name: the key bar shows the filter /$host/ 8/100" || { bad "$name: the filter is not on the key bar:"; tail -1 <<<"$screen" >&2; }
# Enter: the detail of the selected (first) GPU, read from the database
idx=$(rows_shown | head -1 | cut -d' ' -f1)
T send-keys Enter
if wait_for "^GPU $idx +$host " 5; then ok "$name: Enter: the detail of $host/$idx"; else bad "$name: Enter:"; echo "$screen" >&2; fi
T send-keys Escape Escape
if wait_for 'GPUs 100 ' 5 && ! grep -q "/$host/" <<<"$screen"; then ok "$name: Esc Esc: the filter cleared"; else bad "$name: Esc:"; echo "$screen" >&2; fi
# Enter on a host in the overview: that host's GPUs exactly (not node-000001b's too)
T send-keys o; wait_for '^c0 +100 ' 5
# c0's 100 letters do not fit in 80 columns: the strip is cut, the rest counted (+N)
grep -qE '^c0 +100 .* [PWF?]+\+9[0-9]$' <<<"$screen" && ok "$name: the overview's cut strip ends with +N" || { bad "$name: the overview's strip is cut without a mark:"; echo "$screen" >&2; }
T send-keys Enter; wait_for '^dc0 +100 ' 5; T send-keys Enter
wait_for '^r0 +100 ' 5; T send-keys Enter
if wait_for '^node-000001b +8 ' 5 && wait_for '^node-000001 +8 ' 5; then ok "$name: the overview's hosts node-000001 and node-000001b"; else bad "$name: overview hosts:"; echo "$screen" >&2; fi
T send-keys j; sleep 0.4; T send-keys Enter; sleep 1.2; screen=$(cap)
if [ "$(rows_shown | wc -l)" = 8 ] && ! grep -q 'node-000001b' <<<"$screen"; then ok "$name: Enter on node-000001: its 8 GPUs only"; else bad "$name: Enter on node-000001 (exact host):"; echo "$screen" >&2; fi
T send-keys Escape; sleep 0.3
# every word of a filter must match, host= words too (the SQL took the first host= alone)
T send-keys / "host=node-000001 host=node-000001b" Enter; sleep 1.2; screen=$(cap)
if [ -z "$(rows_shown)" ] && tail -1 <<<"$screen" | grep -q ' 0/100'; then ok "$name: two different host= words: no GPU"; else bad "$name: host=node-000001 host=node-000001b should match no GPU:"; echo "$screen" >&2; fi
T send-keys Escape; sleep 0.3
T send-keys / "host=node-000001b gpu3 host=node-000001b" Enter; sleep 1.2; screen=$(cap)
if [ "$(rows_shown | wc -l)" = 1 ] && grep -q 'node-000001b' <<<"$screen"; then ok "$name: the same host= twice and a word: that host's gpu3"; else bad "$name: host=node-000001b gpu3 host=node-000001b should show one GPU:"; echo "$screen" >&2; fi
T send-keys Escape; sleep 0.3
# stale by the data's own interval (30 s here), not the console's (2 s): of node-000000's GPUs
# only $stale_key (its samples stopped 200 s ago) is stale, once the others' newest sample is
# older than 3 of the console's intervals
age=$(sql2 "SELECT ceil(extract(epoch FROM now() - max(time))) FROM gpu_metrics")
[ "$age" -lt 8 ] && sleep $((8 - age))
T send-keys / node-000000 Enter; sleep 1.2; screen=$(cap)
stale_idx=$(sql2 "SELECT gpu_index FROM gpus WHERE gpu_key = '$stale_key'")
if [ "$(rows_shown | wc -l)" = 8 ] && [ "$(grep -cE '^ *([a-z][^ ]* +)?[0-9]+ .* stale' <<<"$screen")" = 1 ] && grep -qE "^ *([a-z][^ ]* +)?$stale_idx .* stale" <<<"$screen"; then ok "$name: stale by the GPUs' own interval: $stale_idx only"; else bad "$name: stale GPUs (only index $stale_idx expected):"; echo "$screen" >&2; fi
T send-keys Escape; sleep 0.3
stop_console "$name"
CI=$CI_SAVED
psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $DB2" >/dev/null 2>&1

# 1b. asked to simulate, the daemon writes (last: it changes the fleet)
"$bin" --daemon --simulate --db "$CI" --duration 5 --interval 1 --batch-timeout 0.5 \
  --hostname sim-node --stats-interval 5 >"$scratch/simulate.log" 2>&1
rc=$?
n=$(sql "SELECT count(*) FROM gpus WHERE hostname = 'sim-node'")
[ $rc = 0 ] && [ "$n" -gt 0 ] && ok "--simulate: the daemon wrote $n simulated GPUs" || { bad "--simulate: exit $rc, $n simulated GPUs"; tail "$scratch/simulate.log" >&2; }

psql -X -q "$GPUHEALTH_TEST_PG" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
