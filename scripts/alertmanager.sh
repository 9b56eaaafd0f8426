#!/usr/bin/env bash
# A real Prometheus Alertmanager for the integration tests, built from the Go module proxy at a
# pinned version and cached like the Kafka jars (~/.cache/gpuhealth). Source this file, then:
#   am_build                 -> exports GH_AM_BIN (builds once; later runs reuse the binary)
#   am_start NAME CONFIG     -> starts one on a loopback port the kernel picks (its log says
#                               which); exports AM_URL_<NAME>, AM_PID_<NAME>; its data and log
#                               under $GH_AM_DIR/NAME
#   am_restart NAME          -> starts NAME again on the same port (after am_kill NAME): what
#                               sends to it keeps its URL (the port is free meanwhile, so a
#                               program beside the test could take it; a restart cannot avoid that)
#   am_kill NAME             -> stops it (SIGTERM, SIGKILL after 10 s)
#
# The module on the proxy carries no built web UI: `go install` stops at the embedded
# ui/app/dist. So the build copies the module (`go mod download -json` gives its Dir), puts a
# placeholder page there, and builds cmd/alertmanager from the copy (about a minute on 2 cores).
# Needs Go >= GH_AM_GO_MIN (Alertmanager's go.mod): scripts/go-toolchain.sh finds one or fetches
# it (GH_GO names one).

GH_ROOT=${GH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
GH_AM_VERSION=${GH_AM_VERSION:-v0.28.1}
GH_AM_GO_MIN=${GH_AM_GO_MIN:-1.22}
GH_CACHE=${GPUHEALTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpuhealth}
GH_AM_DIR=${GH_AM_DIR:-$(mktemp -d /tmp/gpuhealth-am.XXXXXX)}

am_log() { echo "alertmanager: $*" >&2; }

# shellcheck source=go-toolchain.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-toolchain.sh"
am_go() { # prints the go binary to use (fetched from the Go module proxy when none here will do)
  gh_go "$GH_AM_GO_MIN" || { am_log "no Go >= $GH_AM_GO_MIN for building github.com/prometheus/alertmanager $GH_AM_VERSION (above: why)"; return 1; }
}

am_build() {
  GH_AM_BIN="$GH_CACHE/alertmanager-$GH_AM_VERSION/alertmanager"
  if [ -x "$GH_AM_BIN" ] && [ -f "$GH_AM_BIN.complete" ]; then
    am_log "Alertmanager $GH_AM_VERSION cached at $GH_AM_BIN"
    export GH_AM_BIN
    return 0
  fi
  local go; go=$(am_go) || return 1
  local work; work=$(mktemp -d /tmp/gpuhealth-am-build.XXXXXX)
  am_log "building Alertmanager $GH_AM_VERSION from the Go module proxy into $GH_AM_BIN (about a minute on 2 cores, once)"
  local dir
  dir=$(cd "$work" && GOFLAGS=-mod=mod "$go" mod download -json "github.com/prometheus/alertmanager@$GH_AM_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])') \
    || { am_log "cannot download github.com/prometheus/alertmanager@$GH_AM_VERSION from the Go module proxy ($("$go" env GOPROXY))"; rm -rf "$work"; return 1; }
  cp -r "$dir" "$work/src" && chmod -R u+w "$work/src" || { rm -rf "$work"; return 1; }
  # the web UI is not in the module: a placeholder lets the embed directive compile
  mkdir -p "$work/src/ui/app/dist"
  [ -n "$(ls -A "$work/src/ui/app/dist")" ] || echo '<html><body>web UI not built</body></html>' >"$work/src/ui/app/dist/index.html"
  mkdir -p "$(dirname "$GH_AM_BIN")"
  (cd "$work/src" && CGO_ENABLED=0 "$go" build -o "$GH_AM_BIN.tmp" ./cmd/alertmanager) >"$work/build.log" 2>&1 \
    || { am_log "go build of Alertmanager $GH_AM_VERSION failed:"; tail -20 "$work/build.log" >&2; rm -rf "$work"; return 1; }
  mv "$GH_AM_BIN.tmp" "$GH_AM_BIN" && touch "$GH_AM_BIN.complete"
  rm -rf "$work"
  export GH_AM_BIN
  am_log "built $("$GH_AM_BIN" --version 2>&1 | head -1)"
}

am_ready() { curl -fs -o /dev/null --max-time 2 "$1/-/ready"; }

am_run() { # am_run NAME: starts NAME on its port (none yet: one the kernel picks) and waits for /-/ready
  local name=$1 port d before
  eval "port=\${AM_PORT_$name:-}"
  d="$GH_AM_DIR/$name"
  before=$( { wc -l <"$d/alertmanager.log"; } 2>/dev/null || echo 0) # the lines of earlier runs
  # --cluster.listen-address= : no gossip (one instance per name, nothing off loopback)
  "$GH_AM_BIN" --config.file="$d/alertmanager.yml" --storage.path="$d/data" \
    --web.listen-address="127.0.0.1:${port:-0}" --cluster.listen-address= --log.level=info \
    >>"$d/alertmanager.log" 2>&1 &
  local pid=$!
  eval "AM_PID_$name=$pid"
  local i
  for i in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || { am_log "Alertmanager $name exited during start:"; tail -20 "$d/alertmanager.log" >&2; return 1; }
    if [ -z "$port" ]; then # the port it bound: msg="Listening on" address=127.0.0.1:PORT
      port=$(tail -n +"$((before + 1))" "$d/alertmanager.log" \
        | sed -n 's|.*msg="Listening on".* address=127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' | head -1)
      [ -n "$port" ] && eval "AM_PORT_$name=$port; AM_URL_$name=http://127.0.0.1:$port"
    fi
    [ -n "$port" ] && am_ready "http://127.0.0.1:$port" && return 0
    sleep 0.25
  done
  am_log "Alertmanager $name not ready after 30 s"; tail -20 "$d/alertmanager.log" >&2
  return 1
}

am_start() { # am_start NAME CONFIG_TEXT
  local name=$1 d="$GH_AM_DIR/$1"
  mkdir -p "$d/data"
  printf '%s\n' "$2" >"$d/alertmanager.yml"
  # on a port the kernel picks, read back from its log: a port picked here and freed before
  # Alertmanager binds it can be taken meanwhile by a test running beside this one
  eval "AM_PORT_$name=; AM_URL_$name="
  am_run "$name" || return 1
  local port; eval "port=\$AM_PORT_$name"
  am_log "Alertmanager $name on 127.0.0.1:$port (log $d/alertmanager.log)"
}

am_restart() { am_run "$1"; }

am_kill() {
  local pid; eval "pid=\${AM_PID_$1:-}"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  eval "AM_PID_$1="
}
