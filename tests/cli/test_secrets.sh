#!/usr/bin/env bash
# Secrets on the command line and in messages (issue #20 items 1 and 8): a password given as a
# flag gets one warning naming the alternatives, none from the environment or the config file,
# and no byte of a password reaches any message, whatever the form. No services: every
# database is 127.0.0.1 port 1 (refused at once), every broker too.
set -u
bin=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
man="$root/man/gpuhealth.1"
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
warn_db='warning: --db holds a password'

# run LABEL SECONDS -- args...: output (stdout+stderr) in $out; a run past SECONDS is stopped
run() {
  local secs=$2; shift 3
  out=$(timeout -s TERM "$secs" "$bin" "$@" 2>&1 </dev/null)
}
# has LABEL PATTERN / lacks LABEL TEXT
has()   { if grep -qE -- "$2" <<<"$out"; then ok; else bad "$1: output lacks /$2/: $out"; fi; }
lacks() { if grep -qF -- "$2" <<<"$out"; then bad "$1: '$2' shows: $out"; else ok; fi; }
count() { # count LABEL TEXT N
  local n; n=$(grep -cF -- "$2" <<<"$out")
  if [ "$n" = "$3" ]; then ok; else bad "$1: '$2' $n times, expected $3: $out"; fi
}

# ---- --db with a password, in every form: one warning naming the alternatives, no password
forms=(
  "host=127.0.0.1 port=1 password=pwKV1 dbname=gh"
  "host=127.0.0.1 port=1 password = pwSP2 dbname=gh"
  "host=127.0.0.1 port=1 password='pwQA3 pwQB3' dbname=gh"
  "host=127.0.0.1 port=1 password='pwEA4\\' pwEB4' dbname=gh"
  "host=127.0.0.1 port=1 sslpassword=pwSSL5"
  "postgresql://sink:pwURI6@127.0.0.1:1/gh"
  "postgresql://sink:pw%40ENC7@127.0.0.1:1/gh"
  "postgresql://sink@127.0.0.1:1/gh?password=pwQRY8"
  "postgresql://sink:pwMH9@127.0.0.1:1,127.0.0.2:1/gh"
  "host=127.0.0.1 port=1 password=pwUP10 pwUPB10"
  "postgresql://sink:pwBAD11%zz@127.0.0.1:1/gh"
)
secrets=(pwKV1 pwSP2 pwQA3 pwQB3 pwEA4 pwEB4 pwSSL5 pwURI6 ENC7 pwQRY8 pwMH9 pwUP10 pwUPB10 pwBAD11)
for f in "${forms[@]}"; do
  for cmd in "db migrate" "status"; do
    # shellcheck disable=SC2086
    run "$cmd" 20 -- $cmd --db "$f"
    count "$cmd --db '$f'" "$warn_db" 1
    has "$cmd --db '$f'" 'PGPASSFILE'
    has "$cmd --db '$f'" 'PGPASSWORD or DATABASE_URL'
    has "$cmd --db '$f'" 'config file \(-c FILE\)'
    for s in "${secrets[@]}"; do lacks "$cmd --db '$f'" "$s"; done
  done
done
run "db migrate, the error" 20 -- db migrate --db "host=127.0.0.1 port=1 password = pwSP2 dbname=gh"
has "db migrate: the target is still named" 'cannot connect to PostgreSQL host=127.0.0.1 port=1 dbname=gh password=\*\*\*'
run "unparseable" 20 -- db migrate --db "host=127.0.0.1 port=1 password=pwUP10 pwUPB10"
has "unparseable: says so" 'connection string \(--db / DATABASE_URL\) is not valid: missing "=" after "\.\.\."'
has "unparseable: says how to quote" "password='a b"
run "misspelt key" 20 -- db migrate --db "host=127.0.0.1 port=1 dbnme=gh"
has "misspelt key: named when no password is in the string" 'invalid connection option "dbnme"'

# ---- the same passwords from the environment or the config file: no warning, no password
for f in "${forms[@]}"; do
  out=$(DATABASE_URL=$f timeout 20 "$bin" db migrate 2>&1 </dev/null)
  lacks "DATABASE_URL='$f'" "$warn_db"
  for s in "${secrets[@]}"; do lacks "DATABASE_URL='$f'" "$s"; done
done
printf 'db = host=127.0.0.1 port=1 password=pwFILE12\n' >"$tmp/gh.conf"
run "config file" 20 -- db migrate -c "$tmp/gh.conf"
lacks "config file" "$warn_db"
lacks "config file" pwFILE12
has "config file: still fails clearly" 'cannot connect to PostgreSQL'
out=$(PGPASSWORD=pwENV13 timeout 20 "$bin" db migrate --db "host=127.0.0.1 port=1" 2>&1 </dev/null)
lacks "PGPASSWORD" "$warn_db"
lacks "PGPASSWORD" pwENV13
run "no password" 20 -- db migrate --db "postgresql://sink@127.0.0.1:1/gh"
lacks "no password" "$warn_db"

# ---- the daemon's start line and its database errors
run "daemon" 30 -- --daemon --gpus 1 --interval 1 --duration 4 \
  --db "host=127.0.0.1 port=1 password = pwDMN14 dbname=gh"
count "daemon" "$warn_db" 1
has "daemon: start line" 'fleet database host=127.0.0.1 port=1 dbname=gh password=\*\*\*'
lacks "daemon" pwDMN14

