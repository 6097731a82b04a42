#!/usr/bin/env bash
# Runs the end-to-end suite against a local control plane that it starts for the purpose and
# always stops afterwards, whether the tests pass, fail or are interrupted. Arguments are test
# filters (e.g. `tests/run-e2e.sh gateway::`): only those run, and the chart's lifecycle is skipped.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cluster=$repo/tests/cluster
"$cluster/up.sh"
status=0
stop() {
  if [ $status -ne 0 ]; then
    echo "e2e: tests failed; the last lines of each control-plane log:" >&2
    for log in "$repo"/target/cluster/logs/*.log; do
      echo "--- $log" >&2
      tail -n 15 "$log" >&2
    done
  fi
  "$cluster/down.sh"
  "$cluster/postgres-down.sh"
}
trap stop EXIT
# PostgreSQL for the tests that run on both databases; each test creates its own database.
postgres_url=$("$cluster/postgres-up.sh")
# Trellis installed with its chart: the operator and API under test run as its ServiceAccounts.
"$cluster/install-trellis.sh"
# JupyterLab (PyPI, cached) for the workspaces the runtime stand-in starts (tests/e2e/src/runtime.rs).
export TRELLIS_E2E_JUPYTERLAB=$("$repo/tests/workspace/setup-jupyterlab.sh")
# playwright-core (npm, pinned by tests/browser/package-lock.json) drives Debian's Chromium in the
# browser tests; their screenshots of this run go to target/screenshots/.
npm ci --prefix "$repo/tests/browser" --no-audit --no-fund --loglevel=error
rm -rf "$repo/target/screenshots"
identities=$repo/target/cluster/identities
export TRELLIS_E2E_OPERATOR_KUBECONFIG=$identities/operator.kubeconfig
export TRELLIS_E2E_API_KUBECONFIG=$identities/api.kubeconfig
# aiosmtpd (PyPI), the real SMTP server the notification tests send mail to.
export TRELLIS_E2E_AIOSMTPD=$("$repo/tests/smtp/setup-aiosmtpd.sh")
# Keycloak (Maven Central, pinned, cached by version), the second real OpenID provider (keycloak:: tests).
export TRELLIS_E2E_KEYCLOAK_HOME=$("$repo/tests/keycloak/setup.sh")
# MinIO (Go module proxy, cached), the real S3-compatible server the airlock's S3 tests store in.
export TRELLIS_E2E_S3_SERVER=$("$repo/tests/s3/build.sh")
KUBECONFIG=$repo/target/cluster/kubeconfig TRELLIS_TEST_POSTGRES_URL=$postgres_url cargo test --locked -p trellis-e2e --test suite -- --test-threads 4 "$@" || status=$?
# Upgrade and uninstall last: the suite ran against the installed release.
if [ $# -eq 0 ]; then
  "$cluster/chart-lifecycle.sh" || status=$?
fi
exit $status
