#!/usr/bin/env bash
# Console benchmark at fleet scale (issue #25): bench/console.sh --fleet-db [DURATION] [GPUS...]
# On a private PostgreSQL (scripts/services.sh pg_start, with pg_stat_statements), for each
# fleet size (default: 1,000 as the baseline, then 200,704) a database is migrated and seeded
# in SQL (bench/fleet_seed.sql: the GPUs, two samples, two health rows and a prediction each,
# the open alerts), then the console runs in tmux (200x60) as a read-only viewer of it
# (--db, no local GPUs, --refresh 2) and the script measures:
#   - start -> overview: from the tmux session's start (o typed at once) to the overview
#     showing the first cluster's GPU count as the database has it        (target < 3 s)
#   - the database work of each refresh: the viewer's queries (src/viewdb) timed by the
#     console (GPUHEALTH_UI_STATS: db_queries, db_query_ms_total/max) and, for every query the
#     console sent, pg_stat_statements (calls, mean, max) over the DURATION on the overview,
#     then 10 s on the alerts screen                                        (target < 250 ms)
#   - drawing CPU: the UI thread's draw time (GPUHEALTH_UI_STATS), and the whole process from
#     /proc/PID/stat over DURATION                                          (target < 5 %)
#   - the fleet table (the main screen; schema 15: paged, sorted and filtered in SQL), for
#     DURATION/2 s after the alerts: g s s (ungrouped, by temperature: the fleet's hottest GPU
#     first), PgDn three times, End, Home, a filter on one host, Enter (the GPU detail), Esc;
#     its reader's time per refresh (GPUHEALTH_UI_STATS: table_queries, table_query_ms_*)
#                                                                           (target < 250 ms)
#   - resident memory: VmHWM, after all of it                               (target < 200 MB)
# Not part of the test run. Needs tmux and PostgreSQL 15's server (scripts/install-deps.sh --test).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${1:-60}
shift || true
SIZES=${*:-1000 200704}
BIN=${BIN:-$root/build/gpuhealth}
[ -x "$BIN" ] || { echo "bench/console.sh --fleet-db: $BIN is not built (cmake --build build)" >&2; exit 1; }
command -v tmux >/dev/null || { echo "bench/console.sh --fleet-db: needs tmux (scripts/install-deps.sh --test)" >&2; exit 1; }

T=$(mktemp -d /tmp/gh-fleet-bench.XXXXXX)
chmod 755 "$T"
export GH_SVC_DIR="$T/svc"
mkdir -p "$GH_SVC_DIR"
# shellcheck source=../scripts/services.sh
source "$root/scripts/services.sh"
sock="gh-fleet-bench-$$"
trap 'tmux -L "$sock" kill-server 2>/dev/null || true; rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$sock"; pg_stop; rm -rf "$T"' EXIT
GH_PG_EXTRA_CONF="shared_buffers = 512MB
work_mem = 32MB
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all" pg_start
base=$GPUHEALTH_TEST_PG
ticks=$(getconf CLK_TCK)
now() { date +%s.%N; }

for n in $SIZES; do
  db="fleet_$n"
  ci="${base/dbname=gpuhealth_test/dbname=$db}"
  psql -X -q "$base" -c "CREATE DATABASE $db" >/dev/null
  "$BIN" db migrate --db "$ci" >"$T/migrate.log" 2>&1 || { cat "$T/migrate.log" >&2; exit 1; }
  psql -X -q "$ci" -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null
  t0=$(now)
  psql -X -q -v ON_ERROR_STOP=1 -v gpus="$n" "$ci" -f "$root/bench/fleet_seed.sql" >"$T/seed.log" 2>&1 \
    || { cat "$T/seed.log" >&2; exit 1; }
  t1=$(now)
  # what the writer (the scorer) keeps for the overview, for every GPU at once (schema 14)
  psql -X -q -v ON_ERROR_STOP=1 "$ci" -c 'SELECT gpuhealth_fleet_now_merge(array(SELECT gpu_key FROM gpus))' \
    -c 'ANALYZE fleet_gpu_now, fleet_host_now' >/dev/null
  t2=$(now)
  want=$(psql -X -At "$ci" -c "SELECT cluster || ' ' || count(*) FROM gpus GROUP BY cluster ORDER BY cluster LIMIT 1")
  open=$(psql -X -At "$ci" -c "SELECT count(*) FROM alerts WHERE cleared_at IS NULL")
  rows=$(psql -X -At "$ci" -c "SELECT (SELECT count(*) FROM gpu_metrics) || ' samples, ' || (SELECT count(*) FROM gpu_health_scores) || ' health rows'")

  rm -f "$T/exit" "$T/stats.txt"
  cat >"$T/run.sh" <<EOF
