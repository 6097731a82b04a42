#!/usr/bin/env bash
# Installs pinned Python packages into a virtual environment cached in ~/.cache/trellis (keyed by
# the pins), and prints its python. Usage: setup.sh [REQUIREMENTS], by default requirements.txt
# (the published DataSHIELD clients); parquet-requirements.txt is pyarrow, for the parquet tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
requirements=${1:-requirements.txt}
name=$(basename "$requirements" .txt)
name=${name%-requirements}
[ "$name" = requirements ] && name=clients
key=$( (python3 --version; cat "$here/$requirements") | sha256sum | cut -c1-16)
venv=${TRELLIS_CACHE_DIR:-$HOME/.cache/trellis}/datashield-$name-$key
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/$requirements" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
