#!/usr/bin/env bash
# Makes (once) a Python virtual environment with pinned PyPI packages, for test tools that
# Debian does not package (PEP 668: nothing is pip-installed into the system Python).
# Usage: scripts/python-venv.sh DIR PACKAGE==VERSION...   Prints nothing on success; DIR is
# reused when it already holds every package at its version. The first run needs PyPI.
set -euo pipefail
dir=${1:?usage: python-venv.sh DIR PACKAGE==VERSION...}
shift
[ $# -gt 0 ] || { echo "python-venv: no packages given" >&2; exit 2; }
if [ -x "$dir/bin/python" ] && "$dir/bin/python" -m pip show -q "${@%%==*}" >/dev/null 2>&1; then
  ok=1
  for spec in "$@"; do
    have=$("$dir/bin/python" -m pip show "${spec%%==*}" 2>/dev/null | sed -n 's/^Version: //p')
    [ "$have" = "${spec##*==}" ] || ok=0
  done
  [ "$ok" = 1 ] && exit 0
fi
python3 -c 'import venv, ensurepip' 2>/dev/null \
  || { echo "python-venv: python3's venv module is missing: install python3-venv (scripts/install-deps.sh --test)" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
python3 -m venv "$dir"
"$dir/bin/python" -m pip install -q --disable-pip-version-check "$@" \
  || { echo "python-venv: pip could not install $* from PyPI (network?)" >&2; rm -rf "$dir"; exit 1; }
