#!/usr/bin/env bash
# Runs the fault suite (tests/faults/test_faults.sh) on its own: builds the normal build,
# starts a private PostgreSQL and Kafka (scripts/services.sh), runs ctest's label 'faults',
# stops the services, and writes docs/reliability.md from the scenarios' result lines
# (tests/faults/reliability.py documents the line; GH_RELIABILITY_TSV is the file, in the
# services' directory). GH_FAULTS="collector sink ..." runs some scenarios only (the other
# rows of docs/reliability.md are kept); GH_OUTAGE_S sets the broker outage (default 75 s).
# `scripts/test.sh --faults` runs it after the default tests instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
scripts/install-deps.sh --test
scripts/build.sh "$root/build" -DGPUHEALTH_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
source scripts/services.sh
ok=0
export GH_RELIABILITY_TSV="$GH_SVC_DIR/reliability.tsv"
: >"$GH_RELIABILITY_TSV"
cleanup() {
  # the exit status is the suite's and the report's alone: a service that needs SIGKILL to stop
  # (seen: a cluster node after the kill -9 scenarios) must not turn a passing run into exit 1
  set +e
  python3 tests/faults/reliability.py "$GH_RELIABILITY_TSV" docs/reliability.md || ok=0
  kafka_cluster_stop; kafka_stop; pg_stop
  if [ $ok = 1 ]; then rm -rf "$GH_SVC_DIR"; else echo "service logs kept in $GH_SVC_DIR" >&2; fi
  if [ $ok = 1 ]; then exit 0; else exit 1; fi
}
trap cleanup EXIT
pg_start
kafka_start
ctest --test-dir build -L '^faults$' --output-on-failure --timeout 2700 -V && ok=1
[ $ok = 1 ]
