#!/usr/bin/env bash
# JupyterLab (from PyPI) in a cached virtual environment, for the workspace program that the
# runtime stand-in (tests/e2e/src/runtime.rs) starts for `make dev` and the tests; prints the
# environment's directory (tests/workspace/bin/start-notebook.py runs its `bin/python -m …`):
#   venv=$(tests/workspace/setup-jupyterlab.sh)
set -euo pipefail
version=4.6.6
exec "$(dirname "$0")/../python-env.sh" jupyterlab "$version" \
  "import jupyterlab, ipykernel, sys; sys.exit(jupyterlab.__version__ != '$version')"
