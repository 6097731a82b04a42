#!/usr/bin/env bash
# Builds the real node's kubelet and kube-proxy from the same k8s.io/kubernetes pin as the control
# plane (kept in step by ../kubernetes/update-pins.sh VERSION node), stamped the same way, with cgo
# at its default so the control plane's build cache is reused.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
exec "$(dirname "$0")/../kubernetes/build.sh" "$out"
