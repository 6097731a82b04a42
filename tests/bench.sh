#!/usr/bin/env bash
# `make bench`: builds release binaries, starts a fresh local control plane, runs the benchmark
# report (tests/e2e/src/bin/trellis-bench.rs) and always stops the control plane afterwards; then
# the real-node lane's figures (tests/real-node/run.sh bench: images, workspace start on a real
# kubelet), and DataSHIELD's (datashield/bench/run.sh: a 1,000,000-row table through the Python
# client, side by side with base R). `tests/bench.sh api` measures only the API,
# `tests/bench.sh datashield` only DataSHIELD.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
[ "${1:-}" = datashield ] && exec "$repo/datashield/bench/run.sh"
cargo build --release --locked -p trellis-operator -p trellis-api -p trellis-e2e --bins
"$repo/tests/cluster/up.sh"
trap '"$repo/tests/cluster/down.sh"' EXIT
KUBECONFIG=$repo/target/cluster/kubeconfig "${CARGO_TARGET_DIR:-$repo/target}/release/trellis-bench" "$@"
"$repo/tests/cluster/down.sh"
trap - EXIT
[ "${1:-}" = api ] && exit 0
"$repo/datashield/bench/run.sh"
"$repo/tests/real-node/run.sh" bench
