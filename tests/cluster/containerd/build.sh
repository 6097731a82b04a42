#!/usr/bin/env bash
# Builds containerd, ctr and the runc shim with the version stamped and the build tags upstream's
# Makefile uses (no btrfs headers here; the shim static and without gRPC, as upstream ships it).
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_DIR}
pkg=github.com/containerd/containerd/v2
version=$(go list -m -f '{{.Version}}' $pkg)
ldflags="-s -w -X $pkg/version.Version=$version -X $pkg/version.Revision= -X $pkg/version.Package=$pkg"
go build -trimpath -tags "urfave_cli_no_docs no_btrfs" -ldflags "$ldflags" -o "$out/" \
  $pkg/cmd/containerd $pkg/cmd/ctr
CGO_ENABLED=0 go build -trimpath -tags "urfave_cli_no_docs no_grpc" -ldflags "$ldflags -extldflags -static" \
  -o "$out/" $pkg/cmd/containerd-shim-runc-v2
