#!/usr/bin/env bash
# A real Prometheus server for the integration tests, built from the Go module proxy at a pinned
# version (`go install -tags remove_all_sd github.com/prometheus/prometheus/cmd/prometheus@VERSION`)
# and cached like the Kafka jars (~/.cache/gpuhealth). The build tag leaves out the service
# discovery plugins (Kubernetes, the clouds: Prometheus' own switch for custom builds, 3.10 and
# later); the tests use static_configs only, and the first build takes about 2.5 minutes on 2 cores
# instead of 11. Source this file, then:
#   prom_build              -> exports GH_PROM_BIN (builds once; later runs reuse the binary)
#   prom_start CONFIG_TEXT  -> starts it on a loopback port the kernel picks (its log says which);
#                              exports PROM_URL, PROM_PID
#   prom_stop
# Needs Go >= GH_PROM_GO_MIN: scripts/go-toolchain.sh finds one or fetches it (GH_GO names one).

GH_PROM_VERSION=${GH_PROM_VERSION:-v0.316.0}
GH_PROM_GO_MIN=${GH_PROM_GO_MIN:-1.26.7} # the go directive of its go.mod
GH_CACHE=${GPUHEALTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpuhealth}
GH_PROM_DIR=${GH_PROM_DIR:-$(mktemp -d /tmp/gpuhealth-prom.XXXXXX)}

prom_log() { echo "prometheus: $*" >&2; }
# shellcheck source=go-toolchain.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-toolchain.sh"

prom_build() {
  GH_PROM_BIN="$GH_CACHE/prometheus-$GH_PROM_VERSION/prometheus"
  if [ -x "$GH_PROM_BIN" ] && [ -f "$GH_PROM_BIN.complete" ]; then
    prom_log "Prometheus $GH_PROM_VERSION cached at $GH_PROM_BIN"
    export GH_PROM_BIN
    return 0
  fi
  local go
  go=$(gh_go "$GH_PROM_GO_MIN") || { prom_log "no Go >= $GH_PROM_GO_MIN for building github.com/prometheus/prometheus/cmd/prometheus@$GH_PROM_VERSION (above: why)"; return 1; }
  local bin; bin=$(mktemp -d /tmp/gpuhealth-prom-build.XXXXXX)
  prom_log "building Prometheus $GH_PROM_VERSION from the Go module proxy into $GH_PROM_BIN (about 2.5 minutes on 2 cores, once)"
  (cd "$bin" && GOBIN="$bin" CGO_ENABLED=0 "$go" install -tags remove_all_sd -trimpath -ldflags='-s -w' "github.com/prometheus/prometheus/cmd/prometheus@$GH_PROM_VERSION") >"$bin/build.log" 2>&1 \
    || { prom_log "go install of Prometheus $GH_PROM_VERSION failed:"; tail -20 "$bin/build.log" >&2; rm -rf "$bin"; return 1; }
  mkdir -p "$(dirname "$GH_PROM_BIN")"
  mv "$bin/prometheus" "$GH_PROM_BIN" && touch "$GH_PROM_BIN.complete"
  rm -rf "$bin"
  export GH_PROM_BIN
  prom_log "built Prometheus $GH_PROM_VERSION"
}

prom_start() { # prom_start CONFIG_TEXT
  mkdir -p "$GH_PROM_DIR/data"
  printf '%s\n' "$1" >"$GH_PROM_DIR/prometheus.yml"
  # on a port the kernel picks, read back from its log: a port picked here and freed before
  # Prometheus binds it can be taken meanwhile by a test running beside this one
  "$GH_PROM_BIN" --config.file="$GH_PROM_DIR/prometheus.yml" --storage.tsdb.path="$GH_PROM_DIR/data" \
    --web.listen-address=127.0.0.1:0 >"$GH_PROM_DIR/prometheus.log" 2>&1 &
  PROM_PID=$!
  PROM_URL=
  local i port=
  for i in $(seq 1 120); do
    kill -0 "$PROM_PID" 2>/dev/null || { prom_log "Prometheus exited during start:"; tail -20 "$GH_PROM_DIR/prometheus.log" >&2; return 1; }
    if [ -z "$port" ]; then # the port it bound: msg="Listening on" component=web address=127.0.0.1:PORT
      port=$(sed -n 's|.*msg="Listening on".* address=127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$GH_PROM_DIR/prometheus.log" | head -1)
      [ -n "$port" ] && PROM_URL="http://127.0.0.1:$port"
    fi
    [ -n "$port" ] && curl -fs -o /dev/null --max-time 2 "$PROM_URL/-/ready" && { prom_log "Prometheus on 127.0.0.1:$port (log $GH_PROM_DIR/prometheus.log)"; return 0; }
    sleep 0.25
  done
  prom_log "Prometheus not ready after 30 s"; tail -20 "$GH_PROM_DIR/prometheus.log" >&2
  return 1
}

prom_stop() {
  [ -n "${PROM_PID:-}" ] || return 0
  kill -TERM "$PROM_PID" 2>/dev/null || return 0
  local i
  for i in $(seq 1 40); do kill -0 "$PROM_PID" 2>/dev/null || break; sleep 0.25; done
  kill -KILL "$PROM_PID" 2>/dev/null || true
  wait "$PROM_PID" 2>/dev/null || true
  PROM_PID=
}
