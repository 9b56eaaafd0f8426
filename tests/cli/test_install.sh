#!/usr/bin/env bash
# `cmake --install` puts the binary, both man pages, the schema, the systemd units, the example
# configuration and the OpenAPI document in place; the installed units run the installed
# binary; the man pages render without groff warnings; the example configuration is accepted.
set -u
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$(dirname "$bin")" && pwd)
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
tmp=$(mktemp -d /tmp/gh-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

[ -f "$build/CMakeCache.txt" ] || { echo "FAIL: $build is not a CMake build directory" >&2; exit 1; }
if ! cmake --install "$build" --prefix "$tmp/usr" >"$tmp/install.log" 2>&1; then
  bad "cmake --install failed: $(tail -5 "$tmp/install.log")"
fi
# the units were configured with the build's prefix; what matters is that they name gpuhealth in
# its bin directory and carry no unsubstituted @VARS@
for f in bin/gpuhealth share/man/man1/gpuhealth.1 share/man/man5/gpuhealth.conf.5 \
         share/gpuhealth/schema/001_core.sql share/gpuhealth/schema/002_health_views.sql \
         share/gpuhealth/gpuhealth.conf.example share/gpuhealth/gpuhealth.default \
         share/gpuhealth/openapi.yaml \
         lib/systemd/system/gpuhealth-mock-dcgm.service lib/systemd/system/gpuhealth-collector.service \
         lib/systemd/system/gpuhealth-sink.service lib/systemd/system/gpuhealth-scorer.service \
         lib/systemd/system/gpuhealth-api.service; do
  [ -s "$tmp/usr/$f" ] && ok || bad "cmake --install did not install $f"
done
[ -x "$tmp/usr/bin/gpuhealth" ] && "$tmp/usr/bin/gpuhealth" --version >/dev/null && ok || bad "the installed binary does not run"
if grep -l '@[A-Z_]*@' "$tmp/usr/lib/systemd/system/"*.service 2>/dev/null; then bad "a unit has an unsubstituted @VAR@"; else ok; fi
grep -hq '^ExecStart=/.*/bin/gpuhealth ' "$tmp/usr/lib/systemd/system/gpuhealth-sink.service" && ok || bad "the installed sink unit's ExecStart is not an absolute bin/gpuhealth"

# man pages: groff renders them with every warning enabled and says nothing
for page in "$root/man/gpuhealth.1" "$root/man/gpuhealth.conf.5"; do
  out=$(groff -man -ww -z "$page" 2>&1)
  [ -z "$out" ] && ok || bad "groff warns about $(basename "$page"): $out"
done
# the api command is documented
grep -q '^\.SH THE API' "$root/man/gpuhealth.1" && ok || bad "man/gpuhealth.1 has no THE API section"

# the example configuration: every key is known, and the api and collector accept their values
ex="$root/packaging/gpuhealth.conf.example"
out=$("$bin" api --config "$ex" --listen 127.0.0.1:0 --duration 0 2>&1); rc=$?
[ $rc = 0 ] && ok || bad "gpuhealth api rejects the example configuration ($rc): $out"
out=$("$bin" collector --config "$ex" --target http://127.0.0.1:9/metrics --scrape-timeout 1 --once --output - 2>&1); rc=$?
[ $rc = 1 ] && grep -q 'targets failed' <<<"$out" && ok || bad "gpuhealth collector rejects the example configuration ($rc): $out"
printf 'gpus = 8\nbogus-key = 1\n' >"$tmp/bad.conf"
out=$("$bin" api --config "$tmp/bad.conf" 2>&1); rc=$?
[ $rc = 2 ] && grep -q "bad.conf:2: unknown key 'bogus-key'" <<<"$out" && ok || bad "an unknown key is not reported with file and line ($rc): $out"

echo "$passes passed, $fails failed"
[ $fails = 0 ]