cd "$T"
env HOME="$T" XDG_STATE_HOME="$T/state" LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color \
  NVML_LIBRARY=/nonexistent/libnvidia-ml.so.1 GPUHEALTH_UI_FAKE= GPUHEALTH_UI_STATS="$T/stats.txt" \
  "$BIN" tui --db "$ci" --refresh 2 2>"$T/stderr.txt"
echo \$? >"$T/exit"
EOF
  psql -X -q "$ci" -c 'SELECT pg_stat_statements_reset()' >/dev/null
  s0=$(now)
  tmux -L "$sock" new-session -d -x 200 -y 60 "bash $T/run.sh"
  tmux -L "$sock" send-keys o
  shown=""
  pat="^${want%% *} +${want##* } "
  for _ in $(seq 400); do
    if tmux -L "$sock" capture-pane -p | grep -qE "$pat"; then shown=$(now); break; fi
    sleep 0.025
  done
  [ -n "$shown" ] || { tmux -L "$sock" capture-pane -p >&2; echo "the overview did not show '$want' within 10 s" >&2; exit 1; }
  start_s=$(awk -v a="$s0" -v b="$shown" 'BEGIN{printf "%.2f", b-a}')
  pane=$(tmux -L "$sock" display-message -p '#{pane_pid}')
  pid=$(ps -o pid= --ppid "$pane" | tr -d ' ' | head -1)
  cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  sleep "$DURATION"
  cpu1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  tmux -L "$sock" capture-pane -p >"$T/screen-$n.txt"
  tmux -L "$sock" send-keys a
  sleep 10
  # the fleet table: ungrouped, by temperature (descending): the hottest GPU first
  hot=$(psql -X -At "$ci" -c "SELECT round(max(gpu_temp)) FROM fleet_gpu_now")
  tmux -L "$sock" send-keys a
  sleep 2
  cpu2=$(awk '{print $14+$15}' "/proc/$pid/stat")
  t_sort=$(now)
  tmux -L "$sock" send-keys g s s
  sorted=""
  for _ in $(seq 200); do
    if tmux -L "$sock" capture-pane -p | sed -n 7p | grep -qE "^ *([a-z][^ ]* +)?[0-9]+ .* ${hot}C "; then sorted=$(now); break; fi
    sleep 0.025
  done
  tmux -L "$sock" capture-pane -p >"$T/table-$n.txt"
  sort_s=$(awk -v a="$t_sort" -v b="${sorted:-0}" 'BEGIN{print (b > 0 ? sprintf("%.2f s", b-a) : "NOT SHOWN")}')
  half=$(( DURATION / 2 > 8 ? DURATION / 2 : 8 ))
  step=$(( half / 8 ))
  for k in NPage NPage NPage End Home; do tmux -L "$sock" send-keys "$k"; sleep "$step"; done
  host=$(psql -X -At "$ci" -c "SELECT hostname FROM fleet_gpu_now ORDER BY gpu_key DESC LIMIT 1")
  tmux -L "$sock" send-keys / "$host" Enter; sleep "$step"
  tmux -L "$sock" capture-pane -p >"$T/filter-$n.txt"
  tmux -L "$sock" send-keys Enter; sleep "$step"
  tmux -L "$sock" capture-pane -p >"$T/detail-$n.txt"
  tmux -L "$sock" send-keys Escape Escape; sleep "$step"
  cpu3=$(awk '{print $14+$15}' "/proc/$pid/stat")
  hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")
  tmux -L "$sock" send-keys q
  for _ in $(seq 100); do [ -f "$T/exit" ] && break; sleep 0.1; done
  tmux -L "$sock" kill-server 2>/dev/null || true
  get() { awk -v k="$1" '$1==k{print $2}' "$T/stats.txt"; }
  [ -f "$T/stats.txt" ] || { echo "no stats from the console: $(cat "$T/stderr.txt")" >&2; exit 1; }
  echo
  echo "== $n GPUs: $(psql -X -At "$ci" -c 'SELECT count(*) FROM fleet_host_now') hosts, $rows, $open open alerts"
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN{printf "  seeding %.1f s, fleet_now merge of every GPU %.1f s\n", b-a, c-b}'
  echo "  start -> overview shown:  $start_s s   target < 3 s: $(awk -v s="$start_s" 'BEGIN{print (s < 3 ? "MET" : "MISSED")}')"
  awk -v q="$(get db_queries)" -v t="$(get db_query_ms_total)" -v m="$(get db_query_ms_max)" 'BEGIN{
    printf "  viewer queries (src/viewdb): %d, mean %.1f ms, max %.1f ms   target < 250 ms: %s\n", q, (q ? t/q : 0), m, (m < 250 ? "MET" : "MISSED") }'
  echo "  every query of the console (pg_stat_statements: $DURATION s overview, 10 s alerts, the fleet table):"
  psql -X -At -F ' ' "$ci" -c "SELECT calls, round(mean_exec_time::numeric, 1), round(max_exec_time::numeric, 1), rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query !~* '(pg_stat_statements|^SET|^BEGIN|^COMMIT|^SHOW|to_regclass|^select 1)' ORDER BY total_exec_time DESC LIMIT 14" |
    awk '{c=$1; me=$2; mx=$3; r=$4; $1=$2=$3=$4=""; printf "    %5d calls, mean %8.1f ms, max %8.1f ms, %6d rows: %s\n", c, me, mx, r, substr($0, 5)}'
  awk -v p="$(get draw_cpu_pct)" -v f="$(get frames)" 'BEGIN{printf "  draw CPU (UI thread): %.3f %% of a core over %d frames   target < 5 %%: %s\n", p, f, (p < 5 ? "MET" : "MISSED")}'
  awk -v c0="$cpu0" -v c1="$cpu1" -v t="$ticks" -v d="$DURATION" 'BEGIN{
    printf "  whole process (/proc/PID/stat, %d s on the overview): %.2f %% of a core\n", d, 100*(c1-c0)/t/d }'
  echo "  fleet table: g s s -> the hottest GPU (${hot}C) on the first row: $sort_s"
  awk -v q="$(get table_queries)" -v t="$(get table_query_ms_total)" -v m="$(get table_query_ms_max)" 'BEGIN{
    printf "  fleet table reader (src/viewdb, page + counts + rows on screen): %d reads, mean %.1f ms, max %.1f ms   target < 250 ms: %s\n", q, (q ? t/q : 0), m, (m < 250 ? "MET" : "MISSED") }'
  awk -v c0="$cpu2" -v c1="$cpu3" -v t="$ticks" -v d="$(awk -v a="$t_sort" -v b="$(now)" 'BEGIN{print b-a}')" 'BEGIN{
    printf "  whole process on the fleet table (/proc/PID/stat, %.0f s of keys): %.2f %% of a core\n", d, 100*(c1-c0)/t/d }'
  echo "  the table filtered to $host: $(grep -cE "^ *([a-z][^ ]* +)?[0-9]+ " "$T/filter-$n.txt") GPU rows; the detail: $(sed -n 2p "$T/detail-$n.txt" | cut -c1-60)"
  awk -v h="$hwm" 'BEGIN{printf "  resident memory: VmHWM %.1f MB   target < 200 MB: %s\n", h/1024, (h/1024 < 200 ? "MET" : "MISSED")}'
  echo "  exit status after q: $(cat "$T/exit" 2>/dev/null || echo none)"
  echo "  the overview's first lines:"; grep -E '^c[0-9]+ ' "$T/screen-$n.txt" | head -4 | sed 's/^/    /'
done
echo
echo "(PostgreSQL $(psql -X -At "$base" -c 'SHOW server_version'), $(nproc) cores; $BIN)"
