#!/usr/bin/env bash
# Builds helm with the version stamps upstream's Makefile sets: its own version, and the
# Kubernetes version `helm template` and `helm lint` assume, derived from its client-go module.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
version=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
client_go=$(go list -m -f '{{.Version}}' k8s.io/client-go)   # v0.<minor>.<patch>
k8s_minor=$(echo "$client_go" | cut -d. -f2)
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${version} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${k8s_minor}"
done
go build -trimpath -ldflags "${ldflags}" -o "${out}/helm" helm.sh/helm/v3/cmd/helm