# ---- siblings: -X secrets, --webhook credentials, option errors
run "sink -X" 3 -- sink --brokers 127.0.0.1:1 --db "host=127.0.0.1 port=1" \
  -X sasl.password=pwKFK15 -X client.rack=r1
count "sink -X sasl.password" "warning: -X sasl.password=... is a secret" 1
has "sink -X: names the config file" "'X = sasl.password=...' in the config file"
lacks "sink -X" pwKFK15
lacks "sink -X: only secrets" "warning: -X client.rack"
run "sink -X =value" 10 -- sink --brokers 127.0.0.1:1 --db "host=127.0.0.1 port=1" -X =pwKFK16
has "sink -X =value: usage error" "expected KEY=VALUE"
lacks "sink -X =value" pwKFK16
run "sink -X rejected secret" 10 -- sink --brokers 127.0.0.1:1 --db "host=127.0.0.1 port=1" \
  -X no.such.secret=pwKFK26
has "sink -X rejected secret: named, value hidden" "Kafka property 'no.such.secret=\*\*\*' rejected"
lacks "sink -X rejected secret" pwKFK26
run "scorer --webhook" 3 -- scorer --brokers 127.0.0.1:1 --db "host=127.0.0.1 port=1" \
  --webhook "http://u:pwHOOK17@127.0.0.1:1/hook"
count "scorer --webhook" "warning: --webhook holds credentials" 1
has "scorer --webhook: names the environment" 'ALERT_WEBHOOK_URL'
lacks "scorer --webhook" pwHOOK17
run "scorer bad webhook" 10 -- scorer --brokers 127.0.0.1:1 --db "host=127.0.0.1 port=1" \
  --webhook "htps://u:pwHOOK18@127.0.0.1:1/hook"
has "scorer bad webhook: says why" 'must start with http:// or https://'
lacks "scorer bad webhook" pwHOOK18
out=$(ALERT_WEBHOOK_URL="http://u:pwHOOK19@127.0.0.1:1/hook" timeout 3 "$bin" scorer \
  --brokers 127.0.0.1:1 --db "host=127.0.0.1 port=1" 2>&1 </dev/null)
lacks "ALERT_WEBHOOK_URL" "warning: --webhook"
lacks "ALERT_WEBHOOK_URL" pwHOOK19
run "option of another command" 5 -- collector --db=postgresql://u:pwOPT20@h/x
has "option of another command" "option '--db' does not apply to 'collector'"
lacks "option of another command" pwOPT20
run "unknown option" 5 -- collector --dbx=pwOPT21
has "unknown option" "unknown option '--dbx'"
lacks "unknown option" pwOPT21

# ---- --target with user:password@: sent as basic authentication, never shown
run "target" 20 -- collector --target "http://u:pwTGT22@127.0.0.1:1/metrics" --output - --once
count "target" "warning: --target holds credentials" 1
has "target: the failure names the URL without them" 'target http://127.0.0.1:1/metrics failed'
lacks "target" pwTGT22
run "target twice" 10 -- collector --target "http://u:pwTGT23@127.0.0.1:1/m" \
  --target "http://u:pwTGT23@127.0.0.1:1/m" --output - --once
has "target twice: usage error" "'http://\*\*\*@127.0.0.1:1/m' is already listed"
lacks "target twice" pwTGT23
out=$(SCRAPE_TARGETS="http://u:pwTGT24@127.0.0.1:1/metrics" timeout 20 "$bin" collector \
  --output - --once 2>&1 </dev/null)
lacks "SCRAPE_TARGETS" "warning: --target"
lacks "SCRAPE_TARGETS" pwTGT24
# an exporter that wants basic authentication gets it, %-decoded
cat >"$tmp/auth.py" <<'PY'
import base64, http.server, sys
want = "Basic " + base64.b64encode(b"us er:p@ss:TGT25").decode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization", "") == want
        self.send_response(200 if ok else 401)
        self.end_headers()
        if ok:
            self.wfile.write(b'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-auth",Hostname="h"} 40\n')
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.timeout = 20
for _ in range(4):
    s.handle_request()
PY
python3 "$tmp/auth.py" >"$tmp/port" &
auth_pid=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
port=$(cat "$tmp/port")
run "target auth" 20 -- collector --target "http://us%20er:p%40ss%3aTGT25@127.0.0.1:$port/metrics" \
  --output - --once
has "target auth: the exporter accepted it" '"uuid":"GPU-auth"'
lacks "target auth" TGT25
run "target auth, wrong password" 20 -- collector \
  --target "http://us%20er:wrong@127.0.0.1:$port/metrics" --output - --once
has "target auth, wrong password: refused" 'HTTP status 401'
kill "$auth_pid" 2>/dev/null; wait "$auth_pid" 2>/dev/null

# ---- the man page says the same
sec=$(sed -n '/^\.SH SECURITY/,/^\.SH [^S]/p' "$man")
for w in PGPASSFILE pgpass PGPASSWORD DATABASE_URL 'config file' PQconninfoParse '\\-X' webhook; do
  if grep -q -- "$w" <<<"$sec"; then ok; else bad "man page SECURITY lacks '$w'"; fi
done
if groff -man -Tutf8 -ww "$man" 2>&1 >/dev/null | grep -q .; then bad "man page has groff warnings"; else ok; fi

echo "test_secrets: $passes passed, $fails failed"
[ "$fails" = 0 ]
