#!/usr/bin/env bash
# Installs aiosmtpd (a real SMTP server, from PyPI) into a cached virtual environment for the
# notification tests, and prints the environment's directory on stdout (progress goes to stderr):
#   venv=$(tests/smtp/setup-aiosmtpd.sh)   # then: $venv/bin/python -m aiosmtpd …
# The version is pinned; a complete environment is reused. It is built beside its final place
# and renamed into it, so an interrupted install never leaves a half-made environment behind.
set -euo pipefail
version=1.4.6
cache=${XDG_CACHE_HOME:-$HOME/.cache}/trellis
venv=$cache/aiosmtpd-$version
say() { echo "setup-aiosmtpd: $*" >&2; }

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import aiosmtpd" 2>/dev/null; then
  echo "$venv"
  exit 0
fi
python=$(command -v python3) || { say "python3 is required"; exit 1; }
mkdir -p "$cache"
staging=$(mktemp -d "$cache/.aiosmtpd-$version.XXXXXX")
trap 'rm -rf "$staging"' EXIT
say "installing aiosmtpd $version into $venv"
# Only `bin/python -m …` is used, which works wherever the environment is moved to (the entry
# scripts' first lines would name the staging path).
"$python" -m venv "$staging/venv" >&2
"$staging/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "aiosmtpd==$version" >&2
"$staging/venv/bin/python" -c "import aiosmtpd" >&2
# A broken environment (say, its python3 was removed) is replaced; a concurrent install may
# have finished first, and either result is good.
[ ! -e "$venv" ] || rm -rf "$venv"
if ! mv -T "$staging/venv" "$venv" 2>/dev/null; then
  [ -x "$venv/bin/python" ] || { say "could not move the environment into $venv"; exit 1; }
fi
echo "$venv"
