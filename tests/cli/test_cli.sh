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
  out=$(timeout 20 "$bin" "$@" 2>&1 </dev/null); rc=$? # 124: it hung
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

# A config file (--config) and a targets file (--targets-file) that are not small text files:
# a usage error naming the file (and line), never defaults taken silently or a read for ever.
tmp=$(mktemp -d /tmp/gh-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/fifo"
head -c 1048577 /dev/zero | tr '\0' '#' >"$tmp/big.conf"
head -c 33554433 /dev/zero | tr '\0' '#' >"$tmp/big.targets"
printf 'gpus = 4\n# \xe9t\xe9\n' >"$tmp/latin1"
printf 'gpus = 4\0\n' >"$tmp/nul"
{ printf 'http://localhost:9400/metrics # '; head -c 4100 /dev/zero | tr '\0' x; echo; } >"$tmp/long"
for how in "--config|mock-dcgm --duration 1" "--targets-file|collector --output - --once"; do
  opt=${how%%|*} cmd=${how#*|}
  big=$tmp/big.conf; [ "$opt" = --targets-file ] && big=$tmp/big.targets
  expect 2 "'$tmp': a directory, not a file" -- $cmd $opt "$tmp"
  expect 2 "'/dev/zero': not a regular file \(a device\)" -- $cmd $opt /dev/zero
  expect 2 "'$tmp/fifo': not a regular file \(a FIFO" -- $cmd $opt "$tmp/fifo"
  expect 2 "'$big': [0-9]+ bytes, over the limit of" -- $cmd $opt "$big"
  expect 2 "$tmp/latin1:2: invalid UTF-8" -- $cmd $opt "$tmp/latin1"
  expect 2 "$tmp/nul:1: NUL byte" -- $cmd $opt "$tmp/nul"
  expect 2 "$tmp/long:1: line longer than 4096 bytes" -- $cmd $opt "$tmp/long"
done
# a file that is not there: bad usage for --config; for --targets-file a runtime failure (1),
# as before (test_collector.sh)
expect 2 "config file '$tmp/gone': No such file" -- mock-dcgm --config "$tmp/gone"

# --daemon checks its options before it starts anything: bad usage is status 2.
expect 2 'not a known GPU model' -- --daemon --model nope --duration 1
expect 2 'not a known GPU model' -- daemon --model nope --duration 1


# The man page's OPTIONS section documents every option that any command's --help lists.
for cmd in tui daemon mock-dcgm collector sink scorer status db api kafka; do
  opts=$("$bin" $cmd --help | grep -oE '^ +(-[A-Za-z], )?--[a-z-]+|^ +-[A-Za-z] ' | grep -oE -- '--[a-z-]+|-[A-Za-z]' | sort -u)
  for o in $opts; do
    if sed -n '/^\.SH OPTIONS/,/^\.SH [^O]/p' "$man" | sed 's/\\//g' | grep -qE -- "(^|[^a-z-])$o([^a-z-]|$)"; then ok; else bad "man page lacks $o (from 'gpuhealth $cmd --help')"; fi
  done
done

echo "$passes passed, $fails failed"
[ $fails = 0 ]
