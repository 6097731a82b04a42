#!/usr/bin/env bash
# The real-node lane of `make test`: Trellis installed with its Helm chart from the images `make
# images` builds, on a local control plane with a real node (kubelet, containerd, runc, CNI), the
# way a platform engineer installs it: Dex as the OpenID provider, a public URL and a workspace
# origin of their own. Then the real-node tests (tests/e2e/tests/real_node.rs) run against that
# deployment, and everything is torn down and checked to be gone, whatever the outcome.
#
# Addresses: the node address (10.244.0.1) is on the harness's own bridge; Dex and the public URL
# listen there, so the API pod and the browser on this machine reach the same URLs. Nothing here
# listens on or sends to any other interface.
#
# `run.sh bench` runs the lane's figures instead of its tests (make bench).
set -euo pipefail
mode=${1:-test}
case $mode in test|bench) ;; *) echo "usage: run.sh [test|bench]" >&2; exit 2 ;; esac
repo=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$repo/tests/cluster
source "$cluster/env.sh"
say() { echo "real-node: $*" >&2; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
helm() { "$bin/helm" --kubeconfig "$kubeconfig" "$@"; }
lane=$state/real-lane
namespace=trellis-system
dex_port=5556
public_port=8080
workspaces_port=8081
public_url=http://$node_ip:$public_port
# Another origin for workspaces (README: security notes): the same relay on loopback, by name.
workspaces_url=http://localhost:$workspaces_port
issuer=http://$node_ip:$dex_port/dex

status=0
helpers=()
stop() {
  local rc=$?
  [ $status -ne 0 ] || status=$rc
  [ $status -eq 0 ] || {
    say "failed; the last lines of the node's and Trellis's logs:"
    for log in "$logs"/{kubelet,containerd,kube-proxy,kube-router,local-path-provisioner}*.log "$lane"/*.log; do
      [ -f "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
    done
    kubectl -n "$namespace" get pods -o wide >&2 2>/dev/null || true
    for pod in $(kubectl -n "$namespace" get pods -o name 2>/dev/null); do
      echo "--- $pod" >&2; kubectl -n "$namespace" logs "$pod" --all-containers --tail 20 >&2 2>/dev/null || true
    done
  }
  for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The logs stay for a post-mortem when something failed.
  if [ $status -eq 0 ]; then "$cluster/down.sh" || status=$?; else "$cluster/down.sh" --keep-logs || true; fi
  exit $status
}
trap stop EXIT

"$repo/images/build.sh" >&2
"$cluster/up.sh" --real-node
rm -rf "$lane"
mkdir -p "$lane"

# Dex on the node address, with the demo users and Trellis's redirect at the public URL.
sed -e "s#^issuer: .*#issuer: $issuer#" -e "s#^  http: 127.0.0.1:5556#  http: $node_ip:$dex_port#" \
    -e "s#^  http: 127.0.0.1:5558#  http: 127.0.0.1:$(( dex_port + 2 ))#" \
    -e "s#http://127.0.0.1:8080/auth/callback#$public_url/auth/callback#" \
    "$repo/tests/dev/dex.yaml" >"$lane/dex.yaml"
grep -q "$public_url/auth/callback" "$lane/dex.yaml" || { say "could not point Dex at $public_url"; status=1; exit 1; }
setsid "$bin/dex" serve "$lane/dex.yaml" >"$lane/dex.log" 2>&1 &
helpers+=($!)
for _ in $(seq 300); do curl -sf "$issuer/.well-known/openid-configuration" >/dev/null && break; sleep 0.1; done
curl -sf "$issuer/.well-known/openid-configuration" >/dev/null || { say "Dex did not start; see $lane/dex.log"; status=1; exit 1; }

# The chart, from the images imported into the node's containerd (never pulled).
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
kubectl -n "$namespace" create secret generic trellis-oidc --from-literal=client-secret=trellis-dev-secret \
  --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
start=$(date +%s)
helm install trellis "$repo/charts/trellis" --namespace "$namespace" \
  -f "$repo/tests/real-node/values.yaml" \
  --set-string "oidc.issuer=$issuer,api.publicUrl=$public_url,api.workspacesUrl=$workspaces_url" \
  --wait --timeout 5m >/dev/null || { status=1; exit 1; }
say "chart installed from local images, Deployments Available in $(( $(date +%s) - start ))s"

# The address people use: a relay standing in for a load balancer in front of the API's Service.
api_ip=$(kubectl -n "$namespace" get service trellis-api -o jsonpath='{.spec.clusterIP}')
api_port=$(kubectl -n "$namespace" get service trellis-api -o jsonpath='{.spec.ports[0].port}')
setsid socat "TCP-LISTEN:$public_port,bind=$node_ip,reuseaddr,fork" "TCP:$api_ip:$api_port" >"$lane/relay-public.log" 2>&1 &
helpers+=($!)
setsid socat "TCP-LISTEN:$workspaces_port,bind=127.0.0.1,reuseaddr,fork" "TCP:$api_ip:$api_port" >"$lane/relay-workspaces.log" 2>&1 &
helpers+=($!)
for _ in $(seq 100); do curl -sf "$public_url/readyz" >/dev/null && break; sleep 0.1; done

npm ci --prefix "$repo/tests/browser" --no-audit --no-fund --loglevel=error
mkdir -p "$repo/target/screenshots/real-node"
belt_check || { status=1; exit 1; }
export KUBECONFIG=$kubeconfig \
TRELLIS_REAL_URL=$public_url TRELLIS_REAL_WORKSPACES_URL=$workspaces_url TRELLIS_REAL_ISSUER=$issuer \
TRELLIS_REAL_NODE_STATE=$node_state TRELLIS_REAL_BIN=$bin
export TRELLIS_REAL_CLI=${CARGO_TARGET_DIR:-$repo/target}/release/trellis
if [ "$mode" = bench ]; then
  "${CARGO_TARGET_DIR:-$repo/target}/release/trellis-bench" real-node || status=$?
else
  rm -f "$repo/target/real-node-figures.txt"
  cargo test --locked -p trellis-e2e --test real_node -- --test-threads 1 || status=$?
  [ ! -f "$repo/target/real-node-figures.txt" ] || sed 's/^/real-node: /' "$repo/target/real-node-figures.txt" >&2
fi
