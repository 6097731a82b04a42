#!/usr/bin/env bash
# Regenerates requirements.txt: resolves JupyterLab (the version of tests/workspace/
# setup-jupyterlab.sh) and ipykernel for CPython 3.11 on x86_64 (Debian bookworm's python3) from
# PyPI, and pins every wheel by version and hash.
#   images/trellis-workspace-jupyter/lock.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jupyterlab=$(sed -n 's/^version=//p' "$here/../../tests/workspace/setup-jupyterlab.sh")
[ -n "$jupyterlab" ] || { echo "lock.sh: no version= in tests/workspace/setup-jupyterlab.sh" >&2; exit 1; }
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
# The same platform tags as images/build.sh's download (bookworm's glibc is 2.36).
python3 -m pip download --quiet --disable-pip-version-check --no-cache-dir --only-binary=:all: \
  --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64 \
  --dest "$wheels" "jupyterlab==$jupyterlab" ipykernel
{
  grep '^#' "$here/requirements.txt"
  python3 - "$wheels" <<'PY'
import hashlib, os, re, sys
for f in sorted(os.listdir(sys.argv[1])):
    name, version = f.split("-")[:2]
    digest = hashlib.sha256(open(os.path.join(sys.argv[1], f), "rb").read()).hexdigest()
    print(f"{re.sub(r'[-_.]+', '-', name).lower()}=={version} \\\n    --hash=sha256:{digest}")
PY
} >"$here/requirements.txt.new"
mv "$here/requirements.txt.new" "$here/requirements.txt"
echo "lock.sh: pinned $(grep -c '==' "$here/requirements.txt") wheels for JupyterLab $jupyterlab" >&2
