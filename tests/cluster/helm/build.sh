#!/usr/bin/env bash
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
version=$(go list -m -f '{{.Version}}' helm.sh/helm/v3)
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${version} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
  -o "${out}/helm" helm.sh/helm/v3/cmd/helm
