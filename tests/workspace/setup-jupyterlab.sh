#!/usr/bin/env bash
# Installs JupyterLab (from PyPI) into a cached virtual environment, for the workspace program
# that the runtime stand-in (tests/e2e/src/runtime.rs) starts for `make dev` and the tests, and
# prints the environment's directory on stdout (progress goes to stderr):
#   venv=$(tests/workspace/setup-jupyterlab.sh)
# The version is pinned; a complete environment is reused. It is built beside its final place
# and renamed into it, so an interrupted install never leaves a half-made environment behind.
set -euo pipefail
version=4.6.6
cache=${XDG_CACHE_HOME:-$HOME/.cache}/trellis
venv=$cache/jupyterlab-$version
say() { echo "setup-jupyterlab: $*" >&2; }
complete() {
  [ -x "$1/bin/python" ] \
    && "$1/bin/python" -c "import jupyterlab, ipykernel, sys; sys.exit(jupyterlab.__version__ != '$version')" 2>/dev/null
}

if complete "$venv"; then
  echo "$venv"
  exit 0
fi
python=$(command -v python3) || { say "python3 is required"; exit 1; }
mkdir -p "$cache"
staging=$(mktemp -d "$cache/.jupyterlab-$version.XXXXXX")
trap 'rm -rf "$staging"' EXIT
say "installing JupyterLab $version into $venv (a few minutes, once)"
# Only `bin/python -m …` is used (tests/workspace/bin/start-notebook.py), which works wherever
# the environment is moved to; the entry scripts' first lines would name the staging path.
"$python" -m venv "$staging/venv" >&2
"$staging/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "jupyterlab==$version" >&2
complete "$staging/venv" || { say "the new environment does not import JupyterLab $version"; exit 1; }
# A broken environment is replaced; a concurrent install may have finished first, and either
# result is good.
[ ! -e "$venv" ] || complete "$venv" || rm -rf "$venv"
if ! mv -T "$staging/venv" "$venv" 2>/dev/null; then
  complete "$venv" || { say "could not move the environment into $venv"; exit 1; }
fi
echo "$venv"
