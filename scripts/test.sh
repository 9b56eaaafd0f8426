#!/usr/bin/env bash
# README command 2: installs what is missing, builds (normal and ASan+UBSan), starts a private
# PostgreSQL and a real Apache Kafka broker, runs every test, stops the services, and exits
# non-zero on any failure. Options: --quick (no sanitizer build), --unit (no services, unit
# tests only).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0 unit_only=0
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --unit) unit_only=1 ;;
    *) echo "test.sh: unknown option '$a' (use --quick or --unit)" >&2; exit 2 ;;
  esac
done
start=$(date +%s)

scripts/install-deps.sh --test
echo "== build (warnings are errors)" >&2
scripts/build.sh "$root/build" -DGPUHEALTH_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ $quick = 0 ]; then
  echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer" >&2
  scripts/build.sh "$root/build-asan" -DGPUHEALTH_WERROR=ON -DGPUHEALTH_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi

labels=(-L 'unit|integration')
if [ $unit_only = 1 ]; then
  labels=(-L unit)
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
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rc=0
if [ $quick = 0 ]; then
  echo "== tests (ASan+UBSan build)" >&2
  ctest --test-dir build-asan "${labels[@]}" --output-on-failure --timeout 600 || rc=1
fi
echo "== tests" >&2
ctest --test-dir build "${labels[@]}" --output-on-failure --timeout 600 || rc=1
[ $rc = 0 ] && tests_ok=1
: # ctest's summary above is the last line
exit $rc
