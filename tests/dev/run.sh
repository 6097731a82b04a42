#!/usr/bin/env bash
# `make dev`: a local Trellis. Starts (or reuses) the local control plane, installs the CRDs,
# runs Dex (the OpenID Provider, with the demo users), the operator, the API and the workspace
# runtime stand-in (which runs each Running workspace's program, e.g. JupyterLab, as a host
# process on its pod address), and applies the demo templates and project. Stays in the foreground;
# Ctrl-C stops Trellis and leaves the control plane running (`make cluster-down` stops it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
dev=$repo/target/dev
kubeconfig=$repo/target/cluster/kubeconfig
kubectl() { "$repo/target/cluster/bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
mkdir -p "$dev/logs"
# tests/dev/trellis.yaml names its data directory relative to the repository.
cd "$repo"

"$repo/tests/cluster/up.sh" --reuse
# JupyterLab (from PyPI, cached) for the demo workspace: kwok runs no containers.
jupyterlab=$("$repo/tests/workspace/setup-jupyterlab.sh")
kubectl apply --server-side --force-conflicts --field-manager trellis-dev -f "$repo/charts/trellis/crds/" >/dev/null
kubectl wait --for condition=Established --timeout 60s -f "$repo/charts/trellis/crds/" >/dev/null
kubectl create namespace trellis-system --dry-run=client -o yaml | kubectl apply --server-side --force-conflicts --field-manager trellis-dev -f - >/dev/null
kubectl apply --server-side --force-conflicts --field-manager trellis-dev -f "$repo/policies/admission/" >/dev/null
"$repo/target/cluster/bin/helm" template trellis "$repo/charts/trellis" --show-only templates/workspace-templates.yaml \
  -f "$repo/charts/trellis/ci/minimal-values.yaml" \
  | kubectl apply --server-side --force-conflicts --field-manager trellis-dev -f - >/dev/null

# One of each at a time: stop what a previous `make dev` left behind.
for name in operator api dex runtime; do
  if [ -f "$dev/$name.pid" ] && kill -0 "$(cat "$dev/$name.pid")" 2>/dev/null; then
    kill "$(cat "$dev/$name.pid")"; sleep 1
  fi
done
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -f "$dev"/*.pid
}
trap stop EXIT INT TERM
# start NAME COMMAND...: runs COMMAND in the background, logging to target/dev/logs/NAME.log.
start() {
  local name=$1; shift
  nohup "$@" >"$dev/logs/$name.log" 2>&1 &
  pids+=($!)
  echo $! >"$dev/$name.pid"
}
# wait_http NAME URL: waits up to 60 s for URL to answer 2xx.
wait_http() {
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "dev: $1 did not come up; see target/dev/logs/$1.log" >&2
  tail -n 20 "$dev/logs/$1.log" >&2
  exit 1
}

start dex "$repo/target/cluster/bin/dex" serve "$repo/tests/dev/dex.yaml"
wait_http dex http://127.0.0.1:5556/dex/.well-known/openid-configuration
export KUBECONFIG=$kubeconfig RUST_LOG=${RUST_LOG:-info,kube_runtime=warn}
start operator "$target/debug/trellis-operator" run --log-format text --http-address 127.0.0.1:9090
start api "$target/debug/trellis-api" serve --config tests/dev/trellis.yaml --log-format text
start runtime "$target/debug/trellis-workspace-runtime" --jupyterlab "$jupyterlab" --state-dir "$dev/runtime"
wait_http api http://127.0.0.1:8080/readyz

start=$(date -u +%F)
end=$(date -u -d "$start + 1 year" +%F)
sed -e "s/@START@/$start/" -e "s/@END@/$end/" -e "s/@APPROVED@/${start}T09:00:00Z/" "$repo/tests/dev/demo-project.yaml" \
  | kubectl apply --server-side --force-conflicts --field-manager trellis-dev -f - >/dev/null
# The workspace lives in the project's namespace, which exists once the project is Active.
kubectl wait project/demo --for=jsonpath='{.status.phase}'=Active --timeout 60s >/dev/null
kubectl apply --server-side --force-conflicts --field-manager trellis-dev -f "$repo/tests/dev/demo-workspace.yaml" >/dev/null
kubectl -n trellis-demo wait workspace/alice-notebook --for=jsonpath='{.status.phase}'=Running --timeout 60s >/dev/null
# Its JupyterLab listens on the pod's address once the runtime stand-in has started it.
pod_ip=$(kubectl -n trellis-demo get pod alice-notebook-0 -o jsonpath='{.status.podIP}')
wait_http runtime "http://$pod_ip:8888/w/demo/alice-notebook/api/status"

# DataSHIELD: a synthetic cohort comes in through the airlock (alice asks, the data steward
# approves) and becomes the demo project's table, for ann the analyst.
api="http://127.0.0.1:8080/api/v1/projects/demo/airlock"
alice=$("$repo/tests/dev/token.sh" alice)
steward=$("$repo/tests/dev/token.sh" steward)
python3 "$repo/datashield/bench/generate.py" "$dev/cohort" 2000
call() { curl -sSf -H "Authorization: Bearer $1" "${@:2}"; }
id=$(call "$alice" -H 'content-type: application/json' \
  -d '{"direction":"ingress","title":"Synthetic cohort for DataSHIELD"}' "$api" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
for file in cohort.csv cohort.dictionary.yaml; do
  call "$alice" -X PUT --data-binary "@$dev/cohort/bench/$file" "$api/$id/files/$file" >/dev/null
done
call "$alice" -X POST "$api/$id/submit" >/dev/null
call "$steward" -H 'content-type: application/json' -d '{"votes":[{"file":"cohort.csv","vote":"approve"},{"file":"cohort.dictionary.yaml","vote":"approve"}]}' "$api/$id/votes" >/dev/null
call "$steward" -H 'content-type: application/json' -d '{"outcome":"approve"}' "$api/$id/outcome" >/dev/null
kubectl patch project demo --type merge --field-manager trellis-dev -p "{\"spec\":{\"datashield\":{\"enabled\":true,\"tables\":[{\"name\":\"cohort\",\"request\":\"$id\",\"file\":\"cohort.csv\",\"dictionary\":\"cohort.dictionary.yaml\"}]}}}" >/dev/null
kubectl wait project/demo --for=jsonpath='{.status.datashield.ready}'=true --timeout 90s >/dev/null
ds_ip=$(kubectl -n trellis-demo get pod -l trellis.dev/component=datashield -o jsonpath='{.items[0].status.podIP}')
wait_http runtime "http://$ds_ip:8095/healthz"

cat <<INFO

Trellis is running locally at  http://127.0.0.1:8080   (API: /api/v1, description: /api/v1/openapi.json)

  Sign in with a demo login: <name>@trellis.example, password <name>-password
  (e.g. alice@trellis.example / alice-password):
    admin     platform admin
    alice     researcher, owner of project demo
    bob       researcher, member of project demo
    carol     output checker
    dan       output checker
    steward   data steward
    ann       analyst of project demo (DataSHIELD only: no workspaces, no files)
  A bearer token for scripts:  make token USER=alice
    curl -H "Authorization: Bearer \$(make -s token USER=alice)" http://127.0.0.1:8080/api/v1/projects

  Kubernetes:  export KUBECONFIG=$kubeconfig   (kubectl is in target/cluster/bin)
  Projects:    kubectl get projects            (demo is Active; template jupyter)
  Workspaces:  kubectl -n trellis-demo get ws  (alice-notebook is Running)
  JupyterLab:  http://127.0.0.1:8080/w/demo/alice-notebook/   (alice's workspace, through the
               gateway: sign in as alice; nobody else may open it. Workspaces are served from
               their own origin, http://localhost:8080, which the link takes you to.)
  DataSHIELD:  http://127.0.0.1:8080/datashield/demo   (the demo project's server, table demo.cohort:
               sign in as ann, make a token at /tokens, then from Python with the clients in
               datashield/tests/clients/requirements.txt:
               DSLoginBuilder().add("demo", "http://127.0.0.1:8080/datashield/demo", token=...))
  Identity:    Dex at http://127.0.0.1:5556/dex
  Logs:        target/dev/logs/{api,operator,dex,runtime}.log, workspaces' in target/dev/runtime/logs/
               metrics: the API's :9091/metrics, the operator's :9090/metrics
Press Ctrl-C to stop Trellis; 'make cluster-down' stops the control plane too.
INFO
wait "${pids[@]}"
