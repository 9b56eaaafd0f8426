#!/usr/bin/env bash
# The source layout rules of issue #22 that hold today, checked so they keep holding:
#  - no .c file under src/ or ui/ is over 1,200 lines (big files are split along their seams);
#  - only ui/ includes curses;
#  - rdkafka.h is included only in src/bus/ and libpq-fe.h only in src/store/: the sink and the
#    scorer read through bus/consumer.h and send through bus/sender.h, the embedded broker's
#    gate (pipeline/mockbroker.c) reads its cluster through bus/mockcluster.h; libpq is store/'s
#    alone (its headers name PGconn and PGresult, and store/pg.h and store/pgconn.h are how every
#    other module runs its statements). An allow-list below may only shrink (both are empty).
# $1 (the binary) is unused: the check reads the sources.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
passes=0 fails=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

max_lines=1200
# files outside bus/ that include rdkafka.h, and outside store/ that include libpq-fe.h (#22 item 2)
rdkafka_waiting=""
libpq_waiting=""

cd "$root" || exit 2
mapfile -t cfiles < <(find src ui -name '*.c' | sort)
mapfile -t allfiles < <(find src ui -name '*.[ch]' | sort)
[ "${#cfiles[@]}" -gt 20 ] || { bad "found only ${#cfiles[@]} .c files under src/ and ui/ in $root"; exit 1; }

long=0
for f in "${cfiles[@]}"; do
  n=$(wc -l < "$f")
  if [ "$n" -gt "$max_lines" ]; then
    bad "$f has $n lines, over $max_lines: split it along its seams (a module per .c/.h pair)"
    long=$((long + 1))
  fi
done
[ "$long" = 0 ] && ok "no .c file under src/ or ui/ over $max_lines lines (${#cfiles[@]} files)"

# includes of a header, as "file" lines
includers() { grep -lE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($1)[>\"]" "${allfiles[@]}" 2>/dev/null; }

wrong=$(includers '(n?curses(w)?/)?n?curses\.h|ncursesw/curses\.h|panel\.h|term\.h' | grep -v '^ui/')
if [ -z "$wrong" ]; then ok "only ui/ includes curses"; else bad "curses included outside ui/: $(echo $wrong) (data collection never calls ncurses: move the drawing to ui/)"; fi

check_lib() { # header name, its include pattern, home directory, allowed list, what to use instead
  local name=$1 hdr=$2 home=$3 allowed instead=$5 f extra="" gone=""
  local found
  allowed=$(echo $4) # one line, single spaces
  found=$(includers "$hdr" | grep -v "^$home/")
  for f in $found; do
    case " $allowed " in *" $f "*) ;; *) extra="$extra $f" ;; esac
  done
  for f in $allowed; do
    echo "$found" | grep -qx "$f" || gone="$gone $f"
  done
  if [ -n "$extra" ]; then
    bad "$name included outside $home/ by:$extra ($instead)"
  else
    if [ -z "$allowed" ]; then
      ok "$name is included only in $home/"
    else
      ok "$name is included only in $home/ and the $(echo $allowed | wc -w) files still waiting for #22 item 2"
    fi
  fi
  if [ -n "$gone" ]; then
    bad "these files no longer include $name: take them off the list in $0:$gone"
  fi
}
check_lib rdkafka.h 'librdkafka/[^>"]+|rdkafka(_mock)?\.h' src/bus "$rdkafka_waiting" "go through the bus/ module's interface"
check_lib libpq-fe.h 'libpq-fe\.h|postgresql/libpq-fe\.h' src/store "$libpq_waiting" "go through the store/ module's interface"

# nor a call to either library through prototypes of its own
calls=$(grep -lE '\b(PQ[a-zA-Z]+|lo_[a-z]+)[[:space:]]*\(' $(find src ui -name '*.[ch]' -not -path 'src/store/*') 2>/dev/null)
if [ -z "$calls" ]; then ok "no libpq call outside src/store/"; else bad "libpq called outside src/store/: $(echo $calls) (use store/pg.h or store/pgconn.h)"; fi
calls=$(grep -lE '\brd_kafka_[a-z_]+[[:space:]]*\(' $(find src ui -name '*.[ch]' -not -path 'src/bus/*') 2>/dev/null)
if [ -z "$calls" ]; then ok "no librdkafka call outside src/bus/"; else bad "librdkafka called outside src/bus/: $(echo $calls) (use bus/)"; fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
