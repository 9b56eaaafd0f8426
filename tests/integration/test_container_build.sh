#!/usr/bin/env bash
# The container image's build, as far as this machine allows without a Docker daemon: the
# Dockerfile's rules (slim Debian stages, non-root user, the binary as entrypoint), and its very
# RUN lines executed here: scripts/install-deps.sh (build and --runtime), scripts/build.sh with
# the Dockerfile's arguments, `cmake --install` into a DESTDIR. The installed binary must run,
# and every shared library it loads must come from a package that `install-deps.sh --runtime`
# installs (or its dependencies, or Debian's required base), so the runtime stage is complete.
# Takes a minute or two (a Release build). Needs no services.
set -u
BIN=${1:?usage: test_container_build.sh PATH_TO_GPUHEALTH}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DF="$ROOT/docker/Dockerfile"
fails=0 passes=0
ok()  { passes=$((passes+1)); echo "ok: $*"; }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
TMP=$(mktemp -d /tmp/gh-image.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# ---- the Dockerfile's rules
grep -qE '^ARG DEBIAN_IMAGE=debian:[a-z]+-slim$' "$DF" && ok "base image: a slim Debian" || bad "the base image is not debian:*-slim"
[ "$(grep -c '^FROM \${DEBIAN_IMAGE}' "$DF")" = 2 ] && ok "two stages on that base" || bad "expected a build and a runtime stage FROM \${DEBIAN_IMAGE}"
user=$(grep -E '^USER ' "$DF" | tail -1 | awk '{print $2}')
case "${user%%:*}" in ""|0|root) bad "the image runs as root (USER '$user')" ;; *) ok "runs as USER $user" ;; esac
grep -q '^ENTRYPOINT \["/usr/bin/gpuhealth"\]' "$DF" && ok "entrypoint is the binary" || bad "ENTRYPOINT is not /usr/bin/gpuhealth"
# RUN lines of each stage
build_runs=$(awk '/^FROM .* AS build/{s=1;next} /^FROM /{s=0} s && /^RUN /{sub(/^RUN /,""); print}' "$DF")
final_runs=$(awk '/^FROM /{s=($0 !~ / AS build/)} s && /^RUN /{sub(/^RUN /,""); print}' "$DF")
grep -qx 'scripts/install-deps.sh' <<<"$build_runs" && ok "build stage runs scripts/install-deps.sh" || bad "the build stage does not run scripts/install-deps.sh"
grep -q '^scripts/build.sh ' <<<"$build_runs" && ok "build stage runs scripts/build.sh" || bad "the build stage does not run scripts/build.sh"
grep -q 'install-deps.sh --runtime' <<<"$final_runs" && ok "runtime stage runs install-deps.sh --runtime" || bad "the runtime stage does not run install-deps.sh --runtime"

# ---- the same scripts, here
bash "$ROOT/scripts/install-deps.sh" >"$TMP/deps.log" 2>&1 && ok "install-deps.sh" || bad "install-deps.sh failed: $(tail -3 "$TMP/deps.log")"
bash "$ROOT/scripts/install-deps.sh" --runtime >"$TMP/deps-rt.log" 2>&1 && ok "install-deps.sh --runtime" || bad "install-deps.sh --runtime failed: $(tail -3 "$TMP/deps-rt.log")"
bash "$ROOT/scripts/install-deps.sh" --bogus >/dev/null 2>&1; [ $? = 2 ] && ok "install-deps.sh refuses an unknown option" || bad "install-deps.sh accepts --bogus"

# the build RUN line, with the image's /build and /out under $TMP (the image's /src is the root)
line=$(grep '^scripts/build.sh ' <<<"$build_runs")
line=${line// \/build/ $TMP/build}
line=${line//=\/out/=$TMP/out}
echo "running: $line"
start=$(date +%s)
if (cd "$ROOT" && bash -c "set -e; $line") >"$TMP/build.log" 2>&1; then
  ok "the Dockerfile's build line ($(( $(date +%s) - start )) s)"
else
  bad "the Dockerfile's build line failed: $(tail -20 "$TMP/build.log")"
fi
img="$TMP/out/usr/bin/gpuhealth"
if [ -x "$img" ]; then
  "$img" --version >/dev/null && ok "the image's binary runs: $("$img" --version)" || bad "the image's binary does not run"
  for f in share/man/man1/gpuhealth.1 share/man/man5/gpuhealth.conf.5 share/gpuhealth/schema/001_core.sql lib/systemd/system/gpuhealth-api.service; do
    [ -s "$TMP/out/usr/$f" ] && ok "image has /usr/$f" || bad "the image lacks /usr/$f"
  done
  grep -q '^ExecStart=/usr/bin/gpuhealth api' "$TMP/out/usr/lib/systemd/system/gpuhealth-api.service" && ok "units point at /usr/bin" || bad "the image's units do not run /usr/bin/gpuhealth"

  # every library comes from the runtime packages, their dependencies, or the required base
  rt=$(perl -0ne 'print $1 if /--runtime\) pkgs=\(([^)]*)\)/s' "$ROOT/scripts/install-deps.sh" | tr -s ' \n' '\n' | grep -v '^$' | sort -u)
  [ -n "$rt" ] || bad "cannot read the --runtime package list from install-deps.sh"
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances $rt 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u)
  missing=0
  while read -r lib; do
    [ -n "$lib" ] || continue
    pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1)
    [ -n "$pkg" ] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1)
    prio=$(dpkg-query -W -f='${Priority}' "$pkg" 2>/dev/null)
    if [ -z "$pkg" ]; then bad "$lib belongs to no Debian package"; missing=1
    elif ! grep -qx "$pkg" <<<"$closure" && [ "$prio" != required ]; then
      bad "$lib comes from $pkg, which install-deps.sh --runtime does not install"; missing=1
    fi
  done < <(ldd "$img" | awk '/=> \//{print $3}')
  ldd "$img" | grep -q 'not found' && { bad "unresolved libraries: $(ldd "$img" | grep 'not found')"; missing=1; }
  [ $missing = 0 ] && ok "every library of the binary is covered by the runtime packages ($(echo $rt))"
else
  bad "the build line installed no $img"
fi

echo "$passes passed, $fails failed (no Docker daemon here: 'docker build' itself is not run)"
[ $fails = 0 ]
