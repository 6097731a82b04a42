#!/usr/bin/env bash
# Builds kwok and assembles upstream's "fast" stages beside it: nodes become Ready and keep a
# lease; pods become Running at once and go when deleted; claims of the kwok-volume storage class
# get a volume, which is deleted when released (so teardown can wait for volumes to be gone).
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
go build -trimpath -ldflags "-s -w" -o "${out}/kwok" sigs.k8s.io/kwok/cmd/kwok
src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
             pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete \
             volume/fast/pvc-provision volume/fast/pv-bind volume/fast/pvc-delete volume/fast/pv-delete; do
  echo "---"
  cat "${src}/${stage}.yaml"
done > "${out}/kwok-stages.yaml"
cp "${src}/volume/fast/storage-class.yaml" "${out}/kwok-storage-class.yaml"
