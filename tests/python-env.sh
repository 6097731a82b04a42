#!/usr/bin/env bash
# Installs a pinned PyPI package into a cached virtual environment and prints the environment's
# directory on stdout (progress goes to stderr). A complete environment is reused; a new one is
# built beside its final place and renamed into it, so an interrupted install never leaves a
# half-made environment behind, and a concurrent install finishing first is as good.
#   tests/python-env.sh NAME VERSION CHECK
# installs NAME==VERSION into ~/.cache/trellis/NAME-VERSION; CHECK is Python that exits 0 only in
# a complete environment. Only `bin/python -m …` may be used from it: the entry scripts' first
# lines would name the staging path.
set -euo pipefail
name=${1:?usage: tests/python-env.sh NAME VERSION CHECK}
version=${2:?usage: tests/python-env.sh NAME VERSION CHECK}
check=${3:?usage: tests/python-env.sh NAME VERSION CHECK}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/trellis
venv=$cache/$name-$version
say() { echo "python-env: $*" >&2; }
complete() { [ -x "$1/bin/python" ] && "$1/bin/python" -c "$check" 2>/dev/null; }

if complete "$venv"; then
  echo "$venv"
  exit 0
fi
python=$(command -v python3) || { say "python3 is required"; exit 1; }
mkdir -p "$cache"
staging=$(mktemp -d "$cache/.$name-$version.XXXXXX")
trap 'rm -rf "$staging"' EXIT
say "installing $name $version into $venv (once)"
"$python" -m venv "$staging/venv" >&2
"$staging/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$name==$version" >&2
complete "$staging/venv" || { say "the new environment fails its check for $name $version"; exit 1; }
# A broken environment (say, its python3 was removed) is replaced.
[ ! -e "$venv" ] || complete "$venv" || rm -rf "$venv"
if ! mv -T "$staging/venv" "$venv" 2>/dev/null; then
  complete "$venv" || { say "could not move the environment into $venv"; exit 1; }
fi
echo "$venv"
