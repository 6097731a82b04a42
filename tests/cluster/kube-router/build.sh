#!/usr/bin/env bash
# Builds kube-router (static) with its version stamped as upstream's Makefile does.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
pkg=github.com/cloudnativelabs/kube-router/v2
version=$(go list -m -f '{{.Version}}' $pkg)
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X $pkg/pkg/version.Version=$version" -o "$out/kube-router" $pkg/cmd/kube-router
