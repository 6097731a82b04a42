#!/usr/bin/env bash
# Builds kwok and assembles its upstream "fast" node and pod stages (nodes become Ready and keep a
# lease; pods become Running at once and are removed when deleted) into stages.yaml beside it.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
go build -trimpath -ldflags "-s -w" -o "${out}/kwok" sigs.k8s.io/kwok/cmd/kwok
src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
             pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
  echo "---"
  cat "${src}/${stage}.yaml"
done > "${out}/kwok-stages.yaml"
