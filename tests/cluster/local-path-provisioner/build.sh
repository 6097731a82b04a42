#!/usr/bin/env bash
# Builds Rancher's local-path-provisioner (static, so it runs in an image with no libc).
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
pkg=github.com/rancher/local-path-provisioner
version=$(go list -m -f '{{.Version}}' $pkg)
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.VERSION=$version" -o "$out/local-path-provisioner" $pkg
