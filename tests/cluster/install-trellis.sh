#!/usr/bin/env bash
# Installs Trellis with its Helm chart into the local control plane, the way a platform engineer
# would (release `trellis` in namespace trellis-system, the chart's minimal values, a shared airlock
# volume so that chart-lifecycle.sh can scale the API), waits for its
# Deployments, and writes a kubeconfig for each of the chart's ServiceAccounts (tokens from the
# TokenRequest API) to target/cluster/identities/, so that tests can run the operator and the API
# as host processes with exactly the chart's permissions.
set -euo pipefail
source "$(dirname "$0")/env.sh"
say() { echo "install-trellis: $*" >&2; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
helm() { "$bin/helm" --kubeconfig "$kubeconfig" "$@"; }
namespace=trellis-system
identities=$state/identities

kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
# The OpenID Connect client secret, as the chart expects it (oidc.existingSecret).
kubectl -n "$namespace" create secret generic trellis-oidc --from-literal=client-secret=trellis-dev-secret \
  --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
start=$(date +%s)
helm upgrade --install trellis "$repo/charts/trellis" --namespace "$namespace" \
  -f "$repo/charts/trellis/ci/minimal-values.yaml" --set airlock.storage.accessMode=ReadWriteMany \
  --wait --timeout 3m >/dev/null
say "chart installed and its Deployments Available in $(( $(date +%s) - start ))s"

mkdir -p "$identities"
for component in operator api; do
  token=$(kubectl -n "$namespace" create token "trellis-$component" --duration 6h)
  (umask 077 && write_kubeconfig "$identities/$component.kubeconfig" "trellis-$component" "    token: $token")
done
say "ServiceAccount kubeconfigs in $identities"
