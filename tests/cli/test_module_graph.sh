#!/usr/bin/env bash
# The module graph of issue #22 item 5, checked on the build itself: every src/<module>/ is a
# static library compiled with only its own headers and those of the modules below it on the
# include path (CMakeLists.txt, gpuhealth_module), so an upward include fails the build.
# For each module M this reads the include directories M compiles with
# (build/modules/M.include, written by CMake) and checks:
#  - no directory on it holds the sources of more than one module (not src/, not ui/);
#  - the modules M sees form no cycle with it (M sees N and N sees M only for M = N);
#  - for every other module N, a file including a header of N preprocesses with M's include
#    path exactly when M sees N: an upward include ("pipeline/..." from store/) fails.
# $1: the built binary; its directory is the build directory.
set -u
bin=${1:?usage: test_module_graph.sh BUILD/gpuhealth}
build=$(cd "$(dirname "$bin")" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
passes=0 fails=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
[ -x "$cc" ] || { bad "no C compiler in $build/CMakeCache.txt (CMAKE_C_COMPILER)"; exit 1; }
mapfile -t modules < <(cd "$root/src" && find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
[ "${#modules[@]}" -ge 10 ] || { bad "found only ${#modules[@]} modules under $root/src"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A sees # "M N" -> 1 when N's headers are on M's include path
for m in "${modules[@]}"; do
  inc="$build/modules/$m.include"
  [ -f "$inc" ] || { bad "src/$m has no $inc: it is not built as a module (CMakeLists.txt)"; continue; }
  leak=""
  while read -r d; do
    [ -n "$d" ] || continue
    real=$(readlink -f "$d")
    case "$real" in
      "$(readlink -f "$root/src")" | "$(readlink -f "$root/ui")") leak="$leak $d" ;;
    esac
    for n in "${modules[@]}"; do
      [ -d "$d/$n" ] && [ "$(readlink -f "$d/$n")" = "$(readlink -f "$root/src/$n")" ] && sees["$m $n"]=1
    done
  done <"$inc"
  if [ -n "$leak" ]; then bad "$m compiles with all of src/ or ui/ on its include path:$leak"; fi
done

cycle=""
for m in "${modules[@]}"; do
  [ -n "${sees["$m $m"]:-}" ] || bad "$m does not see its own headers as \"$m/...\""
  for n in "${modules[@]}"; do
    [ "$m" != "$n" ] && [ -n "${sees["$m $n"]:-}" ] && [ -n "${sees["$n $m"]:-}" ] && cycle="$cycle $m<->$n"
  done
done
if [ -z "$cycle" ]; then ok "the module graph has no cycle (${#modules[@]} modules)"; else bad "modules that see each other:$cycle"; fi

# a header of each module, to include
declare -A hdr
for n in "${modules[@]}"; do
  h=$(cd "$root/src/$n" && ls ./*.h 2>/dev/null | head -1)
  [ -n "$h" ] && hdr[$n]="$n/${h#./}"
done

wrong=0 checked=0 upward=0
for m in "${modules[@]}"; do
  [ -f "$build/modules/$m.include" ] || continue
  flags=()
  while read -r d; do [ -n "$d" ] && flags+=("-I$d"); done <"$build/modules/$m.include"
  for n in "${modules[@]}"; do
    [ -n "${hdr[$n]:-}" ] && [ "$n" != "$m" ] || continue
    printf '#include "%s"\n' "${hdr[$n]}" >"$tmp/probe.c"
    if "$cc" -E -D_GNU_SOURCE "${flags[@]}" "$tmp/probe.c" -o /dev/null 2>"$tmp/err"; then got=1; else got=0; fi
    want=0
    [ -n "${sees["$m $n"]:-}" ] && want=1
    checked=$((checked + 1))
    [ $want = 0 ] && upward=$((upward + 1))
    if [ $got != $want ]; then
      wrong=$((wrong + 1))
      if [ $want = 0 ]; then
        bad "src/$m can include \"${hdr[$n]}\" though $n is not below it"
      else
        bad "src/$m cannot include \"${hdr[$n]}\" though $n is below it: $(head -3 "$tmp/err")"
      fi
    fi
  done
done
[ $wrong = 0 ] && ok "$checked includes across modules tried: the $upward that are not downward fail, the rest compile"
# the mechanism, once by name: the store (low) cannot reach the pipeline (high)
if [ -n "${hdr[pipeline]:-}" ] && [ -f "$build/modules/store.include" ]; then
  [ -z "${sees["store pipeline"]:-}" ] && ok "store/ does not see pipeline/" || bad "store/ sees pipeline/"
fi

# a module used only inside another (its .c files, USES in CMakeLists.txt) stays hidden from
# the modules above that one: the console's view reads the pipeline, never the database
if [ -f "$build/modules/view.include" ] && [ -f "$build/modules/pipeline.include" ]; then
  [ -n "${sees["pipeline store"]:-}" ] || bad "pipeline/ does not see store/ (it writes the database)"
  [ -z "${sees["view store"]:-}" ] && ok "view/ does not see store/ (the pipeline uses it inside)" ||
    bad "view/ sees store/ through pipeline/: a private dependency leaks (USES in CMakeLists.txt)"
  [ -z "${sees["view nvml"]:-}" ] && ok "view/ does not see nvml/" || bad "view/ sees nvml/"
fi
# libpq's header: on store/'s path alone (CMakeLists.txt: libpq is a private library of store/,
# whose headers name PGconn and PGresult without it), so no other module can call libpq. Where
# the compiler finds it without any -I (a distribution that installs it in /usr/include) the
# path cannot hide it: tests/cli/test_layout.sh's source checks still hold there.
printf '#include <libpq-fe.h>\n' >"$tmp/probe.c"
if "$cc" -E "$tmp/probe.c" -o /dev/null 2>/dev/null; then
  echo "note: <libpq-fe.h> is on the compiler's default path here: its include-path probe is skipped"
  modules_libpq=()
else
  modules_libpq=("${modules[@]}")
fi
for m in "${modules_libpq[@]}"; do
  [ -f "$build/modules/$m.include" ] || continue
  flags=()
  while read -r d; do [ -n "$d" ] && flags+=("-I$d"); done <"$build/modules/$m.include"
  printf '#include <libpq-fe.h>\n' >"$tmp/probe.c"
  if "$cc" -E "${flags[@]}" "$tmp/probe.c" -o /dev/null 2>/dev/null; then got=1; else got=0; fi
  if [ "$m" = store ]; then
    [ $got = 1 ] || bad "src/store cannot include <libpq-fe.h>: its build lost libpq"
  elif [ $got = 1 ]; then
    bad "src/$m can include <libpq-fe.h>: only store/ may (go through store/pg.h, store/pgconn.h)"
  else
    libpq_off=$((${libpq_off:-0} + 1))
  fi
done
[ "${#modules_libpq[@]}" -gt 0 ] && [ "${libpq_off:-0}" = $((${#modules[@]} - 1)) ] &&
  ok "<libpq-fe.h> is on store/'s include path alone (${libpq_off} other modules cannot include it)"

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
