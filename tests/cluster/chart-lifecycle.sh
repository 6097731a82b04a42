#!/usr/bin/env bash
# After the end-to-end suite: `helm upgrade` the release install-trellis.sh made (fewer operator
# replicas, a second API replica on PostgreSQL) and wait for it, then `helm uninstall` it and check
# that it left nothing behind but what it promises to keep (the CRDs, which Helm never deletes, and
# the volumes with the audit log and the airlock's files). Exits non-zero on any difference.
set -euo pipefail
source "$(dirname "$0")/env.sh"
say() { echo "chart-lifecycle: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
helm() { "$bin/helm" --kubeconfig "$kubeconfig" "$@"; }
namespace=trellis-system

helm upgrade trellis "$repo/charts/trellis" --namespace "$namespace" --reuse-values \
  --set operator.replicas=1 --set api.replicas=2 --set database.url=postgres://trellis@db.example.org/trellis \
  --wait --timeout 3m >/dev/null
[ "$(kubectl -n "$namespace" get deploy trellis-operator -o jsonpath='{.status.availableReplicas}')" = 1 ] \
  || fail "the operator did not scale to 1 replica"
[ "$(kubectl -n "$namespace" get deploy trellis-api -o jsonpath='{.status.availableReplicas}')" = 2 ] \
  || fail "the API did not scale to 2 replicas"
kubectl -n "$namespace" get pdb trellis-api >/dev/null || fail "two API replicas need their PodDisruptionBudget"
say "upgrade: operator 1 replica, API 2 replicas on PostgreSQL, Available"

helm uninstall trellis --namespace "$namespace" --wait --timeout 3m >/dev/null
selector=app.kubernetes.io/part-of=trellis
left=$(kubectl get clusterroles,clusterrolebindings,validatingadmissionpolicies,validatingadmissionpolicybindings,workspacetemplates -l "$selector" -o name)
[ -z "$left" ] || fail "cluster-scoped objects left behind: $left"
left=$(kubectl -n "$namespace" get deployments,services,serviceaccounts,configmaps,roles,rolebindings,networkpolicies,poddisruptionbudgets -l "$selector" -o name)
[ -z "$left" ] || fail "namespaced objects left behind: $left"
kubectl -n "$namespace" get pvc trellis-api-data >/dev/null || fail "the audit log's volume must survive uninstall"
kubectl -n "$namespace" get pvc trellis-airlock >/dev/null || fail "the airlock's files must survive uninstall"
kubectl get crd projects.trellis.dev >/dev/null || fail "the CRDs must survive uninstall (they hold every project)"
say "uninstall: nothing left but the CRDs and the kept audit-log and airlock volumes"
