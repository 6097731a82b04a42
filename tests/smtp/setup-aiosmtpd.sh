#!/usr/bin/env bash
# aiosmtpd (a real SMTP server, from PyPI) in a cached virtual environment for the notification
# tests; prints the environment's directory:
#   venv=$(tests/smtp/setup-aiosmtpd.sh)   # then: $venv/bin/python -m aiosmtpd …
set -euo pipefail
exec "$(dirname "$0")/../python-env.sh" aiosmtpd 1.4.6 "import aiosmtpd"
