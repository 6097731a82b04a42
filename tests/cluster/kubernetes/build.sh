#!/usr/bin/env bash
# Builds the control-plane tools from the pinned k8s.io/kubernetes module with the version stamped
# the way upstream's hack/lib/version.sh does, so /version reports the real release. The module
# proxy does not say which commit a release was cut from, so gitCommit is left empty, not invented.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
released=$(go list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X ${pkg}.gitVersion=${version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
  ldflags+=" -X ${pkg}.gitCommit= -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=${released}"
done
go build -trimpath -ldflags "${ldflags}" -o "${out}/" tool
