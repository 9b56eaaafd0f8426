#!/usr/bin/env bash
# Parser throughput on the real dcgm-exporter samples: gpuhealth's parser beside Python's
# prometheus_client parser, on the same bytes, in the same run. Prints MB/s and samples/s of
# both and the ratio; exits 1 when the ratio is under the target (40x). Both sides count CPU
# time and compare their best pass, so that other work on a shared machine disturbs the
# figures as little as possible; the mean rates are printed too.
# Usage: bench/parser.sh [MIB]   (input size, default 4)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mib=${1:-4}
target=40
build=${BUILD_DIR:-$root/build}
scripts/build.sh "$build" -DGPUHEALTH_BENCH=ON >/dev/null

py=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import prometheus_client' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { echo "parser.sh: no python3 with prometheus_client (Debian: python3-prometheus-client)" >&2; exit 2; }

# The input: every exposition file that prometheus_client accepts (the README samples carry a
# shell prompt line that it rejects), concatenated and repeated to MIB MiB.
files=()
for f in tests/data/dcgm/*.prom tests/data/dcgm/*.txt; do
  if "$py" -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as t
[list(t(open(sys.argv[1]).read()))]' "$f" 2>/dev/null; then files+=("$f"); fi
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "input: ${#files[@]} files (${files[*]##*/}), repeated to ${mib} MiB" >&2

c_out=$("$build/bench/prom_bench" -m "$mib" -t 3 -o "$tmp/input.prom" "${files[@]}")
py_out=$("$py" bench/prom_python.py "$tmp/input.prom" 3)
echo "$c_out"
echo "$py_out"
field() { tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
c_mbps=$(echo "$c_out" | grep '^what=parser ' | field MBps)
c_sps=$(echo "$c_out" | grep '^what=parser ' | field samples_per_s)
c_n=$(echo "$c_out" | grep '^what=parser ' | field samples)
p_mbps=$(echo "$py_out" | field MBps)
p_sps=$(echo "$py_out" | field samples_per_s)
p_n=$(echo "$py_out" | field samples)
if [ "$c_n" != "$p_n" ]; then
  echo "parser.sh: the parsers disagree on the sample count ($c_n vs $p_n)" >&2; exit 1
fi
ratio=$(awk -v a="$c_mbps" -v b="$p_mbps" 'BEGIN { printf "%.1f", a / b }')
printf 'gpuhealth %s MB/s, %s samples/s; python %s MB/s, %s samples/s; ratio %sx (target >= %sx)\n' \
  "$c_mbps" "$c_sps" "$p_mbps" "$p_sps" "$ratio" "$target"
awk -v r="$ratio" -v t="$target" 'BEGIN { exit !(r >= t) }' || { echo "BELOW TARGET" >&2; exit 1; }
