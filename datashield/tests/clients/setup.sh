#!/usr/bin/env bash
# Installs the published DataSHIELD Python clients, pinned, into a virtual environment cached in
# ~/.cache/trellis (keyed by the pins), and prints its python. Usage: setup.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
key=$( (python3 --version; cat "$here/requirements.txt") | sha256sum | cut -c1-16)
venv=${TRELLIS_CACHE_DIR:-$HOME/.cache/trellis}/datashield-clients-$key
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
