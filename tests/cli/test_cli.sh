#!/usr/bin/env bash
# The command line as a user meets it: help, version, exit codes, messages, and the man page
# documenting every option that --help shows.
set -u
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
man="$root/man/gpuhealth.1"
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }

expect() { # expect STATUS PATTERN -- args...
  local want=$1 pat=$2; shift 3
  local out rc
  out=$("$bin" "$@" 2>&1 </dev/null); rc=$?
  if [ "$rc" != "$want" ]; then bad "gpuhealth $* exited $rc, expected $want: $out"; return; fi
  if [ -n "$pat" ] && ! grep -qE -- "$pat" <<<"$out"; then bad "gpuhealth $*: output lacks /$pat/: $out"; return; fi
  ok
}

expect 0 '^Usage: gpuhealth' -- --help
expect 0 '^Usage: gpuhealth' -- -h
expect 0 '^gpuhealth [0-9]+\.[0-9]+\.[0-9]+$' -- --version
expect 0 'Usage: gpuhealth sink' -- sink --help
expect 2 "unknown command 'frob'" -- frob
expect 2 "unknown option '--nope'" -- collector --nope
expect 2 "'many' is not a whole number" -- mock-dcgm --gpus many
expect 2 "does not apply to 'status'" -- status --gpus 3
expect 2 "needs a value" -- collector --target
expect 2 "not a terminal" -- 
expect 2 "needs a terminal" -- tui
expect 2 "db migrate" -- db
MOCK_SPEED=warp expect 2 'MOCK_SPEED' -- mock-dcgm
expect 2 '/nonexistent.conf' -- sink --config /nonexistent.conf
expect 2 'must come before its options' -- --log-level debug sink

# --daemon checks its options before it starts anything: bad usage is status 2.
expect 2 'not a known GPU model' -- --daemon --model nope --duration 1
expect 2 'not a known GPU model' -- daemon --model nope --duration 1


# The man page's OPTIONS section documents every option that any command's --help lists.
for cmd in tui daemon mock-dcgm collector sink scorer status db api; do
  opts=$("$bin" $cmd --help | grep -oE '^ +(-[A-Za-z], )?--[a-z-]+|^ +-[A-Za-z] ' | grep -oE -- '--[a-z-]+|-[A-Za-z]' | sort -u)
  for o in $opts; do
    if sed -n '/^\.SH OPTIONS/,/^\.SH [^O]/p' "$man" | sed 's/\\//g' | grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)"; then ok; else bad "man page lacks $o (from 'gpuhealth $cmd --help')"; fi
  done
done

echo "$passes passed, $fails failed"
[ $fails = 0 ]
