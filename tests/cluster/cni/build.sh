#!/usr/bin/env bash
# Builds the CNI plugins the real node uses, static, with upstream's version stamp.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
pkg=github.com/containernetworking/plugins
version=$(go list -m -f '{{.Version}}' $pkg)
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $pkg/pkg/utils/buildversion.BuildVersion=$version" \
  -o "$out/cni/" $pkg/plugins/main/bridge $pkg/plugins/ipam/host-local $pkg/plugins/main/loopback
