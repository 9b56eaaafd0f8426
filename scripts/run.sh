#!/usr/bin/env bash
# README command 1: installs what is missing, builds, and starts gpuhealth with its embedded
# defaults. Arguments are passed to gpuhealth.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
# With no arguments: the console over its embedded pipeline (simulated GPUs, or this node's
# through NVML; the in-process broker; a private PostgreSQL under $XDG_STATE_HOME/gpuhealth/).
exec "$root/build/gpuhealth" "$@"
