#!/usr/bin/env bash
# Every key the console takes (ui/console.c on_key, ui/fleetview.c fv_key and
# fv_history_key: their case labels and the ranges they test) is listed in the man page's
# INTERACTIVE COMMANDS (issue #25), and every key listed there is one the console takes.
# $1 (the binary) is unused: the check reads the sources.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
passes=0 fails=0
ok() { passes=$((passes + 1)); echo "ok: $*"; }
bad() { fails=$((fails + 1)); echo "FAIL: $*" >&2; }

# the case labels and compared characters of the key handlers, in the man page's spelling
code_keys() {
  for f in "$root/ui/console.c:on_key" "$root/ui/fleetview.c:fv_key" "$root/ui/fleetview.c:fv_history_key"; do
    awk -v fn="${f##*:}" '$0 ~ "^[a-z].* " fn "\\(" {on=1} on {print} on && /^}/ {exit}' "${f%%:*}"
  done | grep -oE "case [^:]+:|ch >= '.' && ch <= '.'|ch == '[^']+'" | sed -E "s/^case //; s/:$//; s/^ch == //" |
    while read -r k; do
      case "$k" in
        "ch >= '"*) # a range: every character in it
          a=$(printf %d "'${k:7:1}"); b=$(printf %d "'${k:20:1}")
          for ((x = a; x <= b; x++)); do printf "\\$(printf %o "$x")\n"; done ;;
        "'\\n'" | "'\\r'" | KEY_ENTER) echo Enter ;;
        "'\\\\'") echo '\' ;;
        "'"?"'") echo "${k:1:1}" ;;
        27) echo Esc ;;
        127 | KEY_BACKSPACE) echo Backspace ;;
        12) echo Ctrl-L ;;
        "KEY_F("*) k=${k#KEY_F(}; echo "F${k%)}" ;;
        KEY_UP) echo Up ;; KEY_DOWN) echo Down ;; KEY_PPAGE) echo PgUp ;; KEY_NPAGE) echo PgDn ;;
        KEY_HOME) echo Home ;; KEY_END) echo End ;;
        KEY_RESIZE | FV_*) ;; # not keys: a resize, the overview's answers
        *) echo "UNKNOWN:$k" ;;
      esac
    done | sort -u
}

# the keys named on the .B/.BR lines of INTERACTIVE COMMANDS ("1 to 5" is a range)
man_keys() {
  awk '/^\.SH INTERACTIVE COMMANDS/ {on=1; next} /^\.SH / {on=0} on' "$root/man/gpuhealth.1" |
    grep -E '^\.BR? ' | sed -E 's/^\.BR? //' |
    python3 -c '
import shlex, sys
keys = set()
for line in sys.stdin:
    toks = shlex.split(line.replace("\\e", "BACKSLASH"), posix=True)
    for i, t in enumerate(toks):
        if t.strip() == "to" and 0 < i < len(toks) - 1:  # "1 to 5"
            keys.update(str(k) for k in range(int(toks[i - 1]), int(toks[i + 1]) + 1))
        elif t != t.strip() or not t or t[0] in "()":
            continue  # a separator, prose or punctuation between the keys
        elif t.startswith("\\-") or (t.islower() and len(t) > 1):
            continue  # an option (--db) or a table name (gpu_metrics)
        else:
            keys.add("\\" if t == "BACKSLASH" else t)
for k in sorted(keys):
    print(k)
' | sort -u
}

code=$(code_keys)
man=$(man_keys)
[ -n "$code" ] || bad "no keys found in ui/ (the handlers' names changed?)"
[ "$(wc -l <<<"$code")" -ge 30 ] && ok "$(wc -l <<<"$code") keys in ui/'s handlers" || bad "only $(wc -l <<<"$code") keys in ui/"
grep -q UNKNOWN <<<"$code" && bad "keys this test cannot name: $(grep UNKNOWN <<<"$code" | tr '\n' ' ')"
for k in $(grep -v UNKNOWN <<<"$code"); do
  grep -qxF -- "$k" <<<"$man" || bad "key '$k' is handled in ui/ but not in the man page's INTERACTIVE COMMANDS"
done
for k in $man; do
  grep -qxF -- "$k" <<<"$code" || bad "the man page lists '$k', which ui/ does not handle"
done
[ "$fails" = 0 ] && ok "the man page's INTERACTIVE COMMANDS lists exactly the keys of ui/ ($(tr '\n' ' ' <<<"$code"))"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
