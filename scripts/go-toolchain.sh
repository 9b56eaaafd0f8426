#!/usr/bin/env bash
# A Go toolchain for the test builds of Alertmanager and Prometheus (scripts/alertmanager.sh,
# scripts/prometheus.sh). Source this file, then:
#   gh_go MIN   -> prints a go binary of version >= MIN, or fails saying what is missing
# It takes, in order, GH_GO, `go` on the PATH, /usr/local/go/bin/go and a toolchain cached in
# ~/.cache/gpuhealth; when none is new enough (Debian 12's golang-go is 1.19) it fetches the
# toolchain the Go module proxy serves as the module golang.org/toolchain (the same zip that
# `GOTOOLCHAIN=goX.Y.Z` downloads) into the cache, once, like the Kafka jars.

GH_CACHE=${GPUHEALTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpuhealth}
GH_GO_FETCH=${GH_GO_FETCH:-1.26.8} # the toolchain fetched when no Go on this machine will do

gh_go_log() { echo "go-toolchain: $*" >&2; }

gh_go_version() { "$1" env GOVERSION 2>/dev/null | sed 's/^go//'; }
gh_go_at_least() { # gh_go_at_least HAVE MIN
  [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

gh_go_fetch() { # gh_go_fetch VERSION: into $GH_CACHE/go-VERSION; prints its go binary
  local v=$1 arch dir proxy zip tmp
  case "$(uname -m)" in
    x86_64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) gh_go_log "no Go toolchain is fetched for $(uname -m): install Go >= the version named above and set GH_GO"; return 1 ;;
  esac
  dir="$GH_CACHE/go-$v"
  if [ -x "$dir/bin/go" ] && [ -f "$dir/.complete" ]; then echo "$dir/bin/go"; return 0; fi
  proxy=${GOPROXY:-https://proxy.golang.org}
  proxy=${proxy%%,*}
  [ "$proxy" = direct ] || [ "$proxy" = off ] && proxy=https://proxy.golang.org
  zip="$proxy/golang.org/toolchain/@v/v0.0.1-go$v.linux-$arch.zip"
  tmp=$(mktemp -d /tmp/gpuhealth-go.XXXXXX)
  gh_go_log "fetching Go $v from the Go module proxy ($zip, about 70 MB, once) into $dir"
  if ! curl -fsSL --retry 3 -o "$tmp/go.zip" "$zip"; then
    gh_go_log "cannot fetch $zip: install Go >= the version named above (https://go.dev/dl/) and set GH_GO"
    rm -rf "$tmp"
    return 1
  fi
  # a module zip keeps no file modes: the tools are made executable here, as the go command
  # does for the toolchains it downloads itself
  if ! python3 -m zipfile -e "$tmp/go.zip" "$tmp/x" >/dev/null; then
    gh_go_log "cannot unpack $zip"
    rm -rf "$tmp"
    return 1
  fi
  local root="$tmp/x/golang.org/toolchain@v0.0.1-go$v.linux-$arch"
  [ -f "$root/bin/go" ] || { gh_go_log "$zip has no bin/go"; rm -rf "$tmp"; return 1; }
  chmod -R u+rwX,go+rX "$root"
  chmod +x "$root"/bin/* "$root"/pkg/tool/*/*
  rm -rf "$dir"
  mkdir -p "$GH_CACHE"
  mv "$root" "$dir" && touch "$dir/.complete"
  rm -rf "$tmp"
  echo "$dir/bin/go"
}

gh_go() { # gh_go MIN
  local min=$1 g have
  for g in "${GH_GO:-}" "$(command -v go 2>/dev/null)" /usr/local/go/bin/go "$GH_CACHE/go-$GH_GO_FETCH/bin/go"; do
    [ -n "$g" ] && [ -x "$g" ] || continue
    have=$(gh_go_version "$g")
    if gh_go_at_least "$have" "$min"; then echo "$g"; return 0; fi
    gh_go_log "$g is Go '${have:-unknown}', older than $min"
  done
  if ! gh_go_at_least "$GH_GO_FETCH" "$min"; then
    gh_go_log "Go >= $min is needed and GH_GO_FETCH=$GH_GO_FETCH is older: set GH_GO_FETCH or GH_GO"
    return 1
  fi
  g=$(gh_go_fetch "$GH_GO_FETCH") || return 1
  have=$(gh_go_version "$g")
  gh_go_at_least "$have" "$min" || { gh_go_log "the fetched $g says it is Go '${have:-unknown}'"; return 1; }
  echo "$g"
}
