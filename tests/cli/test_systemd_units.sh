#!/usr/bin/env bash
# The systemd units in packaging/systemd: one per service mode, each Type=notify with the
# watchdog, DynamicUser, the directories, the EnvironmentFile and the hardening, and all of them
# accepted by `systemd-analyze verify` without a single warning (ExecStart pointed at the
# binary under test, since verify checks that it exists).
set -u
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }

command -v systemd-analyze >/dev/null 2>&1 || { echo "FAIL: systemd-analyze is missing: install the Debian package 'systemd' (scripts/install-deps.sh --test)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/gh-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
bindir=$(cd "$(dirname "$bin")" && pwd)

units=()
for mode in mock-dcgm collector sink scorer api; do
  src="$root/packaging/systemd/gpuhealth-$mode.service.in"
  if [ ! -f "$src" ]; then bad "no unit for '$mode' ($src)"; continue; fi
  sed "s|@GPUHEALTH_BINDIR@|$bindir|g" "$src" >"$tmp/gpuhealth-$mode.service"
  units+=("$tmp/gpuhealth-$mode.service")
  u="$tmp/gpuhealth-$mode.service"
  grep -q "^ExecStart=$bindir/gpuhealth $mode\\b" "$u" && ok || bad "$mode: ExecStart does not run 'gpuhealth $mode'"
  for want in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=[1-9]' 'Restart=on-failure' \
              'DynamicUser=yes' "StateDirectory=gpuhealth/$mode" "RuntimeDirectory=gpuhealth-$mode" \
              'ConfigurationDirectory=gpuhealth' 'EnvironmentFile=-/etc/default/gpuhealth' \
              'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
              'PrivateDevices=yes' 'ProtectKernelTunables=yes' 'ProtectKernelModules=yes' \
              'ProtectKernelLogs=yes' 'ProtectControlGroups=yes' 'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
              'RestrictNamespaces=yes' 'LockPersonality=yes' 'MemoryDenyWriteExecute=yes' \
              'SystemCallArchitectures=native' 'SystemCallFilter=@system-service' 'CapabilityBoundingSet=$' \
              'WantedBy=multi-user.target'; do
    grep -qE "^$want" "$u" && ok || bad "$mode: the unit lacks '$want'"
  done
done

# verify also runs man(1) on Documentation=: give it the repository's pages
mkdir -p "$tmp/man/man1" "$tmp/man/man5"
cp "$root/man/gpuhealth.1" "$tmp/man/man1/" 2>/dev/null || bad "man/gpuhealth.1 is missing"
cp "$root/man/gpuhealth.conf.5" "$tmp/man/man5/" 2>/dev/null || bad "man/gpuhealth.conf.5 is missing"
export MANPATH="$tmp/man"

# verify prints problems (unknown keys, bad values, a missing binary) as warnings and may still
# exit 0: any output at all is a failure
out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "${units[@]}" 2>&1); rc=$?
if [ $rc = 0 ] && [ -z "$out" ]; then ok; else bad "systemd-analyze verify (status $rc): $out"; fi

# and verify does catch a broken unit, so the check above can fail
sed 's/^ProtectKernelTunables=yes/ProtectKernelTunables=maybe/' "${units[0]}" >"$tmp/broken.service"
out=$(cd "$tmp" && systemd-analyze verify "$tmp/broken.service" 2>&1)
[ -n "$out" ] && ok || bad "systemd-analyze verify did not notice a bad value: the check above proves nothing"

echo "$passes passed, $fails failed ($(systemd-analyze --version | head -1))"
[ $fails = 0 ]
