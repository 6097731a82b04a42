#!/usr/bin/env bash
# `make dev`: a local Trellis. Starts (or reuses) the local control plane, installs the CRDs,
# runs the operator, and applies the demo template and project. Stays in the foreground;
# Ctrl-C stops Trellis and leaves the control plane running (`make cluster-down` stops it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
dev=$repo/target/dev
kubeconfig=$repo/target/cluster/kubeconfig
kubectl() { "$repo/target/cluster/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
mkdir -p "$dev/logs"

"$repo/tests/cluster/up.sh" --reuse
kubectl apply --server-side --field-manager trellis-dev -f "$repo/charts/trellis/crds/" >/dev/null
kubectl wait --for condition=Established --timeout 60s -f "$repo/charts/trellis/crds/" >/dev/null
kubectl create namespace trellis-system --dry-run=client -o yaml | kubectl apply --server-side --field-manager trellis-dev -f - >/dev/null
kubectl apply --server-side --field-manager trellis-dev -f "$repo/policies/admission/" >/dev/null
"$repo/target/cluster/bin/helm" template trellis "$repo/charts/trellis" --show-only templates/workspace-templates.yaml \
  | kubectl apply --server-side --field-manager trellis-dev -f - >/dev/null

# One operator at a time: stop the one a previous `make dev` left behind.
if [ -f "$dev/operator.pid" ] && kill -0 "$(cat "$dev/operator.pid")" 2>/dev/null; then
  kill "$(cat "$dev/operator.pid")"; sleep 1
fi
KUBECONFIG=$kubeconfig RUST_LOG=${RUST_LOG:-info,kube_runtime=warn} nohup "$target/debug/trellis-operator" run \
  --log-format text --http-address 127.0.0.1:9090 >"$dev/logs/operator.log" 2>&1 &
operator=$!
echo $operator >"$dev/operator.pid"
stop() { kill "$operator" 2>/dev/null || true; wait "$operator" 2>/dev/null || true; rm -f "$dev/operator.pid"; }
trap stop EXIT INT TERM

start=$(date -u +%F)
end=$(date -u -d "$start + 1 year" +%F)
sed -e "s/@START@/$start/" -e "s/@END@/$end/" -e "s/@APPROVED@/${start}T09:00:00Z/" "$repo/tests/dev/demo-project.yaml" \
  | kubectl apply --server-side --field-manager trellis-dev -f - >/dev/null
# The workspace lives in the project's namespace, which exists once the project is Active.
kubectl wait project/demo --for=jsonpath='{.status.phase}'=Active --timeout 60s >/dev/null
kubectl apply --server-side --field-manager trellis-dev -f "$repo/tests/dev/demo-workspace.yaml" >/dev/null
kubectl -n trellis-demo wait workspace/alice-notebook --for=jsonpath='{.status.phase}'=Running --timeout 60s >/dev/null

cat <<INFO

Trellis is running locally.
  Kubernetes:  export KUBECONFIG=$kubeconfig   (kubectl is in target/cluster/bin)
  Projects:    kubectl get projects            (demo is Active: kubectl get proj demo -o yaml)
  Workspaces:  kubectl -n trellis-demo get ws  (alice-notebook is Running)
  Operator:    http://127.0.0.1:9090/metrics   logs in target/dev/logs/operator.log
Press Ctrl-C to stop Trellis; 'make cluster-down' stops the control plane too.
INFO
wait "$operator"
