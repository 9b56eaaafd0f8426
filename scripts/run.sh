#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and starts gpuhealth with its embedded
# defaults. Arguments are passed to gpuhealth.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
# The console arrives with its own issue; until then the default shows what is built.
if [ $# -eq 0 ]; then set -- --help; fi
exec "$root/build/gpuhealth" "$@"
