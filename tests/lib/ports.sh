# shellcheck shell=bash
# Sourced by the shell tests (tests/integration/lib.sh, the tests that do without it, and
# tests/cli/): the port of a server a test starts. The server listens on 127.0.0.1:0 (the kernel
# picks a free port) and says which; the test reads it from the server's log. A port picked by
# the test (bound and closed in Python) and freed before the server binds it can be taken
# meanwhile by a test running beside this one, as in CI: the server then fails "port already in
# use" and every check after it fails.
#
# What each server writes, and the BEFORE that finds it:
#   gpuhealth api               "api: listening on http://127.0.0.1:PORT (...)"   (default)
#   a Python server of a test   "listening on http://127.0.0.1:PORT"              (default; it
#                               prints it, flushed, once it listens on port 0)
#   gpuhealth mock-dcgm         "mock-dcgm: serving N simulated MODEL GPUs on
#                               http://127.0.0.1:PORT/metrics (...)"             'GPUs on '
#   collector --metrics-listen  "collector: own metrics on http://127.0.0.1:PORT/metrics"
#                                                                                 'own metrics on '
#   scorer --metrics-listen     "scorer: own metrics and each GPU's health on
#                               http://127.0.0.1:PORT/metrics"                   'health on '
#   python3 -u -m http.server 0 "Serving HTTP on 127.0.0.1 port PORT (http://127.0.0.1:PORT/) ..."
#                                                                                 'port [0-9]* ('
# The gpuhealth lines are logged at level info, once the socket listens.

# bound_port LOG [BEFORE]: the port of the first line of LOG where BEFORE (a sed regular
# expression, by default "listening on ") comes right before "http://127.0.0.1:PORT"; waits up
# to 30 s for it (a sanitizer build on a loaded machine starts slowly); status 1 without it.
bound_port() {
  local p
  for _ in $(seq 1 300); do
    p=$(sed -n "s|.*${2:-listening on }http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p" "$1" 2>/dev/null | head -1)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}
